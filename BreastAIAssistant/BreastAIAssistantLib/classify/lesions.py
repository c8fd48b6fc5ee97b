"""Run every configured classifier on every lesion of a label map (the ``classify`` stage)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import SimpleITK as sitk

from BreastAIAssistantLib.classify.crops import intensity_scale
from BreastAIAssistantLib.classify.predictor import Classifier, ClassifierResult
from BreastAIAssistantLib.study import DCEStudy

logger = logging.getLogger(__name__)

#: Keys every lesion record gets (``None`` when no model gives them), in report order.
PREDICTION_KEYS = ("malignancy_probability", "dmif_malignancy_probability", "er", "pr", "her2",
                   "ki67", "subtype")


def classify_lesions(study: DCEStudy, labels: sitk.Image, classifiers: Sequence[Classifier],
                     progress: Callable[[str, float], None] | None = None,
                     cancel: Callable[[], bool] | None = None
                     ) -> dict[int, list[ClassifierResult]]:
    """Lesion id -> one result per classifier (lesion ids are the label values).

    A classifier that fails on one lesion (e.g. a lesion too thin to crop) logs a warning and
    leaves that lesion's values empty; it does not stop the analysis.
    """
    from BreastAIAssistantLib.inference import Cancelled

    array = sitk.GetArrayFromImage(labels)
    ids = [int(v) for v in np.unique(array) if v != 0]
    results: dict[int, list[ClassifierResult]] = {}
    if not ids or not classifiers:
        return results
    scale = intensity_scale(study)
    total = len(ids) * len(classifiers)
    done = 0
    for lesion_id in ids:
        mask = sitk.GetImageFromArray((array == lesion_id).astype(np.uint8))
        mask.CopyInformation(labels)
        results[lesion_id] = []
        for classifier in classifiers:
            if cancel is not None and cancel():
                raise Cancelled("analysis cancelled")
            try:
                results[lesion_id].append(classifier.predict(study, mask, scale))
            except Exception as exc:
                logger.warning("lesion %d: classifier %s failed: %s", lesion_id, classifier.id,
                               exc)
            done += 1
            if progress is not None:
                progress(f"lesion {lesion_id}", done / total)
    return results


def prediction_fields(results: Sequence[ClassifierResult]) -> dict[str, Any]:
    """The ``report.json`` prediction keys of one lesion (missing ones as ``None``)."""
    fields: dict[str, Any] = dict.fromkeys(PREDICTION_KEYS)
    for result in results:
        fields.update(result.values)
    return fields
