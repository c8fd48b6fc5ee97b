"""LPS <-> RAS and SimpleITK <-> MRML volume geometry: the one place where the two meet.

The core keeps every image as a ``SimpleITK.Image`` in the DICOM/ITK patient coordinate system
**LPS** (x to the patient's left, y to posterior, z to superior), with a direction matrix whose
columns are the index axes. Slicer's world coordinates are **RAS** (x right, y anterior,
z superior), and a volume node holds its geometry as one ``IJKToRAS`` 4x4 matrix (Slicer
documentation, "Coordinate systems"). The two differ by ``F = diag(-1, -1, 1)``:

* a point: ``p_ras = F @ p_lps`` (and back with the same ``F``, which is its own inverse);
* an image: ``IJKToRAS = [[F @ D @ diag(spacing), F @ origin_lps], [0, 0, 0, 1]]``, where ``D``
  is the SimpleITK direction matrix; this is what Slicer's ITK/NRRD readers do on loading.

Voxel order needs no conversion: ``sitk.GetArrayFromImage`` gives ``(z, y, x)`` = ``(k, j, i)``
with ``x`` fastest in memory, exactly the layout of ``vtkImageData`` scalars, so arrays are
copied as they are. Every other module of this package converts through these functions only.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import SimpleITK as sitk
import slicer
import vtk
from vtk.util import numpy_support

logger = logging.getLogger(__name__)

#: The LPS <-> RAS flip (its own inverse).
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0])

#: numpy dtypes that ``vtkImageData`` holds as they are; others are converted to float32.
_VTK_DTYPES = {np.dtype(t) for t in
               ("uint8", "int8", "uint16", "int16", "uint32", "int32", "float32", "float64")}


def lps_to_ras(points: Sequence[float] | np.ndarray) -> np.ndarray:
    """LPS point(s) in mm -> RAS point(s) in mm.

    Args:
        points: One point ``(3,)`` or points ``(n, 3)``.

    Returns:
        The points in RAS, same shape, float64.
    """
    array = np.asarray(points, dtype=float)
    return array @ LPS_TO_RAS.T


def ras_to_lps(points: Sequence[float] | np.ndarray) -> np.ndarray:
    """RAS point(s) in mm -> LPS point(s) in mm (the inverse of :func:`lps_to_ras`)."""
    array = np.asarray(points, dtype=float)
    return array @ LPS_TO_RAS.T


def ijk_to_ras_from_image(image: sitk.Image) -> np.ndarray:
    """The 4x4 ``IJKToRAS`` matrix of a 3-D SimpleITK image (LPS geometry).

    Raises:
        ValueError: the image is not 3-D.
    """
    if image.GetDimension() != 3:
        raise ValueError(f"a volume node needs a 3-D image, got {image.GetDimension()}-D")
    direction = np.asarray(image.GetDirection(), dtype=float).reshape(3, 3)
    spacing = np.asarray(image.GetSpacing(), dtype=float)
    matrix = np.eye(4)
    matrix[:3, :3] = LPS_TO_RAS @ direction @ np.diag(spacing)
    matrix[:3, 3] = LPS_TO_RAS @ np.asarray(image.GetOrigin(), dtype=float)
    return matrix


def lps_geometry_from_ijk_to_ras(
    matrix: np.ndarray,
) -> tuple[tuple[float, ...], tuple[float, ...], tuple[float, ...]]:
    """``(origin_lps, spacing, direction_lps)`` of an ``IJKToRAS`` matrix (SimpleITK order).

    Raises:
        ValueError: a zero-length axis (singular matrix).
    """
    matrix = np.asarray(matrix, dtype=float)
    axes_ras = matrix[:3, :3]
    spacing = np.linalg.norm(axes_ras, axis=0)
    if np.any(spacing <= 0):
        raise ValueError(f"the IJKToRAS matrix has a zero-length axis: spacing {spacing}")
    direction_lps = LPS_TO_RAS @ (axes_ras / spacing)
    origin_lps = LPS_TO_RAS @ matrix[:3, 3]
    return (tuple(float(v) for v in origin_lps), tuple(float(v) for v in spacing),
            tuple(float(v) for v in direction_lps.ravel()))  # fmt: skip


def to_vtk_matrix(matrix: np.ndarray) -> vtk.vtkMatrix4x4:
    """A numpy 4x4 matrix as ``vtkMatrix4x4``."""
    out = vtk.vtkMatrix4x4()
    for row in range(4):
        for col in range(4):
            out.SetElement(row, col, float(matrix[row, col]))
    return out


def from_vtk_matrix(matrix: vtk.vtkMatrix4x4) -> np.ndarray:
    """A ``vtkMatrix4x4`` as a numpy 4x4 array."""
    return np.array([[matrix.GetElement(r, c) for c in range(4)] for r in range(4)])


def vtk_image_from_array(array_zyx: np.ndarray) -> vtk.vtkImageData:
    """A ``vtkImageData`` (origin 0, spacing 1, no direction) holding a deep copy of the array.

    Geometry is not set here: volume nodes and oriented image data carry it in their own
    ``IJKToRAS`` matrix, as Slicer does.
    """
    array = np.asarray(array_zyx)
    if array.ndim != 3:
        raise ValueError(f"expected a (z, y, x) array, got shape {array.shape}")
    if array.dtype == np.bool_:
        array = array.astype(np.uint8)
    elif array.dtype not in _VTK_DTYPES:
        array = array.astype(np.float32)
    image = vtk.vtkImageData()
    image.SetDimensions(array.shape[2], array.shape[1], array.shape[0])
    scalars = numpy_support.numpy_to_vtk(np.ascontiguousarray(array).ravel(), deep=True)
    scalars.SetName("ImageScalars")
    image.GetPointData().SetScalars(scalars)
    return image


def array_from_vtk_image(image: vtk.vtkImageData) -> np.ndarray:
    """The scalars of a single-component ``vtkImageData`` as a ``(z, y, x)`` numpy copy."""
    x, y, z = image.GetDimensions()
    scalars = image.GetPointData().GetScalars()
    if scalars is None:
        raise ValueError("the image has no scalars")
    if scalars.GetNumberOfComponents() != 1:
        raise ValueError(f"expected one component, got {scalars.GetNumberOfComponents()}")
    return numpy_support.vtk_to_numpy(scalars).reshape(z, y, x).copy()


def update_volume_from_image(volume_node: slicer.vtkMRMLVolumeNode, image: sitk.Image) -> None:
    """Set a volume node's voxels and ``IJKToRAS`` from a 3-D SimpleITK image (LPS).

    Args:
        volume_node: Any ``vtkMRMLVolumeNode`` (scalar, label map).
        image: The image; 4-D or vector images are refused.

    Raises:
        ValueError: not a 3-D scalar image.
    """
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise ValueError("a scalar volume node needs a single-component image")
    array = sitk.GetArrayViewFromImage(image)
    volume_node.SetAndObserveImageData(vtk_image_from_array(array))
    volume_node.SetIJKToRASMatrix(to_vtk_matrix(ijk_to_ras_from_image(image)))


def image_from_volume_node(volume_node: slicer.vtkMRMLVolumeNode) -> sitk.Image:
    """A 3-D SimpleITK image (LPS) with the voxels and geometry of a volume node.

    A parent transform of the node is not applied (harden it first); it is logged.

    Raises:
        ValueError: the node has no image data.
    """
    image_data = volume_node.GetImageData()
    if image_data is None:
        raise ValueError(f"volume {volume_node.GetName()!r} has no voxels")
    if volume_node.GetParentTransformNode() is not None:
        logger.warning("volume %r has a parent transform that is ignored; harden it to use it",
                       volume_node.GetName())  # fmt: skip
    matrix = vtk.vtkMatrix4x4()
    volume_node.GetIJKToRASMatrix(matrix)
    origin, spacing, direction = lps_geometry_from_ijk_to_ras(from_vtk_matrix(matrix))
    image = sitk.GetImageFromArray(array_from_vtk_image(image_data))
    image.SetOrigin(origin)
    image.SetSpacing(spacing)
    image.SetDirection(direction)
    return image
