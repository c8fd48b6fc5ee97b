"""Multi-task receptor network: ER, PR, HER2 and Ki-67 from one post-contrast phase.

Reference: "Spatial multi-task learning for breast cancer molecular subtype prediction from
single-phase DCE-MRI" (``shared/seeds/001_*``; only the abstract is available): a deep feature
network with multi-scale spatial attention capturing intratumoral and peritumoral features, a
region-of-interest weighting module emphasising tumour core, rim and surrounding tissue, shared
representations and task-specific branches for ER, PR, HER2 (classification) and Ki-67
(regression). The abstract gives no layer details; the design choices here are ours and are
documented on each class.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn


def _block(in_channels: int, out_channels: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False),
        nn.GroupNorm(out_channels, out_channels), nn.ReLU(),
        nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
        nn.GroupNorm(out_channels, out_channels), nn.ReLU(),
    )


class MultiScaleSpatialAttention(nn.Module):
    """Spatial attention from channel-mean and channel-max maps convolved at several receptive
    fields (dilated 3×3 convolutions, one per rate), summed, sigmoid; the features are multiplied
    by ``1 + attention`` (a residual gate that cannot switch features off entirely)."""

    def __init__(self, rates: Sequence[int] = (1, 2, 4)) -> None:
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv2d(2, 1, 3, padding=r, dilation=r) for r in rates)

    def forward(self, x: Tensor) -> Tensor:
        pooled = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)
        logit = torch.zeros_like(pooled[:, :1])
        for conv in self.convs:
            logit = logit + conv(pooled)
        return x * (1.0 + torch.sigmoid(logit))


class RegionWeighting(nn.Module):
    """Region-of-interest weighting: features times ``sum_r softplus(w_r) * region_r`` plus a
    learnable background weight, with one weight per region (core, rim, shell) and stage; the
    region maps are average-pooled to each stage's resolution. Initialised to 1 everywhere."""

    def __init__(self, n_regions: int = 3) -> None:
        super().__init__()
        # softplus(log(e - 1)) = 1: every region starts with weight 1
        self.weights = nn.Parameter(torch.full((n_regions + 1,), math.log(math.e - 1.0)))

    def forward(self, x: Tensor, regions: Tensor) -> Tensor:
        if regions.shape[-1] != x.shape[-1]:
            regions = nn.functional.adaptive_avg_pool2d(regions, x.shape[-2:])
        w = nn.functional.softplus(self.weights)
        inside = regions.sum(dim=1, keepdim=True).clamp(max=1.0)
        gate = (regions * w[:-1].view(1, -1, 1, 1)).sum(dim=1, keepdim=True) + w[-1] * (1 - inside)
        return x * gate


class ReceptorNet(nn.Module):
    """Multi-task receptor network on one post-contrast slice with its region maps.

    Input ``(N, 1 + 3, H, W)``: the post-contrast slice and the core, rim and shell maps
    (:func:`BreastAIAssistantLib.classify.crops.regions`); the maps are both input channels and
    the :class:`RegionWeighting` gates after every stage. Trunk: convolution stages (two 3×3
    conv + instance norm + ReLU; stride 2 from the second stage), each followed by
    :class:`MultiScaleSpatialAttention` and :class:`RegionWeighting`; shared global average and
    max pooling; one branch per task (``Linear → ReLU → Dropout → Linear``).

    Output ``(outputs (N, 4), features (N, C, h, w))``: ER, PR and HER2 logits and the Ki-67
    index in percent (``100 * sigmoid``) — one tensor, so that Grad-CAM can target any column —
    and the last stage's feature map; ``features(x)`` and ``head(features, x)`` split the
    network there for Grad-CAM.

    Args:
        in_channels: Image channels (1) plus region maps (3).
        widths: Channels per stage; ``H, W`` must be divisible by ``2 ** (len(widths) - 1)``.
        hidden: Width of each task branch.
        dropout: Dropout in the task branches.
        attention_rates: Dilation rates of the spatial attention.
    """

    TASKS = ("er", "pr", "her2", "ki67")

    def __init__(self, in_channels: int = 4, widths: Sequence[int] = (16, 32, 64, 96),
                 hidden: int = 64, dropout: float = 0.2,
                 attention_rates: Sequence[int] = (1, 2, 4)) -> None:
        super().__init__()
        if in_channels < 4:
            raise ValueError("in_channels counts the image and the three region maps (>= 4)")
        if len(widths) < 2:
            raise ValueError("at least two stages are required")
        self.n_regions = 3
        stages, attention, weighting = [], [], []
        previous = in_channels
        for i, width in enumerate(widths):
            stages.append(_block(previous, width, 1 if i == 0 else 2))
            attention.append(MultiScaleSpatialAttention(attention_rates))
            weighting.append(RegionWeighting(self.n_regions))
            previous = width
        self.stages = nn.ModuleList(stages)
        self.attention = nn.ModuleList(attention)
        self.weighting = nn.ModuleList(weighting)
        self.heads = nn.ModuleList(
            nn.Sequential(nn.Linear(2 * previous, hidden), nn.ReLU(), nn.Dropout(dropout),
                          nn.Linear(hidden, 1)) for _ in self.TASKS)

    @torch.jit.export
    def features(self, x: Tensor) -> Tensor:
        """The Grad-CAM feature map: the last stage, after attention and region weighting."""
        if x.dim() != 4:
            raise ValueError(f"expected (N, C, H, W); got {x.dim()} dimensions")
        regions = x[:, x.shape[1] - self.n_regions:]
        features = x
        for stage, attend, weigh in zip(self.stages, self.attention, self.weighting):  # noqa: B905
            features = weigh(attend(stage(features)), regions)
        return features

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        features = self.features(x)
        return self.head(features, x), features

    @torch.jit.export
    def head(self, features: Tensor, x: Tensor) -> Tensor:
        """ER, PR, HER2 logits and Ki-67 (%) from the feature map."""
        pooled = torch.cat([features.mean(dim=(2, 3)), features.amax(dim=(2, 3))], dim=1)
        outs = [head(pooled) for head in self.heads]
        ki67 = 100.0 * torch.sigmoid(outs[3])
        return torch.cat([outs[0], outs[1], outs[2], ki67], dim=1)
