"""Skin and chest-wall surfaces of a whole-breast mask, and a lesion's distance to them.

Definition (only the breast mask is needed, no image intensities): take every line of voxels of
the breast mask along the index axis closest to the patient's anterior-posterior (LPS y) axis.
In each line that contains breast voxels,

- the most **anterior** breast voxel lies on the **skin** (the mask's anterior/outer surface), and
- the most **posterior** breast voxel lies on the **chest wall** (the mask's posterior boundary,
  usually the pectoralis muscle's anterior surface).

This "height map" split is robust to the stair-steps of a voxel surface: the lateral sides of the
breast still count as skin (the anterior ends of the lateral lines trace them), and the curved
chest wall stays chest wall. On an oblique grid the lines follow the grid axis, which is within
the grid's tilt of the true A-P direction. Holes inside the breast mask do not create surfaces.

Distances are in millimetres between voxel *centres* (the convention of the diameters): from the
lesion voxel nearest to the surface to the centre of the nearest surface voxel; 0 when a lesion
voxel is itself a surface voxel. A lesion voxel 26-adjacent to a surface voxel is therefore at
most one voxel diagonal away, which is the default tolerance for "touching".
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from BreastAIAssistantLib.measure.diameter import line_extremes_zyx
from BreastAIAssistantLib.measure.grid import LPS_POSTERIOR, Grid

logger = logging.getLogger(__name__)

_FACES = ndimage.generate_binary_structure(3, 1)


@dataclass
class BreastSurfaces:
    """The skin and chest-wall voxels of a breast mask, with nearest-point search.

    Attributes:
        breast_zyx: Boolean breast mask (z, y, x).
        skin_zyx: Boolean mask of the skin voxels.
        chest_wall_zyx: Boolean mask of the chest-wall voxels.
        grid: The mask's grid.
    """

    breast_zyx: np.ndarray
    skin_zyx: np.ndarray
    chest_wall_zyx: np.ndarray
    grid: Grid

    @classmethod
    def from_mask(cls, breast_zyx: np.ndarray, grid: Grid) -> BreastSurfaces:
        """Split a breast mask's anterior and posterior surfaces (see the module docstring).

        Args:
            breast_zyx: Boolean (z, y, x) breast mask with at least one voxel.
            grid: Its grid (decides which array axis runs anterior-posterior).
        """
        breast_zyx = np.asarray(breast_zyx, dtype=bool)
        index_axis = grid.index_axis_closest_to(LPS_POSTERIOR)
        array_axis = 2 - index_axis
        ends, _ = line_extremes_zyx(breast_zyx, axis=array_axis)
        half = len(ends) // 2
        first, last = ends[:half], ends[half:]
        # `first` has the lowest index along the line: anterior when the index grows posteriorly
        anterior, posterior = (
            (first, last) if grid.axis_points_towards(index_axis, LPS_POSTERIOR) else (last, first)
        )
        skin = np.zeros_like(breast_zyx)
        chest = np.zeros_like(breast_zyx)
        skin[tuple(anterior.T)] = True
        chest[tuple(posterior.T)] = True
        logger.debug(
            "breast surfaces along array axis %d: %d skin, %d chest-wall voxels",
            array_axis,
            half,
            half,
        )
        return cls(breast_zyx, skin, chest, grid)

    def _points_mm(self, surface_zyx: np.ndarray) -> np.ndarray:
        return self.grid.index_to_grid_mm(np.argwhere(surface_zyx)[:, ::-1])

    @cached_property
    def _skin_tree(self) -> cKDTree:
        return cKDTree(self._points_mm(self.skin_zyx))

    @cached_property
    def _chest_wall_tree(self) -> cKDTree:
        return cKDTree(self._points_mm(self.chest_wall_zyx))

    def _distance(
        self, tree: cKDTree, surface_zyx: np.ndarray, lesion_zyx: np.ndarray, offset_zyx
    ) -> float:
        crop = tuple(slice(o, o + n) for o, n in zip(offset_zyx, lesion_zyx.shape, strict=True))
        if np.any(surface_zyx[crop] & lesion_zyx):
            return 0.0
        # the lesion voxel nearest to any outside set has a face neighbour outside the lesion
        border = lesion_zyx & ~ndimage.binary_erosion(lesion_zyx, _FACES, border_value=0)
        index_xyz = (np.argwhere(border) + np.asarray(offset_zyx))[:, ::-1]
        distances, _ = tree.query(self.grid.index_to_grid_mm(index_xyz), k=1)
        return float(np.min(distances))

    def distance_to_skin_mm(self, lesion_zyx: np.ndarray, offset_zyx) -> float:
        """Shortest distance (mm) from a lesion to the skin surface.

        Args:
            lesion_zyx: Boolean lesion mask cropped to its bounding box.
            offset_zyx: Index of the crop's first voxel in the full grid (z, y, x).
        """
        return self._distance(self._skin_tree, self.skin_zyx, lesion_zyx, offset_zyx)

    def distance_to_chest_wall_mm(self, lesion_zyx: np.ndarray, offset_zyx) -> float:
        """Shortest distance (mm) from a lesion to the chest wall (posterior breast boundary)."""
        return self._distance(self._chest_wall_tree, self.chest_wall_zyx, lesion_zyx, offset_zyx)

    def fraction_inside(self, lesion_zyx: np.ndarray, offset_zyx) -> float:
        """Fraction (0-1) of the lesion's voxels that lie inside the breast mask."""
        crop = tuple(slice(o, o + n) for o, n in zip(offset_zyx, lesion_zyx.shape, strict=True))
        total = int(np.count_nonzero(lesion_zyx))
        return float(np.count_nonzero(self.breast_zyx[crop] & lesion_zyx)) / max(total, 1)
