"""Random smooth fields for tissue texture: power-law noise on a coarse grid, upsampled linearly.

Breast parenchyma has a power-law spectrum, ``P(f) ~ 1 / f^beta`` (Burgess AE, Jacobson FL,
Judy PF. Human observer detection experiments with mammograms and power-law noise. Med Phys
2001;28:419-437, beta about 3 in mammograms). The phantom fakes such texture cheaply:

1. white Gaussian noise on a *coarse* grid (spacing ``h`` mm, typically 1.5-2 mm);
2. filtering in the Fourier domain with the amplitude response
   ``H(k) = (k0^2 + |A k|^2)^(-beta / 4)`` (so that the power falls as ``|k|^-beta`` above
   the roll-off ``k0 = 1 / correlation_mm``), where ``A = diag(anisotropy)`` stretches the
   texture along chosen axes (ducts and Cooper ligaments run towards the nipple). A slice of
   a 3-D field with exponent ``beta`` has the 2-D exponent ``beta - 1``, so the breast uses
   ``beta`` 3.4-4.2 in 3-D;
3. normalisation to zero mean and unit standard deviation;
4. separable linear upsampling to the voxel grid (:func:`upsample_linear`), which is much
   cheaper than filtering at full resolution and keeps sharp edges for later thresholding.

The exponent and anisotropy are picked by eye, not fitted to data.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import scipy.fft


def powerlaw_noise(
    shape_zyx: Sequence[int],
    spacing_zyx_mm: Sequence[float],
    rng: np.random.Generator,
    beta: float = 3.0,
    correlation_mm: float = 8.0,
    anisotropy_zyx: Sequence[float] = (1.0, 1.0, 1.0),
) -> np.ndarray:
    """Zero-mean, unit-variance noise with a power-law spectrum (float32).

    Args:
        shape_zyx: Output shape.
        spacing_zyx_mm: Grid spacing per axis in mm.
        rng: Random generator (consumed deterministically).
        beta: Spectral exponent of the power.
        correlation_mm: Roll-off length; structures larger than this are not favoured further.
        anisotropy_zyx: Frequency scale per axis; a value below 1 makes the texture longer
            along that axis.

    Returns:
        The field, ``float32``, mean 0 and standard deviation 1.
    """
    shape = tuple(int(s) for s in shape_zyx)
    white = rng.standard_normal(shape, dtype=np.float32)
    spectrum = scipy.fft.rfftn(white, workers=-1)
    k2 = np.zeros(spectrum.shape, dtype=np.float32)
    for axis, (n, h, a) in enumerate(zip(shape, spacing_zyx_mm, anisotropy_zyx, strict=True)):
        freq = (np.fft.rfftfreq(n, h) if axis == len(shape) - 1 else np.fft.fftfreq(n, h)) * a
        view = [1] * len(shape)
        view[axis] = freq.size
        k2 = k2 + (freq.astype(np.float32) ** 2).reshape(view)
    k0 = 1.0 / max(correlation_mm, 1e-3)
    response = (k2 + np.float32(k0 * k0)) ** np.float32(-beta / 4.0)
    response.flat[0] = 0.0  # zero mean
    spectrum *= response
    field = scipy.fft.irfftn(spectrum, s=shape, workers=-1).astype(np.float32, copy=False)
    std = float(field.std())
    if std > 0:
        field /= np.float32(std)
    return field


def coarse_shape(
    fine_shape: Sequence[int], fine_spacing: Sequence[float], coarse_mm: float
) -> tuple[int, ...]:
    """Coarse grid shape that covers a fine grid for :func:`upsample_linear` (+2 margin)."""
    return tuple(
        math.ceil(max(n - 1, 0) * s / coarse_mm) + 2
        for n, s in zip(fine_shape, fine_spacing, strict=True)
    )


def upsample_linear(
    coarse: np.ndarray,
    coarse_mm: float,
    fine_shape: Sequence[int],
    fine_spacing: Sequence[float],
) -> np.ndarray:
    """Separable linear interpolation of a coarse field onto a finer grid with the same origin.

    Fine voxel ``i`` on axis ``a`` sits at ``i * fine_spacing[a]`` mm, coarse voxel ``j`` at
    ``j * coarse_mm``. The axes are interpolated one at a time, the last (fastest) axis first,
    so that every step works on the smallest array possible.

    Returns:
        ``float32`` array of ``fine_shape``.
    """
    out = np.asarray(coarse, dtype=np.float32)
    for axis in reversed(range(out.ndim)):
        n = int(fine_shape[axis])
        pos = np.arange(n, dtype=np.float64) * (fine_spacing[axis] / coarse_mm)
        i0 = np.minimum(np.floor(pos).astype(np.intp), out.shape[axis] - 2)
        w = (pos - i0).astype(np.float32)
        view = [1] * out.ndim
        view[axis] = n
        w = w.reshape(view)
        lo = np.take(out, i0, axis=axis)
        hi = np.take(out, i0 + 1, axis=axis)
        hi -= lo
        hi *= w
        lo += hi
        out = lo
    return out


def smooth_field(
    shape_zyx: Sequence[int],
    spacing_zyx_mm: Sequence[float],
    rng: np.random.Generator,
    coarse_mm: float,
    beta: float = 3.0,
    correlation_mm: float = 8.0,
    anisotropy_zyx: Sequence[float] = (1.0, 1.0, 1.0),
) -> np.ndarray:
    """Power-law noise generated at ``coarse_mm`` and upsampled to ``shape_zyx`` (float32).

    The coarse spacing is never finer than the fine grid's finest spacing.
    """
    coarse_mm = max(coarse_mm, min(spacing_zyx_mm))
    shape_c = coarse_shape(shape_zyx, spacing_zyx_mm, coarse_mm)
    field = powerlaw_noise(shape_c, (coarse_mm,) * 3, rng, beta, correlation_mm, anisotropy_zyx)
    return upsample_linear(field, coarse_mm, shape_zyx, spacing_zyx_mm)
