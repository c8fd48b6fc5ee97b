"""Whole-breast 3-D U-Net: pre-contrast patch in, breast logits out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import Tensor, nn

from BreastAIAssistantLib.nets.blocks import Decoder3d, Encoder3d, check_patch_size, validate_widths


class UNet3d(nn.Module):
    """3-D U-Net for the whole-breast mask, from the pre-contrast phase.

    The Patterns paper (Zhang et al., "A robust and efficient AI assistant for breast tumor
    segmentation from DCE-MRI via a spatial-temporal framework", Patterns 2023;4:100826) localises
    the breasts with a U-Net (Ronneberger et al., MICCAI 2015; 3-D: Çiçek et al., MICCAI 2016)
    with four downsampling and four upsampling levels on the pre-contrast image, trained with a
    Dice loss; its tumour mask is then gated by this breast mask. Here each level is one
    :class:`~BreastAIAssistantLib.nets.blocks.ConvBlock3d` (two 3×3×3 conv + instance norm +
    LeakyReLU, residual by default), downsampling by stride-2 convolution and upsampling by 2×2×2
    transposed convolution, skips concatenated.

    Input ``(B, in_channels, Z, Y, X)`` (normalised intensity, any spacing the manifest fixes;
    1 mm isotropic in the paper); every spatial axis must be divisible by ``2 ** depth``
    (``depth = len(widths) - 1``; 16 for the default four downsamplings, e.g. 48×128×128) and the
    coarsest level must keep more than one voxel. Output: logits ``(B, out_channels, Z, Y, X)``,
    no activation: sigmoid for ``out_channels=1``, softmax over channels for 2 classes.

    Args:
        in_channels: Input channels (1: the pre-contrast phase). Default 1.
        out_channels: Output channels (1: breast logit; 2: background/breast logits). Default 1.
        widths: Channels per resolution level, shallowest first; ``len(widths) - 1`` is the
            number of downsamplings. Default ``(16, 32, 64, 128, 256)``.
        residual: Residual conv blocks (True) or plain double-conv blocks (False). Default True.
        negative_slope: LeakyReLU slope for negative inputs. Default 0.01.

    Raises:
        ValueError: Non-positive channel counts, fewer than two levels; in ``forward``, a patch
            whose axes are not divisible by ``2 ** depth``.
    """

    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int = 1,
        widths: Sequence[int] = (16, 32, 64, 128, 256),
        residual: bool = True,
        negative_slope: float = 0.01,
    ) -> None:
        super().__init__()
        if in_channels < 1:
            raise ValueError(f"in_channels must be >= 1; got {in_channels}")
        if out_channels < 1:
            raise ValueError(f"out_channels must be >= 1; got {out_channels}")
        if negative_slope < 0:
            raise ValueError(f"negative_slope must be >= 0; got {negative_slope}")
        widths = validate_widths(widths)
        self.in_channels = in_channels
        self.depth = len(widths) - 1
        self.encoder = Encoder3d(in_channels, widths, residual, negative_slope)
        self.decoder = Decoder3d(widths, residual, negative_slope)
        self.head = nn.Conv3d(widths[0], out_channels, 1)

    @staticmethod
    def small_config() -> dict[str, Any]:
        """Constructor arguments of the CPU-friendly model: 1.17 M parameters, 4.6 MB scripted;
        ~0.2 s per 32×96×96 patch on 2 CPU cores (torch 2.13)."""
        return {"in_channels": 1, "out_channels": 1, "widths": [8, 16, 32, 64, 96]}

    @staticmethod
    def paper_config() -> dict[str, Any]:
        """Constructor arguments at the 3-D U-Net's usual size (Çiçek et al.; 22.9 M parameters);
        the Patterns paper gives the depth (four downsamplings) but not the widths."""
        return {"in_channels": 1, "out_channels": 1, "widths": [32, 64, 128, 256, 512]}

    def forward(self, x: Tensor) -> Tensor:
        """Breast logits ``(B, out_channels, Z, Y, X)`` for ``x`` ``(B, in_channels, Z, Y, X)``."""
        if x.dim() != 5 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"expected input (B, {self.in_channels}, Z, Y, X); got {list(x.shape)}"
            )
        check_patch_size(list(x.shape[2:]), self.depth)
        features = self.encoder(x)
        return self.head(self.decoder(features[-1], features[:-1]))
