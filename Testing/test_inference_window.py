"""Sliding-window layer: window placement, skipping, blending, cancel; device policy."""

from __future__ import annotations

import logging

import pytest
import torch

from BreastAIAssistantLib.inference import (
    Cancelled,
    DeviceError,
    coarse_to_fine_window,
    gaussian_importance,
    plan_windows,
    resolve_device,
    sliding_window,
    with_oom_fallback,
)
from BreastAIAssistantLib.inference.sliding_window import axis_starts


@pytest.mark.parametrize(
    ("lo", "hi", "patch", "stride", "expected"),
    [
        (0, 10, 4, 2, [0, 2, 4, 6]),
        (0, 11, 4, 2, [0, 2, 4, 6, 7]),
        (3, 7, 4, 2, [3]),
        (0, 3, 4, 2, [0]),
    ],
)
def test_axis_starts_cover_the_range(lo, hi, patch, stride, expected):
    assert axis_starts(lo, hi, patch, stride) == expected


def test_identity_model_reproduces_the_input_exactly():
    torch.manual_seed(0)
    volume = torch.randn(2, 3, 20, 24, 28)  # leading (T, C) dims travel with each window
    plan = plan_windows(volume.shape[-3:], (8, 8, 12), overlap=0.5)
    out, weight = sliding_window(
        volume, lambda b: b[:, 0, 1:2], (8, 8, 12), plan, batch_size=3, out_channels=1
    )
    assert plan.total == len(plan.starts) == 4 * 5 * 4
    assert bool((weight > 0).all())
    torch.testing.assert_close(out[0], volume[0, 1], atol=1e-5, rtol=1e-5)


def test_roi_and_candidates_limit_the_windows():
    shape = (32, 64, 64)
    candidates = torch.zeros(shape, dtype=torch.bool)
    candidates[10, 40, 40] = True
    roi = ((0, 32), (32, 64), (32, 64))
    plan = plan_windows(shape, (16, 16, 16), overlap=0.5, roi=roi, candidates=candidates)
    assert plan.total == 3 * 4 * 4  # lattice starts 24, 32, 40, 48 touch [32, 64)
    # only windows that contain (10, 40, 40) are kept
    assert plan.starts and all(
        z <= 10 < z + 16 and y <= 40 < y + 16 and x <= 40 < x + 16 for z, y, x in plan.starts
    )
    out, weight = sliding_window(
        torch.ones(1, *shape), lambda b: b, (16, 16, 16), plan, out_channels=1
    )
    assert weight[10, 40, 40] > 0 and weight[0, 0, 0] == 0 and out[0, 0, 0, 0] == 0


def test_roi_takes_the_whole_volume_lattice_windows_that_touch_it():
    plan = plan_windows((20, 20, 20), (8, 8, 8), roi=((18, 20), (0, 2), (9, 11)))
    assert plan.starts == ((12, 0, 4), (12, 0, 8))  # lattice 0, 4, 8, 12 on every axis
    full = plan_windows((20, 20, 20), (8, 8, 8))
    assert set(plan.starts) <= set(full.starts) and full.total == 4**3


def test_plan_errors():
    with pytest.raises(ValueError, match="overlap must be in"):
        plan_windows((8, 8, 8), (4, 4, 4), overlap=1.0)
    with pytest.raises(ValueError, match="larger than the volume"):
        plan_windows((8, 8, 8), (4, 16, 4))


def test_gaussian_importance_peaks_in_the_centre():
    weight = gaussian_importance((9, 9, 9))
    assert weight[4, 4, 4] == 1.0 and weight.min() >= 1e-3
    assert weight[0, 4, 4] < weight[2, 4, 4] < weight[4, 4, 4]


def test_cancel_stops_between_batches():
    calls = []
    plan = plan_windows((16, 16, 16), (8, 8, 8), overlap=0.0)
    with pytest.raises(Cancelled):
        sliding_window(torch.zeros(1, 16, 16, 16), lambda b: calls.append(1) or b, (8, 8, 8),
                       plan, batch_size=2, cancel=lambda: len(calls) >= 2)  # fmt: skip
    assert len(calls) == 2


def test_device_policy_on_this_machine():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device("cpu").type == "cpu"
    with pytest.raises(DeviceError, match="unknown device 'tpu'"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match="no CUDA GPU"):
            resolve_device("cuda")


def test_oom_fallback_halves_the_batch_then_uses_the_cpu(caplog):
    attempts = []

    def run(device, batch):
        attempts.append((device.type, batch))
        if device.type == "cuda":
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB")
        return "done"

    with caplog.at_level(logging.WARNING):
        result, device, batch = with_oom_fallback(run, torch.device("cuda"), 4)
    assert result == "done" and device.type == "cpu" and batch == 1
    assert attempts == [("cuda", 4), ("cuda", 2), ("cuda", 1), ("cpu", 1)]
    assert "retrying on CPU" in caplog.text


def _position_dependent_model(batch: torch.Tensor) -> torch.Tensor:
    """A 'network' whose output depends on where a voxel sits in its window (as a real one's
    does near window borders), so that different window sets give different blends."""
    ramp = torch.linspace(0.6, 1.0, batch.shape[-1])
    return torch.sigmoid(8.0 * (batch[:, :1] - 0.5)) * ramp


def test_coarse_to_fine_equals_the_full_window_wherever_the_output_reaches_the_threshold():
    shape = (24, 48, 48)
    volume = torch.zeros(1, *shape)
    volume[0, 8:14, 20:30, 30:38] = 1.0  # one small "lesion"
    plan = plan_windows(shape, (8, 16, 16), overlap=0.5)
    full, _ = sliding_window(volume, _position_dependent_model, (8, 16, 16), plan)
    fine, weight, evaluated = coarse_to_fine_window(
        volume, _position_dependent_model, (8, 16, 16), plan, refine_threshold=0.05
    )
    assert bool((weight > 0).all())  # the coarse tiling covers the volume
    assert len(evaluated) < len(plan.starts) / 2
    assert set(evaluated) <= set(plan.starts) and len(set(evaluated)) == len(evaluated)
    reached = full[0] >= 0.05
    assert bool(reached.any())
    torch.testing.assert_close(fine[0][reached], full[0][reached])
    assert bool(((fine[0] >= 0.5) == (full[0] >= 0.5)).all())
    # voxels outside the region of interest never call for refinement
    outside = torch.zeros(shape, dtype=torch.bool)
    _, _, coarse_only = coarse_to_fine_window(
        volume, _position_dependent_model, (8, 16, 16), plan, 0.05, region=outside
    )
    assert set(coarse_only) == set(plan.coarse())


def test_coarse_tiling_takes_every_second_lattice_window_and_the_last():
    plan = plan_windows((20, 20, 20), (8, 8, 8))  # lattice 0, 4, 8, 12 on every axis
    assert {s[0] for s in plan.coarse()} == {0, 8, 12}
    assert len(plan.coarse()) == 27
