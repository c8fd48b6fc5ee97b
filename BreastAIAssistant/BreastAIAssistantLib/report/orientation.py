"""Radiological display orientation of image planes, worked out from the direction matrix.

Convention (radiological, as on a PACS workstation and in 3D Slicer's default views):

=========  ========================  =======================
view       screen right is patient   screen down is patient
=========  ========================  =======================
axial      left (L)                  posterior (P)
coronal    left (L)                  inferior (I)
sagittal   posterior (P)             inferior (I)
=========  ========================  =======================

so an axial image shows the patient's right on the image's left and anterior at the top, whatever
order the voxels are stored in (LPS DICOM, RAS NIfTI, flipped or oblique grids).

For a plane of the voxel grid (:class:`DisplayAxes`): the slice axis is the index axis closest to
the wanted patient axis (S-I for axial; ties go to the lower index axis, as in
:mod:`BreastAIAssistantLib.measure.grid`); of the two in-plane index axes, the one closest to the
view's screen-right patient axis becomes the columns and the other the rows; each is reversed
when the grid runs the other way. On an oblique grid the plane shown is the grid's own plane
(exact voxels, no interpolation), tilted from the true anatomical plane by the grid's obliquity.

Everything here is pure geometry on 3×3 direction matrices (LPS, column ``k`` = direction of
SimpleITK index axis ``k``); nothing draws.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: LPS axis numbers.
L_AXIS, P_AXIS, S_AXIS = 0, 1, 2

#: View name -> (patient axis normal to the plane, LPS vector pointing screen-right, screen-down).
VIEWS: dict[str, tuple[int, tuple[int, int, int], tuple[int, int, int]]] = {
    "axial": (S_AXIS, (1, 0, 0), (0, 1, 0)),
    "coronal": (P_AXIS, (1, 0, 0), (0, 0, -1)),
    "sagittal": (L_AXIS, (0, 1, 0), (0, 0, -1)),
}

_VIEW_OF_NORMAL = {S_AXIS: "axial", P_AXIS: "coronal", L_AXIS: "sagittal"}
_POSITIVE_LETTERS = "LPS"
_NEGATIVE_LETTERS = "RAI"


def as_direction(direction: np.ndarray | tuple[float, ...] | list[float]) -> np.ndarray:
    """A 3×3 direction matrix from a SimpleITK row-major 9-tuple or a 3×3 array.

    Raises:
        ValueError: not 9 numbers, or a singular matrix.
    """
    matrix = np.asarray(direction, dtype=float).reshape(3, 3)
    if abs(np.linalg.det(matrix)) < 1e-6:
        raise ValueError(f"singular direction matrix {matrix.ravel().tolist()}")
    return matrix


def patient_letter(vector_lps: np.ndarray) -> str:
    """Letter of the patient direction closest to an LPS vector (``"L"``, ``"A"``, ``"I"``...)."""
    vector = np.asarray(vector_lps, dtype=float)
    axis = int(np.argmax(np.abs(vector)))
    return _POSITIVE_LETTERS[axis] if vector[axis] > 0 else _NEGATIVE_LETTERS[axis]


def view_of_normal(normal_lps: np.ndarray) -> str:
    """``"axial"``, ``"coronal"`` or ``"sagittal"``: the anatomical plane closest to a plane."""
    return _VIEW_OF_NORMAL[int(np.argmax(np.abs(np.asarray(normal_lps, dtype=float))))]


def edge_letters(right_lps: np.ndarray, down_lps: np.ndarray) -> dict[str, str]:
    """Orientation letters at the four image edges for screen-right and screen-down vectors."""
    right, down = np.asarray(right_lps, dtype=float), np.asarray(down_lps, dtype=float)
    return {
        "left": patient_letter(-right),
        "right": patient_letter(right),
        "top": patient_letter(-down),
        "bottom": patient_letter(down),
    }


@dataclass(frozen=True)
class DisplayAxes:
    """How to show planes of a voxel grid in radiological orientation.

    Attributes:
        view: ``"axial"``, ``"coronal"`` or ``"sagittal"``.
        slice_axis: SimpleITK index axis (0 = i/x, 1 = j/y, 2 = k/z) normal to the planes.
        row_axis: Index axis that runs down the screen (after ``flip_rows``).
        col_axis: Index axis that runs to the right (after ``flip_cols``).
        flip_rows: Whether ``row_axis`` is shown reversed (its last voxel at the top).
        flip_cols: Whether ``col_axis`` is shown reversed (its last voxel on the left).
        tilt_deg: Angle between the slice axis and the view's patient axis (0 for a true plane).
    """

    view: str
    slice_axis: int
    row_axis: int
    col_axis: int
    flip_rows: bool
    flip_cols: bool
    tilt_deg: float

    def slice_zyx(self, array_zyx: np.ndarray, index: int) -> np.ndarray:
        """Plane ``index`` of a ``(z, y, x)`` array as a ``(rows, cols)`` display array (a view)."""
        plane = np.take(array_zyx, index, axis=2 - self.slice_axis)
        # remaining array axes are the index axes in decreasing order (z, y, x minus one)
        remaining = [a for a in (2, 1, 0) if a != self.slice_axis]
        if remaining.index(self.row_axis) != 0:
            plane = plane.T
        if self.flip_rows:
            plane = plane[::-1, :]
        if self.flip_cols:
            plane = plane[:, ::-1]
        return plane

    def pixel_of(self, index_xyz: np.ndarray, size_xyz: tuple[int, int, int]) -> np.ndarray:
        """Continuous ``(row, col)`` display coordinates of continuous ``(x, y, z)`` indices.

        Args:
            index_xyz: Shape ``(3,)`` or ``(n, 3)``.
            size_xyz: Grid size, needed for the reversed axes.

        Returns:
            Shape ``(2,)`` or ``(n, 2)``.
        """
        index = np.asarray(index_xyz, dtype=float)
        rows, cols = index[..., self.row_axis], index[..., self.col_axis]
        if self.flip_rows:
            rows = size_xyz[self.row_axis] - 1 - rows
        if self.flip_cols:
            cols = size_xyz[self.col_axis] - 1 - cols
        return np.stack([rows, cols], axis=-1)

    def screen_vectors(self, direction: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Unit LPS vectors of screen-right and screen-down for a grid with ``direction``."""
        matrix = as_direction(direction)
        right = matrix[:, self.col_axis] * (-1.0 if self.flip_cols else 1.0)
        down = matrix[:, self.row_axis] * (-1.0 if self.flip_rows else 1.0)
        return right, down

    def letters(self, direction: np.ndarray) -> dict[str, str]:
        """Orientation letters at the image edges (``{"left": "R", "top": "A", ...}``)."""
        return edge_letters(*self.screen_vectors(direction))


def display_axes(
    direction: np.ndarray | tuple[float, ...] | list[float],
    view: str = "axial",
    slice_axis: int | None = None,
) -> DisplayAxes:
    """Radiological display of a grid's planes (see the module docstring for the rule).

    Args:
        direction: The grid's direction (SimpleITK 9-tuple or 3×3), LPS.
        view: Wanted view; its patient axis picks the slice axis unless ``slice_axis`` is given.
        slice_axis: Force the index axis normal to the planes (e.g. the projected axis of a MIP);
            the view then follows from that axis' closest patient axis.

    Returns:
        The :class:`DisplayAxes`.

    Raises:
        ValueError: unknown view, bad axis or singular direction.
    """
    matrix = as_direction(direction)
    if view not in VIEWS:
        raise ValueError(f"unknown view {view!r}; choose one of {', '.join(VIEWS)}")
    if slice_axis is None:
        slice_axis = int(np.argmax(np.abs(matrix[VIEWS[view][0], :])))
    elif slice_axis not in (0, 1, 2):
        raise ValueError(f"slice_axis must be 0, 1 or 2, got {slice_axis}")
    else:
        view = view_of_normal(matrix[:, slice_axis])
    normal_axis, right_ref, down_ref = VIEWS[view]
    in_plane = [a for a in (0, 1, 2) if a != slice_axis]
    right = np.asarray(right_ref, dtype=float)
    down = np.asarray(down_ref, dtype=float)
    # the in-plane axis most aligned with screen-right becomes the columns (ties: lower axis)
    alignment = [abs(float(matrix[:, a] @ right)) for a in in_plane]
    col_axis = in_plane[int(np.argmax(alignment))]
    row_axis = in_plane[1 - in_plane.index(col_axis)]
    cos_tilt = min(1.0, abs(float(matrix[normal_axis, slice_axis])))
    return DisplayAxes(
        view=view,
        slice_axis=slice_axis,
        row_axis=row_axis,
        col_axis=col_axis,
        flip_rows=bool(matrix[:, row_axis] @ down < 0),
        flip_cols=bool(matrix[:, col_axis] @ right < 0),
        tilt_deg=float(np.degrees(np.arccos(cos_tilt))),
    )
