"""Training loops for the whole-breast and tumour models, ending in a model bundle.

Adam with a cosine learning-rate schedule, Dice + BCE loss (:mod:`.losses`), patches from
:mod:`.sampling`, a checkpoint every ``checkpoint_every`` steps (resumable), and a wall-clock
budget so that training on a laptop or a CI-sized machine stops cleanly. The final network is
scripted into a bundle whose manifest records the training data and the held-out metrics that the
caller measured (:mod:`.evaluate`).

Device: ``settings.device`` (``auto``, ``cpu`` or ``cuda[:N]``, resolved by
:func:`BreastAIAssistantLib.inference.device.resolve_device`). Batches are assembled on the CPU
(numpy sampling and augmentation) and moved to the device each step; training is float32 on
every device. Checkpoints are written device-independent (tensors moved to the CPU), so a run
started on a GPU can be resumed on a CPU and the other way round, and the returned model is
always on the CPU, ready to be scripted into a bundle.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from BreastAIAssistantLib.inference.device import describe_device, resolve_device
from BreastAIAssistantLib.nets import build_network
from BreastAIAssistantLib.train import recipes
from BreastAIAssistantLib.train.data import BreastSample, TumourSample
from BreastAIAssistantLib.train.losses import DiceBCELoss
from BreastAIAssistantLib.train.sampling import breast_batch, tumour_batch

logger = logging.getLogger(__name__)

Progress = Callable[[str, float], None]


@dataclass
class TrainSettings:
    """Optimisation settings.

    Attributes:
        steps: Optimiser steps.
        batch_size: Patches per step.
        learning_rate: Peak learning rate (cosine decay to 5 % of it).
        max_minutes: Wall-clock budget of this call; training stops early (and says so) when
            reached. A run resumed from a checkpoint gets the whole budget again (the manifest's
            ``minutes`` adds up both).
        seed: Seed of the sampler and the initial weights.
        checkpoint_every: Steps between checkpoints.
        foreground_fraction: Tumour-centred fraction of tumour patches.
        phase_dropout: Probability of dropping post-contrast phases in a tumour patch.
        phase_truncation: Share of those drops that keep the first k post-contrast phases (a
            shorter protocol) rather than a random subset (:mod:`.sampling`).
        lesion_dice_weight: Weight of the lesion-wise Dice term of the tumour loss
            (:class:`.losses.DiceBCELoss`; 0 leaves it out).
        enhancement_scale: ``(low, high)`` range of the enhancement-scale augmentation of
            tumour patches (:mod:`.sampling`); ``None`` leaves it out.
        device: ``auto``, ``cpu`` or ``cuda[:N]`` (see the module docstring).
    """

    steps: int = 2000
    batch_size: int = 2
    learning_rate: float = 2e-3
    max_minutes: float = 60.0
    seed: int = 0
    checkpoint_every: int = 100
    foreground_fraction: float = 0.6
    phase_dropout: float = 0.5
    phase_truncation: float = 0.0
    lesion_dice_weight: float = 0.0
    enhancement_scale: tuple[float, float] | None = None
    device: str = "cpu"


@dataclass
class TrainResult:
    """What happened: steps done, losses, time, whether the budget stopped it, and where."""

    steps_done: int
    seconds: float
    stopped_by_budget: bool
    losses: list[float] = field(default_factory=list)
    device: str = "cpu"

    def summary(self) -> dict[str, Any]:
        tail = self.losses[-50:]
        return {
            "steps": self.steps_done,
            "minutes": round(self.seconds / 60.0, 1),
            "stopped_by_time_budget": self.stopped_by_budget,
            "final_loss_mean_last_50": round(float(np.mean(tail)), 4) if tail else None,
            "device": self.device,
        }


def _fit(
    model: torch.nn.Module,
    next_batch: Callable[[np.random.Generator], tuple[tuple[torch.Tensor, ...], torch.Tensor]],
    settings: TrainSettings,
    checkpoint: Path | None,
    progress: Progress | None,
    loss_fn: Callable[[Any, Any], torch.Tensor] | None = None,
) -> TrainResult:
    """The shared loop: ``loss_fn(model(*inputs), target)`` (Dice + BCE by default)."""
    device = resolve_device(settings.device)
    torch.manual_seed(settings.seed)
    rng = np.random.default_rng(settings.seed)
    model.to(device)
    optimiser = torch.optim.Adam(model.parameters(), lr=settings.learning_rate)
    loss_fn = loss_fn or DiceBCELoss()
    start_step, losses, earlier_s = 0, [], 0.0
    if checkpoint is not None and checkpoint.is_file():
        state = torch.load(checkpoint, map_location="cpu", weights_only=False)
        model.load_state_dict(state["model"])
        optimiser.load_state_dict(state["optimiser"])
        start_step, losses = int(state["step"]), list(state["losses"])
        earlier_s = float(state.get("seconds", 0.0))  # training time before the interruption
        rng = np.random.default_rng([settings.seed, start_step])
        logger.info("resumed from %s at step %d", checkpoint, start_step)
    logger.info("training on %s", describe_device(device))
    clock = time.perf_counter()
    budget_s = 60.0 * settings.max_minutes
    model.train()
    step = start_step
    stopped = False
    for step in range(start_step, settings.steps):
        if time.perf_counter() - clock > budget_s:
            stopped = True
            logger.warning("time budget of %.1f min reached at step %d of %d",
                           settings.max_minutes, step, settings.steps)  # fmt: skip
            break
        fraction = step / max(1, settings.steps - 1)
        lr = settings.learning_rate * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * fraction)))
        for group in optimiser.param_groups:
            group["lr"] = lr
        inputs, target = next_batch(rng)
        inputs = tuple(t.to(device) for t in inputs)
        target = target.to(device)
        optimiser.zero_grad(set_to_none=True)
        loss = loss_fn(model(*inputs), target)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimiser.step()
        losses.append(float(loss.detach()))
        if step % 25 == 0:
            logger.info("step %d/%d loss %.4f (mean of last 25: %.4f) lr %.2e", step,
                        settings.steps, losses[-1], float(np.mean(losses[-25:])), lr)  # fmt: skip
        if progress is not None:
            progress("training", (step + 1) / settings.steps)
        if checkpoint is not None and (step + 1) % settings.checkpoint_every == 0:
            torch.save({"model": _on_cpu(model.state_dict()),
                        "optimiser": _on_cpu(optimiser.state_dict()),
                        "step": step + 1, "losses": losses,
                        "seconds": earlier_s + time.perf_counter() - clock},
                       checkpoint)  # fmt: skip
    else:
        step = settings.steps
    model.to("cpu")
    model.eval()
    return TrainResult(step, earlier_s + time.perf_counter() - clock, stopped, losses, device.type)


def _on_cpu(state: Any) -> Any:
    """A state dict (nested dicts, lists, tensors) with every tensor copied to the CPU."""
    if isinstance(state, torch.Tensor):
        return state.detach().to("cpu")
    if isinstance(state, dict):
        return {key: _on_cpu(value) for key, value in state.items()}
    if isinstance(state, (list, tuple)):
        return type(state)(_on_cpu(value) for value in state)
    return state


def _initial_model(
    name: str, args: dict[str, Any], seed: int, init: dict[str, torch.Tensor] | None
) -> torch.nn.Module:
    """The network with seeded initial weights, or ``init`` weights to continue training."""
    torch.manual_seed(seed)
    model = build_network(name, args)
    if init is not None:
        model.load_state_dict(init)
    return model


def train_tumour_model(
    samples: Sequence[TumourSample],
    network_args: dict[str, Any],
    patch_zyx: Sequence[int],
    settings: TrainSettings,
    checkpoint: Path | None = None,
    progress: Progress | None = None,
    init: dict[str, torch.Tensor] | None = None,
) -> tuple[torch.nn.Module, TrainResult]:
    """Train a :class:`SpatioTemporalSegmenter` on tumour samples (from ``init`` weights if
    given, e.g. an existing bundle's, to continue training)."""
    model = _initial_model(recipes.TUMOUR["network"], network_args, settings.seed, init)

    def next_batch(rng: np.random.Generator):
        x, times, present, target = tumour_batch(
            samples, patch_zyx, settings.batch_size, rng,
            settings.foreground_fraction, settings.phase_dropout, settings.phase_truncation,
            settings.enhancement_scale,
        )  # fmt: skip
        return (x, times, present), target

    loss = DiceBCELoss(lesion_weight=settings.lesion_dice_weight)
    return model, _fit(model, next_batch, settings, checkpoint, progress, loss)


def train_breast_model(
    samples: Sequence[BreastSample],
    network_args: dict[str, Any],
    patch_zyx: Sequence[int],
    settings: TrainSettings,
    checkpoint: Path | None = None,
    progress: Progress | None = None,
    init: dict[str, torch.Tensor] | None = None,
) -> tuple[torch.nn.Module, TrainResult]:
    """Train a :class:`UNet3d` whole-breast model (from ``init`` weights if given)."""
    model = _initial_model(recipes.BREAST["network"], network_args, settings.seed, init)

    def next_batch(rng: np.random.Generator):
        x, target = breast_batch(samples, patch_zyx, settings.batch_size, rng)
        return (x,), target

    return model, _fit(model, next_batch, settings, checkpoint, progress)
