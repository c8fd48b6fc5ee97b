"""One lesion's voxels on a grid, with its geometry computed once and shared by measurements.

Measurements in the registry (:mod:`.registry`) are pure functions of a :class:`LesionGeometry`;
the costly pieces (convex hull, farthest pair, per-slice diameters) are cached properties here so
that the maximum diameter, its endpoints, its uncertainty and the perpendicular extents reuse one
hull, the way pyradiomics shape features share one mesh.

All geometry is in the grid frame (see :mod:`.grid`) with voxel-centre points; LPS conversion
happens only for reported points.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from BreastAIAssistantLib.measure.diameter import (
    FarthestPair,
    PerpendicularExtents,
    candidate_points_index,
    farthest_pair,
    hull_vertices,
    line_extremes_zyx,
    perpendicular_extents,
)
from BreastAIAssistantLib.measure.grid import LPS_SUPERIOR, Grid

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class AxialDiameter:
    """The longest in-plane diameter over the slices closest to axial.

    Attributes:
        length_mm: The diameter (0 for a lesion of one voxel per slice).
        a_lps_mm: First endpoint (LPS).
        b_lps_mm: Second endpoint (LPS).
        slice_index: Index of the slice along ``index_axis`` in the full image.
        index_axis: The index axis (0 = x, 1 = y, 2 = z) closest to patient S-I.
        tilt_deg: Angle between that axis and the S-I axis (0 for a true axial grid).
    """

    length_mm: float
    a_lps_mm: np.ndarray
    b_lps_mm: np.ndarray
    slice_index: int
    index_axis: int
    tilt_deg: float


class LesionGeometry:
    """The voxels of one lesion, cropped to their bounding box, on a known grid.

    Args:
        mask_zyx: Boolean (z, y, x) crop holding the lesion's voxels (at least one).
        offset_zyx: Index of the crop's first voxel in the full image (z, y, x).
        grid: The full image's grid.
    """

    def __init__(self, mask_zyx: np.ndarray, offset_zyx: tuple[int, int, int], grid: Grid) -> None:
        self.mask_zyx = np.asarray(mask_zyx, dtype=bool)
        self.offset_zyx = tuple(int(o) for o in offset_zyx)
        self.grid = grid
        if not self.mask_zyx.any():
            raise ValueError("a lesion needs at least one voxel")

    @classmethod
    def from_labels(
        cls, labels_zyx: np.ndarray, label: int, box: tuple[slice, ...], grid: Grid
    ) -> LesionGeometry:
        """The lesion with value ``label`` inside the bounding box ``box`` of a label array."""
        return cls(labels_zyx[box] == label, tuple(s.start for s in box), grid)

    # -- simple properties ----------------------------------------------------------------------

    @cached_property
    def voxel_count(self) -> int:
        """Number of voxels."""
        return int(np.count_nonzero(self.mask_zyx))

    @property
    def volume_ml(self) -> float:
        """Volume: voxel count × voxel volume (ml)."""
        return self.voxel_count * self.grid.voxel_volume_mm3 / 1000.0

    def _to_grid_mm(self, index_xyz: np.ndarray) -> np.ndarray:
        return self.grid.index_to_grid_mm(index_xyz + np.asarray(self.offset_zyx[::-1]))

    @cached_property
    def centroid_lps_mm(self) -> np.ndarray:
        """Mean of the voxel centres (LPS mm)."""
        mean_zyx = np.argwhere(self.mask_zyx).mean(axis=0)
        return self.grid.grid_mm_to_lps(self._to_grid_mm(mean_zyx[::-1]))

    # -- the 3-D maximum diameter ---------------------------------------------------------------

    @cached_property
    def hull_mm(self) -> np.ndarray:
        """Convex-hull vertices of the voxel centres (grid frame, mm), shape (n, 3)."""
        return hull_vertices(self._to_grid_mm(candidate_points_index(self.mask_zyx)))

    @cached_property
    def diameter(self) -> FarthestPair:
        """Maximum 3-D diameter between voxel centres (grid frame)."""
        return farthest_pair(self.hull_mm)

    def diameter_with(self, convention: str) -> float:
        """Maximum diameter under ``"centres"`` or ``"corners"`` (union of voxel boxes), in mm."""
        if convention == "centres":
            return self.diameter.length_mm
        return farthest_pair(
            self._to_grid_mm(candidate_points_index(self.mask_zyx, "corners"))
        ).length_mm

    @property
    def endpoints_lps_mm(self) -> np.ndarray:
        """The two endpoints of the maximum diameter (LPS mm), shape (2, 3)."""
        return self.grid.grid_mm_to_lps(np.stack([self.diameter.a, self.diameter.b]))

    @property
    def diameter_uncertainty_mm(self) -> float:
        """One voxel's caliper width along the diameter axis (spacing .. voxel diagonal)."""
        if self.diameter.length_mm == 0:
            return self.grid.voxel_diagonal_mm
        return self.grid.voxel_width_along(self.diameter.unit)

    @cached_property
    def perpendicular(self) -> PerpendicularExtents:
        """Extents perpendicular to the maximum diameter (see :func:`perpendicular_extents`)."""
        return perpendicular_extents(self.hull_mm, self.diameter.unit)

    # -- the axial in-plane diameter ------------------------------------------------------------

    @cached_property
    def axial(self) -> AxialDiameter:
        """Longest in-plane diameter over the slices perpendicular to the axis closest to S-I.

        Each slice is a plane of the grid (its two in-plane index axes are orthogonal in physical
        space), so the in-plane diameter is the exact 2-D farthest pair of its voxel centres.
        Slices whose in-plane bounding-box diagonal cannot beat the best so far are skipped.
        """
        grid = self.grid
        index_axis = grid.index_axis_closest_to(LPS_SUPERIOR)
        cos_tilt = min(1.0, abs(float(grid.direction[LPS_SUPERIOR, index_axis])))
        array_axis = 2 - index_axis
        in_plane = [a for a in range(3) if a != array_axis]  # array axes, e.g. (y, x)
        spacing_zyx = grid.spacing_mm[::-1]
        plane_spacing = spacing_zyx[in_plane]
        best = (-1.0, None, None, 0)
        slices = np.moveaxis(self.mask_zyx, array_axis, 0)
        for s, plane in enumerate(slices):
            if not plane.any():
                continue
            rows, cols = np.nonzero(plane.any(axis=1))[0], np.nonzero(plane.any(axis=0))[0]
            extent = np.array([rows[-1] - rows[0], cols[-1] - cols[0]]) * plane_spacing
            if float(np.hypot(*extent)) <= best[0]:
                continue
            ends, _ = line_extremes_zyx(plane)
            pair = farthest_pair(ends * plane_spacing)
            if pair.length_mm > best[0]:
                best = (pair.length_mm, pair.a / plane_spacing, pair.b / plane_spacing, s)
        length, a2, b2, s = best
        points_zyx = np.zeros((2, 3))
        points_zyx[:, array_axis] = s
        points_zyx[:, in_plane] = np.stack([a2, b2])
        lps = grid.grid_mm_to_lps(self._to_grid_mm(points_zyx[:, ::-1]))
        return AxialDiameter(
            length_mm=float(length),
            a_lps_mm=lps[0],
            b_lps_mm=lps[1],
            slice_index=int(s + self.offset_zyx[array_axis]),
            index_axis=index_axis,
            tilt_deg=math.degrees(math.acos(cos_tilt)),
        )
