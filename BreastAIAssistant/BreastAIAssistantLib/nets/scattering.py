"""2-D wavelet scattering transform in plain torch (scriptable; kymatio does not work here).

Mallat S., "Group invariant scattering", Commun. Pure Appl. Math. 2012;65:1331-1398; Bruna J,
Mallat S., "Invariant scattering convolution networks", IEEE TPAMI 2013;35:1872-1886.

Filters are built once in the spatial domain (so any image size works without re-planning FFTs):

* Morlet wavelets ``psi_{j,l}(u) = G_{j,l}(u) (exp(i xi_j u'_1) - beta_{j,l})`` with the rotated
  coordinate ``u' = R(-theta_l) u``, ``theta_l = pi l / L``, an elliptic Gaussian envelope
  ``G`` of width ``sigma_j = 0.8 * 2**j`` along the wave and ``sigma_j * L / 4`` across it
  (slant ``4 / L``), centre frequency ``xi_j = 3 pi / 4 / 2**j``, and ``beta`` making the
  wavelet's mean exactly zero; each wavelet is divided by its envelope's L1 norm.
* The low-pass ``phi_J``: an isotropic Gaussian of width ``0.8 * 2**J`` with unit sum.

Coefficients: order 0 ``x * phi_J``; order 1 ``|x * psi_{j,l}| * phi_J``; order 2
``||x * psi_{j1,l1}| * psi_{j2,l2}| * phi_J`` for ``j2 > j1``; all subsampled by ``2**J``.
Channels out per input channel: ``1 + J L (+ L**2 J (J - 1) / 2 for order 2)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _grid(size: int) -> tuple[Tensor, Tensor]:
    r = torch.arange(size, dtype=torch.float64) - size // 2
    yy, xx = torch.meshgrid(r, r, indexing="ij")
    return yy, xx


def morlet_2d(size: int, sigma: float, theta: float, xi: float, slant: float) -> Tensor:
    """Complex Morlet filter (``size × size``, zero mean) as a complex128 tensor."""
    yy, xx = _grid(size)
    c, s = math.cos(theta), math.sin(theta)
    along = c * xx + s * yy
    across = -s * xx + c * yy
    envelope = torch.exp(-(along**2 + (slant * across) ** 2) / (2 * sigma**2))
    wave = torch.exp(1j * xi * along)
    beta = (envelope * wave).sum() / envelope.sum()
    psi = envelope * (wave - beta)
    return psi / envelope.sum()


def gaussian_2d(size: int, sigma: float) -> Tensor:
    """Isotropic Gaussian (``size × size``) with unit sum, float64."""
    yy, xx = _grid(size)
    g = torch.exp(-(xx**2 + yy**2) / (2 * sigma**2))
    return g / g.sum()


class _ScaleBank(nn.Module):
    """The ``L`` Morlet wavelets of one scale as real/imaginary convolution kernels."""

    def __init__(self, j: int, L: int) -> None:
        super().__init__()
        sigma = 0.8 * 2**j
        # the envelope is 1/slant = L/4 times wider across the wave than along it
        size = 2 * math.ceil(3 * sigma * max(1.0, L / 4)) + 1
        kernels = []
        for l_ in range(L):
            w = morlet_2d(size, sigma, math.pi * l_ / L, 3 * math.pi / 4 / 2**j, 4.0 / L)
            kernels.extend([w.real, w.imag])
        self.register_buffer("kernels", torch.stack(kernels).unsqueeze(1).float(),
                             persistent=False)
        self.L = L

    def forward(self, x: Tensor) -> Tensor:
        """``|x * psi_{j,l}|`` for ``x (M, 1, H, W)``: ``(M, L, H, W)``.

        Computed with FFTs (the coarse wavelets are large): the padded image's spectrum times
        the conjugate kernel spectrum is the cross-correlation that ``conv2d`` computes, and the
        first ``H × W`` outputs are exactly its valid part (no wrap-around).
        """
        k = self.kernels.shape[-1]
        pad = k // 2
        h, w = x.shape[-2], x.shape[-1]
        mode = "reflect" if pad < h and pad < w else "constant"
        xp = F.pad(x, (pad, pad, pad, pad), mode=mode)
        size = [xp.shape[-2], xp.shape[-1]]
        kernels = self.kernels.view(self.L, 2, k, k)
        psi = torch.complex(kernels[:, 0], kernels[:, 1])
        spectrum = torch.fft.fft2(xp) * torch.conj(torch.fft.fft2(psi, s=size)).unsqueeze(0)
        y = torch.fft.ifft2(spectrum)[:, :, :h, :w]
        return torch.sqrt(y.real**2 + y.imag**2 + 1e-12)


class _LowPass(nn.Module):
    """``x * phi_J`` subsampled by ``2**J`` for ``x (M, K, H, W)``."""

    def __init__(self, J: int) -> None:
        super().__init__()
        sigma = 0.8 * 2**J
        low = gaussian_2d(2 * math.ceil(3 * sigma) + 1, sigma)
        self.register_buffer("low", low[None, None].float(), persistent=False)
        self.step = 1 << J

    def forward(self, x: Tensor) -> Tensor:
        m, k, h, w = x.shape
        pad = self.low.shape[-1] // 2
        mode = "reflect" if pad < h and pad < w else "constant"
        flat = F.pad(x.reshape(m * k, 1, h, w), (pad, pad, pad, pad), mode=mode)
        y = F.conv2d(flat, self.low, stride=self.step)
        return y.view(m, k, y.shape[2], y.shape[3])


def scattering_channels(J: int, L: int, order: int) -> int:
    """Coefficients per input channel: ``1 + J L (+ L**2 J (J - 1) / 2 for order 2)``."""
    return 1 + J * L + (L * L * J * (J - 1) // 2 if order == 2 else 0)


class Scattering2d(nn.Module):
    """Scattering transforms of every channel of ``(N, C, H, W)`` images at one or more ``J``.

    The wavelet moduli are computed once for the largest ``J``; the transform at a smaller
    ``J`` uses the subset with ``j < J`` (order 1) or ``j1 < j2 < J`` (order 2) and its own
    low-pass, which is exactly the transform computed alone at that ``J``.

    Args:
        J: Largest number of scales, or a sequence of ``J`` values to output (e.g. ``(2, 3)``
            as in DMIF-Net's multi-scale invariant branch).
        L: Orientations per scale.
        order: 1 or 2.

    ``forward`` returns a list with one tensor per ``J`` (ascending):
    ``(N, C * K_J, H / 2**J, W / 2**J)``, ``K_J = scattering_channels(J, L, order)``, channels
    ordered low-pass, order 1 by (j, l), order 2 by (j1, l1, j2, l2). ``H, W`` must be divisible
    by ``2**max(J)``.
    """

    def __init__(self, J: int | Sequence[int] = 2, L: int = 8, order: int = 2) -> None:
        super().__init__()
        scales = sorted({int(J)} if isinstance(J, int) else {int(j) for j in J})
        if not scales or scales[0] < 1 or L < 1 or order not in (1, 2):
            raise ValueError(f"need J >= 1, L >= 1 and order 1 or 2; got {J}, {L}, {order}")
        self.scales = scales
        self.J, self.L, self.order = scales[-1], L, order
        self.step = 1 << self.J
        self.banks = nn.ModuleList(_ScaleBank(j, L) for j in range(self.J))
        self.lowpass = nn.ModuleList(_LowPass(j) for j in scales)
        self.out_channels = [scattering_channels(j, L, order) for j in scales]

    def forward(self, x: Tensor) -> list[Tensor]:
        n, c, h, w = x.shape
        if h % self.step != 0 or w % self.step != 0:
            raise ValueError(f"image size {h}x{w} is not divisible by 2**J = {self.step}")
        m = n * c
        flat = x.reshape(m, 1, h, w)
        first: list[Tensor] = []
        for first_bank in self.banks:
            first.append(first_bank(flat))
        second: list[Tensor] = []  # per j1: (m, L, J - j1 - 1, L, H, W) over j2 > j1
        if self.order == 2:
            for j1 in range(self.J - 1):
                u1 = first[j1].reshape(m * self.L, 1, h, w)
                per_j2: list[Tensor] = []
                for j2, second_bank in enumerate(self.banks):
                    if j2 > j1:
                        per_j2.append(second_bank(u1).view(m, self.L, 1, self.L, h, w))
                second.append(torch.cat(per_j2, dim=2))
        outputs: list[Tensor] = []
        for index, low in enumerate(self.lowpass):
            J_out = self.scales[index]
            parts = [flat, torch.cat(first[:J_out], dim=1)]
            if self.order == 2:
                for j1 in range(J_out - 1):
                    keep = second[j1][:, :, : J_out - j1 - 1]
                    parts.append(keep.reshape(m, -1, h, w))
            out = low(torch.cat(parts, dim=1))
            outputs.append(out.reshape(n, c * self.out_channels[index], out.shape[2],
                                       out.shape[3]))
        return outputs
