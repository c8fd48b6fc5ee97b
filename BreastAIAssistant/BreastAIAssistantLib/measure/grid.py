"""The voxel grid of a mask: index <-> LPS millimetres, and which index axis is which.

Measurements work in the *grid frame*: a voxel with index ``(i, j, k)`` (x, y, z order) sits at
``g = (i * sx, j * sy, k * sz)`` millimetres. The grid frame differs from LPS only by the rotation
of the direction matrix and the origin offset (``lps = origin + D @ g``), so distances, angles and
volumes computed in it are exact for anisotropic and oblique grids, and only the points reported
to the user (endpoints, centroids) are mapped to LPS.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

#: LPS axis numbers: +x = patient left, +y = posterior, +z = superior.
LPS_LEFT, LPS_POSTERIOR, LPS_SUPERIOR = 0, 1, 2


@dataclass(frozen=True)
class Grid:
    """Geometry of a 3-D image.

    Attributes:
        spacing_mm: Voxel size along the x, y, z index axes (mm).
        origin_lps_mm: LPS position of the centre of voxel (0, 0, 0) (mm).
        direction: 3×3 direction matrix; column ``k`` is the LPS unit vector of index axis ``k``.
        size_xyz: Number of voxels along x, y, z.
    """

    spacing_mm: np.ndarray
    origin_lps_mm: np.ndarray
    direction: np.ndarray
    size_xyz: tuple[int, int, int]

    @classmethod
    def from_image(cls, image: sitk.Image) -> Grid:
        """The grid of a 3-D SimpleITK image."""
        return cls(
            spacing_mm=np.asarray(image.GetSpacing(), dtype=float),
            origin_lps_mm=np.asarray(image.GetOrigin(), dtype=float),
            direction=np.asarray(image.GetDirection(), dtype=float).reshape(3, 3),
            size_xyz=tuple(int(s) for s in image.GetSize()),  # type: ignore[arg-type]
        )

    @property
    def voxel_volume_mm3(self) -> float:
        """Volume of one voxel (mm³)."""
        return float(np.prod(self.spacing_mm))

    @property
    def voxel_diagonal_mm(self) -> float:
        """Length of a voxel's space diagonal (mm)."""
        return float(np.linalg.norm(self.spacing_mm))

    def index_to_grid_mm(self, index_xyz: np.ndarray) -> np.ndarray:
        """Continuous (x, y, z) indices, shape (n, 3), to grid-frame millimetres."""
        return np.asarray(index_xyz, dtype=float) * self.spacing_mm

    def grid_mm_to_lps(self, points_mm: np.ndarray) -> np.ndarray:
        """Grid-frame millimetres, shape (n, 3) or (3,), to LPS millimetres."""
        points_mm = np.asarray(points_mm, dtype=float)
        return points_mm @ self.direction.T + self.origin_lps_mm

    def grid_vector_to_lps(self, vector_mm: np.ndarray) -> np.ndarray:
        """A direction or displacement in the grid frame, expressed in LPS (no origin shift)."""
        return self.direction @ np.asarray(vector_mm, dtype=float)

    def index_axis_closest_to(self, lps_axis: int) -> int:
        """The index axis (0 = x, 1 = y, 2 = z) whose direction is closest to an LPS axis.

        Ties (a 45° oblique grid) go to the lower index axis.
        """
        return int(np.argmax(np.abs(self.direction[lps_axis, :])))

    def axis_points_towards(self, index_axis: int, lps_axis: int) -> bool:
        """Whether increasing ``index_axis`` moves towards +``lps_axis`` (left, posterior, up)."""
        return bool(self.direction[lps_axis, index_axis] > 0)

    def voxel_width_along(self, unit_grid: np.ndarray) -> float:
        """Width of one voxel box measured along a unit direction of the grid frame (mm).

        This is the caliper width ``sum_k |u_k| * spacing_k``: the spacing for a direction along an
        index axis, up to the voxel diagonal for the diagonal direction. It is the largest
        difference between the voxel-corner and voxel-centre conventions of a diameter measured
        along that direction.
        """
        return float(np.abs(np.asarray(unit_grid, dtype=float)) @ self.spacing_mm)
