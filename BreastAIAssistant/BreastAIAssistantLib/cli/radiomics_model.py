"""``breast-ai radiomics-model``: choose a radiomics model from a feature table.

Runs :func:`BreastAIAssistantLib.radiomics.modelling.select_models` (per-modality models, early
and late fusion, seven classifiers, selection inside every training fold), prints the results by
AUC and writes them with the refitted best model (:func:`~BreastAIAssistantLib.radiomics.
modelling.save_model`).
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import click

from BreastAIAssistantLib.radiomics.classifiers import CLASSIFIERS

logger = logging.getLogger(__name__)


def _number(value: float, digits: int = 3) -> str:
    return "-" if not math.isfinite(value) else f"{value:.{digits}f}"


@click.command("radiomics-model")
@click.option("--features", "features_csv", required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Feature CSV: case_id, feature columns ([modality:]<image>_<region>_"
                   "<family>_<feature>) and the label column.")
@click.option("--label", "label_column", required=True,
              help="Binary label column (0/1, true/false, benign/malignant, negative/positive).")
@click.option("--out", "out_dir", required=True,
              type=click.Path(file_okay=False, path_type=Path), help="Output folder.")
@click.option("--folds", default=5, show_default=True, type=click.IntRange(min=2),
              help="Stratified cross-validation folds.")
@click.option("--test-size", default=None, type=click.FloatRange(0, 1, min_open=True,
                                                                  max_open=True),
              help="Hold out this fraction in one stratified split instead of cross-validating.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of folds and models.")
@click.option("--classifier", "classifiers", multiple=True, type=click.Choice(list(CLASSIFIERS)),
              help="Classifier to evaluate (repeatable; default: all seven).")
@click.option("--n-boot", default=1000, show_default=True, type=click.IntRange(min=0),
              help="Bootstrap resamples of the AUC 95% CI (0: none).")
@click.option("--modality", "modalities", multiple=True,
              help="Use only this modality's columns (repeatable; default: all). A model meant "
                   "for 'breast-ai run --radiomics-model' needs the DCE modality only: a study "
                   "cannot provide ultrasound or mammography features.")
def radiomics_model(features_csv: Path, label_column: str, out_dir: Path, folds: int,
                    test_size: float | None, seed: int, classifiers: tuple[str, ...],
                    n_boot: int, modalities: tuple[str, ...]) -> None:
    """Compare per-modality, early-fusion and late-fusion radiomics models and save the best.

    Feature selection (missing/variance filter, Mann-Whitney U, Spearman, LASSO) is fitted inside
    each training fold only. Research use only.
    """
    from BreastAIAssistantLib.errors import BreastAIError
    from BreastAIAssistantLib.radiomics.modelling import save_model, select_models
    from BreastAIAssistantLib.radiomics.table import read_features_csv, restrict_modalities

    outputs = {(out_dir / name).resolve() for name in ("results.csv", "predictions.csv")}
    if features_csv.resolve() in outputs:
        raise BreastAIError("--out would overwrite the feature table; choose another folder")
    table = read_features_csv(features_csv, label=label_column)
    if modalities:
        table = restrict_modalities(table, modalities)
    logger.info("%d cases, %d features", len(table.case_ids), len(table.columns))
    result = select_models(table, label_column, cv_folds=folds, test_size=test_size, seed=seed,
                           classifiers=classifiers or tuple(CLASSIFIERS), n_boot=n_boot)
    best_dir = save_model(result, out_dir)
    sidecar = features_csv.with_name(features_csv.name + ".settings.json")
    if sidecar.is_file():  # the extraction settings travel with the model (run --radiomics-model)
        from BreastAIAssistantLib.io.volumes import write_json

        write_json(json.loads(sidecar.read_text(encoding="utf-8")),
                   best_dir / "radiomics_settings.json")
    how = (f"{folds}-fold cross-validation" if test_size is None
           else f"held-out {test_size:.0%} of the cases")
    click.echo(f"{len(table.case_ids)} cases, {len(table.columns)} features, "
               f"modalities: {', '.join(result.modalities)}; {how}, seed {seed}")
    header = f"{'strategy':<16} {'modality':<16} {'classifier':<20} {'AUC':>6} {'95% CI':>13} " \
             f"{'acc':>6} {'sens':>6} {'spec':>6} {'feat':>5}"
    click.echo(header)
    click.echo("-" * len(header))
    for row in result.sorted_rows():
        ci = f"{_number(row.auc_low, 2)}-{_number(row.auc_high, 2)}"
        click.echo(f"{row.strategy:<16} {row.modality:<16} {row.classifier:<20} "
                   f"{_number(row.auc):>6} {ci:>13} {_number(row.accuracy):>6} "
                   f"{_number(row.sensitivity):>6} {_number(row.specificity):>6} "
                   f"{row.n_features:>5g}")
    best = result.best
    click.echo(f"best: {best.strategy} / {best.modality} / {best.classifier} "
               f"(AUC {_number(best.auc)}), refitted on all cases: {best_dir}")
    click.echo("Research use only: not validated for clinical decisions.")
