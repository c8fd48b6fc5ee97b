"""dce.timing: early/late phase choice from presets, times and explicit indices."""

from __future__ import annotations

import logging

import pytest

from BreastAIAssistantLib import BreastAIError
from BreastAIAssistantLib.dce.timing import (
    TIMING_PRESETS,
    PhaseSelectionError,
    TimingPreset,
    get_preset,
    select_phases,
)

EVERY_MINUTE = [0, 60, 120, 180, 240, 300, 360, 420, 480]  # 9 phases
EVERY_75_S = [0, 75, 150, 225, 300, 375, 450]  # 7 phases


@pytest.mark.parametrize(
    ("times", "preset", "expected"),
    [
        # 90 s is equidistant from 60 s and 120 s: ties go to the earlier phase
        (EVERY_MINUTE, "default", (1, 8)),
        # 150 s ties 120/180 -> phase 2; 450 s ties 420/480 -> phase 7
        (EVERY_MINUTE, "ispy", (2, 7)),
        (EVERY_75_S, "default", (1, 6)),  # 75 s nearest 90 s; late = last
        (EVERY_75_S, "ispy", (2, 6)),  # 150 s and 450 s exactly
        ([1000, 1090, 1180, 1270], "default", (1, 3)),  # absolute clock is shifted to 0
        ([0, 400, 500], "ispy", (1, 2)),  # early searched in 1..N-1, late after it
        ([0, 30, 60], "ispy", (1, 2)),  # early target past the end still leaves a late phase
        (None, "default", (1, 5)),
        (None, "ispy", (1, 5)),
    ],
)
def test_presets_pick_expected_phases(times, preset, expected):
    n = len(times) if times is not None else 6
    choice = select_phases(times, n, preset)
    assert (choice.early, choice.late) == expected
    assert choice.reason


def test_unknown_times_are_logged(caplog):
    with caplog.at_level(logging.INFO, logger="BreastAIAssistantLib.dce.timing"):
        choice = select_phases(None, 4)
    assert (choice.early, choice.late) == (1, 3)
    assert "unknown" in choice.reason
    assert "acquisition times unknown" in caplog.text


@pytest.mark.parametrize("times", [None, [0, 120]])
def test_two_phases_use_the_only_post_phase_twice(times):
    choice = select_phases(times, 2, "ispy")
    assert (choice.early, choice.late) == (1, 1)
    assert select_phases(times, 2, early=1, late=1).early == 1


@pytest.mark.parametrize(
    ("early", "late", "expected"),
    [(2, 4, (2, 4)), (3, None, (3, 7)), (None, 3, (2, 3)), (1, 2, (1, 2))],
)
def test_explicit_indices_override_preset(early, late, expected):
    choice = select_phases(EVERY_MINUTE, 9, "ispy", early=early, late=late)
    assert (choice.early, choice.late) == expected
    if early is not None:
        assert "given" in choice.reason


def test_custom_preset_object():
    preset = TimingPreset("mine", early_s=240.0, late_s=None, description="test")
    assert (select_phases(EVERY_MINUTE, 9, preset).early, get_preset(preset)) == (4, preset)
    assert set(TIMING_PRESETS) >= {"default", "ispy"}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"preset": "fast"}, r"unknown timing preset 'fast'; choose one of: default, ispy"),
        ({"early": 0}, r"early phase index 0 is out of range: post-contrast phases are 1\.\.8"),
        ({"late": 9}, r"late phase index 9 is out of range"),
        ({"early": 3, "late": 2}, r"early phase \(3\) must come before the late phase \(2\)"),
        ({"early": 4, "late": 4}, r"must come before"),
        ({"early": 8}, r"early phase \(8\) must come before the late phase \(8\)"),
    ],
)
def test_errors_have_clear_messages(kwargs, message):
    with pytest.raises(PhaseSelectionError, match=message):
        select_phases(EVERY_MINUTE, 9, **kwargs)


def test_count_errors():
    with pytest.raises(PhaseSelectionError, match=r"at least one post-contrast phase, got 1"):
        select_phases(None, 1)
    with pytest.raises(PhaseSelectionError, match=r"got 3 acquisition time\(s\) for 4 phases"):
        select_phases([0, 60, 120], 4)
    assert issubclass(PhaseSelectionError, BreastAIError)
