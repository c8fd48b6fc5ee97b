"""DCEStudy: validation, resampling onto the pre-contrast grid, times, summaries."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import SimpleITK as sitk

from BreastAIAssistantLib import DCEStudy, StudyError
from BreastAIAssistantLib.study import orientation_code, overlap_fraction, same_grid

from conftest import OBLIQUE, make_image


def test_phases_are_float32_on_reference_grid(phase_images):
    int_phase = sitk.Cast(phase_images[1], sitk.sitkInt16)
    study = DCEStudy.from_images([phase_images[0], int_phase, *phase_images[2:]], [0, 60, 120, 180])
    assert study.n_phases == 4
    assert all(p.GetPixelID() == sitk.sitkFloat32 for p in study.phases)
    assert all(same_grid(p, study.reference) for p in study.phases)
    assert study.phase_zyx(1)[2, 3, 4] == pytest.approx(400.0)


@pytest.mark.parametrize(
    ("times", "expected"),
    [
        ([0, 90, 180, 270], (0.0, 90.0, 180.0, 270.0)),
        ([3600, 3690, 3780, 3870], (0.0, 90.0, 180.0, 270.0)),  # absolute clock -> relative
        (None, None),
    ],
)
def test_times_are_relative_to_pre_contrast(phase_images, times, expected):
    assert DCEStudy.from_images(phase_images, times).times_s == expected


@pytest.mark.parametrize(
    ("times", "message"),
    [
        ([0, 90, 180], "got 3 acquisition time"),
        ([0, 90, 90, 180], "must increase"),
        ([0, 90, float("nan"), 180], "finite"),
    ],
)
def test_bad_times(phase_images, times, message):
    with pytest.raises(StudyError, match=message):
        DCEStudy.from_images(phase_images, times)


def test_fewer_than_two_phases(phase_images):
    with pytest.raises(StudyError, match="at least 2 phases"):
        DCEStudy.from_images(phase_images[:1])


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_voxels_name_the_phase(bad):
    arrays = [np.ones((3, 4, 5), np.float32) for _ in range(3)]
    arrays[2][1, 1, 1] = bad
    with pytest.raises(StudyError, match=r"phase 2 \(late\.nii\) has 1 NaN or infinite"):
        DCEStudy.from_images(
            [make_image(a) for a in arrays], names=["pre.nii", "early.nii", "late.nii"]
        )


def test_non_overlapping_phase_is_an_error(phase_images):
    far = make_image(np.ones((5, 6, 7)), origin=(500.0, 500.0, 500.0))
    with pytest.raises(StudyError, match="phase 1 does not overlap the pre-contrast phase"):
        DCEStudy.from_images([phase_images[0], far])


def test_other_grid_is_resampled_linearly_with_a_log_line(caplog):
    """A phase on a 2x finer grid covering the same space lands on the pre-contrast grid."""
    ref = sitk.Image([10, 10, 4], sitk.sitkFloat32)
    ref.SetSpacing((2.0, 2.0, 3.0))
    ref.SetOrigin((5.0, -3.0, 7.0))
    ref.SetDirection(OBLIQUE)
    fine = sitk.Image([20, 20, 8], sitk.sitkFloat32)
    fine.SetSpacing((1.0, 1.0, 1.5))
    fine.SetDirection(OBLIQUE)
    # the fine grid's voxel centres are offset by half a fine voxel from the reference's corner
    corner = np.asarray(ref.TransformContinuousIndexToPhysicalPoint((-0.5, -0.5, -0.5)))
    fine.SetOrigin(tuple(corner + np.asarray(OBLIQUE).reshape(3, 3) @ np.array([0.5, 0.5, 0.75])))
    # a linear ramp along the fine x axis: resampling must reproduce it exactly inside
    ramp = np.broadcast_to(np.arange(20, dtype=np.float32), (8, 20, 20))
    fine_img = sitk.GetImageFromArray(np.ascontiguousarray(ramp))
    fine_img.CopyInformation(fine)
    with caplog.at_level(logging.INFO):
        study = DCEStudy.from_images([ref, fine_img], names=["pre", "fine"])
    assert "resampled linearly" in caplog.text
    assert same_grid(study.phases[1], ref)
    # reference x index i covers fine x indices 2i and 2i+1 -> value 2i + 0.5
    values = study.phase_zyx(1)[1:3, 1:9, 1:9]
    expected = 2 * np.arange(1, 9, dtype=np.float32) + 0.5
    np.testing.assert_allclose(values, np.broadcast_to(expected, values.shape), atol=1e-4)


def test_overlap_fraction_of_half_shifted_image():
    a = make_image(
        np.zeros((4, 4, 4)),
        spacing=(1, 1, 1),
        origin=(0, 0, 0),
        direction=(1, 0, 0, 0, 1, 0, 0, 0, 1),
    )
    b = make_image(
        np.zeros((4, 4, 4)),
        spacing=(1, 1, 1),
        origin=(2, 0, 0),
        direction=(1, 0, 0, 0, 1, 0, 0, 0, 1),
    )
    assert overlap_fraction(b, a) == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("direction", "code"),
    [
        ((1, 0, 0, 0, 1, 0, 0, 0, 1), "LPS"),
        ((-1, 0, 0, 0, -1, 0, 0, 0, 1), "RAS"),
        ((1, 0, 0, 0, 0, 1, 0, -1, 0), "LIP"),  # coronal
    ],
)
def test_orientation_code(direction, code):
    image = make_image(np.zeros((2, 2, 2)), direction=direction)
    assert orientation_code(image) == code


def test_describe_is_json_ready(phase_images):
    import json

    study = DCEStudy.from_images(phase_images, [0, 60, 120, 180], source="test")
    summary = json.loads(json.dumps(study.describe()))
    assert summary["n_phases"] == 4
    assert summary["size_xyz"] == [7, 6, 5]
    assert summary["oblique"] is True
    assert summary["origin_lps_mm"] == [-31.5, 12.25, 40.0]


def test_image_like_keeps_geometry(phase_images):
    study = DCEStudy.from_images(phase_images)
    image = study.image_like(np.zeros(study.size_xyz[::-1], np.uint8))
    assert same_grid(image, study.reference)
    with pytest.raises(ValueError, match="does not match the study grid"):
        study.image_like(np.zeros((1, 2, 3)))
