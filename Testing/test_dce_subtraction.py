"""dce.subtraction: subtraction images and the MIP with its axis choice and geometry."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from BreastAIAssistantLib import DCEStudy
from BreastAIAssistantLib.dce.subtraction import (
    maximum_intensity_projection,
    mip_geometry,
    subtract,
    subtraction_image,
    superior_inferior_axis,
)

from conftest import OBLIQUE, make_image

IDENTITY = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
# index i -> patient S (LPS z), j -> L (x), k -> P (y); row-major, columns are the axes
I_IS_SUPERIOR = (0.0, 1.0, 0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0)
# index j -> patient I (-z): a flipped S-I axis still counts
J_IS_INFERIOR = (1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, -1.0, 0.0)

# (z, y, x) = (2, 2, 3)
VOLUME = np.array(
    [[[1, 9, 2], [4, 0, 6]], [[7, 3, 5], [2, 8, 1]]],
    dtype=np.float32,
)


@pytest.mark.parametrize(
    ("post", "pre", "expected"),
    [
        ([10.0, 20.0, 0.0], [4.0, 25.0, 0.0], [6.0, -5.0, 0.0]),  # negatives are kept
        ([[1000.0]], [[999.5]], [[0.5]]),
    ],
)
def test_subtract_by_hand(post, pre, expected):
    out = subtract(np.asarray(post, np.float32), np.asarray(pre, np.float32))
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, np.asarray(expected, np.float32))


def test_subtract_in_place_and_shape_check():
    post = np.array([5.0, 7.0], np.float32)
    subtract(post, np.array([1.0, 2.0], np.float32), out=post)
    np.testing.assert_array_equal(post, [4.0, 5.0])
    with pytest.raises(ValueError, match="shape mismatch"):
        subtract(np.zeros(3, np.float32), np.zeros(2, np.float32))


def test_subtraction_image_keeps_geometry():
    study = DCEStudy.from_images([make_image(VOLUME), make_image(VOLUME * 3)])
    sub = subtraction_image(study, 1)
    np.testing.assert_array_equal(sitk.GetArrayViewFromImage(sub), VOLUME * 2)
    assert sub.GetOrigin() == study.reference.GetOrigin()
    assert sub.GetDirection() == study.reference.GetDirection()
    with pytest.raises(ValueError, match="not a post-contrast phase"):
        subtraction_image(study, 0)


@pytest.mark.parametrize(
    ("direction", "axis"),
    [(IDENTITY, 2), (I_IS_SUPERIOR, 0), (J_IS_INFERIOR, 1), (OBLIQUE, 2)],
)
def test_superior_inferior_axis(direction, axis):
    assert superior_inferior_axis(make_image(VOLUME, direction=direction)) == axis


@pytest.mark.parametrize(
    ("axis", "expected_zyx"),
    [
        (2, [[[7, 9, 5], [4, 8, 6]]]),  # over z
        (1, [[[4, 9, 6]], [[7, 8, 5]]]),  # over y
        (0, [[[9], [6]], [[7], [8]]]),  # over x
    ],
)
def test_mip_values_by_hand(axis, expected_zyx):
    mip = maximum_intensity_projection(make_image(VOLUME, direction=IDENTITY), axis)
    size = list(VOLUME.shape[::-1])
    size[axis] = 1
    assert list(mip.GetSize()) == size
    np.testing.assert_array_equal(sitk.GetArrayViewFromImage(mip), expected_zyx)


@pytest.mark.parametrize(
    ("direction", "expected_axis", "origin", "spacing"),
    [
        # identity: project over k (z, 2 slices of 3 mm) -> origin z + 3 * (2 - 1) / 2
        (IDENTITY, 2, (10.0, 20.0, 31.5), (1.0, 2.0, 6.0)),
        # i points superior: project over i (3 voxels of 1 mm) -> origin + (0, 0, 1) * 1
        (I_IS_SUPERIOR, 0, (10.0, 20.0, 31.0), (3.0, 2.0, 3.0)),
        # j points inferior: project over j (2 voxels of 2 mm) -> origin + (0, 0, -1) * 1
        (J_IS_INFERIOR, 1, (10.0, 20.0, 29.0), (1.0, 4.0, 3.0)),
    ],
)
def test_mip_default_axis_and_geometry(direction, expected_axis, origin, spacing):
    image = make_image(VOLUME, spacing=(1.0, 2.0, 3.0), origin=(10, 20, 30), direction=direction)
    mip = maximum_intensity_projection(image)
    assert mip.GetSize()[expected_axis] == 1
    np.testing.assert_allclose(mip.GetOrigin(), origin, atol=1e-9)
    np.testing.assert_allclose(mip.GetSpacing(), spacing)
    assert mip.GetDirection() == image.GetDirection()
    np.testing.assert_array_equal(
        sitk.GetArrayViewFromImage(mip), VOLUME.max(axis=2 - expected_axis, keepdims=True)
    )


def test_mip_slice_sits_mid_volume_on_an_oblique_grid():
    image = make_image(VOLUME)  # oblique, anisotropic, off-origin
    axis = superior_inferior_axis(image)
    mip = maximum_intensity_projection(image)
    first = [0, 0, 0]
    last = [0, 0, 0]
    last[axis] = image.GetSize()[axis] - 1
    middle = (
        np.add(
            image.TransformIndexToPhysicalPoint(first), image.TransformIndexToPhysicalPoint(last)
        )
        / 2
    )
    np.testing.assert_allclose(mip.TransformIndexToPhysicalPoint((0, 0, 0)), middle, atol=1e-9)
    origin, spacing = mip_geometry(image, axis)
    assert mip.GetOrigin() == pytest.approx(origin)
    assert spacing[axis] == pytest.approx(image.GetSpacing()[axis] * image.GetSize()[axis])


def test_mip_rejects_bad_axis_and_shapes():
    image = make_image(VOLUME)
    with pytest.raises(ValueError, match="axis must be 0, 1 or 2"):
        maximum_intensity_projection(image, 3)
    with pytest.raises(ValueError, match="does not match the image"):
        maximum_intensity_projection(image, 2, array_zyx=np.zeros((2, 2, 2), np.float32))
    with pytest.raises(ValueError, match="needs a 3-D image"):
        maximum_intensity_projection(sitk.Image([3, 3], sitk.sitkFloat32))
