"""AJCC 8th edition T categories: boundaries, ranges, the "(m)" suffix, and on real voxel lines."""

from __future__ import annotations

import math

import numpy as np
import pytest

from BreastAIAssistantLib.measure import (
    measure_lesions,
    overall_t_stage,
    t_category,
    t_category_range,
)

from conftest import make_image


@pytest.mark.parametrize(
    ("diameter_mm", "expected"),
    [
        (0.0, "T1mi"),
        (1.0, "T1mi"),
        (1.01, "T1a"),
        (5.0, "T1a"),
        (5.01, "T1b"),
        (10.0, "T1b"),
        (10.01, "T1c"),
        (20.0, "T1c"),
        (math.sqrt(400.00000000000006), "T1c"),  # floating-point noise above 20
        (20.01, "T2"),
        (50.0, "T2"),
        (50.01, "T3"),
        (138.8, "T3"),
        (math.nan, None),
    ],
)
def test_ajcc_boundaries(diameter_mm, expected):
    assert t_category(diameter_mm) == expected


def test_negative_diameter_is_a_bug():
    with pytest.raises(ValueError, match="negative"):
        t_category(-1.0)


@pytest.mark.parametrize(
    ("diameter_mm", "uncertainty_mm", "expected"),
    [
        (15.0, 1.0, ("T1c", "T1c")),
        (19.5, 1.0, ("T1c", "T2")),
        (20.5, 1.0, ("T1c", "T2")),
        (0.5, 1.7, ("T1mi", "T1a")),
        (60.0, 1.8, ("T3", "T3")),
        (math.nan, 1.0, None),
    ],
)
def test_category_range(diameter_mm, uncertainty_mm, expected):
    assert t_category_range(diameter_mm, uncertainty_mm) == expected


def test_overall_stage_uses_the_largest_lesion_and_marks_multiple():
    assert overall_t_stage([12.0]) == "T1c"
    assert overall_t_stage([12.0, 31.0, 4.0]) == "T2(m)"
    assert overall_t_stage([math.nan, 8.0]) == "T1b(m)"
    assert overall_t_stage([]) is None


@pytest.mark.parametrize(("voxels", "expected"), [(21, "T1c"), (22, "T2")])
def test_voxel_line_at_the_t1c_t2_boundary(voxels, expected):
    """A row of voxels at 1 mm: 21 voxel centres span exactly 20.0 mm (T1c), 22 span 21 mm."""
    array = np.zeros((3, 3, 30), dtype=np.uint8)
    array[1, 1, 2 : 2 + voxels] = 1
    report = measure_lesions(make_image(array, spacing=(1.0, 1.0, 1.0)), mode="labels")
    lesion = report.lesions[0]
    assert lesion["max_diameter_mm"] == pytest.approx(voxels - 1.0)
    assert lesion.t_category == expected and report.t_stage == expected
    assert lesion.t_category_range == ("T1c", "T2")
    assert any(f.startswith("near a T boundary (T1c-T2") for f in lesion.flags)
    assert any(f.startswith("near a T boundary") for f in report.flags)
