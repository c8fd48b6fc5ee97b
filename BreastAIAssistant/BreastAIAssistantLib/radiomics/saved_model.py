"""Saving, loading and applying the model :func:`~.modelling.select_models` chose.

``save_model`` writes the results table, the out-of-fold predictions, the ROC data and the best
model refitted on all cases (``best_model/``: the pickled pipeline with its feature list and
preprocessing, ``model.json`` with the package versions pickles need and the pickle's sha256,
checked before unpickling); ``load_model`` and ``predict`` use it on new cases.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import os
import pickle
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from BreastAIAssistantLib.errors import BreastAIError
from BreastAIAssistantLib.io.volumes import atomic_path, write_json

if TYPE_CHECKING:
    from BreastAIAssistantLib.radiomics.modelling import ModelSelectionResult

logger = logging.getLogger(__name__)

#: Packages whose versions are written to ``model.json`` (pickles need matching versions).
MODEL_PACKAGES = ("breast-ai-assistant", "numpy", "scipy", "scikit-learn", "xgboost",
                  "xgboost-cpu", "lightgbm")
RESEARCH_NOTE = ("Research use only: a radiomics model selected on a research cohort, not "
                 "validated for clinical decisions. Its metrics are cross-validated estimates on "
                 "the training cohort; validate it on independent data before relying on it.")


@dataclass
class SavedModel:
    """A model read by :func:`load_model`: the fitted object and its ``model.json``."""

    model: Any
    info: dict[str, Any]
    path: Path


def save_model(result: ModelSelectionResult, out_dir: str | os.PathLike[str]) -> Path:
    """Write the results and the refitted best model, every file atomically.

    Files: ``results.csv`` and ``results.json`` (rows by decreasing AUC), ``predictions.csv``
    (held-out probability of every row per case), ``roc_<strategy>.png`` (single_modality: the
    best classifier of each modality; a fusion: every classifier) and ``best_model/`` with
    ``model.pkl`` (pickle of the fitted model) and ``model.json`` (what it needs and how it did).

    Returns:
        The ``best_model`` folder.

    Raises:
        BreastAIError: The result has no refitted model (``refit=False``).
    """
    from BreastAIAssistantLib.classify.metrics import plot_roc
    from BreastAIAssistantLib.radiomics.modelling import ResultRow

    if result.best_model is None:
        raise BreastAIError("the result has no refitted model; run select_models with refit=True")
    out = Path(out_dir)
    rows = result.sorted_rows()
    fields = [f for f in ResultRow.__dataclass_fields__ if f != "weights"]
    with atomic_path(out / "results.csv") as tmp, tmp.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["rank", *fields, "weights"])
        for rank, row in enumerate(rows, start=1):
            weights = ";".join(f"{k}={v:.4f}" for k, v in (row.weights or {}).items())
            writer.writerow([rank, *(getattr(row, f) for f in fields), weights])
    evaluated = result.evaluated
    fold_of = np.full(result.y.size, -1)
    for k, (_, test) in enumerate(result.folds):
        fold_of[test] = k
    keys = [row.key for row in result.rows]
    with atomic_path(out / "predictions.csv") as tmp, tmp.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["case_id", result.label_column, "fold", *("/".join(k) for k in keys)])
        for i in evaluated:
            writer.writerow([result.case_ids[i], int(result.y[i]), int(fold_of[i]),
                             *(repr(float(result.predictions[k][i])) for k in keys)])
    summary = {"label_column": result.label_column, "n_cases": int(result.y.size),
               "class_counts": np.bincount(result.y, minlength=2).tolist(),
               "modalities": {m: len(c) for m, c in result.modalities.items()},
               "settings": result.settings, "best": result.best.to_dict(),
               "rows": [r.to_dict() for r in rows], "note": RESEARCH_NOTE}
    write_json(summary, out / "results.json")
    for strategy in dict.fromkeys(r.strategy for r in result.rows):
        these = [r for r in rows if r.strategy == strategy]
        if strategy == "single_modality":
            best_of = {r.modality: r for r in reversed(these)}  # first (best) row wins
            curves = {f"{m}: {r.classifier}": r for m, r in best_of.items()}
        else:
            curves = {r.classifier: r for r in these}
        plot_roc({name: (result.y[evaluated], result.predictions[r.key][evaluated])
                  for name, r in curves.items()}, out / f"roc_{strategy}.png",
                 title=f"ROC, {strategy.replace('_', ' ')} (held-out cases)")
    return _save_best(result, out / "best_model")


def _save_best(result: ModelSelectionResult, folder: Path) -> Path:
    from BreastAIAssistantLib.provenance import package_versions

    model, best = result.best_model, result.best
    blob = pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)
    with atomic_path(folder / "model.pkl") as tmp:
        tmp.write_bytes(blob)
    used = sorted(set(model.columns) & set(model.selected_columns), key=model.columns.index)
    info = {
        "format": "breast-ai-radiomics-model", "format_version": 1,
        "strategy": best.strategy, "modality": best.modality,
        "modalities": {m: len(c) for m, c in result.modalities.items()
                       if m in best.modality.split("+")},
        "classifier": best.classifier, "feature_columns": list(model.columns),
        "selected_features": used, "label_column": result.label_column,
        "positive_class": 1, "training_cases": int(result.y.size),
        "class_counts": np.bincount(result.y, minlength=2).tolist(),
        "metrics": best.to_dict(), "evaluation": result.settings,
        "fitted": model.describe(), "model_file": "model.pkl",
        "sha256": hashlib.sha256(blob).hexdigest(),
        "versions": package_versions(MODEL_PACKAGES), "note": RESEARCH_NOTE,
    }
    write_json(info, folder / "model.json")
    return folder


def load_model(path: str | os.PathLike[str]) -> SavedModel:
    """Read a ``best_model`` folder written by :func:`save_model` (or the folder above it).

    The pickle's SHA-256 is checked against ``model.json`` before it is loaded. Pickles run code
    when loaded: load only models you made or trust.

    Raises:
        BreastAIError: Missing files, or a pickle that does not match its ``model.json``.
    """
    from BreastAIAssistantLib.provenance import package_versions

    folder = Path(path)
    if not (folder / "model.json").is_file() and (folder / "best_model" / "model.json").is_file():
        folder = folder / "best_model"
    try:
        info = json.loads((folder / "model.json").read_text(encoding="utf-8"))
        blob = (folder / info.get("model_file", "model.pkl")).read_bytes()
    except (OSError, ValueError) as exc:
        raise BreastAIError(f"{folder} is not a saved radiomics model (model.json + model.pkl): "
                            f"{exc}") from exc
    if hashlib.sha256(blob).hexdigest() != info.get("sha256"):
        raise BreastAIError(f"{folder}/model.pkl does not match the checksum in model.json; "
                            "the file was changed or truncated: save the model again")
    now = package_versions(MODEL_PACKAGES)
    changed = [f"{k} {v} (now {now.get(k)})" for k, v in info.get("versions", {}).items()
               if now.get(k) != v and k != "breast-ai-assistant"]
    if changed:
        logger.warning("model saved with %s; predictions may differ", ", ".join(changed))
    return SavedModel(pickle.loads(blob), info, folder)


def predict(model: SavedModel | Any, feature_dict: Mapping[str, Any]) -> float:
    """Probability of class 1 for one new case.

    Args:
        model: A :class:`SavedModel` or a fitted model from :func:`select_models`.
        feature_dict: Column name -> value; a missing (or empty/NaN) column is imputed with the
            training median.

    Raises:
        BreastAIError: A value that is not a number, or more than half of the features the model
            uses (its selected features) missing.
    """
    fitted = model.model if isinstance(model, SavedModel) else model
    columns: list[str] = list(fitted.columns)
    x = np.full((1, len(columns)), np.nan)
    for j, column in enumerate(columns):
        value = feature_dict.get(column)
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        try:
            x[0, j] = float(value)
        except (TypeError, ValueError):
            raise BreastAIError(f"feature {column!r} has the value {value!r}, not a "
                                "number") from None
    used = fitted.selected_columns
    missing = [c for c in used if not np.isfinite(x[0, columns.index(c)])]
    if len(missing) * 2 > len(used):
        raise BreastAIError(f"{len(missing)} of the {len(used)} features this model uses are "
                            f"missing (e.g. {', '.join(missing[:3])}); extract them with the "
                            "same radiomics settings as the training cohort")
    if missing:
        logger.warning("%d of %d features missing, imputed with training medians: %s",
                       len(missing), len(used), ", ".join(missing[:5]))
    return float(fitted.predict_proba(x)[0])
