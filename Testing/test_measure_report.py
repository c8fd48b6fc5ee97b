"""measure_lesions: skin and chest-wall distances, possible-T4 flags, registry NaNs, bad masks."""

from __future__ import annotations

import json
import logging
import math

import numpy as np
import pytest
import SimpleITK as sitk

from BreastAIAssistantLib.measure import (
    MEASUREMENTS,
    MaskError,
    Measurement,
    describe_measurements,
    measure_lesions,
)
from BreastAIAssistantLib.measure.report import FLAG_CHEST_WALL, FLAG_SKIN

from conftest import OBLIQUE, make_image

SPACING = (0.8, 0.7, 2.0)  # x, y, z; y runs anterior -> posterior with these directions
DIAGONAL = math.sqrt(0.8**2 + 0.7**2 + 2.0**2)
AXIAL = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
Y_FLIPPED = (1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 1.0)


def slab_breast_and_lesion(y_first: int, y_last: int, direction=AXIAL):
    """A slab of breast from y = 5 to 24 (indices) and a lesion of 6 x 3 voxels (x, z) at
    y_first..y_last (at least 0.08 ml, above the default minimum volume)."""
    breast = np.zeros((12, 30, 40), dtype=np.uint8)
    breast[1:11, 5:25, 2:38] = 1
    lesion = np.zeros_like(breast)
    lesion[4:7, y_first : y_last + 1, 10:16] = 1
    return (
        make_image(lesion, spacing=SPACING, direction=direction),
        make_image(breast, spacing=SPACING, direction=direction),
    )


@pytest.mark.parametrize("direction", [AXIAL, OBLIQUE])
def test_distances_along_anterior_posterior_lines(direction):
    lesion, breast = slab_breast_and_lesion(9, 12, direction)
    values = measure_lesions(lesion, breast).lesions[0]
    assert values["distance_to_skin_mm"] == pytest.approx((9 - 5) * 0.7)
    assert values["distance_to_chest_wall_mm"] == pytest.approx((24 - 12) * 0.7)
    assert values["fraction_in_breast"] == 1.0
    assert not [f for f in values.flags if "T4" in f]


def test_direction_decides_which_end_is_skin():
    """With the y axis pointing anterior, index 24 is the skin and index 5 the chest wall."""
    lesion, breast = slab_breast_and_lesion(9, 12, Y_FLIPPED)
    values = measure_lesions(lesion, breast).lesions[0]
    assert values["distance_to_skin_mm"] == pytest.approx((24 - 12) * 0.7)
    assert values["distance_to_chest_wall_mm"] == pytest.approx((9 - 5) * 0.7)


@pytest.mark.parametrize(
    ("y_first", "y_last", "flag"),
    [(5, 8, FLAG_SKIN), (6, 9, FLAG_SKIN), (18, 23, FLAG_CHEST_WALL), (20, 26, FLAG_CHEST_WALL)],
)
def test_touching_lesions_are_possible_t4_never_t4(y_first, y_last, flag):
    lesion, breast = slab_breast_and_lesion(y_first, y_last)
    report = measure_lesions(lesion, breast)
    assert flag in report.lesions[0].flags
    assert any(f.startswith(flag) for f in report.flags)
    assert "T4" not in (report.t_stage or "")


def test_lateral_skin_of_a_dome_counts_as_skin():
    """A prone breast dome: a lesion near its lateral side is near skin, far from the tip."""
    z, y, x = np.indices((20, 40, 60)).astype(float)
    dome = ((x - 30) / 25) ** 2 + ((y - 35) / 30) ** 2 + ((z - 10) / 8) ** 2 <= 1
    dome &= y <= 35  # chest wall plane at y = 35, the dome bulges anteriorly (smaller y)
    lesion = np.zeros(dome.shape, dtype=np.uint8)
    lesion[10, 30, 8] = 1  # near the lateral side (x ~ 5.4 at y = 30), 5 voxels from the wall
    spacing = (1.0, 1.0, 1.0)
    report = measure_lesions(
        make_image(lesion, spacing=spacing, direction=AXIAL),
        make_image(dome.astype(np.uint8), spacing=spacing, direction=AXIAL),
        mode="labels",  # one voxel: below the binary grouping's minimum volume
    )
    values = report.lesions[0]
    # the A-P lines at x = 6, z = 9 and 11 enter the dome at y = 28: offsets (2, 2, 1) voxels
    assert values["distance_to_skin_mm"] == pytest.approx(3.0)
    assert values["distance_to_chest_wall_mm"] == pytest.approx(5.0)


def test_no_breast_mask_gives_nan_distances_and_no_flags():
    lesion, _ = slab_breast_and_lesion(5, 8)
    report = measure_lesions(lesion)
    values = report.lesions[0]
    assert math.isnan(values["distance_to_skin_mm"])
    assert not [f for f in values.flags if "T4" in f]
    data = report.to_dict()
    assert data["lesions"][0]["distance_to_skin_mm"] is None and data["breast_mask"] is False
    json.dumps(data, allow_nan=False)


def test_failing_measurement_gives_nan_and_a_log_line(monkeypatch, caplog):
    def broken(lesion, surfaces):
        raise RuntimeError("boom")

    monkeypatch.setitem(
        MEASUREMENTS, "axial_diameter_mm", Measurement("axial_diameter_mm", "mm", "x", broken)
    )
    monkeypatch.setitem(
        MEASUREMENTS, "centroid_lps_mm", Measurement("centroid_lps_mm", "mm", "x", broken, (3,))
    )
    lesion, _ = slab_breast_and_lesion(9, 12)
    with caplog.at_level(logging.WARNING):
        values = measure_lesions(lesion).lesions[0]
    assert math.isnan(values["axial_diameter_mm"])
    assert all(math.isnan(v) for v in values["centroid_lps_mm"])
    assert values["max_diameter_mm"] > 0
    assert "axial_diameter_mm failed: boom" in caplog.text


def test_registry_entries_are_documented():
    entries = describe_measurements()
    assert {e["name"] for e in entries} >= {
        "volume_ml",
        "max_diameter_mm",
        "endpoints_lps_mm",
        "axial_diameter_mm",
        "perpendicular_diameters_mm",
        "centroid_lps_mm",
        "distance_to_skin_mm",
        "distance_to_chest_wall_mm",
    }
    assert all(e["unit"] and len(e["description"]) > 20 for e in entries)


def _vector_image():
    return sitk.Compose([make_image(np.ones((3, 3, 3)))] * 2)


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (lambda: make_image(np.full((4, 4, 4), 0.37)), "not a mask: it holds non-integer"),
        (lambda: make_image(np.zeros((4, 4, 4))), "is empty"),
        (lambda: make_image(-np.ones((4, 4, 4))), "negative values"),
        (lambda: sitk.Image(5, 5, sitk.sitkUInt8) + 1, "is 2-D"),
        (_vector_image, "components per voxel"),
    ],
)
def test_bad_lesion_masks(image, message):
    with pytest.raises(MaskError, match=message):
        measure_lesions(image())


def test_bad_breast_masks():
    lesion, breast = slab_breast_and_lesion(9, 12)
    other = sitk.Resample(
        breast,
        [20, 15, 6],
        sitk.Transform(),
        sitk.sitkNearestNeighbor,
        breast.GetOrigin(),
        [1.6, 1.4, 4.0],
        breast.GetDirection(),
    )
    with pytest.raises(MaskError, match="another grid"):
        measure_lesions(lesion, other)
    with pytest.raises(MaskError, match="breast mask is empty"):
        measure_lesions(lesion, breast * 0)


def test_empty_mask_allowed_for_pipelines():
    report = measure_lesions(make_image(np.zeros((4, 4, 4))), allow_empty=True)
    assert report.lesions == () and report.t_stage is None
    assert report.flags == ("no lesion to measure",)
