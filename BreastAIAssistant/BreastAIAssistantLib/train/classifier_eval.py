"""Held-out evaluation of the classifiers through their real predictors, lesion by lesion.

Every enhancing lesion of every labelled case (cysts excluded) is classified from its
ground-truth mask (the box classifier sees only its bounding box) by
:mod:`BreastAIAssistantLib.classify.predictor` — the code ``breast-ai run`` uses — and scored:

* malignancy models: AUC with a 95 % bootstrap CI, accuracy, sensitivity, specificity and
  precision at the threshold 0.5;
* receptor model (malignant lesions only): AUC and CI for ER, PR and HER2, Ki-67 mean absolute
  error (percentage points), and surrogate-subtype agreement.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import numpy as np
import SimpleITK as sitk

from BreastAIAssistantLib.bundles import ModelBundle
from BreastAIAssistantLib.classify.crops import intensity_scale
from BreastAIAssistantLib.classify.metrics import bootstrap_auc_ci, roc_auc, threshold_metrics
from BreastAIAssistantLib.classify.predictor import load_classifier
from BreastAIAssistantLib.train.data import LabelledStudy

logger = logging.getLogger(__name__)


def _auc_block(labels: list[int], scores: list[float]) -> dict[str, Any]:
    low, high = bootstrap_auc_ci(labels, scores)
    return {"n": len(labels), "positives": int(np.sum(labels)), "auc": roc_auc(labels, scores),
            "auc_95ci": [low, high]}


def predict_lesions(bundle: ModelBundle, cases: Iterable[LabelledStudy],
                    device: str = "cpu") -> list[dict[str, Any]]:
    """One record per enhancing lesion: truth and the model's values (no Grad-CAM)."""
    classifier = load_classifier(bundle, device=device, explain=False)
    records = []
    for case in cases:
        if case.tumour is None or not case.truth:
            continue
        labels = sitk.GetArrayFromImage(case.tumour)
        scale = intensity_scale(case.study)
        for lesion in case.truth.get("lesions", []):
            if lesion.get("kind") == "cyst" or not (labels == lesion["label"]).any():
                continue
            mask = sitk.GetImageFromArray((labels == lesion["label"]).astype(np.uint8))
            mask.CopyInformation(case.tumour)
            result = classifier.predict(case.study, mask, scale)
            records.append({
                "case": case.case_id, "lesion": int(lesion["label"]),
                "malignant": int(bool(lesion.get("malignant"))),
                "er": lesion.get("er"), "pr": lesion.get("pr"), "her2": lesion.get("her2"),
                "ki67_percent": lesion.get("ki67_percent"),
                "subtype": lesion.get("molecular_subtype"),
                "n_phases": case.study.n_phases,
                "max_diameter_mm": lesion.get("max_diameter_mm"),
                "predicted": result.values,
            })
        logger.info("classified %s (%d lesions so far)", case.case_id, len(records))
    return records


def malignancy_scores(records: list[dict[str, Any]]) -> tuple[list[int], list[float]]:
    """Labels and malignancy scores (MRSM or DMIF key) of the records."""
    labels, scores = [], []
    for r in records:
        values = r["predicted"]
        score = values.get("malignancy_probability", values.get("dmif_malignancy_probability"))
        labels.append(r["malignant"])
        scores.append(float(score))
    return labels, scores


def _finite(value: Any) -> Any:
    """NaN (an undefined metric, e.g. precision with no positive call) as ``None`` for JSON."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def summarise(task: str, records: list[dict[str, Any]]) -> dict[str, Any]:
    """Held-out metrics of ``records`` for a bundle task (undefined ones as ``None``)."""
    return _finite(_summarise(task, records))


def _summarise(task: str, records: list[dict[str, Any]]) -> dict[str, Any]:
    if task == "receptor-prediction":
        malignant = [r for r in records if r["malignant"] and r["er"] is not None]
        out: dict[str, Any] = {"lesions": len(malignant)}
        for name in ("er", "pr", "her2"):
            labels = [int(r[name] == "positive") for r in malignant]
            scores = [float(r["predicted"][name]) for r in malignant]
            out[name] = {**_auc_block(labels, scores), **threshold_metrics(labels, scores)}
        errors = [abs(float(r["predicted"]["ki67"]) - float(r["ki67_percent"]))
                  for r in malignant]
        out["ki67_mae_points"] = float(np.mean(errors)) if errors else float("nan")
        agree = [r["predicted"]["subtype"] == r["subtype"] for r in malignant]
        out["subtype_agreement"] = float(np.mean(agree)) if agree else float("nan")
        return out
    labels, scores = malignancy_scores(records)
    return {**_auc_block(labels, scores), **threshold_metrics(labels, scores)}
