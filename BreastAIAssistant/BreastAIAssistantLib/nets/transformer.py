"""Transformer pieces of the spatial-temporal segmenter: masked self-attention, a pre-norm
transformer layer, a 3-D sinusoidal position encoding computed from the token grid at run time,
an acquisition-time encoding, and attention-weighted pooling over the present phases.

All are TorchScript-compatible and device-agnostic (buffers and run-time tensors follow the
input's device and dtype).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

#: Score given to absent phases before the softmax over phases (finite, so never NaN).
_ABSENT_SCORE = -1.0e9


class MaskedSelfAttention(nn.Module):
    """Multi-head self-attention (Vaswani et al., NeurIPS 2017) with an optional key mask,
    computed with :func:`torch.nn.functional.scaled_dot_product_attention`.

    Args:
        dim: Token length (channels); divisible by ``num_heads``.
        num_heads: Attention heads.
        dropout: Dropout on the attention weights and the output projection (training only).

    ``forward(x, key_mask)``: ``x`` is ``(N, L, dim)``; ``key_mask`` is ``None`` or a bool
    ``(N, L)`` tensor, True = the token may be attended to. A row whose keys are all masked would
    give NaN; such rows (never produced by the segmenter, whose phase 0 is always present) attend
    to every key instead, so the output stays finite.
    """

    def __init__(self, dim: int, num_heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.dropout = dropout
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(dropout)

    def forward(self, x: Tensor, key_mask: Tensor | None = None) -> Tensor:
        n, length, dim = x.shape
        qkv = self.qkv(x).reshape(n, length, 3, self.num_heads, dim // self.num_heads)
        qkv = qkv.permute(2, 0, 3, 1, 4)  # (3, N, heads, L, head_dim)
        attn_mask: Tensor | None = None
        if key_mask is not None:
            guarded = key_mask | ~key_mask.any(dim=1, keepdim=True)
            attn_mask = guarded[:, None, None, :]
        out = F.scaled_dot_product_attention(
            qkv[0],
            qkv[1],
            qkv[2],
            attn_mask=attn_mask,
            dropout_p=self.dropout if self.training else 0.0,
        )
        out = out.transpose(1, 2).reshape(n, length, dim)
        return self.proj_drop(self.proj(out))


class TransformerLayer(nn.Module):
    """Pre-norm ViT encoder layer (Dosovitskiy et al., ICLR 2021): ``x + MSA(LN(x))`` then
    ``x + MLP(LN(x))`` with a GELU MLP of ``mlp_ratio * dim`` hidden units.

    Args:
        dim: Token length.
        num_heads: Attention heads.
        mlp_ratio: Hidden width of the MLP relative to ``dim``.
        dropout: Dropout in attention and MLP (training only).
    """

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, dropout: float) -> None:
        super().__init__()
        hidden = max(1, round(dim * mlp_ratio))
        self.norm1 = nn.LayerNorm(dim)
        self.attn = MaskedSelfAttention(dim, num_heads, dropout)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(
            nn.Linear(dim, hidden),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, dim),
            nn.Dropout(dropout),
        )

    def forward(self, x: Tensor, key_mask: Tensor | None = None) -> Tensor:
        x = x + self.attn(self.norm1(x), key_mask)
        return x + self.mlp(self.norm2(x))


def _sincos(positions: Tensor, n_frequencies: int, base: float) -> Tensor:
    """``[sin(p ω_k), cos(p ω_k)]`` for ``ω_k = base ** (-k / n)``; ``(L,) -> (L, 2n)``."""
    k = torch.arange(n_frequencies, dtype=torch.float32, device=positions.device)
    omega = torch.exp(-math.log(base) * k / n_frequencies)
    angles = positions[:, None] * omega[None, :]
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)


def sincos_position_3d(
    grid_zyx: list[int], dim: int, device: torch.device, base: float = 100.0
) -> Tensor:
    """Fixed 3-D sinusoidal position encoding of a ``(gz, gy, gx)`` token grid, ``(K, dim)``.

    Each axis gets ``2 * (dim // 6)`` channels (sin and cos of the token coordinate at
    ``dim // 6`` geometric frequencies from 1 rad/token down to ``1/base`` rad/token), the last
    ``dim % 6`` channels are zero. Coordinates are centred on the grid (``i - (g - 1) / 2``), so a
    larger patch extends the encoding symmetrically. Computed at run time, so any grid works (the
    paper's learned 72-token table fixes the patch at 32×96×96). Float32, on ``device``.
    """
    n_freq = dim // 6
    parts: list[Tensor] = []
    for axis in range(3):
        size = grid_zyx[axis]
        coords = torch.arange(size, dtype=torch.float32, device=device) - (size - 1) / 2.0
        enc = _sincos(coords, n_freq, base)  # (size, 2 n_freq)
        shape = [1, 1, 1, 2 * n_freq]
        shape[axis] = size
        parts.append(enc.reshape(shape).expand(grid_zyx[0], grid_zyx[1], grid_zyx[2], 2 * n_freq))
    pos = torch.cat(parts, dim=3).reshape(-1, 6 * n_freq)
    return F.pad(pos, [0, dim - 6 * n_freq])


class TimeEncoding(nn.Module):
    """Encoding of the real acquisition time of each phase, ``(B, T) s -> (B, T, dim)``.

    Times are taken relative to phase 0 (pre-contrast), in seconds; absent phases get time 0
    (their encoding is computed but never used). Features: ``t / 600`` (a linear ramp in units of
    ten minutes) and ``sin, cos(2π t / P_k)`` for ``n_frequencies`` periods ``P_k`` spaced
    geometrically from ``min_period_s`` to ``max_period_s``; a two-layer GELU MLP maps them to
    ``dim``. Unlike a phase-index embedding, this tells a 45-s protocol from a 90-s one and
    works for any number of phases.

    Args:
        dim: Output channels.
        n_frequencies: Number of periods. Default 8.
        min_period_s: Shortest period, seconds. Default 30.
        max_period_s: Longest period, seconds. Default 1920 (32 min).
    """

    def __init__(
        self,
        dim: int,
        n_frequencies: int = 8,
        min_period_s: float = 30.0,
        max_period_s: float = 1920.0,
    ) -> None:
        super().__init__()
        periods = torch.logspace(
            math.log10(min_period_s), math.log10(max_period_s), n_frequencies, dtype=torch.float32
        )
        self.register_buffer("angular_per_s", 2.0 * math.pi / periods)
        self.mlp = nn.Sequential(
            nn.Linear(2 * n_frequencies + 1, dim), nn.GELU(), nn.Linear(dim, dim)
        )

    def forward(self, times_s: Tensor, phase_mask: Tensor) -> Tensor:
        times_s = times_s.to(self.angular_per_s.dtype)
        relative = torch.where(phase_mask, times_s - times_s[:, :1], torch.zeros_like(times_s))
        angles = relative[:, :, None] * self.angular_per_s
        features = torch.cat(
            [relative[:, :, None] / 600.0, torch.sin(angles), torch.cos(angles)], dim=2
        )
        return self.mlp(features)


class PhaseAttentionPool(nn.Module):
    """Fuse per-phase feature maps into one, weighting each voxel's phases by a softmax over the
    present phases of a learned score (a linear function of the voxel's channels, i.e. a 1×1×1
    convolution, computed as a matrix product: ~10× faster than a 1-output convolution on CPU);
    absent phases get weight 0.

    The score starts at zero, so an untrained pool is the masked mean over present
    phases. Works on the compact list of present phases (absent ones are never stored).

    Args:
        channels: Channels of the feature maps.

    ``forward(features, phase_mask, present_index)``: ``features`` is ``(P, C, Z, Y, X)`` for the
    ``P`` present phases in batch-major order (as ``torch.nonzero(phase_mask.reshape(-1))``
    lists them), ``phase_mask`` the ``(B, T)`` bool mask, ``present_index`` the ``(P,)`` flat
    ``b * T + t`` index of each present phase. Returns ``(B, C, Z, Y, X)``.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.absent_score = _ABSENT_SCORE
        self.score = nn.Linear(channels, 1)
        nn.init.zeros_(self.score.weight)
        nn.init.zeros_(self.score.bias)

    def forward(self, features: Tensor, phase_mask: Tensor, present_index: Tensor) -> Tensor:
        b, t = phase_mask.shape[0], phase_mask.shape[1]
        # (P, 1, Z, Y, X); softmax in float32 (AMP-safe)
        scores = self.score(features.movedim(1, -1)).movedim(-1, 1).float()
        flat = scores.reshape(scores.shape[0], -1)
        padded = torch.full(
            [b * t, flat.shape[1]], self.absent_score, dtype=flat.dtype, device=flat.device
        )
        padded = padded.index_copy(0, present_index, flat).reshape(b, t, -1)
        weights = torch.softmax(padded, dim=1).reshape(b * t, -1).index_select(0, present_index)
        weighted = features * weights.reshape(scores.shape).to(features.dtype)
        # present phases are in batch-major order: sum each sample's run of rows
        counts = phase_mask.sum(dim=1)
        fused: list[Tensor] = []
        start = 0
        for i in range(b):
            n = int(counts[i])
            fused.append(weighted.narrow(0, start, n).sum(dim=0))
            start += n
        return torch.stack(fused)
