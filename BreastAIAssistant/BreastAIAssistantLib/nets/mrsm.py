"""MRSM: ResNet(2+1)D benign/malignant classifier over the DCE phases of one lesion slice.

Reference: the MRSM paper in ``shared/seeds/000_*`` (a multiscale ResNet(2+1)D on DCE-MRI
slice-time samples, dilated spatial and temporal convolutions, "model A" multiscale module).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn


def _norm(channels: int) -> nn.Module:
    # one group per channel (instance norm): a sample's result never depends on its batch
    return nn.GroupNorm(channels, channels)


class SpatialTemporalConv(nn.Module):
    """A (2+1)-D convolution: ``1×k×k`` spatial, normalise, ReLU, then ``k_t×1×1`` temporal.

    Tensors are ``(N, C, T, H, W)``; padding keeps ``T`` (time is never downsampled, so that
    Grad-CAM has one map per phase) and ``H, W`` up to the spatial stride.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1,
                 spatial_dilation: int = 1, temporal_dilation: int = 1, kernel: int = 3,
                 temporal_kernel: int = 3) -> None:
        super().__init__()
        mid = out_channels
        pad = spatial_dilation * (kernel // 2)
        tpad = temporal_dilation * (temporal_kernel // 2)
        self.spatial = nn.Conv3d(in_channels, mid, (1, kernel, kernel), stride=(1, stride, stride),
                                 padding=(0, pad, pad), dilation=(1, spatial_dilation,
                                                                  spatial_dilation), bias=False)
        self.norm = _norm(mid)
        self.temporal = nn.Conv3d(mid, out_channels, (temporal_kernel, 1, 1),
                                  padding=(tpad, 0, 0), dilation=(temporal_dilation, 1, 1),
                                  bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.temporal(torch.relu(self.norm(self.spatial(x))))


class MultiscaleModuleA(nn.Module):
    """MRSM's multiscale module "model A": a local path plus dilated spatial ``1×3×3``
    convolutions (one per ``spatial_rates``), summed; then dilated temporal ``3×1×1``
    convolutions (one per ``temporal_rates``) summed with their input; normalise, ReLU."""

    def __init__(self, channels: int, spatial_rates: Sequence[int] = (1, 3, 5),
                 temporal_rates: Sequence[int] = (1, 3)) -> None:
        super().__init__()
        self.spatial = nn.ModuleList(
            nn.Conv3d(channels, channels, (1, 3, 3), padding=(0, r, r), dilation=(1, r, r),
                      bias=False) for r in spatial_rates)
        self.temporal = nn.ModuleList(
            nn.Conv3d(channels, channels, (3, 1, 1), padding=(r, 0, 0), dilation=(r, 1, 1),
                      bias=False) for r in temporal_rates)
        self.norm_s = _norm(channels)
        self.norm_t = _norm(channels)

    def forward(self, x: Tensor) -> Tensor:
        s = x
        for conv in self.spatial:
            s = s + conv(x)
        s = torch.relu(self.norm_s(s))
        t = s
        for conv in self.temporal:
            t = t + conv(s)
        return torch.relu(self.norm_t(t))


class ResBlock21d(nn.Module):
    """Residual block of two (2+1)-D convolutions; a strided 1×1×1 projection when the shape
    changes."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = SpatialTemporalConv(in_channels, out_channels, stride=stride)
        self.norm1 = _norm(out_channels)
        self.conv2 = SpatialTemporalConv(out_channels, out_channels)
        self.norm2 = _norm(out_channels)
        self.project = (
            nn.Sequential(nn.Conv3d(in_channels, out_channels, 1, stride=(1, stride, stride),
                                    bias=False), _norm(out_channels))
            if stride != 1 or in_channels != out_channels else nn.Identity()
        )

    def forward(self, x: Tensor) -> Tensor:
        y = torch.relu(self.norm1(self.conv1(x)))
        y = self.norm2(self.conv2(y))
        return torch.relu(y + self.project(x))


class MRSMNet(nn.Module):
    """MRSM: multiscale ResNet(2+1)D on one lesion slice seen over all DCE phases.

    After the MRSM paper (``shared/seeds/000_*``): each slice through the lesion, cropped around
    it, is stacked over the phases into a ``(t, h, w)`` sample; a ResNet(2+1)D (Tran et al.,
    "A closer look at spatiotemporal convolutions for action recognition", CVPR 2018) factorises
    every 3-D convolution into a spatial ``1×k×k`` and a temporal ``k×1×1`` one. The stem is a
    ``1×7×7`` spatial convolution (stride 2) followed by a ``3×1×1`` temporal one; the
    multiscale module "model A" (:class:`MultiscaleModuleA`: dilated spatial convolutions, rates
    1/3/5, summed with the local path, then dilated temporal convolutions, rates 1/3) follows;
    then residual (2+1)-D stages, global average pooling, dropout 0.15 and a linear classifier.

    Differences from the paper, and why: instance normalisation instead of batch normalisation
    (results do not depend on the batch, and small CPU batches train stably); time is never
    downsampled, so the network takes any phase count ``T >= 1`` (the paper fixes ``T``) and
    Grad-CAM gives one map per phase; the input may carry a second channel, the subtraction
    ``phase − pre`` (``in_channels=2``), as the segmenter's input does.

    Input ``(N, in_channels, T, H, W)`` with ``H, W`` divisible by ``2 ** len(widths)``.
    Output ``(logits (N, num_classes), features (N, C, T, h, w))``: the last stage's feature map
    is returned so that Grad-CAM works on the TorchScript model (hooks do not script), and the
    exported methods ``features(x)`` and ``head(features, x)`` split the network there (see
    :mod:`BreastAIAssistantLib.explain.gradcam` for why Grad-CAM needs the split).

    Args:
        in_channels: Input channels per phase (1: intensity; 2: intensity and subtraction).
        num_classes: Output classes (2: benign, malignant).
        stem_width: Channels of the stem and the multiscale module.
        widths: Channels of the residual stages; every stage after the first halves ``H, W``.
        blocks_per_stage: Residual blocks per stage.
        spatial_rates: Dilation rates of the multiscale module's spatial convolutions.
        temporal_rates: Dilation rates of its temporal convolutions.
        dropout: Dropout before the classifier (0.15 in the paper).
    """

    def __init__(self, in_channels: int = 2, num_classes: int = 2, stem_width: int = 16,
                 widths: Sequence[int] = (16, 32, 64), blocks_per_stage: int = 1,
                 spatial_rates: Sequence[int] = (1, 3, 5), temporal_rates: Sequence[int] = (1, 3),
                 dropout: float = 0.15) -> None:
        super().__init__()
        if in_channels < 1 or num_classes < 2 or stem_width < 1 or not widths:
            raise ValueError("in_channels >= 1, num_classes >= 2, stem_width >= 1 and at least "
                             "one stage are required")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must be in [0, 1); got {dropout}")
        self.stem = nn.Sequential(
            nn.Conv3d(in_channels, stem_width, (1, 7, 7), stride=(1, 2, 2), padding=(0, 3, 3),
                      bias=False),
            _norm(stem_width), nn.ReLU(),
            nn.Conv3d(stem_width, stem_width, (3, 1, 1), padding=(1, 0, 0), bias=False),
            _norm(stem_width), nn.ReLU(),
        )
        self.multiscale = MultiscaleModuleA(stem_width, spatial_rates, temporal_rates)
        stages: list[nn.Module] = []
        previous = stem_width
        for i, width in enumerate(widths):
            blocks = [ResBlock21d(previous, width, stride=1 if i == 0 else 2)]
            blocks += [ResBlock21d(width, width) for _ in range(blocks_per_stage - 1)]
            stages.append(nn.Sequential(*blocks))
            previous = width
        self.stages = nn.Sequential(*stages)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(previous, num_classes)
        self.downsampling = 2 ** len(widths)

    @torch.jit.export
    def features(self, x: Tensor) -> Tensor:
        """The Grad-CAM feature map ``(N, C, T, h, w)``."""
        if x.dim() != 5:
            raise ValueError(f"expected (N, C, T, H, W); got {x.dim()} dimensions")
        return self.stages(self.multiscale(self.stem(x)))

    @torch.jit.export
    def head(self, features: Tensor, x: Tensor) -> Tensor:
        """Logits from the feature map (``x`` is not needed here; the signature is shared)."""
        return self.classifier(self.dropout(features.mean(dim=(2, 3, 4))))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        features = self.features(x)
        return self.head(features, x), features
