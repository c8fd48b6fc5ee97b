"""Preprocessing declared by a model manifest: resampling to the model grid and normalisation.

Model grid: same origin and direction as the study's pre-contrast phase, the manifest's spacing,
and the size that covers the same physical extent. Results are brought back with
:func:`to_study_grid`, so every output lands on the pre-contrast grid.

Normalisation schemes (``inputs.normalisation.scheme``):

``percentile-minmax``
    Per image: clip at the ``percentiles`` (default 1st and 99th) and scale to [0, 1]
    (the whole-breast model's pre-contrast input).
``shared-first-post``
    The Patterns 2023 code clips and min-max scales each phase, reusing the first post-contrast
    phase's min/max for the later phases. We reuse the first post-contrast phase's percentiles
    for *every* phase, the pre-contrast one included, so that the network's second channel,
    ``phase − pre``, is a true subtraction on one intensity scale. Values are not clipped above
    1 after scaling, because strong late enhancement above the early phase's 99th percentile is
    information; they are clipped to ``[-1, clip_max]`` (default 3).

Percentiles are taken on a strided subsample (~1 M voxels), which changes them by far less
than the noise and keeps preprocessing fast on clinical volumes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import SimpleITK as sitk

from BreastAIAssistantLib.errors import BreastAIError

MAX_SAMPLES = 1 << 20


class NormalisationError(BreastAIError):
    """The manifest names a normalisation scheme this version does not know."""


def model_grid(reference: sitk.Image, spacing_xyz: Sequence[float]) -> sitk.Image:
    """An empty image with the reference's origin/direction, the model spacing, same extent."""
    old_spacing = np.asarray(reference.GetSpacing(), dtype=float)
    new_spacing = np.asarray(spacing_xyz, dtype=float)
    size = np.maximum(1, np.round(np.asarray(reference.GetSize()) * old_spacing / new_spacing))
    grid = sitk.Image([int(s) for s in size], sitk.sitkUInt8)
    grid.SetDirection(reference.GetDirection())
    grid.SetSpacing(tuple(float(s) for s in new_spacing))
    # keep the physical corner of the volume: voxel centres move by half the spacing change
    corner = np.asarray(reference.TransformContinuousIndexToPhysicalPoint((-0.5, -0.5, -0.5)))
    direction = np.asarray(reference.GetDirection()).reshape(3, 3)
    grid.SetOrigin(tuple(corner + direction @ (0.5 * new_spacing)))
    return grid


def resample(
    image: sitk.Image, grid: sitk.Image, interpolator: int = sitk.sitkLinear, default: float = 0.0
) -> sitk.Image:
    """Resample onto ``grid`` (identity transform) keeping float32 for scalar data."""
    pixel = sitk.sitkFloat32 if interpolator != sitk.sitkNearestNeighbor else image.GetPixelID()
    return sitk.Resample(image, grid, sitk.Transform(), interpolator, default, pixel)


def to_study_grid(
    image: sitk.Image, reference: sitk.Image, interpolator: int = sitk.sitkLinear
) -> sitk.Image:
    """Bring a model-grid result back onto the study's pre-contrast grid."""
    return resample(image, reference, interpolator)


def robust_percentiles(array: np.ndarray, percentiles: Sequence[float]) -> np.ndarray:
    """Percentiles of ``array`` from an evenly strided subsample of at most ~1 M voxels."""
    flat = array.reshape(-1)
    step = max(1, flat.size // MAX_SAMPLES)
    if step > 1 and step % 2 == 0:
        step += 1  # odd stride: do not alias with even image dimensions
    return np.percentile(flat[::step], percentiles)


def _scale(array: np.ndarray, lo: float, hi: float, clip: tuple[float, float]) -> np.ndarray:
    scale = 1.0 / max(hi - lo, 1e-6)
    out = (array.astype(np.float32) - np.float32(lo)) * np.float32(scale)
    return np.clip(out, clip[0], clip[1], out=out)


def normalise_single(array: np.ndarray, settings: Mapping[str, Any]) -> np.ndarray:
    """``percentile-minmax`` on one image (the whole-breast model's input)."""
    scheme = settings.get("scheme")
    if scheme != "percentile-minmax":
        raise NormalisationError(
            f"unknown normalisation scheme {scheme!r} for a single-image model; "
            "this version knows 'percentile-minmax'"
        )
    lo, hi = robust_percentiles(array, settings.get("percentiles", (1.0, 99.0)))
    return _scale(array, float(lo), float(hi), (0.0, 1.0))


def normalise_phases(phases: Sequence[np.ndarray], settings: Mapping[str, Any]) -> np.ndarray:
    """``shared-first-post``: ``(T, 2, Z, Y, X)`` = [phase, phase − pre] on one scale.

    Args:
        phases: Phase arrays ``(Z, Y, X)`` on the model grid, pre-contrast first (≥ 2).
        settings: The manifest's ``inputs.normalisation``.
    """
    scheme = settings.get("scheme")
    if scheme != "shared-first-post":
        raise NormalisationError(
            f"unknown normalisation scheme {scheme!r} for a multi-phase model; "
            "this version knows 'shared-first-post'"
        )
    lo, hi = robust_percentiles(phases[1], settings.get("percentiles", (1.0, 99.0)))
    clip = (-1.0, float(settings.get("clip_max", 3.0)))
    scaled = [_scale(p, float(lo), float(hi), clip) for p in phases]
    out = np.empty((len(phases), 2, *phases[0].shape), dtype=np.float32)
    for k, p in enumerate(scaled):
        out[k, 0] = p
        np.subtract(p, scaled[0], out=out[k, 1])
    return out
