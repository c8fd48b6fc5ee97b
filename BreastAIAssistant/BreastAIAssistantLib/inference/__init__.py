"""Inference in three layers: a pure sliding window, a manifest-driven predictor, the CLI."""

from __future__ import annotations

from BreastAIAssistantLib.inference.device import (
    DeviceError,
    describe_device,
    precision,
    resolve_device,
    with_oom_fallback,
)
from BreastAIAssistantLib.inference.sliding_window import (
    Cancelled,
    WindowPlan,
    coarse_to_fine_window,
    gaussian_importance,
    plan_windows,
    sliding_window,
)

__all__ = [
    "Cancelled",
    "DeviceError",
    "WindowPlan",
    "coarse_to_fine_window",
    "describe_device",
    "gaussian_importance",
    "plan_windows",
    "precision",
    "resolve_device",
    "sliding_window",
    "with_oom_fallback",
]
