"""Segmentation metrics in physical units: Dice, sensitivity, 95th-percentile Hausdorff (mm).

HD95 follows the usual symmetric definition: the 95th percentile of the distances from each
surface voxel of one mask to the other mask's surface, pooled over both directions, with
distances from an exact Euclidean distance transform on the voxel spacing (anisotropy handled).
Empty masks: Dice is 1 when both are empty and 0 when one is; HD95 is NaN unless both are
non-empty.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage


def dice(pred: np.ndarray, truth: np.ndarray) -> float:
    """Dice coefficient 2|P∩T| / (|P| + |T|)."""
    pred, truth = pred.astype(bool), truth.astype(bool)
    total = int(pred.sum()) + int(truth.sum())
    if total == 0:
        return 1.0
    return 2.0 * int(np.logical_and(pred, truth).sum()) / total


def sensitivity(pred: np.ndarray, truth: np.ndarray) -> float:
    """|P∩T| / |T| (NaN when the truth is empty)."""
    truth = truth.astype(bool)
    n = int(truth.sum())
    return float("nan") if n == 0 else int(np.logical_and(pred.astype(bool), truth).sum()) / n


def _surface(mask: np.ndarray) -> np.ndarray:
    return mask & ~ndimage.binary_erosion(mask, structure=np.ones((3, 3, 3), bool))


def hausdorff95(pred: np.ndarray, truth: np.ndarray, spacing_zyx: Sequence[float]) -> float:
    """Symmetric 95th-percentile Hausdorff distance in mm (NaN if either mask is empty)."""
    pred, truth = pred.astype(bool), truth.astype(bool)
    if not pred.any() or not truth.any():
        return float("nan")
    box = np.argwhere(pred | truth)
    lo = np.maximum(box.min(0) - 2, 0)
    hi = box.max(0) + 3
    crop = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
    pred, truth = pred[crop], truth[crop]
    sp, st = _surface(pred), _surface(truth)
    to_truth = ndimage.distance_transform_edt(~st, sampling=spacing_zyx)
    to_pred = ndimage.distance_transform_edt(~sp, sampling=spacing_zyx)
    distances = np.concatenate([to_truth[sp], to_pred[st]])
    return float(np.percentile(distances, 95))
