"""Display planes in patient space: grid slices, MIPs and oblique reformats, sampled from images.

A :class:`PlaneGeometry` is a grid of pixels in LPS space: the centre of pixel ``(0, 0)``, the LPS
step of one pixel to the right and one pixel down, and the shape. Every key image of the report is
one: a slice of the voxel grid shown radiologically (:func:`grid_plane`, exact voxels), the MIP
(:func:`grid_plane` of the one-voxel-thick MIP image) and an oblique plane that contains a whole
3-D segment (:func:`segment_plane`). Any image (subtraction, mask, label map) is sampled on a plane
with :func:`sample_plane` (SimpleITK resampling; nearest neighbour on grid planes gives the voxel
values exactly), and any LPS point maps to pixel coordinates with :meth:`PlaneGeometry.to_pixel`,
so outlines, lines and markers land where the voxels are, whatever the storage order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

from BreastAIAssistantLib.report.orientation import (
    VIEWS,
    DisplayAxes,
    as_direction,
    edge_letters,
    view_of_normal,
)

_S = np.array([0.0, 0.0, 1.0])


@dataclass(frozen=True)
class PlaneGeometry:
    """A pixel grid on a plane in LPS space.

    Attributes:
        origin_lps_mm: Centre of pixel ``(row 0, col 0)``.
        col_step_mm: LPS displacement of one pixel to the right.
        row_step_mm: LPS displacement of one pixel down (orthogonal to ``col_step_mm``).
        shape_rc: ``(rows, cols)``.
    """

    origin_lps_mm: np.ndarray
    col_step_mm: np.ndarray
    row_step_mm: np.ndarray
    shape_rc: tuple[int, int]

    @property
    def spacing_rc_mm(self) -> tuple[float, float]:
        """Pixel size ``(row, col)`` in mm."""
        return float(np.linalg.norm(self.row_step_mm)), float(np.linalg.norm(self.col_step_mm))

    @property
    def right(self) -> np.ndarray:
        """Unit LPS vector pointing screen-right."""
        return self.col_step_mm / np.linalg.norm(self.col_step_mm)

    @property
    def down(self) -> np.ndarray:
        """Unit LPS vector pointing screen-down."""
        return self.row_step_mm / np.linalg.norm(self.row_step_mm)

    @property
    def normal(self) -> np.ndarray:
        """Unit normal ``right × down`` (into the screen)."""
        return np.cross(self.right, self.down)

    @property
    def letters(self) -> dict[str, str]:
        """Orientation letters at the four edges."""
        return edge_letters(self.right, self.down)

    def tilt_from(self, view: str = "axial") -> float:
        """Angle (degrees) between this plane and the anatomical plane of ``view``."""
        cosine = min(1.0, abs(float(self.normal[VIEWS[view][0]])))
        return float(np.degrees(np.arccos(cosine)))

    def to_pixel(self, points_lps_mm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Continuous ``(row, col)`` of LPS points, and their signed distance from the plane (mm).

        Args:
            points_lps_mm: Shape ``(3,)`` or ``(n, 3)``.

        Returns:
            ``(rc, distance)`` of shapes ``(..., 2)`` and ``(...)``.
        """
        offset = np.asarray(points_lps_mm, dtype=float) - self.origin_lps_mm
        row_mm, col_mm = self.spacing_rc_mm
        rc = np.stack([offset @ self.down / row_mm, offset @ self.right / col_mm], axis=-1)
        return rc, offset @ self.normal

    def crop(self, centre_rc: np.ndarray, half_mm: float) -> PlaneGeometry:
        """The whole pixels within ``half_mm`` of a centre, clipped to this plane."""
        centre = np.asarray(centre_rc, dtype=float)
        spacing = np.asarray(self.spacing_rc_mm)
        half = np.ceil(half_mm / spacing)
        low = np.clip(np.floor(centre - half), 0, np.asarray(self.shape_rc) - 1).astype(int)
        high = np.clip(np.ceil(centre + half), 0, np.asarray(self.shape_rc) - 1).astype(int)
        origin = self.origin_lps_mm + low[0] * self.row_step_mm + low[1] * self.col_step_mm
        shape = (int(high[0] - low[0] + 1), int(high[1] - low[1] + 1))
        return PlaneGeometry(origin, self.col_step_mm, self.row_step_mm, shape)

    def reference_image(self) -> sitk.Image:
        """A one-voxel-thick image on this plane: the reference grid for resampling."""
        rows, cols = self.shape_rc
        row_mm, col_mm = self.spacing_rc_mm
        reference = sitk.Image(cols, rows, 1, sitk.sitkUInt8)
        reference.SetSpacing((col_mm, row_mm, 1.0))
        reference.SetOrigin(tuple(float(v) for v in self.origin_lps_mm))
        matrix = np.column_stack([self.right, self.down, self.normal])
        reference.SetDirection(tuple(float(v) for v in matrix.ravel()))
        return reference


def sample_plane(
    image: sitk.Image,
    plane: PlaneGeometry,
    interpolator: int = sitk.sitkNearestNeighbor,
    default: float = np.nan,
) -> np.ndarray:
    """Values of ``image`` at the plane's pixel centres, as a float32 ``(rows, cols)`` array.

    Args:
        image: Any scalar 3-D image in LPS space.
        plane: The plane.
        interpolator: SimpleITK interpolator (nearest for grid planes and labels).
        default: Value outside the image (NaN shows as background).
    """
    sampled = sitk.Resample(
        image, plane.reference_image(), sitk.Transform(), interpolator, float(default),
        sitk.sitkFloat32,
    )  # fmt: skip
    return sitk.GetArrayFromImage(sampled)[0]


def grid_plane(image: sitk.Image, axes: DisplayAxes, index: int) -> PlaneGeometry:
    """Plane ``index`` along ``axes.slice_axis`` of the image's grid, shown radiologically."""
    size = image.GetSize()
    if not 0 <= index < size[axes.slice_axis]:
        raise ValueError(
            f"slice {index} outside 0..{size[axes.slice_axis] - 1} along index axis "
            f"{axes.slice_axis}"
        )
    corner = [0.0, 0.0, 0.0]
    corner[axes.slice_axis] = float(index)
    corner[axes.row_axis] = size[axes.row_axis] - 1.0 if axes.flip_rows else 0.0
    corner[axes.col_axis] = size[axes.col_axis] - 1.0 if axes.flip_cols else 0.0
    origin = np.asarray(image.TransformContinuousIndexToPhysicalPoint(corner))
    matrix = as_direction(image.GetDirection())
    spacing = np.asarray(image.GetSpacing())
    col = matrix[:, axes.col_axis] * spacing[axes.col_axis] * (-1.0 if axes.flip_cols else 1.0)
    row = matrix[:, axes.row_axis] * spacing[axes.row_axis] * (-1.0 if axes.flip_rows else 1.0)
    return PlaneGeometry(origin, col, row, (size[axes.row_axis], size[axes.col_axis]))


def segment_plane_vectors(a_lps_mm: np.ndarray, b_lps_mm: np.ndarray) -> np.ndarray:
    """Unit normal of the plane containing segment ``a``-``b`` that is closest to axial.

    The plane is spanned by the segment's direction ``u`` and the horizontal direction
    perpendicular to it, ``S × u``; its normal is ``u × (S × u)``, the component of patient
    superior perpendicular to ``u``. A vertical segment (no horizontal component) lies in the
    coronal plane instead. A zero-length segment gives the axial normal.
    """
    u = np.asarray(b_lps_mm, dtype=float) - np.asarray(a_lps_mm, dtype=float)
    length = float(np.linalg.norm(u))
    if length == 0.0:
        return _S.copy()
    u /= length
    horizontal = np.cross(_S, u)
    if np.linalg.norm(horizontal) < 1e-6:
        return np.array([0.0, 1.0, 0.0])  # vertical segment: coronal plane (contains S and L)
    normal = np.cross(u, horizontal / np.linalg.norm(horizontal))
    return normal / np.linalg.norm(normal)


def oriented_plane(
    normal_lps: np.ndarray, centre_lps_mm: np.ndarray, pixel_mm: float, fov_mm: float
) -> PlaneGeometry:
    """A square plane with a given normal, centred on a point, shown radiologically.

    The plane's closest anatomical view (by the normal's largest component) sets the screen
    directions: screen-right is that view's right reference (patient left, or posterior for
    sagittal) projected onto the plane, screen-down the in-plane perpendicular pointing towards
    the view's down reference (posterior for axial, inferior otherwise).
    """
    normal = np.asarray(normal_lps, dtype=float)
    normal = normal / np.linalg.norm(normal)
    _, right_ref, down_ref = VIEWS[view_of_normal(normal)]
    right = np.asarray(right_ref, dtype=float)
    right = right - (right @ normal) * normal
    right /= np.linalg.norm(right)
    down = np.cross(normal, right)
    if down @ np.asarray(down_ref, dtype=float) < 0:
        down = -down
    n = max(2, int(np.ceil(fov_mm / pixel_mm)) | 1)  # odd: the centre is a pixel centre
    half = (n - 1) / 2.0
    origin = np.asarray(centre_lps_mm, dtype=float) - half * pixel_mm * (right + down)
    return PlaneGeometry(origin, right * pixel_mm, down * pixel_mm, (n, n))


def segment_plane(
    a_lps_mm: np.ndarray, b_lps_mm: np.ndarray, pixel_mm: float, fov_mm: float
) -> PlaneGeometry:
    """Oblique plane closest to axial that contains segment ``a``-``b``, centred on its midpoint."""
    normal = segment_plane_vectors(a_lps_mm, b_lps_mm)
    centre = (np.asarray(a_lps_mm, dtype=float) + np.asarray(b_lps_mm, dtype=float)) / 2.0
    return oriented_plane(normal, centre, pixel_mm, fov_mm)
