"""``breast-ai train`` and ``breast-ai eval``: train the models and score them.

Kinds: ``seg`` (tumour segmenter), ``breast`` (whole-breast U-Net) and ``cls`` (a classifier,
chosen with ``--task mrsm|receptors|dmif``; see :mod:`.classify`).
"""

from __future__ import annotations

import json
import logging
import math
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from BreastAIAssistantLib.cli.common import apply_options, parse_floats, tumour_scales_option

if TYPE_CHECKING:  # the evaluation module imports torch; the CLI loads it only when it runs
    from BreastAIAssistantLib.train.evaluate import Setting

logger = logging.getLogger(__name__)

KINDS = {"seg": "tumour", "breast": "breast", "cls": "classifier"}
CLASSIFIER_TASKS = ("mrsm", "receptors", "dmif")
#: Default (steps, batch size, learning rate) per kind.
DEFAULTS = {"seg": (2000, 2, 2e-3), "breast": (2000, 2, 2e-3), "cls": (1500, 24, 1e-3)}


def _seeds(text: str) -> list[int]:
    """``"1000-1099"`` or ``"1,2,5"`` -> seeds."""
    seeds: list[int] = []
    for part in text.split(","):
        if "-" in part:
            lo, hi = (int(v) for v in part.split("-"))
            seeds.extend(range(lo, hi + 1))
        elif part:
            seeds.append(int(part))
    return seeds


def _scale_range(text: str | None) -> tuple[float, float] | None:
    """``"0.4,1.1"`` -> ``(0.4, 1.1)``; ``None`` stays ``None``."""
    if text is None:
        return None
    values = parse_floats(text)
    if values is None or len(values) != 2:
        raise click.BadParameter(f"expected LOW,HIGH (e.g. 0.4,1.1); got {text!r}",
                                 param_hint="--enhancement-scale")  # fmt: skip
    low, high = values
    if not 0 < low <= high:
        raise click.BadParameter(f"need 0 < LOW <= HIGH; got {text!r}",
                                 param_hint="--enhancement-scale")  # fmt: skip
    return low, high


def _spacing(text: str | None) -> tuple[float, float, float] | None:
    """``"1,1,1.33"`` -> ``(1.0, 1.0, 1.33)`` (x, y, z in mm); ``None`` stays ``None``."""
    if text is None:
        return None
    values = parse_floats(text) or ()
    if len(values) != 3 or not all(0.2 <= v <= 10.0 for v in values):
        raise click.BadParameter(f"expected X,Y,Z in mm, each 0.2-10 (e.g. 1,1,1.33); got {text!r}",
                                 param_hint="--spacing")  # fmt: skip
    return values  # type: ignore[return-value]


def _cases(
    data: Path | None, phantom_seeds: str | None, size: str = "clinical", matrix: str | None = None
):
    from BreastAIAssistantLib.errors import BreastAIError
    from BreastAIAssistantLib.train.data import folder_cases, phantom_cases

    if (data is None) == (phantom_seeds is None):
        raise BreastAIError("give exactly one of --data DIR or --phantom-seeds A-B")
    if data is not None:
        return folder_cases(data), {"data": str(data)}
    seeds = _seeds(phantom_seeds or "")
    spec = {"size_xyz": tuple(int(v) for v in matrix.split(","))} if matrix else {}
    what = f"matrix {matrix}" if matrix else f"{size} size"
    return phantom_cases(seeds, size, **spec), {
        "data": f"synthetic phantom, {what}, seeds {phantom_seeds}"
    }


data_options = [
    click.option("--data", type=click.Path(exists=True, file_okay=False, path_type=Path),
                 help="Phantom dataset folder (breast-ai phantom) or MAMA-MIA root."),
    click.option("--phantom-seeds", help="Generate phantom cases on the fly, e.g. 1000-1099."),
    click.option("--phantom-size", type=click.Choice(["clinical", "small"]), default="clinical",
                 show_default=True, help="Matrix of generated phantom cases."),
    click.option("--phantom-matrix", default=None,
                 help="Explicit phantom matrix x,y,z (e.g. 224,224,80: the clinical field of view "
                      "at about half the resolution, 4x faster to generate for training)."),
]  # fmt: skip


task_option = click.option(
    "--task", type=click.Choice(CLASSIFIER_TASKS), default=None,
    help="Classifier to train or score (kind cls): MRSM, multi-task receptors or DMIF-Net.")


@click.command()
@click.argument("kind", type=click.Choice(list(KINDS)))
@task_option
@apply_options(data_options)
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Bundle folder.")
@click.option(
    "--val-seeds", help="Held-out phantom seeds scored into the manifest, e.g. 9000-9049."
)
@click.option(
    "--val-data",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Held-out dataset folder scored into the manifest.",
)
@click.option(
    "--breast-model",
    default=None,
    help="Breast bundle used to gate the tumour model during validation.",
)
@click.option("--steps", type=int, default=None,
              help="Optimiser steps [seg/breast 2000, cls 1500].")
@click.option("--batch-size", type=int, default=None,
              help="Patches (seg/breast, 2) or slices (cls, 24) per step.")
@click.option("--lr", type=float, default=None, help="Peak learning rate [2e-3; cls 1e-3].")
@click.option(
    "--max-minutes",
    type=float,
    default=60.0,
    show_default=True,
    help="Wall-clock training budget of this call (a resumed run gets it again).",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--device",
    type=click.Choice(["auto", "cpu", "cuda"]),
    default="auto",
    show_default=True,
    help="Where the network trains (batches are sampled on the CPU); auto = CUDA when "
    "available. Held-out scoring runs there too.",
)
@click.option(
    "--spacing",
    default=None,
    metavar="X,Y,Z",
    help="seg/breast: grid (mm) the network is trained and later run on [seg 1.5,1.5,2; breast "
    "3,3,4]. With --init, the --init bundle's grid unless given (then the weights continue on "
    "the new grid).",
)
@click.option(
    "--lesion-dice-weight",
    type=click.FloatRange(min=0.0),
    default=0.0,
    show_default=True,
    help="seg: weight of the lesion-wise Dice term, which makes every lesion weigh the same in "
    "the loss (small lesions are otherwise drowned by large ones).",
)
@click.option(
    "--phase-truncation",
    type=click.FloatRange(min=0.0, max=1.0),
    default=0.0,
    show_default=True,
    help="seg: share of phase-dropout draws that keep the first k post-contrast phases (a "
    "shorter protocol on the same schedule) instead of a random subset.",
)
@click.option(
    "--enhancement-scale",
    default=None,
    metavar="LOW,HIGH",
    help="seg: scale the enhancement (phase - pre) of half the patches by a factor drawn from "
    "[LOW, HIGH], e.g. 0.4,1.1, so the model learns relative rather than absolute enhancement.",
)
@click.option(
    "--foreground-fraction",
    type=click.FloatRange(min=0.0, max=1.0),
    default=None,
    help="seg: share of patches centred on a lesion (of studies that have one) [0.6]; the rest "
    "fall anywhere in the breast, which is where false positives are learned away.",
)
@click.option(
    "--init",
    "init_model",
    default=None,
    help="Start from this bundle's weights (id or folder) to continue training.",
)
@click.option(
    "--model-id",
    default=None,
    help="The new bundle's id [the recipe's, e.g. tumour-st-demo]: lower case, digits, '.', '_', "
    "'-'. A bundle of its own id does not shadow the bundled model in --models folders.",
)
@click.option(
    "--model-version",
    default=None,
    metavar="X.Y.Z",
    help="The new bundle's version [the package's]; e.g. the next version of the --init model.",
)
def train(kind: str, task: str | None, data: Path | None, phantom_seeds: str | None,
          phantom_size: str, phantom_matrix: str | None, out: Path,
          val_seeds: str | None, val_data: Path | None, breast_model: str | None,
          steps: int | None, batch_size: int | None, lr: float | None, max_minutes: float,
          seed: int, device: str, spacing: str | None, lesion_dice_weight: float,
          phase_truncation: float,
          enhancement_scale: str | None, foreground_fraction: float | None,
          init_model: str | None, model_id: str | None,
          model_version: str | None) -> None:  # fmt: skip
    """Train the tumour ('seg'), whole-breast ('breast') or a classifier ('cls' --task ...)
    model and write a bundle to --out.

    Training data: a phantom dataset folder or a MAMA-MIA root (--data), or phantom cases
    generated on the fly (--phantom-seeds; for cls, cases with 2-4 labelled lesions each).
    Held-out data (--val-seeds / --val-data) is scored with the real inference chain and the
    numbers go into the manifest's metrics.
    """
    from BreastAIAssistantLib.bundles import find_bundle, read_bundle, save_bundle, starting_weights
    from BreastAIAssistantLib.inference.device import resolve_device
    from BreastAIAssistantLib.train import data as train_data
    from BreastAIAssistantLib.train import evaluate, recipes, trainer

    resolve_device(device)  # an unusable device fails now, not after the data are prepared
    steps, batch_size, lr = (given if given is not None else default for given, default in
                             zip((steps, batch_size, lr), DEFAULTS[kind], strict=True))
    if lesion_dice_weight > 0 and kind != "seg":
        raise click.BadParameter("only for 'seg'", param_hint="--lesion-dice-weight")
    if phase_truncation > 0 and kind != "seg":
        raise click.BadParameter("only for 'seg'", param_hint="--phase-truncation")
    scale_range = _scale_range(enhancement_scale)
    if scale_range is not None and kind != "seg":
        raise click.BadParameter("only for 'seg'", param_hint="--enhancement-scale")
    if foreground_fraction is not None and kind != "seg":
        raise click.BadParameter("only for 'seg'", param_hint="--foreground-fraction")
    identity = _identity(model_id, model_version)
    grid = _spacing(spacing)
    if grid is not None and kind == "cls":
        raise click.BadParameter("only for 'seg' and 'breast'", param_hint="--spacing")
    if kind == "cls":
        from BreastAIAssistantLib.cli.classify import (
            classification_cases,
            train_classifier_bundle,
        )
        from BreastAIAssistantLib.errors import BreastAIError

        if task is None:
            raise BreastAIError("train cls needs --task mrsm, receptors or dmif")
        cases, source = classification_cases(data, phantom_seeds, phantom_matrix, phantom_size)
        val_cases, val_source = (classification_cases(val_data, val_seeds, phantom_matrix,
                                                      phantom_size)
                                 if val_seeds or val_data else (None, ""))
        summary = train_classifier_bundle(task, cases, source, out, steps, batch_size, lr,
                                          max_minutes, seed, init_model, val_cases, val_source,
                                          device, identity)  # fmt: skip
        click.echo(json.dumps(summary, indent=2))
        return

    recipe = dict(recipes.TUMOUR if kind == "seg" else recipes.BREAST)
    network = (recipe["network"], recipe["network_args"])
    # Bundles named on the command line are resolved (and the --init weights loaded and checked)
    # before the data are prepared, which can take an hour: a typo fails in a second.
    start = find_bundle(init_model) if init_model is not None else None
    init, previous = starting_weights(start, network)
    if grid is None and start is not None:
        grid = start.manifest.spacing_mm  # continue on the grid it learnt
    if grid is not None:
        recipe["spacing_mm"] = list(grid)
    gate = find_bundle(breast_model) if breast_model and kind == "seg" else None
    cases, source = _cases(data, phantom_seeds, phantom_size, phantom_matrix)
    samples = []
    for case in cases:
        if kind == "seg":
            samples.append(train_data.tumour_sample(case, recipe["spacing_mm"],
                                                    recipe["normalisation"]))  # fmt: skip
        else:
            samples.append(train_data.breast_sample(case, recipe["spacing_mm"],
                                                    recipe["normalisation"]))  # fmt: skip
        logger.info("prepared %s (%d)", case.case_id, len(samples))
    settings = trainer.TrainSettings(steps=steps, batch_size=batch_size, learning_rate=lr,
                                     max_minutes=max_minutes, seed=seed,
                                     lesion_dice_weight=lesion_dice_weight,
                                     phase_truncation=phase_truncation,
                                     enhancement_scale=scale_range, device=device)  # fmt: skip
    if foreground_fraction is not None:
        settings.foreground_fraction = foreground_fraction
    out.mkdir(parents=True, exist_ok=True)
    fit = trainer.train_tumour_model if kind == "seg" else trainer.train_breast_model
    model, result = fit(samples, recipe["network_args"], recipe["patch_size_zyx"], settings,
                        checkpoint=out / "checkpoint.pt", init=init)  # fmt: skip
    training = {**source, "cases": len(samples), **result.summary(),
                "settings": {"steps": steps, "batch_size": batch_size, "learning_rate": lr,
                             "seed": seed}}  # fmt: skip
    if kind == "seg" and lesion_dice_weight > 0:
        training["settings"]["lesion_dice_weight"] = lesion_dice_weight
    if kind == "seg" and phase_truncation > 0:
        training["settings"]["phase_truncation"] = phase_truncation
    if scale_range is not None:
        training["settings"]["enhancement_scale"] = list(scale_range)
    if foreground_fraction is not None:
        training["settings"]["foreground_fraction"] = foreground_fraction
    if grid is not None:
        training["settings"]["spacing_mm"] = list(grid)
    if previous:
        training["continued_from"] = previous
    build = recipes.tumour_manifest if kind == "seg" else recipes.breast_manifest

    def make(training: dict[str, Any], metrics: dict[str, Any]) -> dict[str, Any]:
        return {**build(training, metrics, recipe["spacing_mm"]), **identity}

    save_bundle(model, make(training, {"dataset": "not yet evaluated"}), out)
    metrics: dict[str, Any] = {"dataset": "not evaluated"}
    if val_seeds or val_data:
        val_cases, val_source = _cases(val_data, val_seeds, phantom_size)
        bundle = read_bundle(out)
        if kind == "seg":
            scores = evaluate.evaluate_tumour(bundle, val_cases, gate, device=device)
        else:
            scores = evaluate.evaluate_breast(bundle, val_cases, device=device)
        metrics = {"dataset": f"held out: {val_source['data']}",
                   **{k: v for k, v in scores.items() if k != "per_case"}}  # fmt: skip
        (out / "evaluation.json").write_text(json.dumps(scores, indent=2))
    save_bundle(model, make(training, metrics), out)
    (out / "checkpoint.pt").unlink(missing_ok=True)
    click.echo(json.dumps({"bundle": str(out), "training": training, "metrics": metrics}, indent=2))


def _identity(model_id: str | None, model_version: str | None) -> dict[str, str]:
    """``--model-id`` / ``--model-version`` as manifest fields, checked against the manifest
    schema's patterns before any data are prepared."""
    from BreastAIAssistantLib.bundles import manifest_schema

    fields = manifest_schema()["properties"]
    out: dict[str, str] = {}
    for key, value, hint in (("id", model_id, "--model-id"),
                             ("version", model_version, "--model-version")):  # fmt: skip
        if value is None:
            continue
        if not re.fullmatch(fields[key]["pattern"], value):
            raise click.BadParameter(f"{value!r} does not match {fields[key]['pattern']}",
                                     param_hint=hint)  # fmt: skip
        out[key] = value
    return out


def _threshold_sweep(text: str) -> list[Setting]:
    """``"0.3,0.3:0.5,0.5@5,0.3:0.9@5:0.524,0.5:0.9~0.5/2/10"`` -> ``[(0.3, None, 0.0, None,
    None), (0.3, 0.5, 0.0, None, None), (0.5, None, 5.0, None, None), (0.3, 0.9, 5.0, 0.524,
    None), (0.5, 0.9, 0.0, None, GrowthSettings(0.5, 2.0, 10.0))]``.

    Each item is ``T[:SEED][@GAP[:MAXML]][~F/R/D]``: thresholds in (0, 1) with SEED >= T, the
    lesion gap in mm (>= 0; default 0: every component is a lesion), the volume (ml, > 0) below
    which components merge by the gap (default: all merge), and small-lesion growth on the native
    grid (:mod:`BreastAIAssistantLib.inference.refine`: enhancement fraction F in (0, 1), reach R
    mm, lesions under D mm; default none).
    """
    from BreastAIAssistantLib.inference.refine import GrowthSettings

    out: list[Setting] = []
    for item in text.split(","):
        rest, _, grow_text = item.strip().partition("~")
        head, _, tail = rest.partition("@")
        gap_text, _, below_text = tail.partition(":")
        try:
            values = [float(v) for v in head.split(":")]
            gap = float(gap_text) if gap_text else 0.0
            below = float(below_text) if below_text else None
            growth = GrowthSettings.parse(grow_text) if grow_text else None
        except ValueError:
            values, gap, below, growth = [], 0.0, None, None
        ok = len(values) in (1, 2) and all(0.0 < v < 1.0 for v in values)
        ok = ok and math.isfinite(gap) and gap >= 0
        ok = ok and (below is None or (bool(gap_text) and math.isfinite(below) and below > 0))
        if not ok or (len(values) == 2 and values[1] < values[0]):
            raise click.BadParameter(
                f"{item.strip()!r} is not T, T:SEED or T[:SEED]@GAP[:MAXML][~F/R/D] with "
                "0 < T <= SEED < 1, GAP >= 0 mm, MAXML > 0 ml, 0 < F < 1, R > 0 mm and D > 0 mm",
                param_hint="--thresholds",
            )
        out.append((values[0], values[1] if len(values) == 2 else None, gap, below, growth))
    return out


@click.command(name="eval")
@click.argument("kind", type=click.Choice(list(KINDS)))
@click.option("--model", "model_id", required=True, help="Bundle id or folder.")
@click.option("--compare", "compare_id", default=None,
              help="cls: a second malignancy classifier scored on the same lesions (DeLong test); "
                   "seg: a second tumour model scored on the same cases and breast masks "
                   "(paired Wilcoxon test on the per-case Dice).")
@apply_options(data_options)
@click.option(
    "--breast-model",
    default=None,
    help="Breast bundle gating the tumour model (default: the ground-truth mask).",
)
@click.option(
    "--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True
)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="Write the per-case scores as JSON here (cls: a folder for evaluation.json and roc.png).",
)
@click.option(
    "--update-manifest",
    is_flag=True,
    help="Record the mean scores as the bundle's held-out metrics (held-out data only).",
)
@click.option(
    "--thresholds",
    "sweep_text",
    default=None,
    help="seg: also score these lesion thresholds on the same probability maps, comma-separated, "
    "each T or T:SEED (hysteresis), optionally @GAP (components at most GAP mm apart are one "
    "lesion; default 0) and :MAXML (only components under MAXML ml merge), and ~F/R/D (lesions "
    "under D mm grow on the study grid into voxels enhancing at least F of the way from their "
    "surroundings to themselves, at most R mm), e.g. "
    "0.3,0.3:0.5,0.5@5,0.3:0.9@5:0.524,0.5:0.9~0.5/2/10. Choose on validation cases only.",
)
@tumour_scales_option
def evaluate_command(kind: str, model_id: str, compare_id: str | None, data: Path | None,
                     phantom_seeds: str | None, phantom_size: str, phantom_matrix: str | None,
                     breast_model: str | None, device: str,
                     out: Path | None, update_manifest: bool,
                     sweep_text: str | None,
                     tumour_scales: tuple[float, ...] | None) -> None:  # fmt: skip
    """Score a model on labelled cases.

    seg/breast: per-case and mean Dice, sensitivity and HD95 (mm). cls: per lesion (from the
    ground-truth masks), AUC with a 95 % bootstrap CI, accuracy, sensitivity, specificity and
    precision at 0.5 (receptors: per receptor, Ki-67 MAE, subtype agreement); --out writes
    roc.png; --compare adds DeLong's test against a second model.
    """
    from BreastAIAssistantLib.bundles import find_bundle
    from BreastAIAssistantLib.io.volumes import write_json
    from BreastAIAssistantLib.train import evaluate

    if sweep_text is not None and kind != "seg":
        raise click.BadParameter("only for 'seg'", param_hint="--thresholds")
    if sweep_text is not None and update_manifest:
        raise click.UsageError(
            "--thresholds is for validation data, --update-manifest for held-out data"
        )
    sweep = _threshold_sweep(sweep_text) if sweep_text else []
    if tumour_scales is not None and kind != "seg":
        raise click.BadParameter("only for 'seg'", param_hint="--tumour-scales")
    if tumour_scales is not None and update_manifest:
        raise click.UsageError("--tumour-scales scores a setting the manifest does not hold; "
                               "leave out --update-manifest")  # fmt: skip
    if compare_id is not None and kind == "breast":
        raise click.BadParameter("only for 'seg' and 'cls'", param_hint="--compare")
    if compare_id is not None and update_manifest and kind == "seg":
        raise click.UsageError("seg: --compare and --update-manifest do not go together")
    if kind == "cls":
        from BreastAIAssistantLib.cli.classify import classification_cases, evaluate_classifiers

        cases, source = classification_cases(data, phantom_seeds, phantom_matrix, phantom_size)
        report = evaluate_classifiers(model_id, compare_id, cases, source, device, out,
                                      update_manifest)
        click.echo(json.dumps(report, indent=2))
        return

    cases, source = _cases(data, phantom_seeds, phantom_size, phantom_matrix)
    bundle = find_bundle(model_id)
    if kind == "seg":
        gate = find_bundle(breast_model) if breast_model else None
        second = find_bundle(compare_id) if compare_id else None
        scores = evaluate.evaluate_tumour(bundle, cases, gate, device=device, sweep=sweep,
                                          compare=second, scales=tumour_scales)  # fmt: skip
    else:
        scores = evaluate.evaluate_breast(bundle, cases, device=device)
    for case in scores["per_case"]:
        click.echo("  ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}"
                             for k, v in case.items()))  # fmt: skip
    summary = {k: v for k, v in scores.items() if k != "per_case"}
    if "compare" in summary:
        summary["compare"] = {k: v for k, v in summary["compare"].items() if k != "per_case"}
    click.echo(json.dumps(summary, indent=2))
    if out is not None:
        write_json(scores, out)
    if update_manifest:
        from BreastAIAssistantLib.bundles import update_metrics

        metrics = {"dataset": f"held out: {source['data']}",
                   **{k: v for k, v in scores.items() if k != "per_case"}}  # fmt: skip
        update_metrics(bundle, metrics)
        click.echo(f"metrics recorded in {bundle.folder / 'manifest.json'}")
