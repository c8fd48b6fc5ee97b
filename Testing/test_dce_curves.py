"""dce.curves: BI-RADS curve type per voxel and of a mean curve, around the ±10 % boundaries."""

from __future__ import annotations

import numpy as np
import pytest

from BreastAIAssistantLib.dce.curves import (
    CURVE_TYPE_LABELS,
    CurveType,
    classify_curve,
    curve_type_map,
)

NA, PERSISTENT, PLATEAU, WASHOUT = (int(c) for c in CurveType)


def vox(value: float) -> np.ndarray:
    return np.full((1, 1, 1), value, np.float32)


@pytest.mark.parametrize(
    ("s0", "s_early", "s_late", "kwargs", "expected"),
    [
        # S0 = 100, S_early = 200 (PE 100 %); change = (S_late - 200) / 200
        (100, 200, 220, {}, PLATEAU),  # +10.0 % exactly: the boundary is plateau
        (100, 200, 221, {}, PERSISTENT),  # +10.5 %
        (100, 200, 250, {}, PERSISTENT),  # +25 %
        (100, 200, 200, {}, PLATEAU),  # 0 %
        (100, 200, 180, {}, PLATEAU),  # -10.0 % exactly: plateau
        (100, 200, 179, {}, WASHOUT),  # -10.5 %
        (100, 200, 120, {}, WASHOUT),  # -40 %
        # initial enhancement threshold (default PE >= 50 %)
        (100, 150, 150, {}, PLATEAU),  # PE exactly 50 %: assessed
        (100, 149, 180, {}, NA),  # PE 49 %: not assessed
        (100, 149, 180, {"min_enhancement_pct": 40}, PERSISTENT),  # +20.8 %
        # other tolerance: ±20 %
        (100, 200, 239, {"tolerance": 0.2}, PLATEAU),
        (100, 200, 240, {"tolerance": 0.2}, PLATEAU),
        (100, 200, 241, {"tolerance": 0.2}, PERSISTENT),
        (100, 200, 159, {"tolerance": 0.2}, WASHOUT),
        # S0 guard (floor 10)
        (5, 50, 50, {}, NA),
        (0, 50, 50, {}, NA),
    ],
)
def test_curve_type_map_by_hand(s0, s_early, s_late, kwargs, expected):
    labels = curve_type_map(vox(s0), vox(s_early), vox(s_late), floor=10, **kwargs)
    assert labels.dtype == np.uint8
    assert int(labels[0, 0, 0]) == expected


def test_curve_type_map_on_a_volume():
    s0 = np.full((2, 2, 2), 100, np.float32)
    s_early = np.full((2, 2, 2), 200, np.float32)
    s_late = np.array([[[230, 220], [200, 180]], [[170, 100], [300, 210]]], np.float32)
    s_early[1, 1, 1] = 110  # PE 10 %: not assessed
    labels = curve_type_map(s0, s_early, s_late, floor=10)
    expected = [[[1, 2], [2, 2]], [[3, 3], [1, 0]]]
    np.testing.assert_array_equal(labels, expected)


@pytest.mark.parametrize(
    ("curve", "early", "late", "expected"),
    [
        ([100, 200, 215, 220], 1, 3, CurveType.PLATEAU),  # +10 %
        ([100, 200, 230, 250], 1, 3, CurveType.PERSISTENT),  # +25 %
        ([100, 250, 230, 200], 1, 3, CurveType.WASHOUT),  # -20 %
        ([100, 250, 230, 200], 1, 2, CurveType.PLATEAU),  # -8 % to phase 2
        ([100, 120, 150, 200], 1, 3, CurveType.NOT_ASSESSED),  # PE 20 %
        ([0, 10, 20], 1, 2, CurveType.NOT_ASSESSED),  # no baseline signal
        ([100, 300], 1, 1, CurveType.PLATEAU),  # one post phase: change 0
    ],
)
def test_classify_mean_curve(curve, early, late, expected):
    assert classify_curve(np.asarray(curve, np.float64), early, late) is expected


def test_classify_curve_argument_checks():
    with pytest.raises(ValueError, match="at least 2 phases"):
        classify_curve([100], 1, 1)
    with pytest.raises(ValueError, match=r"late index 4 outside 1\.\.3"):
        classify_curve([100, 200, 210, 220], 1, 4)
    with pytest.raises(ValueError, match="min_enhancement_pct must be > 0"):
        classify_curve([100, 200, 210], 1, 2, min_enhancement_pct=0)
    with pytest.raises(ValueError, match="tolerance"):
        classify_curve([100, 200, 210], 1, 2, tolerance=1.5)


def test_labels_for_display():
    assert sorted(CURVE_TYPE_LABELS) == [0, 1, 2, 3]
    assert [CURVE_TYPE_LABELS[k]["name"] for k in range(4)] == [
        "not assessed",
        "persistent",
        "plateau",
        "washout",
    ]
    for entry in CURVE_TYPE_LABELS.values():
        color = entry["color"]
        assert len(color) == 3 and all(0 <= c <= 255 for c in color)
