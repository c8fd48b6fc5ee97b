"""``breast-ai features``: radiomics features of a cohort, one row per case."""

from __future__ import annotations

import json
from pathlib import Path

import click


@click.command()
@click.option("--cohort", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              required=True, help="Cohort CSV: case_id, <modality>_image, <modality>_mask, "
              "optional <modality>_label, and any label columns.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Features CSV (rewritten after every case; a rerun skips finished cases).")
@click.option("--params", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="Radiomics parameter file (.yaml or .json).")
@click.option("--jobs", type=int, default=1, show_default=True,
              help="Cases extracted in parallel (one process each).")
@click.option("--deep", is_flag=True, help="Add deep features (pooled MRSM encoder activations) "
              "of DCE studies.")
@click.option("--deep-weights", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="A local torchvision ResNet weight file (.pth, e.g. ImageNet "
              "resnet50): deep features from its pooling layer on each lesion's ROI, for every "
              "modality (implies --deep).")
@click.option("--deep-pca", type=int, default=0, show_default=True,
              help="Reduce the deep features to this many principal components (0: keep all).")
@click.option("--no-progress", is_flag=True, help="Hide the progress bar.")
def features(cohort: Path, out: Path, params: Path | None, jobs: int, deep: bool,
             deep_weights: Path | None, deep_pca: int, no_progress: bool) -> None:
    """Extract PyRadiomics (and optionally deep) features for every case of a cohort CSV.

    Columns are <modality>:<image>_<region>_<family>_<feature>; regions are the lesion and its
    peritumoral shell. Failed cases are listed in OUT.failures.log; the settings used are
    written to OUT.settings.json.
    """
    from tqdm import tqdm

    from BreastAIAssistantLib.errors import BreastAIError
    from BreastAIAssistantLib.radiomics.cohort import (
        extract_cohort,
        read_rows,
        reduce_deep,
        write_rows,
    )
    from BreastAIAssistantLib.radiomics.settings import load_settings

    if jobs < 1:
        raise BreastAIError("--jobs must be at least 1")
    overrides: dict = {"deep": True} if deep or deep_weights else {}
    if deep_weights is not None:
        overrides["deep_weights"] = str(deep_weights.resolve())
    settings = load_settings(params, overrides or None)
    if settings.deep_weights and not Path(settings.deep_weights).expanduser().is_file():
        from BreastAIAssistantLib.errors import BreastAIError

        raise BreastAIError(f"deep_weights: no weight file {settings.deep_weights}")
    bar = tqdm(total=0, unit="case", disable=None if not no_progress else True, leave=False)

    def progress(done: int, total: int, case_id: str) -> None:
        bar.total = total
        bar.n = done
        bar.set_postfix_str(case_id, refresh=False)
        bar.refresh()

    from BreastAIAssistantLib.io.volumes import write_json

    # the settings travel with the table (and into a model trained on it)
    write_json(settings.to_dict(), out.with_name(out.name + ".settings.json"))
    try:
        counts = extract_cohort(cohort, out, settings, jobs, progress)
    finally:
        bar.close()
    if deep_pca > 0 and counts["failed"] == 0:
        write_rows(reduce_deep(read_rows(out), deep_pca), out)
    click.echo(json.dumps({**counts, "out": str(out)}))
    if counts["failed"]:
        click.echo(f"{counts['failed']} case(s) failed: see {out}.failures.log", err=True)
