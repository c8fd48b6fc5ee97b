"""Subtraction images and their maximum-intensity projection (MIP).

Subtraction: ``sub_k = S_k - S_0`` for post-contrast phase ``k``, in float32 signal units. It
removes the pre-contrast signal (fat, T1-bright fluid) so that only enhancement remains, the
standard way breast DCE-MRI is read (ACR BI-RADS Atlas, MRI, 5th ed. 2013; Kuhl, Radiology
2007;244:356-378). Negative values are kept (they are information, e.g. motion).

MIP: the maximum of a (subtraction) image along one index axis, by default the index axis whose
direction is closest to the patient's superior-inferior axis (LPS ``z``), which gives the familiar
axial "angiographic" overview of both breasts whatever the storage order.

Geometry of the MIP (a 3-D image one voxel thick along the projected axis ``a`` of size ``n``):
spacing along ``a`` becomes ``n * spacing[a]`` (the slab the projection covers), direction is
unchanged, and the origin moves to the centre of the projected extent,
``origin + D[:, a] * spacing[a] * (n - 1) / 2``, so the slice lies in the middle of the volume and
its voxel covers the whole slab. ``SimpleITK.MaximumProjection`` gives the same spacing, but with
SimpleITK 2.5.7 / ITK 5.4 its output origin does not follow the input geometry (checked: no shift
for axis 1, a shift that ignores the direction for axis 2, and an origin about 1.07e9 mm away for
axis 0), so the projection is done with NumPy and the geometry set here.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from BreastAIAssistantLib.study import DCEStudy

#: LPS component of the superior-inferior axis.
_SI_COMPONENT = 2


def subtract(
    post_zyx: np.ndarray, pre_zyx: np.ndarray, out: np.ndarray | None = None
) -> np.ndarray:
    """Subtraction ``post - pre`` in float32.

    Args:
        post_zyx: Post-contrast signal, any shape.
        pre_zyx: Pre-contrast signal, same shape.
        out: Optional float32 output array of that shape (may be ``post_zyx`` itself when it is
            writable and float32, for an in-place subtraction).

    Returns:
        ``out`` (or a new float32 array) holding ``post - pre``.
    """
    if post_zyx.shape != pre_zyx.shape:
        raise ValueError(f"shape mismatch: post {post_zyx.shape} vs pre {pre_zyx.shape}")
    return np.subtract(post_zyx, pre_zyx, out=out, dtype=np.float32)


def subtraction_image(study: DCEStudy, k: int) -> sitk.Image:
    """Subtraction of post-contrast phase ``k`` (``1..N``) as an image on the study grid."""
    if not 1 <= k < study.n_phases:
        raise ValueError(f"phase {k} is not a post-contrast phase (1..{study.n_phases - 1})")
    return study.image_like(subtract(study.phase_zyx(k), study.phase_zyx(0)))


def superior_inferior_axis(image: sitk.Image) -> int:
    """Index axis (SimpleITK order: 0 = i/x, 1 = j/y, 2 = k/z) closest to patient S-I.

    It is the column of the direction matrix with the largest absolute LPS ``z`` component; on a
    tie the lower axis wins.
    """
    direction = np.asarray(image.GetDirection(), dtype=float).reshape(3, 3)
    return int(np.argmax(np.abs(direction[_SI_COMPONENT, :])))


def mip_array(array_zyx: np.ndarray, axis: int) -> np.ndarray:
    """Maximum along SimpleITK index ``axis`` of a ``(z, y, x)`` array, keeping a size-1 axis."""
    return np.max(array_zyx, axis=2 - axis, keepdims=True)


def mip_geometry(image: sitk.Image, axis: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Origin and spacing of the one-voxel-thick MIP of ``image`` along index ``axis``.

    Returns:
        ``(origin, spacing)`` in LPS millimetres; direction is the input's.
    """
    n = image.GetSize()[axis]
    spacing = list(image.GetSpacing())
    direction = np.asarray(image.GetDirection(), dtype=float).reshape(3, 3)
    origin = np.asarray(image.GetOrigin(), dtype=float)
    origin = origin + direction[:, axis] * spacing[axis] * (n - 1) / 2.0
    spacing[axis] = spacing[axis] * n
    return tuple(float(o) for o in origin), tuple(float(s) for s in spacing)


def maximum_intensity_projection(
    image: sitk.Image, axis: int | None = None, array_zyx: np.ndarray | None = None
) -> sitk.Image:
    """MIP of a 3-D image as a one-voxel-thick 3-D image with consistent geometry.

    Args:
        image: The (subtraction) image; gives the geometry (and the voxels unless ``array_zyx``).
        axis: SimpleITK index axis to project along (0, 1 or 2); ``None`` = the axis closest to
            patient superior-inferior (:func:`superior_inferior_axis`).
        array_zyx: The image's voxels when the caller already holds them (saves a view).

    Returns:
        An image of size 1 along ``axis``, same pixel type, geometry as in the module docstring.

    Raises:
        ValueError: ``axis`` not in 0..2, a non-3-D image, or an array of the wrong shape.
    """
    if image.GetDimension() != 3:
        raise ValueError(f"MIP needs a 3-D image, got {image.GetDimension()}-D")
    if axis is None:
        axis = superior_inferior_axis(image)
    if axis not in (0, 1, 2):
        raise ValueError(f"axis must be 0, 1 or 2 (SimpleITK index order), got {axis}")
    voxels = sitk.GetArrayViewFromImage(image) if array_zyx is None else array_zyx
    if voxels.shape != image.GetSize()[::-1]:
        raise ValueError(f"array shape {voxels.shape} does not match the image")
    projected = sitk.GetImageFromArray(mip_array(voxels, axis))
    origin, spacing = mip_geometry(image, axis)
    projected.SetOrigin(origin)
    projected.SetSpacing(spacing)
    projected.SetDirection(image.GetDirection())
    return projected
