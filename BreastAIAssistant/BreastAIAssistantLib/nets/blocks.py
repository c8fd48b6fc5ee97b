"""Convolutional building blocks shared by the networks: residual or plain 3-D conv blocks, a
U-Net encoder that returns every level, and a decoder with skip connections.

Conventions (both networks): tensors are ``(N, C, Z, Y, X)``; a block is two 3×3×3 convolutions,
each followed by instance normalisation (affine) and LeakyReLU, as in nnU-Net (Isensee et al.,
Nat. Methods 2021;18:203-211) and the residual U-Net of the Patterns paper (Zhang et al. 2023).
Instance normalisation is written as ``GroupNorm(C, C)`` (one channel per group: the same result
and parameters as ``InstanceNorm3d(C, affine=True)``), whose CPU kernel is faster and keeps a
channels-last layout. Like instance normalisation, and unlike batch normalisation, it treats
every sample on its own: the result for one phase never depends on what else is in the batch,
which the spatial-temporal network relies on to make absent phases exactly irrelevant.
Downsampling is a stride-2 convolution (the first of a block), upsampling a 2×2×2 transposed
convolution, so every axis of the input must be divisible by ``2 ** depth``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn


def validate_widths(widths: Sequence[int]) -> tuple[int, ...]:
    """Check a channel-width list (one entry per resolution level, shallowest first).

    Raises:
        ValueError: Fewer than two levels, or a width that is not a positive integer.
    """
    widths = tuple(widths)
    if len(widths) < 2:
        raise ValueError(f"widths needs at least 2 levels (1 downsampling); got {widths}")
    if not all(isinstance(w, int) and not isinstance(w, bool) and w > 0 for w in widths):
        raise ValueError(f"widths must be positive integers; got {widths}")
    return widths


def check_patch_size(spatial_zyx: list[int], depth: int) -> None:
    """Raise ``ValueError`` unless every axis is divisible by ``2 ** depth`` and the coarsest
    level keeps more than one voxel (instance normalisation maps a single voxel to zero).

    TorchScript-compatible: called from the networks' ``forward``.
    """
    factor = 1 << depth
    if len(spatial_zyx) != 3:
        raise ValueError(f"expected 3 spatial axes (z, y, x); got {len(spatial_zyx)}")
    voxels = 1
    for size in spatial_zyx:
        if size % factor != 0:
            raise ValueError(
                f"patch size {spatial_zyx} (z, y, x) is not divisible by 2**depth = {factor} "
                f"in every axis; crop or pad each axis to a multiple of {factor}"
            )
        voxels = voxels * (size // factor)
    if voxels < 2:
        raise ValueError(
            f"patch size {spatial_zyx} leaves a single voxel at the coarsest level "
            f"(depth {depth}); use a patch at least {2 * factor} long in one axis"
        )


class ConvBlock3d(nn.Module):
    """Two 3×3×3 conv + instance norm + LeakyReLU layers, with an optional residual shortcut.

    Instance norm is ``GroupNorm(out_channels, out_channels)`` (see the module docstring).

    Args:
        in_channels: Input channels.
        out_channels: Output channels.
        stride: Stride of the first convolution (1, or 2 to halve every axis).
        residual: Add a shortcut (identity, or 1×1×1 conv + norm when the shape changes) before
            the last activation (He et al., CVPR 2016); False gives a plain U-Net block.
        negative_slope: LeakyReLU slope for negative inputs.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int = 1,
        residual: bool = True,
        negative_slope: float = 0.01,
    ) -> None:
        super().__init__()
        self.residual = residual
        self.conv1 = nn.Conv3d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.norm1 = nn.GroupNorm(out_channels, out_channels)
        self.conv2 = nn.Conv3d(out_channels, out_channels, 3, padding=1, bias=False)
        self.norm2 = nn.GroupNorm(out_channels, out_channels)
        self.act = nn.LeakyReLU(negative_slope, inplace=True)
        self.shortcut = self._build_shortcut(in_channels, out_channels, stride, residual)

    @staticmethod
    def _build_shortcut(
        in_channels: int, out_channels: int, stride: int, residual: bool
    ) -> nn.Module:
        if not residual or (in_channels == out_channels and stride == 1):
            return nn.Identity()
        return nn.Sequential(
            nn.Conv3d(in_channels, out_channels, 1, stride=stride, bias=False),
            nn.GroupNorm(out_channels, out_channels),
        )

    def forward(self, x: Tensor) -> Tensor:
        y = self.act(self.norm1(self.conv1(x)))
        y = self.norm2(self.conv2(y))
        if self.residual:
            y = y + self.shortcut(x)
        return self.act(y)


class UpBlock3d(nn.Module):
    """2×2×2 transposed convolution, concatenation with the skip, then a :class:`ConvBlock3d`.

    Args:
        in_channels: Channels of the coarser input.
        out_channels: Channels of the skip connection and of the output.
        residual: Residual or plain conv block.
        negative_slope: LeakyReLU slope.
    """

    def __init__(
        self, in_channels: int, out_channels: int, residual: bool, negative_slope: float
    ) -> None:
        super().__init__()
        self.up = nn.ConvTranspose3d(in_channels, out_channels, 2, stride=2)
        self.block = ConvBlock3d(2 * out_channels, out_channels, 1, residual, negative_slope)

    def forward(self, x: Tensor, skip: Tensor) -> Tensor:
        return self.block(torch.cat([self.up(x), skip], dim=1))


class Encoder3d(nn.Module):
    """U-Net encoder: one :class:`ConvBlock3d` per level, stride 2 from the second level on.

    Args:
        in_channels: Input channels.
        widths: Channels per level, shallowest first; ``len(widths) - 1`` downsamplings.
        residual: Residual or plain conv blocks.
        negative_slope: LeakyReLU slope.

    ``forward`` returns the feature map of every level, shallowest (full resolution) first; the
    last one is the bottleneck.
    """

    def __init__(
        self, in_channels: int, widths: Sequence[int], residual: bool, negative_slope: float
    ) -> None:
        super().__init__()
        chans = [in_channels, *widths]
        self.levels = nn.ModuleList(
            ConvBlock3d(chans[i], chans[i + 1], 1 if i == 0 else 2, residual, negative_slope)
            for i in range(len(widths))
        )

    def forward(self, x: Tensor) -> list[Tensor]:
        features: list[Tensor] = []
        for level in self.levels:
            x = level(x)
            features.append(x)
        return features


class Decoder3d(nn.Module):
    """U-Net decoder: from the bottleneck up, one :class:`UpBlock3d` per level.

    Args:
        widths: The encoder's widths, shallowest first.
        residual: Residual or plain conv blocks.
        negative_slope: LeakyReLU slope.

    ``forward(bottom, skips)`` takes the bottleneck ``(N, widths[-1], ...)`` and the skips
    ``[(N, widths[0], ...), ..., (N, widths[-2], ...)]`` (shallowest first) and returns
    ``(N, widths[0], Z, Y, X)``.
    """

    def __init__(self, widths: Sequence[int], residual: bool, negative_slope: float) -> None:
        super().__init__()
        self.depth = len(widths) - 1
        self.ups = nn.ModuleList(
            UpBlock3d(widths[i + 1], widths[i], residual, negative_slope)
            for i in reversed(range(self.depth))
        )

    def forward(self, bottom: Tensor, skips: list[Tensor]) -> Tensor:
        x = bottom
        for i, up in enumerate(self.ups):
            x = up(x, skips[self.depth - 1 - i])
        return x
