"""From probability maps to masks: the cleaned breast mask and the tumour lesion instances.

Breast: threshold at 0.5, keep the two largest components (the two breasts; small islands the
model sometimes places beside the heart would otherwise open the tumour gate there)
and fill holes.

Tumour: threshold the probability (the manifest's ``outputs.threshold``, default 0.5), label
connected components with 26-connectivity, drop components smaller than ``min_volume_ml``
(default 0.02 ml, a 3.4 mm sphere, about nine voxels of the tumour model's 1.2 x 1.2 x 1.6 mm grid:
within the noise of a probability map) and number the rest 1..n by decreasing volume. A real T1a
lesion (1-5 mm) can be smaller than that, and a thin irregular T1b one is barely larger (the
phantom has 6 mm spiculated lesions of 0.022 ml), so the network's output never reports a T1mi
lesion or the smallest T1a ones, and an under-segmented small lesion can drop out. A mask given
to ``breast-ai measure`` follows that command's grouping rule instead.

With a ``seed_threshold`` (the manifest's ``outputs.seed_threshold``) the thresholding is a
hysteresis: a component of ``probability >= threshold`` is kept only if some voxel of it
reaches ``seed_threshold``. A lower ``threshold`` then recovers a lesion's faint rim (a model
that under-segments large lesions under-measures their diameter and T category) without
admitting faint blobs that never reach the seed level as new lesions.

With ``gap_mm > 0`` the kept components are then grouped into lesions by the project's lesion
grouping rule (:mod:`BreastAIAssistantLib.measure.grouping`): components whose voxel boxes are at
most ``gap_mm`` apart are one lesion, the rule ``breast-ai measure`` applies to any binary mask;
with ``merge_below_ml`` only components smaller than that volume merge, larger ones stay lesions
of their own. A manifest declares its model's grouping in ``outputs.gap_mm`` and
``outputs.merge_below_ml`` (:func:`lesion_grouping`); without them, :data:`LESION_GAP_MM` (0:
every component is a lesion). Merging changes lesion numbering and T categories, never which
voxels are tumour.

Why the shipped tumour model declares no grouping. Merging every component within 5 mm changed
no detection and no Dice on 90 validation studies with 0.2.0, but joined neighbouring masses
(phantom lesions may lie one voxel apart; they are separate tumours, staged on the largest) and
made T categories wrong. Merging only small pieces (each < 0.524 ml, a 10 mm sphere, the T1b/T1c
boundary, within 5 mm) together with a 0.3 threshold was aimed at clumped non-mass enhancement,
which the network finds as several pieces: it raised T agreement from 51 to 57 of 63 validation
lesions, but on held-out studies, scored once against a rule written beforehand
(``candidates/postprocess-0.3.0/RULE.txt``), it gained nothing (40 -> 40 of 54, 28 -> 28 of 39,
19 -> 19 of 22) and put a lesion in one more tumour-free study, so it was not shipped; the
mechanism stays for models whose own evaluation supports it. Details:
``docs/tumour-model-history.md``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from BreastAIAssistantLib.measure.grouping import GroupingSettings, group_lesions

#: Components of a thresholded tumour map at most this far apart (mm) are one lesion (0: none
#: are merged; see the module docstring for why).
LESION_GAP_MM = 0.0


def lesion_thresholds(outputs: Mapping[str, Any]) -> tuple[float, float | None]:
    """``(threshold, seed_threshold)`` of a manifest's ``outputs`` (defaults 0.5 and none)."""
    threshold = float(outputs.get("threshold", 0.5))
    seed = outputs.get("seed_threshold")
    return threshold, (None if seed is None else float(seed))


def lesion_grouping(outputs: Mapping[str, Any]) -> tuple[float, float | None]:
    """``(gap_mm, merge_below_ml)`` of a manifest's ``outputs`` (defaults :data:`LESION_GAP_MM`
    and none)."""
    gap = float(outputs.get("gap_mm", LESION_GAP_MM))
    below = outputs.get("merge_below_ml")
    return gap, (None if below is None else float(below))


def lesion_instances(
    probability: sitk.Image,
    threshold: float = 0.5,
    min_volume_ml: float = 0.02,
    seed_threshold: float | None = None,
    gap_mm: float = LESION_GAP_MM,
    merge_below_ml: float | None = None,
) -> sitk.Image:
    """uint16 instance labels (1 = largest) on the probability's grid.

    Args:
        probability: Tumour probability on any grid.
        threshold: Voxels at or above it belong to a lesion.
        min_volume_ml: Components smaller than this are dropped.
        seed_threshold: If given, a component must also hold a voxel at or above it
            (hysteresis); must not be below ``threshold``.
        gap_mm: Kept components at most this far apart are one lesion (0: every component
            is a lesion).
        merge_below_ml: If given, only components smaller than this (ml) merge by ``gap_mm``.
    """
    if seed_threshold is not None and seed_threshold < threshold:
        raise ValueError(f"seed_threshold {seed_threshold} is below threshold {threshold}")
    full = sitk.GetArrayViewFromImage(probability)
    result = np.zeros(full.shape, np.uint16)
    above = full >= threshold
    # Labelled inside the box of the voxels above threshold: the same components, box distances
    # and numbering as on the whole grid, a few seconds sooner on a clinical-size study.
    boxes = ndimage.find_objects(above.view(np.uint8))
    if boxes:
        spacing_zyx = np.asarray(probability.GetSpacing()[::-1], float)
        result[boxes[0]] = _instances(full[boxes[0]], above[boxes[0]], spacing_zyx,
                                      min_volume_ml, seed_threshold, gap_mm,
                                      merge_below_ml)  # fmt: skip
    image = sitk.GetImageFromArray(result)
    image.CopyInformation(probability)
    return image


def _instances(prob: np.ndarray, above: np.ndarray, spacing_zyx: np.ndarray,
               min_volume_ml: float, seed_threshold: float | None,
               gap_mm: float, merge_below_ml: float | None) -> np.ndarray:  # fmt: skip
    """:func:`lesion_instances` on arrays: uint16 labels, 1 = largest."""
    labels, n = ndimage.label(above, structure=np.ones((3, 3, 3), bool))
    if not n:
        return np.zeros(labels.shape, np.uint16)
    sizes = np.bincount(labels.ravel())[1:] * float(np.prod(spacing_zyx)) / 1000.0
    valid = sizes >= min_volume_ml
    if seed_threshold is not None:
        peaks = ndimage.maximum(prob, labels, np.arange(1, n + 1))
        valid &= np.asarray(peaks) >= seed_threshold
    keep = [i + 1 for i in np.argsort(-sizes, kind="stable") if valid[i]]
    lut = np.zeros(n + 1, np.uint16)
    lut[keep] = np.arange(1, len(keep) + 1, dtype=np.uint16)
    out = lut[labels]
    if gap_mm > 0 and len(keep) > 1:
        rule = GroupingSettings(gap_mm=gap_mm, min_volume_ml=0.0, connectivity=26,
                                merge_below_ml=merge_below_ml)  # fmt: skip
        out = group_lesions(out, spacing_zyx, rule).labels_zyx.astype(np.uint16)
    return out


def clean_breast_mask(probability: sitk.Image, threshold: float = 0.5) -> sitk.Image:
    """Breast mask: threshold, keep the two largest components (two breasts), fill holes."""
    mask = sitk.GetArrayViewFromImage(probability) >= threshold
    labels, n = ndimage.label(mask)
    if n > 2:
        sizes = np.bincount(labels.ravel())[1:]
        keep = np.argsort(-sizes)[:2] + 1
        mask = np.isin(labels, keep)
    mask = ndimage.binary_fill_holes(mask)
    image = sitk.GetImageFromArray(mask.astype(np.uint8))
    image.CopyInformation(probability)
    return image
