"""DMIF-Net: deep multi-scale invariant features from a bounding box, one branch set per sequence.

Reference: Chen QJ et al., "Deep multi-scale invariant features-based network (DMIF-Net) for
predicting 1p/19q status in glioma", J. Software 2022;33(12):4559-4573 (``shared/seeds/003_*``),
sections 1.2.1-1.2.2: per modality a DF-Net (ResNeXt: 1×1 conv, grouped 3×3 convolutions with
cardinality 32, 1×1 aggregation, residual; a fusion / dimension-reduction block; multi-scale
pooling) beside an MI-Net (wavelet scattering with J = 2, 3, 4, order 2, L = 8; convolutions
bringing every scale to the same size and channels, concatenated; multi-scale pooling); the two
feature vectors concatenated; the modalities' (T1C, T2W) vectors concatenated into a final
fully connected classifier. Input is only the box (no delineation), resized to a square.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from BreastAIAssistantLib.nets.scattering import Scattering2d


def _norm(channels: int) -> nn.Module:
    return nn.GroupNorm(min(8, channels), channels)


def pyramid_pool(x: Tensor, levels: list[int]) -> Tensor:
    """Multi-scale (spatial pyramid) max pooling to ``n × n`` cells per level, flattened and
    concatenated: ``C * sum(n**2)`` values (He et al., TPAMI 2015; the paper's eq. 3, levels
    1, 2, 4)."""
    parts = [F.adaptive_max_pool2d(x, n).flatten(1) for n in levels]
    return torch.cat(parts, dim=1)


class ResNeXtBlock(nn.Module):
    """ResNeXt bottleneck (Xie et al., CVPR 2017): 1×1 to ``width``, grouped 3×3 with
    ``cardinality`` groups, 1×1 aggregation to ``out_channels``, residual (projected when the
    shape changes)."""

    def __init__(self, in_channels: int, out_channels: int, width: int, cardinality: int,
                 stride: int = 1) -> None:
        super().__init__()
        if width % cardinality != 0:
            raise ValueError(f"width {width} is not divisible by cardinality {cardinality}")
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, width, 1, bias=False), _norm(width), nn.ReLU(),
            nn.Conv2d(width, width, 3, stride=stride, padding=1, groups=cardinality, bias=False),
            _norm(width), nn.ReLU(),
            nn.Conv2d(width, out_channels, 1, bias=False), _norm(out_channels),
        )
        self.project = (
            nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                          _norm(out_channels))
            if stride != 1 or in_channels != out_channels else nn.Identity()
        )

    def forward(self, x: Tensor) -> Tensor:
        return torch.relu(self.body(x) + self.project(x))


class DeepFeatureBranch(nn.Module):
    """DF-Net: stem convolution, ResNeXt stages (stride 2 between stages), a fusion block of
    three stacked convolutions reducing the channels to ``fused``; returns the feature map."""

    def __init__(self, in_channels: int, widths: Sequence[int], cardinality: int,
                 fused: int) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_channels, widths[0], 3, stride=2, padding=1,
                                            bias=False), _norm(widths[0]), nn.ReLU())
        blocks = []
        previous = widths[0]
        for i, width in enumerate(widths):
            blocks.append(ResNeXtBlock(previous, width, width, cardinality, 1 if i == 0 else 2))
            previous = width
        self.blocks = nn.Sequential(*blocks)
        self.fuse = nn.Sequential(
            nn.Conv2d(previous, previous, 1, bias=False), _norm(previous), nn.ReLU(),
            nn.Conv2d(previous, previous, 3, padding=1, bias=False), _norm(previous), nn.ReLU(),
            nn.Conv2d(previous, fused, 1, bias=False), _norm(fused), nn.ReLU(),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.fuse(self.blocks(self.stem(x)))


class InvariantBranch(nn.Module):
    """MI-Net: scattering transforms at several ``J``; each scale's coefficients are brought to
    the coarsest scale's size by a strided convolution (a larger receptive field for finer
    scales) with ``fused`` channels, and the scales are concatenated."""

    def __init__(self, in_channels: int, scales: Sequence[int], orientations: int, order: int,
                 fused: int) -> None:
        super().__init__()
        self.scattering = Scattering2d(scales, orientations, order)
        coarsest = max(scales)
        convs = []
        for j, channels in zip(self.scattering.scales, self.scattering.out_channels, strict=True):
            factor = 2 ** (coarsest - j)
            k = 2 * factor + 1 if factor > 1 else 3
            convs.append(nn.Sequential(
                nn.Conv2d(in_channels * channels, fused, k, stride=factor, padding=k // 2,
                          bias=False),
                _norm(fused), nn.ReLU()))
        self.convs = nn.ModuleList(convs)

    def forward(self, x: Tensor) -> Tensor:
        coefficients = self.scattering(x)
        parts: list[Tensor] = []
        for index, conv in enumerate(self.convs):
            parts.append(conv(torch.log1p(coefficients[index].clamp(min=0) * 10.0)))
        return torch.cat(parts, dim=1)


class DMIFNet(nn.Module):
    """DMIF-Net classifier from a box crop of one or more sequences.

    Input ``(N, S, H, W)``: one channel per sequence (e.g. a post-contrast phase and the
    subtraction; T1C and T2W in the paper), ``H, W`` divisible by ``2 ** max(scales)`` and by
    ``2 ** len(widths)``. Every sequence has its own DF-Net and MI-Net (same structure, own
    weights); each branch's map goes through multi-scale pooling (levels 1, 2, 4); all vectors
    are concatenated and a fully connected classifier (dropout, linear) gives the logits.

    Output ``(logits (N, num_classes), features (N, S * fused, h, w))``: the DF-Net maps of all
    sequences, concatenated, for Grad-CAM (``features(x)`` and ``head(features, x)`` split the
    network there).

    Differences from the paper, and why: the three training stages (branches, per-modality,
    multimodal fine-tuning) become one end-to-end training; widths and cardinality are
    arguments (the CPU demo uses cardinality 8); scattering coefficients are log-compressed
    before the fusion convolutions (they span orders of magnitude).

    Args:
        sequences: Number of input sequences.
        num_classes: Output classes.
        widths: ResNeXt stage widths.
        cardinality: ResNeXt groups (32 in the paper).
        fused: Channels after each fusion block.
        scales: Scattering ``J`` values (2, 3, 4 in the paper).
        orientations: Scattering orientations ``L`` (8).
        order: Scattering order (2).
        pool_levels: Multi-scale pooling grid sizes.
        dropout: Dropout before the classifier.
    """

    def __init__(self, sequences: int = 2, num_classes: int = 2,
                 widths: Sequence[int] = (32, 64, 128), cardinality: int = 8, fused: int = 32,
                 scales: Sequence[int] = (2, 3), orientations: int = 8, order: int = 2,
                 pool_levels: Sequence[int] = (1, 2, 4), dropout: float = 0.3) -> None:
        super().__init__()
        if sequences < 1 or num_classes < 2 or not scales:
            raise ValueError("need at least one sequence, two classes and one scattering scale")
        self.n_sequences = sequences
        self.pool_levels = list(pool_levels)
        self.deep = nn.ModuleList(DeepFeatureBranch(1, widths, cardinality, fused)
                                  for _ in range(sequences))
        self.invariant = nn.ModuleList(InvariantBranch(1, scales, orientations, order, fused)
                                       for _ in range(sequences))
        cells = sum(n * n for n in pool_levels)
        per_sequence = fused * cells + fused * len(scales) * cells
        self.classifier = nn.Sequential(nn.Dropout(dropout),
                                        nn.Linear(sequences * per_sequence, num_classes))

    @torch.jit.export
    def features(self, x: Tensor) -> Tensor:
        """The Grad-CAM feature map: every sequence's DF-Net map, concatenated."""
        if x.dim() != 4 or x.shape[1] != self.n_sequences:
            raise ValueError(f"expected (N, {self.n_sequences}, H, W); got {list(x.shape)}")
        maps: list[Tensor] = []
        for s, deep in enumerate(self.deep):
            maps.append(deep(x[:, s: s + 1]))
        return torch.cat(maps, dim=1)

    @torch.jit.export
    def head(self, features: Tensor, x: Tensor) -> Tensor:
        """Logits from the DF-Net maps and the MI-Net branches (computed here from ``x``)."""
        width = features.shape[1] // self.n_sequences
        vectors: list[Tensor] = []
        for s, invariant in enumerate(self.invariant):
            vectors.append(pyramid_pool(features[:, s * width: (s + 1) * width],
                                        self.pool_levels))
            vectors.append(pyramid_pool(invariant(x[:, s: s + 1]), self.pool_levels))
        return self.classifier(torch.cat(vectors, dim=1))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        features = self.features(x)
        return self.head(features, x), features
