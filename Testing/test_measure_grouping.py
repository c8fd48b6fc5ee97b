"""Lesion grouping on toy masks: gap merging (box-to-box), dropped fragments, instance labels."""

from __future__ import annotations

import numpy as np
import pytest

from BreastAIAssistantLib.measure import GroupingSettings, group_lesions, measure_lesions

from conftest import make_image


def two_blobs(empty_voxels: int, axis: int = 2) -> np.ndarray:
    """Two 6-voxel cubes along one array axis with ``empty_voxels`` empty voxels between."""
    shape = [12, 12, 12]
    shape[axis] = 6 + empty_voxels + 6 + 4
    array = np.zeros(shape, dtype=np.uint8)
    first = [slice(3, 9)] * 3
    second = [slice(3, 9)] * 3
    first[axis] = slice(2, 8)
    second[axis] = slice(8 + empty_voxels, 14 + empty_voxels)
    array[tuple(first)] = 1
    array[tuple(second)] = 1
    return array


@pytest.mark.parametrize(("gap_mm", "lesions"), [(3.0, 1), (2.0, 1), (1.9, 2), (1.0, 2), (0, 2)])
def test_two_blobs_2mm_apart(gap_mm, lesions):
    """Two empty 1 mm voxels between the blobs: a 2 mm gap merges with gap >= 2 mm only."""
    array = two_blobs(2)
    found = group_lesions(array, np.ones(3), GroupingSettings(gap_mm=gap_mm, min_volume_ml=0))
    assert found.n_lesions == lesions and found.n_components == 2
    assert found.components_per_lesion == ((2,) if lesions == 1 else (1, 1))


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_gap_is_measured_in_mm_on_anisotropic_grids(axis):
    """Spacing (z, y, x) = (2.0, 0.5, 1.0): one empty voxel is 2, 0.5 or 1 mm of gap."""
    spacing_zyx = np.array([2.0, 0.5, 1.0])
    gap = spacing_zyx[axis]
    array = two_blobs(1, axis)
    merged = group_lesions(array, spacing_zyx, GroupingSettings(gap_mm=gap, min_volume_ml=0))
    apart = group_lesions(array, spacing_zyx, GroupingSettings(gap_mm=gap - 0.01, min_volume_ml=0))
    assert (merged.n_lesions, apart.n_lesions) == (1, 2)


def test_diagonal_gap_is_box_to_box():
    """Voxels offset by (3, 3, 0) voxels have a box gap of hypot(2, 2) mm, not hypot(3, 3)."""
    array = np.zeros((5, 10, 10), dtype=np.uint8)
    array[2, 2, 2] = array[2, 5, 5] = 1
    for gap, expected in ((2.82, 2), (2.83, 1)):
        found = group_lesions(array, np.ones(3), GroupingSettings(gap_mm=gap, min_volume_ml=0))
        assert found.n_lesions == expected


def test_specks_are_dropped_counted_and_do_not_bridge():
    array = two_blobs(8)  # cubes 8 mm apart: separate lesions with gap 5 mm
    array[5, 5, 11] = 1  # a speck half-way: 3 and 4 mm from the cubes, but ignored
    array[0, 0, 0] = 1  # a far speck
    found = group_lesions(array, np.ones(3), GroupingSettings(gap_mm=5.0, min_volume_ml=0.065))
    assert found.n_lesions == 2 and found.n_components == 4
    assert found.fragments_ignored == 2
    assert found.fragments_ignored_volume_ml == pytest.approx(0.002)
    assert set(np.unique(found.labels_zyx)) == {0, 1, 2}
    assert found.labels_zyx[5, 5, 11] == 0


def test_lesions_are_numbered_by_decreasing_volume():
    array = np.zeros((10, 10, 30), dtype=np.uint8)
    array[2:5, 2:5, 2:5] = 1  # 27 voxels
    array[2:7, 2:7, 15:20] = 1  # 125 voxels
    found = group_lesions(array, np.ones(3), GroupingSettings(gap_mm=0, min_volume_ml=0))
    assert found.labels_zyx[3, 3, 16] == 1 and found.labels_zyx[3, 3, 3] == 2


def test_instance_labels_are_kept_as_given():
    """Labels 1 and 2 touch (one component) but stay two lesions; label 3 has two pieces."""
    array = np.zeros((6, 10, 30), dtype=np.uint8)
    array[2:4, 2:5, 2:5] = 1
    array[2:4, 2:5, 5:8] = 2
    array[2:4, 2:4, 15:17] = 3
    array[2:4, 2:4, 25:27] = 3
    report = measure_lesions(make_image(array, spacing=(1.0, 1.0, 1.0)))
    assert report.mode == "labels" and [r.id for r in report.lesions] == [1, 2, 3]
    assert report.lesions[2]["max_diameter_mm"] == pytest.approx(np.linalg.norm([11, 1, 1]))
    binary = measure_lesions(make_image(array, spacing=(1.0, 1.0, 1.0)), mode="binary")
    assert binary.mode == "binary" and binary.grouping["components"] == 3


def test_merge_below_joins_small_pieces_only():
    """Three cubes in a row, 2 mm apart: 216, 27 and 27 voxels (ml = voxels / 1000 at 1 mm).

    Without a volume limit all three are one lesion; with ``merge_below_ml`` = 0.1 the two small
    cubes join each other but not the large one beside them (a clumped non-mass region next to
    a mass stays two lesions), and with 0.02 none join.
    """
    array = np.zeros((12, 12, 40), dtype=np.uint8)
    array[3:9, 3:9, 2:8] = 1  # 216 voxels
    array[4:7, 4:7, 10:13] = 1  # 27 voxels, 2 empty voxels after the large cube
    array[4:7, 4:7, 15:18] = 1  # 27 voxels, 2 empty voxels after the first small one
    counts = {}
    for below in (None, 0.1, 0.02):
        rule = GroupingSettings(gap_mm=2.0, min_volume_ml=0, merge_below_ml=below)
        found = group_lesions(array, np.ones(3), rule)
        counts[below] = found.components_per_lesion
        if below == 0.1:
            assert found.labels_zyx[5, 5, 11] == found.labels_zyx[5, 5, 16] == 2
            assert found.labels_zyx[5, 5, 5] == 1
            assert "merge_below_ml" in found.summary()["rule"]
    assert counts == {None: (3,), 0.1: (1, 2), 0.02: (1, 1, 1)}


@pytest.mark.parametrize(
    "kwargs",
    [{"gap_mm": -1.0}, {"min_volume_ml": float("nan")}, {"connectivity": 8},
     {"merge_below_ml": 0.0}, {"merge_below_ml": float("inf")}],
)
def test_invalid_settings(kwargs):
    with pytest.raises(ValueError):
        GroupingSettings(**kwargs)
