"""dce.enhancement: PE, SER, peak enhancement, time to peak, wash-in, washout, S0 floor.

Every expected value below is worked out by hand in the comments.
"""

from __future__ import annotations

import numpy as np
import pytest

from BreastAIAssistantLib.dce.enhancement import (
    peak_kinetics,
    percent_enhancement,
    s0_floor,
    signal_enhancement_ratio,
    wash_in_slope,
)

F = np.float32


def vox(*values: float) -> np.ndarray:
    """A 1 x 1 x n float32 volume."""
    return np.asarray(values, F).reshape(1, 1, -1)


@pytest.mark.parametrize(
    ("s0", "s_post", "floor", "expected"),
    [
        (100, 150, 10, 50.0),  # 100 * 50 / 100
        (200, 260, 10, 30.0),  # 100 * 60 / 200
        (50, 40, 10, -20.0),  # signal drop: negative PE is kept
        (50, 50, 10, 0.0),
        (9.99, 30, 10, 0.0),  # S0 below the floor -> 0 (guard)
        (10, 30, 10, 200.0),  # at the floor: valid
        (0, 5, 0, 0.0),  # S0 = 0 is never valid, even with a zero floor
        (-3, 5, 0, 0.0),
    ],
)
def test_percent_enhancement_by_hand(s0, s_post, floor, expected):
    pe = percent_enhancement(vox(s0), vox(s_post), floor=floor)
    assert pe.dtype == np.float32
    assert float(pe[0, 0, 0]) == pytest.approx(expected, rel=1e-6)
    assert np.isfinite(pe).all()


def test_percent_enhancement_default_floor_is_relative():
    # 99th percentile of (1, 100, 100) = 100 -> floor 5 %: S0 = 1 is guarded, no infinity
    pe = percent_enhancement(vox(1, 100, 100), vox(50, 150, 100))
    np.testing.assert_allclose(pe, vox(0, 50, 0))


@pytest.mark.parametrize(
    ("values", "kwargs", "expected"),
    [
        (np.arange(1, 101), {}, 0.05 * 99.01),  # P99 of 1..100 (linear) = 99.01
        (np.arange(1, 101), {"fraction": 0.1, "percentile": 50}, 0.1 * 50.5),
        (np.arange(1, 101), {"absolute": 7.0}, 7.0),
        (np.zeros(10), {}, 0.0),
    ],
)
def test_s0_floor(values, kwargs, expected):
    assert s0_floor(np.asarray(values, F), **kwargs) == pytest.approx(expected, rel=1e-5)


def test_s0_floor_subsamples_large_volumes():
    values = np.arange(4_000_000, dtype=F)
    # every 3rd voxel (4e6 // 2**20 = 3, odd) -> P99 of the subsample ~ P99 of all
    assert s0_floor(values) == pytest.approx(0.05 * 0.99 * 4e6, rel=1e-3)
    with pytest.raises(ValueError, match="percentile"):
        s0_floor(values, percentile=0)


@pytest.mark.parametrize(
    ("s0", "s_early", "s_late", "clip", "expected"),
    [
        (100, 150, 130, None, 50 / 30),  # washout-like SER > 1
        (200, 260, 290, None, 60 / 90),  # persistent-like SER < 1
        (100, 150, 150, None, 1.0),
        (50, 50, 40, None, 0.0),  # late enhancement < 0: undefined -> 0
        (50, 60, 50, None, 0.0),  # late enhancement = 0: undefined -> 0
        (100, 90, 120, None, 0.0),  # negative ratio -> 0
        (5, 50, 40, None, 0.0),  # S0 below the floor (10) -> 0
        (100, 200, 101, None, 100.0),  # noise-sized denominator
        (100, 200, 101, 3.0, 3.0),  # ... clipped
        (100, 150, 130, 1.5, 1.5),
    ],
)
def test_ser_by_hand(s0, s_early, s_late, clip, expected):
    ser = signal_enhancement_ratio(vox(s0), vox(s_early), vox(s_late), floor=10, clip_max=clip)
    assert ser.dtype == np.float32
    assert float(ser[0, 0, 0]) == pytest.approx(expected, rel=1e-6)


# Voxels (S0 = 100 unless noted) over 5 post phases at 60, 120, ..., 300 s:
#   A washout:    250 300 280 260 240 -> peak +200 at phase 2 (120 s); 60*200/120 = 100 %/min;
#                 washout 100 * (300 - 240) / 300 = 20 %
#   B persistent: 110 120 130 140 150 -> peak +50 at phase 5 (300 s); 60*50/300 = 10 %/min; 0 %
#   C tie:        150 150 120 120 120 -> peak +50 first reached at phase 1 (60 s); 50 %/min;
#                 washout 100 * (150 - 120) / 150 = 20 %
#   D no rise:     90  95  80  85  90 -> peak -5 %; TTP, wash-in, washout 0
#   E S0 = 1 (below floor 10): all 0
S0 = vox(100, 100, 100, 100, 1)
POSTS = [
    vox(250, 110, 150, 90, 50),
    vox(300, 120, 150, 95, 60),
    vox(280, 130, 120, 80, 70),
    vox(260, 140, 120, 85, 80),
    vox(240, 150, 120, 90, 90),
]
TIMES = [0, 60, 120, 180, 240, 300]


@pytest.mark.parametrize(
    ("times", "name", "expected"),
    [
        (TIMES, "peak_enhancement", [200, 50, 50, -5, 0]),
        (TIMES, "time_to_peak", [120, 300, 60, 0, 0]),
        (TIMES, "wash_in", [100, 10, 50, 0, 0]),
        (TIMES, "washout", [20, 0, 20, 0, 0]),
        # without times: time to peak is the phase index, wash-in is %/phase
        (None, "time_to_peak", [2, 5, 1, 0, 0]),
        (None, "wash_in", [100, 10, 50, 0, 0]),
        (None, "washout", [20, 0, 20, 0, 0]),
    ],
)
def test_peak_kinetics_by_hand(times, name, expected):
    maps = peak_kinetics(S0, POSTS, times_s=times, floor=10)
    assert maps[name].dtype == np.float32
    np.testing.assert_allclose(maps[name].ravel(), expected, rtol=1e-6, atol=1e-6)


def test_peak_kinetics_argument_checks():
    with pytest.raises(ValueError, match="at least one post-contrast"):
        peak_kinetics(S0, [])
    with pytest.raises(ValueError, match="need 6 times"):
        peak_kinetics(S0, POSTS, times_s=[0, 60])


@pytest.mark.parametrize(
    ("peak", "ttp", "per_minute", "expected"),
    [
        (100, 120, True, 50.0),  # 60 * 100 / 120
        (100, 2, False, 50.0),  # %/phase
        (80, 0, True, 0.0),  # no time to peak -> 0
        (-10, 60, True, -10.0),
    ],
)
def test_wash_in_slope_by_hand(peak, ttp, per_minute, expected):
    out = wash_in_slope(vox(peak), vox(ttp), per_minute=per_minute)
    assert float(out[0, 0, 0]) == pytest.approx(expected)
