"""Small-lesion boundary growth on the native grid, from each lesion's own enhancement.

Why. The tumour network works on a coarser grid than the study (1.2 x 1.2 x 1.6 mm for
``tumour-st-demo``) and its 0.5 contour sits inside small lesions: on the phantom's held-out
studies, T1b lesions it finds come out a median 1.2 mm short and several were measured as T1a,
while T1c and larger lesions are unbiased (``docs/tumour-model-history.md``). A lesion a few
voxels across loses a voxel-width at each end of its diameter, which at 5-10 mm is a category.

What. Every predicted lesion whose exact 3-D maximum diameter is below ``below_mm`` may grow
outwards, on the study's own grid, into the voxels that enhance at least halfway (``fraction``)
from the background around it to the lesion itself -- the full-width-at-half-maximum boundary of
a blurred bright object -- and only within ``reach_mm`` of its predicted mask:

1. ``E``: peak subtraction ``max_k (S_k - S_0)`` over the post-contrast phases, computed only in
   the lesion's box.
2. Lesion level ``e``: median of ``E`` inside the predicted lesion; background level ``b``:
   median of ``E`` in the shell 2-6 mm outside it, inside the breast mask and outside every
   predicted lesion. A lesion that does not stand out from the shell by more than 3 robust
   standard deviations (1.4826 x MAD) does not grow.
3. Threshold ``b + fraction * (e - b)``; candidates: voxels at or above it, inside the breast,
   not in another lesion, at most ``reach_mm`` from the lesion (Euclidean, in mm).
4. The lesion gains the candidates 26-connected to it. Lesions never merge and never shrink;
   lesions are renumbered by decreasing volume afterwards (1 = largest), as
   :func:`~BreastAIAssistantLib.inference.postprocess.lesion_instances` numbers them.

Larger lesions are left as the network drew them: growing every lesion (no ``below_mm``) leaked
into neighbouring enhancing tissue and over-measured T1c/T2 lesions on validation studies, the
failure the history file records for an earlier whole-boundary redraw.

A manifest declares it as ``outputs.grow`` ``{"fraction": F, "reach_mm": R, "below_mm": D}``
(:func:`growth_settings`); without it nothing grows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from BreastAIAssistantLib.measure.grid import Grid
from BreastAIAssistantLib.measure.lesion import LesionGeometry
from BreastAIAssistantLib.study import DCEStudy

#: Shell around a lesion (mm from its mask) whose median enhancement is the background level.
BACKGROUND_SHELL_MM = (2.0, 6.0)
#: Fewest shell voxels for a background level; a lesion with fewer does not grow.
MIN_SHELL_VOXELS = 10
#: A lesion grows only if its level exceeds the background by this many robust standard
#: deviations of the shell (1.4826 x median absolute deviation): otherwise the half-way
#: threshold would lie in the noise.
MIN_CONTRAST_SD = 3.0


@dataclass(frozen=True)
class GrowthSettings:
    """Small-lesion growth (see the module docstring).

    Attributes:
        fraction: Threshold between background (0) and lesion (1) enhancement, in (0, 1).
        reach_mm: Farthest a lesion may grow from its predicted mask (mm, > 0).
        below_mm: Only lesions with a 3-D maximum diameter below this (mm) grow.
    """

    fraction: float
    reach_mm: float
    below_mm: float

    def __post_init__(self) -> None:
        if not 0.0 < self.fraction < 1.0:
            raise ValueError(f"growth fraction must be in (0, 1), got {self.fraction}")
        if self.reach_mm <= 0 or self.below_mm <= 0:
            raise ValueError(
                f"growth reach_mm and below_mm must be > 0, got {self.reach_mm}, {self.below_mm}"
            )

    @classmethod
    def parse(cls, text: str) -> GrowthSettings:
        """``"F/R/D"`` (fraction, reach mm, below mm), e.g. ``"0.5/2/10"``."""
        parts = text.split("/")
        if len(parts) != 3:
            raise ValueError(f"growth setting {text!r} is not FRACTION/REACH_MM/BELOW_MM")
        return cls(*(float(p) for p in parts))

    def spec(self) -> str:
        return f"{self.fraction:g}/{self.reach_mm:g}/{self.below_mm:g}"


def growth_settings(outputs: Mapping[str, Any]) -> GrowthSettings | None:
    """The manifest's ``outputs.grow`` as :class:`GrowthSettings` (``None``: no growth)."""
    grow = outputs.get("grow")
    if grow is None:
        return None
    return GrowthSettings(float(grow["fraction"]), float(grow["reach_mm"]), float(grow["below_mm"]))


def _peak_subtraction(study: DCEStudy, box: tuple[slice, ...]) -> np.ndarray:
    pre = study.phase_zyx(0)[box].astype(np.float32)
    peak = np.full(pre.shape, -np.inf, np.float32)
    for k in range(1, study.n_phases):
        np.maximum(peak, study.phase_zyx(k)[box] - pre, out=peak)
    return peak


def grow_small_lesions_array(
    labels: np.ndarray,
    study: DCEStudy,
    breast: np.ndarray,
    settings: GrowthSettings,
) -> np.ndarray:
    """:func:`grow_small_lesions` on ``(z, y, x)`` arrays of the study's grid (a new array)."""
    spacing = np.asarray(study.spacing_mm[::-1], float)
    grid = Grid.from_image(study.reference)
    out = labels.copy()
    boxes = ndimage.find_objects(labels)
    pad = np.ceil((max(settings.reach_mm, BACKGROUND_SHELL_MM[1]) + 1.0) / spacing).astype(int)
    for k, obj in enumerate(boxes, start=1):
        if obj is None:
            continue
        box = tuple(slice(max(s.start - p, 0), min(s.stop + p, n))
                    for s, p, n in zip(obj, pad, labels.shape, strict=True))  # fmt: skip
        local = labels[box]
        lesion = local == k
        offset = tuple(b.start for b in box)
        # the diameter breast-ai measure reports (voxel centres, exact)
        if LesionGeometry(lesion, offset, grid).diameter.length_mm >= settings.below_mm:
            continue
        inside_breast = breast[box]
        distance = ndimage.distance_transform_edt(~lesion, sampling=spacing)
        shell = ((distance > BACKGROUND_SHELL_MM[0]) & (distance <= BACKGROUND_SHELL_MM[1])
                 & inside_breast & (local == 0))  # fmt: skip
        if shell.sum() < MIN_SHELL_VOXELS:
            continue
        enhancement = _peak_subtraction(study, box)
        level = float(np.median(enhancement[lesion]))
        around = enhancement[shell]
        background = float(np.median(around))
        spread = 1.4826 * float(np.median(np.abs(around - background)))
        if level - background <= MIN_CONTRAST_SD * spread:
            continue
        threshold = background + settings.fraction * (level - background)
        candidates = ((enhancement >= threshold) & inside_breast & (local == 0)
                      & (distance <= settings.reach_mm))  # fmt: skip
        parts, _ = ndimage.label(candidates | lesion, structure=np.ones((3, 3, 3), bool))
        joined = np.isin(parts, np.unique(parts[lesion])) & candidates
        target = out[box]
        target[joined & (target == 0)] = k
    return _by_volume(out)


def _by_volume(labels: np.ndarray) -> np.ndarray:
    counts = np.bincount(labels.ravel())
    counts[0] = 0
    present = np.flatnonzero(counts)
    order = present[np.argsort(-counts[present], kind="stable")]
    lut = np.zeros(counts.size, labels.dtype)
    lut[order] = np.arange(1, order.size + 1, dtype=labels.dtype)
    return lut[labels]


def grow_small_lesions(
    labels: sitk.Image, study: DCEStudy, breast: sitk.Image, settings: GrowthSettings | None
) -> sitk.Image:
    """Grow the small lesions of an instance-label image on the study grid (module docstring).

    Args:
        labels: Lesion instances on the study's grid (uint16, 1 = largest).
        study: The study the lesions were found in (its phases give the enhancement).
        breast: Breast mask on the same grid.
        settings: Growth settings; ``None`` returns ``labels`` unchanged.
    """
    if settings is None:
        return labels
    array = sitk.GetArrayViewFromImage(labels)
    if not array.any():
        return labels
    grown = grow_small_lesions_array(
        np.asarray(array), study, sitk.GetArrayViewFromImage(breast) > 0, settings
    )
    image = sitk.GetImageFromArray(grown)
    image.CopyInformation(labels)
    return image
