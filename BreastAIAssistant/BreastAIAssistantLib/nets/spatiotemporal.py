"""Spatial-temporal transformer segmenter for breast tumours in multi-phase DCE-MRI."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from BreastAIAssistantLib.nets.blocks import Decoder3d, Encoder3d, check_patch_size, validate_widths
from BreastAIAssistantLib.nets.transformer import (
    PhaseAttentionPool,
    TimeEncoding,
    TransformerLayer,
    sincos_position_3d,
)


def phase_pairs(phases: Tensor) -> Tensor:
    """Build the per-phase input ``[phase, phase - pre]`` from raw phases.

    Args:
        phases: ``(B, T, Z, Y, X)`` normalised phases, phase 0 pre-contrast.

    Returns:
        ``(B, T, 2, Z, Y, X)``: channel 0 the phase, channel 1 its subtraction (zero for phase 0).
    """
    return torch.stack([phases, phases - phases[:, :1]], dim=2)


class SpatioTemporalSegmenter(nn.Module):
    """Tumour segmenter with a spatial and a temporal transformer over a phase-shared 3-D encoder.

    After Zhang et al., "A robust and efficient AI assistant for breast tumor segmentation from
    DCE-MRI via a spatial-temporal framework", Patterns 2023;4:100826. Each present phase ``i``,
    as the two channels ``[x_i, x_i - x_0]`` (:func:`phase_pairs`), goes through one residual
    U-Net encoder shared by all phases. At the bottleneck, the feature map of each phase becomes
    ``K = gz·gy·gx`` tokens; a spatial transformer attends over the tokens of each phase, then a
    temporal transformer over the phases at each token position. The phases are then fused, at
    the bottleneck and at every skip connection, by attention-weighted pooling over the present
    phases (:class:`~BreastAIAssistantLib.nets.transformer.PhaseAttentionPool`), and a residual
    U-Net decoder gives the tumour logits. The paper gates these by the whole-breast mask
    (:class:`~BreastAIAssistantLib.nets.unet.UNet3d`); that is the predictor's job.

    Changes from the paper:

    * **Absent phases take no part.** The encoder and the spatial transformer run only on the
      present phases (gathered into a compact batch), the temporal transformer masks absent
      phases out of attention (key mask), and every fusion over phases gives them weight 0, so
      the values in an absent slot (zeros, garbage, NaN) cannot change the output. The paper
      zero-fills absent phases, which the network still sees.
    * **Real acquisition times.** :class:`~BreastAIAssistantLib.nets.transformer.TimeEncoding`
      of the times in seconds relative to phase 0 (sinusoids of several periods and a linear
      ramp, through an MLP), added to every token of the phase, instead of the phase index.
    * **Any patch size.** A 3-D sinusoidal position encoding computed from the token grid at run
      time instead of a learned 72-token table (which fixes the patch at 32×96×96).
    * The two transformers are chained (spatial, then temporal) rather than run side by side,
      so temporal attention sees spatially contextualised tokens; ``spatial_layers=0`` or
      ``temporal_layers=0`` gives the paper's ablations. A residual connection adds the
      transformer output to the convolutional bottleneck.

    Shapes: ``x`` is ``(B, T, phase_channels, Z, Y, X)`` with ``T`` the largest number of phases
    in the batch (shorter studies padded, padding marked absent in ``phase_mask``); every spatial
    axis must be divisible by ``2 ** depth`` (``depth = len(widths) - 1``; 16 by default, e.g.
    32×96×96 as in the paper's code, 16×32×32, 48×96×80) and the bottleneck must keep more than
    one voxel; the token count is ``Z·Y·X / 8**depth`` (72 for 32×96×96). Output: logits
    ``(B, 1, Z, Y, X)``.

    Args:
        widths: Encoder/decoder channels per level, shallowest first; ``len(widths) - 1``
            downsamplings (4 in the paper). Default ``(8, 16, 32, 64, 128)``.
        embed_dim: Token length of the transformers; ``None`` = ``widths[-1]``, else a linear
            projection in and out. Divisible by ``num_heads`` and at least 6 (position
            encoding). Default None.
        num_heads: Attention heads in both transformers. Default 4.
        spatial_layers: Layers of the spatial transformer (12 in the paper). Default 2.
        temporal_layers: Layers of the temporal transformer (12 in the paper). Default 2.
        mlp_ratio: Transformer MLP width relative to ``embed_dim``. Default 2.0.
        dropout: Dropout in the transformers (training only), in [0, 1). Default 0.0.
        phase_channels: Channels per phase (2: ``[phase, phase - pre]``). Default 2.
        residual: Residual (True, as in the paper) or plain conv blocks. Default True.
        negative_slope: LeakyReLU slope. Default 0.01.

    Raises:
        ValueError: Invalid arguments; in ``forward``, inputs of the wrong shape or dtype, a
            patch not divisible by ``2 ** depth``, or phase 0 marked absent. (A scripted model
            raises ``torch.jit.Error`` carrying the same message.)
    """

    def __init__(
        self,
        widths: Sequence[int] = (8, 16, 32, 64, 128),
        embed_dim: int | None = None,
        num_heads: int = 4,
        spatial_layers: int = 2,
        temporal_layers: int = 2,
        mlp_ratio: float = 2.0,
        dropout: float = 0.0,
        phase_channels: int = 2,
        residual: bool = True,
        negative_slope: float = 0.01,
    ) -> None:
        super().__init__()
        widths = validate_widths(widths)
        dim = widths[-1] if embed_dim is None else embed_dim
        self._validate(dim, num_heads, spatial_layers, temporal_layers, mlp_ratio, dropout)
        if phase_channels < 1:
            raise ValueError(f"phase_channels must be >= 1; got {phase_channels}")
        if negative_slope < 0:
            raise ValueError(f"negative_slope must be >= 0; got {negative_slope}")
        self.depth = len(widths) - 1
        self.embed_dim = dim
        self.phase_channels = phase_channels
        self.encoder = Encoder3d(phase_channels, widths, residual, negative_slope)
        self.to_tokens, self.from_tokens = self._build_projections(widths[-1], dim)
        self.time_encoding = TimeEncoding(dim)
        self.spatial = self._build_transformer(dim, num_heads, spatial_layers, mlp_ratio, dropout)
        self.temporal = self._build_transformer(dim, num_heads, temporal_layers, mlp_ratio, dropout)
        self.token_norm = nn.LayerNorm(dim)
        self.skip_pools = nn.ModuleList(PhaseAttentionPool(w) for w in widths[:-1])
        self.bottom_pool = PhaseAttentionPool(widths[-1])
        self.decoder = Decoder3d(widths, residual, negative_slope)
        self.head = nn.Conv3d(widths[0], 1, 1)

    @staticmethod
    def _validate(
        dim: int,
        num_heads: int,
        spatial_layers: int,
        temporal_layers: int,
        mlp_ratio: float,
        dropout: float,
    ) -> None:
        if num_heads < 1:
            raise ValueError(f"num_heads must be >= 1; got {num_heads}")
        if dim < 6 or dim % num_heads != 0:
            raise ValueError(
                f"embed_dim must be >= 6 and divisible by num_heads={num_heads}; got {dim}"
            )
        if spatial_layers < 0 or temporal_layers < 0:
            raise ValueError(
                f"spatial_layers and temporal_layers must be >= 0; "
                f"got {spatial_layers}, {temporal_layers}"
            )
        if mlp_ratio <= 0:
            raise ValueError(f"mlp_ratio must be > 0; got {mlp_ratio}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1); got {dropout}")

    @staticmethod
    def _build_projections(channels: int, dim: int) -> tuple[nn.Module, nn.Module]:
        if channels == dim:
            return nn.Identity(), nn.Identity()
        return nn.Linear(channels, dim), nn.Linear(dim, channels)

    @staticmethod
    def _build_transformer(
        dim: int, num_heads: int, layers: int, mlp_ratio: float, dropout: float
    ) -> nn.ModuleList:
        return nn.ModuleList(
            TransformerLayer(dim, num_heads, mlp_ratio, dropout) for _ in range(layers)
        )

    @staticmethod
    def small_config() -> dict[str, Any]:
        """Constructor arguments of the CPU-friendly model: 1.98 M parameters, 7.8 MB scripted;
        ~0.5 s per 32×96×96 patch with 6 phases on 2 CPU cores (torch 2.13)."""
        return {
            "widths": [8, 16, 32, 64, 128],
            "num_heads": 4,
            "spatial_layers": 2,
            "temporal_layers": 2,
            "mlp_ratio": 2.0,
        }

    @staticmethod
    def paper_config() -> dict[str, Any]:
        """Constructor arguments at the paper's size: four downsamplings, ViT-Base transformers
        (768-wide tokens, 12 heads, MLP ratio 4) with 12 spatial and 12 temporal layers. The
        paper does not give the convolution widths; 32 to 512 follows the 3-D U-Net. 194 M
        parameters, most of them in the 24 transformer layers."""
        return {
            "widths": [32, 64, 128, 256, 512],
            "embed_dim": 768,
            "num_heads": 12,
            "spatial_layers": 12,
            "temporal_layers": 12,
            "mlp_ratio": 4.0,
            "dropout": 0.1,
        }

    def _check_inputs(self, x: Tensor, times_s: Tensor, phase_mask: Tensor) -> None:
        if x.dim() != 6 or x.shape[2] != self.phase_channels:
            raise ValueError(
                f"expected x of shape (B, T, {self.phase_channels}, Z, Y, X); got {list(x.shape)}"
            )
        if list(times_s.shape) != list(x.shape[:2]) or list(phase_mask.shape) != list(x.shape[:2]):
            raise ValueError(
                f"times_s and phase_mask must be (B, T) = {list(x.shape[:2])}; "
                f"got {list(times_s.shape)} and {list(phase_mask.shape)}"
            )
        if phase_mask.dtype != torch.bool:
            raise ValueError("phase_mask must be a bool tensor (True = phase present)")
        if not bool(phase_mask[:, 0].all()):
            raise ValueError("phase 0 (pre-contrast) must be present in every sample")
        check_patch_size(list(x.shape[3:]), self.depth)

    def forward(self, x: Tensor, times_s: Tensor, phase_mask: Tensor) -> Tensor:
        """Tumour logits ``(B, 1, Z, Y, X)``.

        Args:
            x: ``(B, T, phase_channels, Z, Y, X)`` per-phase inputs, built in preprocessing
                (:func:`phase_pairs`); absent slots are ignored whatever they hold.
            times_s: ``(B, T)`` acquisition times in seconds (relative to phase 0 or absolute;
                only differences to phase 0 are used); absent slots are ignored. For a study
                without times, pass the protocol's nominal times (e.g. 60 s × phase index).
            phase_mask: ``(B, T)`` bool, True = phase present; phase 0 must be present. At
                least one post-contrast phase is expected (a pre-only sample still runs and
                gives finite logits, but carries no enhancement; reject such studies upstream).

        Runs on the present phases only (a 6-phase slot with 3 present costs 3 encodings) and in
        channels-last layout internally; the output is a regular (B, 1, Z, Y, X) tensor.
        """
        self._check_inputs(x, times_s, phase_mask)
        b, t = x.shape[0], x.shape[1]
        present = torch.nonzero(phase_mask.reshape(-1)).squeeze(1)  # flat b * T + t
        compact = x.flatten(0, 1).index_select(0, present)
        # channels-last (one copy of the input): ~1.5x faster full-resolution convs on CPU
        compact = compact.contiguous(memory_format=torch.channels_last_3d)
        features = self.encoder(compact)  # per level: (P, C_l, ...), present phases only

        bottom = features[-1]
        grid = list(bottom.shape[2:])
        tokens = self.to_tokens(bottom.flatten(2).transpose(1, 2))  # (P, K, D)
        position = sincos_position_3d(grid, self.embed_dim, tokens.device).to(tokens.dtype)
        time = self.time_encoding(times_s, phase_mask).reshape(b * t, -1).index_select(0, present)
        tokens = self._attend(tokens + position + time[:, None, :], phase_mask, present)
        tokens = self.from_tokens(self.token_norm(tokens)).transpose(1, 2)
        bottom = bottom + tokens.reshape(bottom.shape)

        skips: list[Tensor] = []
        for level, pool in enumerate(self.skip_pools):
            skips.append(pool(features[level], phase_mask, present))
        fused = self.bottom_pool(bottom, phase_mask, present)
        return self.head(self.decoder(fused, skips))

    def _attend(self, tokens: Tensor, phase_mask: Tensor, present: Tensor) -> Tensor:
        """Spatial transformer within each present phase, then temporal transformer over the
        present phases at each token position; ``(P, K, D) -> (P, K, D)``."""
        for layer in self.spatial:
            tokens = layer(tokens, None)
        if len(self.temporal) == 0:
            return tokens
        b, t = phase_mask.shape[0], phase_mask.shape[1]
        k, d = tokens.shape[1], tokens.shape[2]
        padded = tokens.new_zeros([b * t, k, d]).index_copy(0, present, tokens)
        sequence = padded.reshape(b, t, k, d).transpose(1, 2).reshape(b * k, t, d)
        key_mask = phase_mask[:, None, :].expand(b, k, t).reshape(b * k, t)
        for layer in self.temporal:
            sequence = layer(sequence, key_mask)
        padded = sequence.reshape(b, k, t, d).transpose(1, 2).reshape(b * t, k, d)
        return padded.index_select(0, present)
