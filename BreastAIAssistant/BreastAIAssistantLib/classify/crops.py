"""Lesion-centred crops for the classifiers, on a grid that keeps the study's geometry.

A crop is a stack of the study's own axial slices (its third index axis, so "slice" means the
acquired slice also for oblique studies) through a lesion or a box, each resampled to a square of
``pixels × pixels`` centred on the lesion. The square's side is the lesion's larger in-plane extent
times ``1 + 2 * margin``, at least ``min_side_mm``: lesions of every size fill the input alike (as
the papers crop "the region containing the tumour"), and the crop is an ``sitk.Image`` with the
study's direction, so Grad-CAM maps computed on it go back to the study grid by plain resampling.

Intensities: every phase is scaled by the first post-contrast phase's 1st/99th percentiles over
the whole study (``shared-first-post`` in :mod:`BreastAIAssistantLib.inference.preprocess`), so
that ``phase − pre`` is a subtraction on one scale for all classifiers.

Regions for the receptor model (from the lesion mask, in mm on the crop grid): *core* = inside
the lesion and deeper than ``rim_mm`` from its boundary; *rim* = inside within ``rim_mm``;
*shell* = outside within ``shell_mm``. Small lesions whose core would be empty keep their whole
interior as rim.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from BreastAIAssistantLib.errors import BreastAIError
from BreastAIAssistantLib.inference.preprocess import resample, robust_percentiles
from BreastAIAssistantLib.study import DCEStudy


class CropError(BreastAIError):
    """A lesion or box that cannot be cropped (empty, or outside the study)."""


@dataclass
class Crop:
    """Phases and lesion mask on a lesion-centred grid.

    Attributes:
        phases: ``(T, Z, S, S)`` float32, scaled as the module docstring says.
        mask: ``(Z, S, S)`` bool lesion mask (all true inside the box for box crops).
        grid: The crop grid (``S × S × Z``, study direction) as an empty ``sitk.Image``.
        times_s: Acquisition times of the phases, or ``None``.
        weights: ``(Z,)`` weight of each slice when slice scores are pooled into a lesion score
            (the lesion's area on the slice; uniform for box crops).
    """

    phases: np.ndarray
    mask: np.ndarray
    grid: sitk.Image
    times_s: tuple[float, ...] | None
    weights: np.ndarray

    @property
    def spacing_zyx(self) -> tuple[float, float, float]:
        sx, sy, sz = self.grid.GetSpacing()
        return (sz, sy, sx)


def intensity_scale(study: DCEStudy) -> tuple[float, float]:
    """The first post-contrast phase's 1st and 99th percentiles (the study's intensity scale)."""
    lo, hi = robust_percentiles(sitk.GetArrayFromImage(study.phases[1]), (1.0, 99.0))
    return float(lo), float(max(hi, lo + 1e-6))


def index_box(mask_zyx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inclusive (lo, hi) voxel indices ``(z, y, x)`` of a non-empty mask."""
    found = np.argwhere(mask_zyx)
    if found.size == 0:
        raise CropError("the lesion mask is empty")
    return found.min(0), found.max(0)


def box_from_lps(reference: sitk.Image, box_mm: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Voxel index box ``(z, y, x)`` covering an LPS box ``x0, y0, z0, x1, y1, z1`` in mm.

    The eight corners are mapped to continuous indices (oblique grids included) and their
    bounding box is clipped to the image.

    Raises:
        CropError: Not six numbers, an empty box, or a box outside the image.
    """
    if len(box_mm) != 6:
        raise CropError(f"a box is six numbers x0,y0,z0,x1,y1,z1 in LPS mm; got {len(box_mm)}")
    lo_mm, hi_mm = np.minimum(box_mm[:3], box_mm[3:]), np.maximum(box_mm[:3], box_mm[3:])
    if np.any(hi_mm - lo_mm <= 0):
        raise CropError("the box has zero size along an axis")
    corners = [reference.TransformPhysicalPointToContinuousIndex(
        (float(x), float(y), float(z)))
        for x in (lo_mm[0], hi_mm[0]) for y in (lo_mm[1], hi_mm[1]) for z in (lo_mm[2], hi_mm[2])]
    idx = np.array(corners)[:, ::-1]  # (z, y, x)
    size = np.array(reference.GetSize()[::-1])
    lo = np.maximum(np.floor(idx.min(0) + 0.5), 0).astype(int)
    hi = np.minimum(np.ceil(idx.max(0) - 0.5), size - 1).astype(int)
    if np.any(hi < lo):
        raise CropError(f"the box {list(box_mm)} lies outside the study")
    return lo, hi


def crop_grid(reference: sitk.Image, lo_zyx: np.ndarray, hi_zyx: np.ndarray, pixels: int,
              margin: float, min_side_mm: float) -> sitk.Image:
    """The square crop grid over slices ``lo_z..hi_z`` centred on the in-plane box."""
    sx, sy, sz = reference.GetSpacing()
    extent = max((hi_zyx[2] - lo_zyx[2] + 1) * sx, (hi_zyx[1] - lo_zyx[1] + 1) * sy)
    side = max(extent * (1 + 2 * margin), min_side_mm)
    step = side / pixels
    centre_x = (lo_zyx[2] + hi_zyx[2]) / 2
    centre_y = (lo_zyx[1] + hi_zyx[1]) / 2
    # index of the first crop pixel's centre in study index units
    first = (centre_x - (pixels - 1) / 2 * step / sx, centre_y - (pixels - 1) / 2 * step / sy,
             float(lo_zyx[0]))
    origin = reference.TransformContinuousIndexToPhysicalPoint(first)
    grid = sitk.Image(pixels, pixels, int(hi_zyx[0] - lo_zyx[0] + 1), sitk.sitkUInt8)
    grid.SetSpacing((step, step, sz))
    grid.SetOrigin(origin)
    grid.SetDirection(reference.GetDirection())
    return grid


def _crop(study: DCEStudy, grid: sitk.Image, scale: tuple[float, float]) -> np.ndarray:
    lo, hi = scale
    out = np.stack([sitk.GetArrayFromImage(resample(p, grid)) for p in study.phases])
    out -= np.float32(lo)
    out *= np.float32(1.0 / (hi - lo))
    return np.clip(out, -1.0, 3.0, out=out).astype(np.float32)


def lesion_crop(study: DCEStudy, lesion: sitk.Image, pixels: int = 48, margin: float = 0.25,
                min_side_mm: float = 20.0, scale: tuple[float, float] | None = None) -> Crop:
    """Crop around a binary lesion mask on the study's pre-contrast grid.

    Args:
        study: The study.
        lesion: Binary mask of one lesion on the pre-contrast grid.
        pixels: In-plane crop size.
        margin: Context on each side, as a fraction of the lesion's in-plane extent.
        min_side_mm: Smallest crop side.
        scale: The study's intensity scale (:func:`intensity_scale`; computed when omitted).

    Raises:
        CropError: Empty mask.
    """
    mask_zyx = sitk.GetArrayFromImage(lesion) > 0
    lo, hi = index_box(mask_zyx)
    grid = crop_grid(study.reference, lo, hi, pixels, margin, min_side_mm)
    nearest = sitk.Resample(sitk.Cast(lesion > 0, sitk.sitkUInt8), grid, sitk.Transform(),
                            sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)
    mask = sitk.GetArrayFromImage(nearest).astype(bool)
    weights = mask.sum(axis=(1, 2)).astype(np.float64)
    if weights.sum() == 0:  # a lesion thinner than a crop pixel: fall back to the slices' support
        weights = mask_zyx[lo[0]:hi[0] + 1].sum(axis=(1, 2)).astype(np.float64)
    return Crop(_crop(study, grid, scale or intensity_scale(study)), mask, grid, study.times_s,
                weights / weights.sum())


def box_crop(study: DCEStudy, lo_zyx: np.ndarray, hi_zyx: np.ndarray, pixels: int = 64,
             margin: float = 0.05, min_side_mm: float = 10.0,
             scale: tuple[float, float] | None = None) -> Crop:
    """Crop a voxel box (no delineation): every slice of the box, equal weights."""
    grid = crop_grid(study.reference, np.asarray(lo_zyx), np.asarray(hi_zyx), pixels, margin,
                     min_side_mm)
    n = grid.GetSize()[2]
    return Crop(_crop(study, grid, scale or intensity_scale(study)),
                np.ones((n, pixels, pixels), bool), grid, study.times_s, np.full(n, 1.0 / n))


def regions(mask: np.ndarray, spacing_zyx: Sequence[float], rim_mm: float,
            shell_mm: float) -> np.ndarray:
    """``(3, Z, S, S)`` float32 core, rim and peritumoral-shell maps of a crop's lesion mask."""
    inside = ndimage.distance_transform_edt(mask, sampling=spacing_zyx)
    outside = ndimage.distance_transform_edt(~mask, sampling=spacing_zyx)
    core = mask & (inside > rim_mm)
    rim = mask & ~core
    shell = ~mask & (outside <= shell_mm)
    return np.stack([core, rim, shell]).astype(np.float32)


def to_study(values_zyx: np.ndarray, crop: Crop, reference: sitk.Image) -> sitk.Image:
    """Put a map computed on the crop grid back on the study grid (linear, 0 outside)."""
    image = sitk.GetImageFromArray(np.ascontiguousarray(values_zyx, dtype=np.float32))
    image.CopyInformation(crop.grid)
    return resample(image, reference)
