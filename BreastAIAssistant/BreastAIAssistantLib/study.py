"""The DCE study object: every phase on the pre-contrast grid, with acquisition times.

A :class:`DCEStudy` is what every reader returns and what every later stage (maps, models,
measurements, exports) takes. Geometry lives on ``SimpleITK.Image`` objects in LPS millimetres;
arrays taken from them are ``(z, y, x)`` and named so (``*_zyx``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

import numpy as np
import SimpleITK as sitk

from BreastAIAssistantLib.errors import StudyError

logger = logging.getLogger(__name__)

#: Relative tolerance on spacing/origin/direction when deciding that two grids are the same.
GRID_TOLERANCE = 1e-4


def same_grid(a: sitk.Image, b: sitk.Image, tolerance: float = GRID_TOLERANCE) -> bool:
    """Whether two images share size, spacing, origin and direction (within ``tolerance``).

    Origins are compared in millimetres scaled by the smallest spacing, so that the tolerance is a
    fraction of a voxel.
    """
    if a.GetDimension() != b.GetDimension() or a.GetSize() != b.GetSize():
        return False
    spacing_a = np.asarray(a.GetSpacing())
    if not np.allclose(spacing_a, b.GetSpacing(), rtol=tolerance, atol=0.0):
        return False
    voxel = float(spacing_a.min())
    if not np.allclose(a.GetOrigin(), b.GetOrigin(), rtol=0.0, atol=tolerance * voxel):
        return False
    return bool(np.allclose(a.GetDirection(), b.GetDirection(), rtol=0.0, atol=tolerance))


def physical_bounds(image: sitk.Image) -> tuple[np.ndarray, np.ndarray]:
    """Axis-aligned LPS bounding box (min corner, max corner) of the image's voxel extent in mm.

    The extent covers whole voxels (centres ± half a voxel), so a one-slice image has a
    non-zero thickness.
    """
    size = np.asarray(image.GetSize(), dtype=float)
    corners_index = np.array(np.meshgrid(*[(-0.5, s - 0.5) for s in size], indexing="ij"))
    corners_index = corners_index.reshape(image.GetDimension(), -1).T
    direction = np.asarray(image.GetDirection()).reshape(image.GetDimension(), -1)
    spacing = np.asarray(image.GetSpacing())
    origin = np.asarray(image.GetOrigin())
    points = origin + (direction @ (corners_index * spacing).T).T
    return points.min(axis=0), points.max(axis=0)


def overlap_fraction(moving: sitk.Image, reference: sitk.Image) -> float:
    """Fraction of the reference's bounding box volume that the moving image's box covers."""
    lo_m, hi_m = physical_bounds(moving)
    lo_r, hi_r = physical_bounds(reference)
    inter = np.clip(np.minimum(hi_m, hi_r) - np.maximum(lo_m, lo_r), 0.0, None)
    ref_volume = float(np.prod(hi_r - lo_r))
    return float(np.prod(inter)) / ref_volume if ref_volume > 0 else 0.0


def orientation_code(image: sitk.Image) -> str:
    """Three-letter orientation code of the image axes in ITK's convention (e.g. ``"LPS"``).

    Each letter is the patient direction that the corresponding index axis (i, j, k) points *to*;
    an axial scan stored the DICOM way is ``"LPS"``, the same scan in RAS-stored NIfTI is ``"RAS"``
    ... following the closest anatomical axis for oblique directions.
    """
    direction = np.asarray(image.GetDirection()).reshape(3, 3)
    letters = (("R", "L"), ("A", "P"), ("I", "S"))
    code = []
    for column in direction.T:
        axis = int(np.argmax(np.abs(column)))
        code.append(letters[axis][1] if column[axis] > 0 else letters[axis][0])
    return "".join(code)


def is_oblique(image: sitk.Image, tolerance_deg: float = 0.5) -> bool:
    """Whether any image axis deviates from the nearest patient axis by more than the tolerance."""
    direction = np.abs(np.asarray(image.GetDirection()).reshape(3, 3))
    return bool(np.any(direction.max(axis=0) < math.cos(math.radians(tolerance_deg))))


def _as_float32(image: sitk.Image) -> sitk.Image:
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise StudyError(
            "a DCE phase must be a scalar image, got "
            f"{image.GetNumberOfComponentsPerPixel()} components per voxel"
        )
    if image.GetPixelID() == sitk.sitkFloat32:
        return image
    return sitk.Cast(image, sitk.sitkFloat32)


def _check_finite(image: sitk.Image, label: str) -> None:
    array = sitk.GetArrayViewFromImage(image)
    if not np.isfinite(array).all():
        bad = int(np.count_nonzero(~np.isfinite(array)))
        raise StudyError(f"{label} has {bad} NaN or infinite voxel(s); fix or re-export that phase")


def resample_to(image: sitk.Image, reference: sitk.Image, default: float = 0.0) -> sitk.Image:
    """Linear resampling of ``image`` onto the grid of ``reference`` (identity transform, LPS)."""
    return sitk.Resample(
        image, reference, sitk.Transform(), sitk.sitkLinear, default, sitk.sitkFloat32
    )


@dataclass(frozen=True)
class DCEStudy:
    """A multi-phase dynamic contrast-enhanced MRI study on one voxel grid.

    Build it with :meth:`from_images`, which validates and resamples; the dataclass constructor
    itself does no checking.

    Attributes:
        phases: Phase 0 (pre-contrast) to N as float32 ``SimpleITK.Image`` objects, all on the
            pre-contrast phase's grid.
        times_s: Acquisition time of each phase in seconds after the pre-contrast acquisition
            (``times_s[0] == 0``), or ``None`` when unknown, in which case phases are in index
            order only.
        source: Human-readable description of where the study came from (path and format).
        metadata: Source metadata worth keeping (patient/study identifiers for DICOM export,
            series descriptions, reader notes). Never used for computation.
    """

    phases: tuple[sitk.Image, ...]
    times_s: tuple[float, ...] | None = None
    source: str = ""
    metadata: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_images(
        cls,
        images: Sequence[sitk.Image],
        times_s: Sequence[float] | None = None,
        source: str = "",
        metadata: Mapping[str, Any] | None = None,
        names: Sequence[str] | None = None,
        min_overlap: float = 0.0,
    ) -> DCEStudy:
        """Validate phases, put them on the pre-contrast grid and return the study.

        Args:
            images: Phase images, pre-contrast first. Any scalar pixel type; stored as float32.
            times_s: Acquisition times in seconds, one per phase, in any origin (they are shifted
                so that the pre-contrast phase is at 0). ``None`` if unknown.
            source: Description of the origin, kept for provenance.
            metadata: Extra source metadata to keep.
            names: Per-phase labels (file names, series descriptions) used in error messages.
            min_overlap: Smallest fraction of the pre-contrast extent that another phase must
                cover; ``0`` accepts any overlap, but disjoint extents are always an error.

        Returns:
            The validated study.

        Raises:
            StudyError: fewer than 2 phases, times that do not match or are not increasing,
                NaN/inf voxels (naming the phase), non-3-D or vector images, or a phase whose
                physical extent does not overlap the pre-contrast phase.
        """
        images = list(images)
        if len(images) < 2:
            raise StudyError(
                f"a DCE study needs at least 2 phases (pre-contrast and one post-contrast), "
                f"got {len(images)}"
            )
        labels = [
            f"phase {k}" + (f" ({names[k]})" if names is not None else "")
            for k in range(len(images))
        ]
        for image, label in zip(images, labels, strict=True):
            if image.GetDimension() != 3:
                raise StudyError(
                    f"{label} is {image.GetDimension()}-D; each phase must be a 3-D volume"
                )
        times = cls._check_times(times_s, len(images))

        reference = _as_float32(images[0])
        _check_finite(reference, labels[0])
        phases = [reference]
        for image, label in zip(images[1:], labels[1:], strict=True):
            image = _as_float32(image)
            _check_finite(image, label)
            if not same_grid(image, reference):
                covered = overlap_fraction(image, reference)
                if covered <= min_overlap:
                    raise StudyError(
                        f"{label} does not overlap the pre-contrast phase in physical space "
                        f"(covers {100 * covered:.1f}% of it); check that all phases are "
                        "from the same series and share a frame of reference"
                    )
                logger.info(
                    "%s is on a different grid (size %s, spacing %s); resampled linearly to the "
                    "pre-contrast grid (it covers %.0f%% of it)",
                    label,
                    image.GetSize(),
                    tuple(round(s, 4) for s in image.GetSpacing()),
                    100 * covered,
                )
                image = resample_to(image, reference)
            phases.append(image)
        return cls(
            phases=tuple(phases),
            times_s=times,
            source=source,
            metadata=dict(metadata or {}),
        )

    @staticmethod
    def _check_times(times_s: Sequence[float] | None, n: int) -> tuple[float, ...] | None:
        if times_s is None:
            return None
        times = [float(t) for t in times_s]
        if len(times) != n:
            raise StudyError(f"got {len(times)} acquisition time(s) for {n} phases")
        if not all(math.isfinite(t) for t in times):
            raise StudyError(f"acquisition times must be finite numbers, got {times}")
        shifted = tuple(t - times[0] for t in times)
        if any(b <= a for a, b in pairwise(shifted)):
            raise StudyError(
                f"acquisition times must increase from phase to phase, got {list(shifted)} s"
            )
        return shifted

    # --- convenience views -------------------------------------------------------------------

    @property
    def n_phases(self) -> int:
        """Number of phases including the pre-contrast phase."""
        return len(self.phases)

    @property
    def reference(self) -> sitk.Image:
        """The pre-contrast phase, whose grid every output uses."""
        return self.phases[0]

    @property
    def spacing_mm(self) -> tuple[float, float, float]:
        """Voxel spacing (x, y, z) in millimetres."""
        return tuple(self.reference.GetSpacing())  # type: ignore[return-value]

    @property
    def size_xyz(self) -> tuple[int, int, int]:
        """Grid size (x, y, z) in voxels."""
        return tuple(self.reference.GetSize())  # type: ignore[return-value]

    @property
    def has_times(self) -> bool:
        """Whether acquisition times are known."""
        return self.times_s is not None

    def phase_zyx(self, k: int) -> np.ndarray:
        """Read-only float32 ``(z, y, x)`` view of phase ``k`` (no copy)."""
        view = sitk.GetArrayViewFromImage(self.phases[k])
        return view

    def with_times(self, times_s: Sequence[float] | None) -> DCEStudy:
        """A copy of this study with other acquisition times (validated)."""
        return DCEStudy(
            phases=self.phases,
            times_s=self._check_times(times_s, self.n_phases),
            source=self.source,
            metadata=self.metadata,
        )

    def image_like(self, array_zyx: np.ndarray) -> sitk.Image:
        """Wrap a ``(z, y, x)`` array as an image on the pre-contrast grid."""
        if array_zyx.shape != self.size_xyz[::-1]:
            raise ValueError(
                f"array shape {array_zyx.shape} does not match the study grid "
                f"{self.size_xyz[::-1]} (z, y, x)"
            )
        image = sitk.GetImageFromArray(array_zyx)
        image.CopyInformation(self.reference)
        return image

    def describe(self) -> dict[str, Any]:
        """A JSON-ready summary: phases, times, size, spacing, origin, direction, orientation."""
        ref = self.reference
        return {
            "source": self.source,
            "n_phases": self.n_phases,
            "times_s": list(self.times_s) if self.times_s is not None else None,
            "size_xyz": list(self.size_xyz),
            "spacing_mm": [round(s, 6) for s in self.spacing_mm],
            "origin_lps_mm": [round(o, 6) for o in ref.GetOrigin()],
            "direction": [round(d, 8) for d in ref.GetDirection()],
            "orientation": orientation_code(ref),
            "oblique": is_oblique(ref),
            "metadata": {k: v for k, v in self.metadata.items() if _jsonable(v)},
        }


def _jsonable(value: Any) -> bool:
    return isinstance(value, (str, int, float, bool, type(None), list, tuple, dict))
