"""Pure sliding-window inference over the last three axes of a tensor.

The first of the three inference layers (MONAI, nnU-Net): it knows nothing of manifests, studies
or devices beyond the tensors it is given. Compared with a plain whole-volume sliding window it
adds two savings that matter for breast MRI, where the breasts fill a fraction of the field of
view and a tumour a tiny fraction of the breasts:

* **a region of interest**: only windows inside a bounding box (the breast mask's) are placed;
* **a window filter**: a boolean ``(z, y, x)`` candidate map (for example "enhancing breast
  tissue") and windows that hold no candidate voxel are skipped. Skipped windows are treated as
  predicting background (0 after the caller's activation is applied outside).

Overlapping predictions are blended with a Gaussian importance map (sigma = patch / 8, as in
nnU-Net), which down-weights window borders where the receptive field is truncated.

**Coarse-to-fine** (:func:`coarse_to_fine_window`, used for the tumour): when the output is a
probability and only its foreground matters, most overlapping windows are spent on voxels that are
plainly background. The planned windows are then evaluated in two kinds of pass. The *coarse*
pass takes every second window of the lattice on each axis (plus the last one, so that the tiles
still cover the ROI): about one window in eight at overlap 0.5, each voxel seen once. Each *refine*
pass adds every not-yet-evaluated planned window that holds a voxel whose current blend is at
least ``refine_threshold``, and passes repeat until none is added. Every voxel whose blend reached
the threshold at any pass has therefore had *all* its planned windows evaluated, so its value is
exactly the full sliding window's; a voxel only differs where every window evaluated around it
stayed below the threshold (far below the 0.5 decision level). ``bench/segment.py`` measures the
Dice against MONAI's whole-volume sliding window.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

Box = tuple[tuple[int, int], tuple[int, int], tuple[int, int]]
Progress = Callable[[str, float], None]


class Cancelled(Exception):
    """Raised when the caller's cancel flag is set between batches."""


@dataclass(frozen=True)
class WindowPlan:
    """Where the windows go.

    Attributes:
        starts: Start index (z, y, x) of every evaluated window.
        total: Number of lattice windows that touch the ROI (evaluated or skipped).
        roi: The ROI box ``((z0, z1), (y0, y1), (x0, x1))``, end exclusive.
    """

    starts: tuple[tuple[int, int, int], ...]
    total: int
    roi: Box
    lattice: tuple[tuple[int, ...], ...] = ((), (), ())

    def coarse(self) -> tuple[tuple[int, int, int], ...]:
        """The planned windows at every second lattice position on each axis, plus the last:
        a tiling (windows touch or overlap) of the planned region."""
        if not all(self.lattice):  # a plan without lattice information: no subset
            return self.starts
        keep = [
            {a for i, a in enumerate(axis) if i % 2 == 0 or i == len(axis) - 1}
            for axis in self.lattice
        ]
        return tuple(s for s in self.starts if all(a in k for a, k in zip(s, keep, strict=True)))


def axis_starts(lo: int, hi: int, patch: int, stride: int) -> list[int]:
    """Window starts covering ``[lo, hi)`` with ``patch``-long windows every ``stride``.

    The last window is aligned with ``hi``; a range shorter than the patch gets one window
    starting at ``lo`` (the input is padded by the caller).
    """
    length = hi - lo
    if length <= patch:
        return [lo]
    n = math.ceil((length - patch) / stride) + 1
    starts = [lo + i * stride for i in range(n - 1)] + [hi - patch]
    return sorted(set(starts))


def plan_windows(
    shape_zyx: Sequence[int],
    patch_zyx: Sequence[int],
    overlap: float = 0.5,
    roi: Box | None = None,
    candidates: torch.Tensor | None = None,
) -> WindowPlan:
    """Place windows over ``roi`` and drop those with no candidate voxel.

    Args:
        shape_zyx: Volume shape (already at least ``patch_zyx`` on every axis).
        patch_zyx: Window size.
        overlap: Fraction of a window shared with the next one, in ``[0, 1)``.
        roi: Box to cover; ``None`` = the whole volume. Windows of the whole-volume lattice
            that touch it are placed.
        candidates: Optional boolean ``(z, y, x)`` map; windows without a True voxel are skipped.

    Raises:
        ValueError: bad overlap, or a patch larger than the volume.
    """
    if not 0.0 <= overlap < 1.0:
        raise ValueError(f"overlap must be in [0, 1), got {overlap}")
    if any(p > s for p, s in zip(patch_zyx, shape_zyx, strict=True)):
        raise ValueError(f"patch {tuple(patch_zyx)} is larger than the volume {tuple(shape_zyx)}")
    roi = roi or tuple((0, s) for s in shape_zyx)  # type: ignore[assignment]
    clipped = tuple((max(0, lo), min(s, hi)) for (lo, hi), s in zip(roi, shape_zyx, strict=True))
    # One lattice for the whole volume (the placement of a full sliding window, as MONAI's), of
    # which the windows touching the ROI are kept: inside the ROI the blend is then the same as
    # a whole-volume sliding window's wherever every window covering a voxel is evaluated.
    strides = [max(1, int(p * (1.0 - overlap))) for p in patch_zyx]
    per_axis = [
        [a for a in axis_starts(0, s, p, st) if a < hi and a + p > lo]
        for (lo, hi), p, st, s in zip(clipped, patch_zyx, strides, shape_zyx, strict=True)
    ]
    all_starts = [(z, y, x) for z in per_axis[0] for y in per_axis[1] for x in per_axis[2]]
    if candidates is not None:
        pz, py, px = patch_zyx
        kept = [
            (z, y, x)
            for z, y, x in all_starts
            if bool(candidates[z : z + pz, y : y + py, x : x + px].any())
        ]
    else:
        kept = all_starts
    lattice = tuple(tuple(axis_starts(0, s, p, st))
                    for s, p, st in zip(shape_zyx, patch_zyx, strides, strict=True))  # fmt: skip
    return WindowPlan(starts=tuple(kept), total=len(all_starts), roi=clipped,  # type: ignore[arg-type]
                      lattice=lattice)  # fmt: skip


def gaussian_importance(patch_zyx: Sequence[int], sigma_scale: float = 0.125) -> torch.Tensor:
    """Separable Gaussian weight map of a patch, max 1, min clamped to a small positive value."""
    axes = []
    for p in patch_zyx:
        centre = (p - 1) / 2.0
        coords = torch.arange(p, dtype=torch.float32) - centre
        axes.append(torch.exp(-0.5 * (coords / (sigma_scale * p)) ** 2))
    weight = axes[0][:, None, None] * axes[1][None, :, None] * axes[2][None, None, :]
    weight = weight / weight.max()
    return weight.clamp_min(1e-3)


class _Blender:
    """Accumulates weighted window outputs; the shared core of both sliding windows."""

    def __init__(self, inputs: torch.Tensor, predict: Callable[[torch.Tensor], torch.Tensor],
                 patch_zyx: Sequence[int], batch_size: int, out_channels: int, gaussian: bool,
                 progress: Progress | None, cancel: Callable[[], bool] | None) -> None:  # fmt: skip
        self.inputs, self.predict = inputs, predict
        self.patch = tuple(int(p) for p in patch_zyx)
        self.batch_size, self.progress, self.cancel = batch_size, progress, cancel
        spatial = inputs.shape[-3:]
        device = inputs.device
        self.out = torch.zeros((out_channels, *spatial), dtype=torch.float32, device=device)
        self.weight = torch.zeros(spatial, dtype=torch.float32, device=device)
        self.importance = (
            gaussian_importance(self.patch).to(device)
            if gaussian
            else torch.ones(self.patch, device=device)
        )
        self.evaluated: list[tuple[int, int, int]] = []

    def add(self, starts: Sequence[tuple[int, int, int]], expected_total: int) -> None:
        """Evaluate ``starts`` and accumulate; progress is evaluated / ``expected_total``."""
        pz, py, px = self.patch
        for first in range(0, len(starts), self.batch_size):
            if self.cancel is not None and self.cancel():
                raise Cancelled("inference cancelled")
            chunk = starts[first : first + self.batch_size]
            batch = torch.stack(
                [self.inputs[..., z : z + pz, y : y + py, x : x + px] for z, y, x in chunk]
            )
            result = self.predict(batch).float()
            for (z, y, x), window in zip(chunk, result, strict=True):
                self.out[:, z : z + pz, y : y + py, x : x + px] += window * self.importance
                self.weight[z : z + pz, y : y + py, x : x + px] += self.importance
            self.evaluated.extend(chunk)
            if self.progress is not None:
                self.progress("windows", min(1.0, len(self.evaluated) / max(1, expected_total)))

    def blend(self) -> torch.Tensor:
        """The current weighted mean (0 where no window reached)."""
        covered = self.weight > 0
        out = self.out.clone()
        out[:, covered] /= self.weight[covered]
        return out


def sliding_window(
    inputs: torch.Tensor,
    predict: Callable[[torch.Tensor], torch.Tensor],
    patch_zyx: Sequence[int],
    plan: WindowPlan,
    batch_size: int = 2,
    out_channels: int = 1,
    gaussian: bool = True,
    progress: Progress | None = None,
    cancel: Callable[[], bool] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run ``predict`` on the planned windows and blend the outputs.

    Args:
        inputs: Tensor ``(..., Z, Y, X)``; the leading dims (channels, phases) go into each
            window unchanged: a batch is ``(B, ..., pz, py, px)``.
        predict: Maps a batch to ``(B, out_channels, pz, py, px)`` (e.g. logits). Called under
            the caller's device and precision context.
        patch_zyx: Window size.
        plan: From :func:`plan_windows`.
        batch_size: Windows per call.
        out_channels: Channels of ``predict``'s output.
        gaussian: Blend with a Gaussian importance map (else uniform).
        progress: ``progress("windows", fraction)`` after each batch.
        cancel: Returns True to stop; checked before each batch.

    Returns:
        ``(blended, weight)``: ``blended`` is ``(out_channels, Z, Y, X)`` float32 on the device of
        ``inputs``, the weighted mean of the window outputs where ``weight > 0`` and 0 elsewhere;
        ``weight`` is ``(Z, Y, X)``, zero where no evaluated window reached.

    Raises:
        Cancelled: the cancel flag was set.
    """
    blender = _Blender(inputs, predict, patch_zyx, batch_size, out_channels, gaussian, progress,
                       cancel)  # fmt: skip
    blender.add(plan.starts, len(plan.starts))
    return blender.blend(), blender.weight


def coarse_to_fine_window(
    inputs: torch.Tensor,
    predict: Callable[[torch.Tensor], torch.Tensor],
    patch_zyx: Sequence[int],
    plan: WindowPlan,
    refine_threshold: float,
    batch_size: int = 2,
    out_channels: int = 1,
    gaussian: bool = True,
    progress: Progress | None = None,
    cancel: Callable[[], bool] | None = None,
    max_passes: int = 8,
    region: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, tuple[tuple[int, int, int], ...]]:
    """:func:`sliding_window` over the coarse tiling of ``plan``, refined where the blend reaches
    ``refine_threshold`` (see the module docstring).

    Args:
        refine_threshold: Output value (any channel) at or above which a voxel gets all its
            planned windows; ``predict`` must return values on that scale (probabilities).
        max_passes: Upper bound on refine passes (each adds windows; usually 1-2 are needed).
        region: Optional boolean ``(Z, Y, X)`` map of the voxels whose value matters (the caller
            zeroes the rest, as the tumour predictor does outside the breast gate); voxels
            outside it never call for refinement.
        Others: as :func:`sliding_window`.

    Returns:
        ``(blended, weight, evaluated)``: as :func:`sliding_window`, plus the starts of the
        windows evaluated.

    Raises:
        Cancelled: the cancel flag was set.
    """
    pz, py, px = (int(p) for p in patch_zyx)
    blender = _Blender(inputs, predict, patch_zyx, batch_size, out_channels, gaussian, progress,
                       cancel)  # fmt: skip
    done = set(plan.coarse())
    blender.add(sorted(done), len(plan.starts))
    for _ in range(max_passes):
        flagged = (blender.blend() >= refine_threshold).any(dim=0)
        if region is not None:
            flagged &= region
        if not bool(flagged.any()):
            break
        more = [
            (z, y, x)
            for z, y, x in plan.starts
            if (z, y, x) not in done and bool(flagged[z : z + pz, y : y + py, x : x + px].any())
        ]
        if not more:
            break
        done.update(more)
        blender.add(more, len(plan.starts))
    if progress is not None:
        progress("windows", 1.0)
    return blender.blend(), blender.weight, tuple(blender.evaluated)
