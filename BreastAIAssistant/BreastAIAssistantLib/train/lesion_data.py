"""Labelled lesions for the classifiers, built with the predictors' own crop and input code.

Each enhancing lesion of a labelled case (phantom cases carry malignancy, ER, PR, HER2 and Ki-67
in case.json; cysts are left out, as for the tumour model) becomes one :class:`LesionSample`
holding the three networks' inputs for all its slices (float16) and its labels. Benign lesions
have no receptor labels (``-1`` / NaN) and are used by the receptor model only as "not a
target" — it trains on malignant lesions.

Phantom classification cases place 2-4 lesions (malignant with probability 0.6, else benign),
drawn from the seed, so that a few hundred cases give a thousand lesions.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import SimpleITK as sitk

from BreastAIAssistantLib.classify.crops import box_crop, index_box, intensity_scale, lesion_crop
from BreastAIAssistantLib.classify.inputs import dmif_input, mrsm_input, receptor_input
from BreastAIAssistantLib.train.classifier_recipes import RECIPES
from BreastAIAssistantLib.train.data import LabelledStudy

logger = logging.getLogger(__name__)


@dataclass
class LesionSample:
    """One lesion: network inputs per slice and labels."""

    case_id: str
    label: int
    malignant: int
    er: int
    pr: int
    her2: int
    ki67: float
    n_phases: int
    inputs: dict[str, np.ndarray]  # task -> (Z, ...) float16
    weights: dict[str, np.ndarray]  # task -> (Z,) slice weights

    @property
    def receptors_known(self) -> bool:
        return self.er >= 0


def _status(value: Any) -> int:
    return {"positive": 1, "negative": 0}.get(value, -1)


def classification_spec(seed: int) -> dict[str, Any]:
    """Phantom overrides for a classification case: 2-4 lesions, 60 % malignant."""
    rng = np.random.default_rng([seed, 7331])
    n = int(rng.integers(2, 5))
    kinds = tuple("malignant" if rng.random() < 0.6 else "benign" for _ in range(n))
    return {"lesions": kinds}


def lesion_samples(case: LabelledStudy, tasks: Sequence[str] = tuple(RECIPES)
                   ) -> Iterator[LesionSample]:
    """Every enhancing lesion of a labelled case with the inputs of ``tasks``."""
    if case.tumour is None or not case.truth:
        return
    labels = sitk.GetArrayFromImage(case.tumour)
    scale = intensity_scale(case.study)
    for record in case.truth.get("lesions", []):
        if record.get("kind") == "cyst":
            continue
        value = int(record["label"])
        mask_zyx = labels == value
        if not mask_zyx.any():
            continue
        lesion = sitk.GetImageFromArray(mask_zyx.astype(np.uint8))
        lesion.CopyInformation(case.tumour)
        inputs, weights = {}, {}
        for task in tasks:
            settings = RECIPES[task]["inputs"]
            if task == "dmif":
                lo, hi = index_box(mask_zyx)
                crop = box_crop(case.study, lo, hi, scale=scale, **settings["crop"])
                x = dmif_input(crop, settings["sequences"])
            else:
                crop = lesion_crop(case.study, lesion, scale=scale, **settings["crop"])
                if task == "mrsm":
                    x = mrsm_input(crop)
                else:
                    regions = settings["regions"]
                    x = receptor_input(crop, settings["phase"], regions["rim_mm"],
                                       regions["shell_mm"])
            inputs[task] = x.astype(np.float16)
            weights[task] = crop.weights.astype(np.float32)
        ki67 = record.get("ki67_percent")
        yield LesionSample(
            case.case_id, value, int(bool(record.get("malignant"))),
            _status(record.get("er")), _status(record.get("pr")), _status(record.get("her2")),
            float(ki67) if ki67 is not None else float("nan"), case.study.n_phases, inputs,
            weights)


def phantom_classification_cases(seeds: Sequence[int], size_xyz: Sequence[int] | None = None,
                                 size: str = "clinical") -> Iterator[LabelledStudy]:
    """Phantom cases with several lesions each (:func:`classification_spec`)."""
    from BreastAIAssistantLib.phantom.generator import generate_case
    from BreastAIAssistantLib.train.data import enhancing_lesions

    for seed in seeds:
        spec: dict[str, Any] = classification_spec(int(seed))
        if size_xyz is not None:
            spec["size_xyz"] = tuple(int(v) for v in size_xyz)
        case = generate_case(int(seed), size=size, **spec)
        yield LabelledStudy(f"phantom-{seed}", case.study,
                            enhancing_lesions(case.tumour_labels, case.truth), case.breast_mask,
                            case.tissue_labels, case.truth)
