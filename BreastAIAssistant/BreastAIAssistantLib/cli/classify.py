"""Classifier commands: the ``cls`` kind of ``breast-ai train`` / ``eval``, and
``breast-ai classify STUDY --box ...`` (the box-prompted DMIF classifier on any region)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import click

from BreastAIAssistantLib.cli.common import format_option, study_argument, times_option

logger = logging.getLogger(__name__)


def classification_cases(data: Path | None, phantom_seeds: str | None, matrix: str | None,
                         size: str = "clinical"):
    """Labelled cases for the classifiers, and a description of their source."""
    from BreastAIAssistantLib.cli.train import _seeds
    from BreastAIAssistantLib.errors import BreastAIError
    from BreastAIAssistantLib.train.data import folder_cases
    from BreastAIAssistantLib.train.lesion_data import phantom_classification_cases

    if (data is None) == (phantom_seeds is None):
        raise BreastAIError("give exactly one of --data DIR or --phantom-seeds A-B")
    if data is not None:
        return folder_cases(data), f"{data}"
    size_xyz = [int(v) for v in matrix.split(",")] if matrix else None
    what = f"matrix {matrix}" if matrix else f"{size} size"
    return (phantom_classification_cases(_seeds(phantom_seeds or ""), size_xyz, size),
            f"synthetic phantom (2-4 lesions per case), {what}, seeds {phantom_seeds}")


def train_classifier_bundle(task: str, cases, source: str, out: Path, steps: int,
                            batch_size: int, lr: float, max_minutes: float, seed: int,
                            init_model: str | None, val_cases=None,
                            val_source: str = "", device: str = "cpu",
                            identity: dict[str, str] | None = None) -> dict[str, Any]:
    """Prepare lesions, train, evaluate on held-out cases and write the bundle (``identity``:
    ``id`` and/or ``version`` replacing the recipe's)."""
    from BreastAIAssistantLib.bundles import read_bundle, save_bundle, starting_weights
    from BreastAIAssistantLib.errors import BreastAIError
    from BreastAIAssistantLib.train import classifier_eval
    from BreastAIAssistantLib.train.classifier_recipes import RECIPES, classifier_manifest
    from BreastAIAssistantLib.train.classifier_trainer import train_classifier
    from BreastAIAssistantLib.train.lesion_data import lesion_samples
    from BreastAIAssistantLib.train.trainer import TrainSettings

    def manifest(training: dict[str, Any], metrics: dict[str, Any]) -> dict[str, Any]:
        return {**classifier_manifest(task, training, metrics), **(identity or {})}

    # A wrong --init (unknown, altered, another network) fails now, not after the lesions are
    # prepared.
    recipe_network = RECIPES[task]["network"]
    init, previous = starting_weights(init_model, (recipe_network["name"], recipe_network["args"]))
    samples = []
    for case in cases:
        samples.extend(lesion_samples(case, (task,)))
        logger.info("prepared %s (%d lesions)", case.case_id, len(samples))
    if not samples:
        raise BreastAIError("no labelled lesions in the training data (cysts are not used)")
    settings = TrainSettings(steps=steps, batch_size=batch_size, learning_rate=lr,
                             max_minutes=max_minutes, seed=seed, device=device)
    out.mkdir(parents=True, exist_ok=True)
    args = RECIPES[task]["network"]["args"]
    model, result = train_classifier(task, samples, args, settings,
                                     checkpoint=out / "checkpoint.pt", init=init)
    training: dict[str, Any] = {
        "data": source, "lesions": len(samples),
        "malignant_lesions": sum(s.malignant for s in samples), **result.summary(),
        "settings": {"steps": steps, "batch_size": batch_size, "learning_rate": lr,
                     "seed": seed},
    }
    if previous:
        training["continued_from"] = previous
    metrics: dict[str, Any] = {"dataset": "not evaluated"}
    save_bundle(model, manifest(training, metrics), out)
    if val_cases is not None:
        bundle = read_bundle(out)
        records = classifier_eval.predict_lesions(bundle, val_cases, device=device)
        metrics = {"dataset": f"held out: {val_source}",
                   **classifier_eval.summarise(bundle.manifest.task, records)}
        (out / "evaluation.json").write_text(json.dumps(records, indent=2))
        save_bundle(model, manifest(training, metrics), out)
    (out / "checkpoint.pt").unlink(missing_ok=True)
    return {"bundle": str(out), "training": training, "metrics": metrics}


def evaluate_classifiers(model_id: str, compare_id: str | None, cases, source: str,
                         device: str, out: Path | None, update_manifest: bool) -> dict[str, Any]:
    """Score a classifier (and optionally compare it with a second one by DeLong's test)."""
    from BreastAIAssistantLib.bundles import find_bundle, update_metrics
    from BreastAIAssistantLib.classify.metrics import delong_test, plot_roc
    from BreastAIAssistantLib.errors import BreastAIError
    from BreastAIAssistantLib.io.volumes import write_json
    from BreastAIAssistantLib.train import classifier_eval

    cases = list(cases)
    bundle = find_bundle(model_id)
    records = classifier_eval.predict_lesions(bundle, cases, device)
    summary = classifier_eval.summarise(bundle.manifest.task, records)
    report: dict[str, Any] = {"model": bundle.manifest.id, "dataset": source, **summary}
    curves = {}
    if bundle.manifest.task == "receptor-prediction":
        malignant = [r for r in records if r["malignant"] and r["er"] is not None]
        for name in ("er", "pr", "her2"):
            curves[name.upper()] = ([int(r[name] == "positive") for r in malignant],
                                    [float(r["predicted"][name]) for r in malignant])
    else:
        curves[bundle.manifest.id] = classifier_eval.malignancy_scores(records)
    if compare_id is not None:
        other = find_bundle(compare_id)
        if other.manifest.task == "receptor-prediction" or \
                bundle.manifest.task == "receptor-prediction":
            raise BreastAIError("--compare needs two malignancy classifiers")
        other_records = classifier_eval.predict_lesions(other, cases, device)
        labels, scores = classifier_eval.malignancy_scores(records)
        other_labels, other_scores = classifier_eval.malignancy_scores(other_records)
        if labels != other_labels:
            raise BreastAIError("the two models did not score the same lesions")
        try:
            delong = delong_test(labels, scores, other_scores)
        except ValueError as exc:
            raise BreastAIError(f"cannot compare the models: {exc}") from None
        report["compare"] = {"model": other.manifest.id, "delong": delong}
        curves[other.manifest.id] = (other_labels, other_scores)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        write_json({**report, "per_lesion": records}, out / "evaluation.json")
        plot_roc(curves, out / "roc.png", title=f"{bundle.manifest.id}: {source}")
    if update_manifest:
        update_metrics(bundle, {"dataset": f"held out: {source}", **summary})
    return report


@click.command()
@study_argument
@format_option
@times_option
@click.option("--box", required=True,
              help="Region x0,y0,z0,x1,y1,z1 in LPS mm (opposite corners, any order).")
@click.option("--model", "model_id", default="dmif-demo", show_default=True,
              help="Box classifier bundle id or folder.")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Folder for the Grad-CAM map and classify.json.")
@click.option("--method", type=click.Choice(["gradcam", "gradcam++"]), default="gradcam",
              show_default=True)
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto",
              show_default=True)
def classify(study: Path, input_format: str, times: list[float] | None, box: str,
             model_id: str, out: Path | None, method: str, device: str) -> None:
    """Malignancy probability of any box in STUDY (DMIF-Net: the box only, no delineation).

    Prints JSON; with --out also writes classify.json and gradcam_<model>_box.nii.gz on the
    study grid. Research demo model trained on a synthetic phantom: not for clinical use.
    """
    from BreastAIAssistantLib.classify.crops import CropError, box_from_lps
    from BreastAIAssistantLib.classify.predictor import DMIFClassifier
    from BreastAIAssistantLib.cli.common import check_output_folder, parse_floats
    from BreastAIAssistantLib.io import load_study
    from BreastAIAssistantLib.io.volumes import write_json, write_volume

    values = parse_floats(box)
    if values is None:
        raise CropError(f"--box {box!r} is not six comma-separated numbers")
    box_mm = list(values)
    if out is not None:
        check_output_folder(out, study)
    loaded = load_study(study, input_format, times)
    lo, hi = box_from_lps(loaded.reference, box_mm)
    classifier = DMIFClassifier(model_id, device=device, method=method, explain=out is not None)
    result = classifier.predict_box(loaded, lo, hi)
    report = {"model": classifier.id, "box_lps_mm": box_mm,
              "box_index_zyx": [lo.tolist(), hi.tolist()], **result.values,
              "slice_scores": result.slice_scores,
              "disclaimer": "research demo model, not for clinical use"}
    if out is not None and result.heatmap is not None:
        path = out / f"gradcam_{classifier.id}_box.nii.gz"
        write_volume(result.heatmap, path)
        report["gradcam"] = str(path)
        write_json(report, out / "classify.json")
    click.echo(json.dumps(report, indent=2))
