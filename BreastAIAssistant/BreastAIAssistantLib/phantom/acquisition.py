"""Acquisition of the phantom: voxel grid, phase timing, sequence, bias field, motion and noise.

Model and ranges (one draw per case from its seed; every value lands in case.json):

- **Grid.** ``"clinical"``: 448 x 448 x 160 voxels; in-plane spacing chosen so that the square
  field of view covers the body (clipped to 0.6-1.0 mm), slice thickness so that the slab covers
  both breasts (clipped to 1.0-2.5 mm). ``"small"``: 96 x 96 x 32 voxels on the same field of
  view (about 3.5 x 3.5 x 4.5 mm) for tests; the clinical ranges do not apply to it. Axial slices;
  ``i`` runs right to left, ``j`` anterior to posterior, ``k`` inferior to superior (LPS).
  Optionally oblique: the direction cosines are a random rotation of up to 15 degrees. The
  anatomy is built on the voxel axes, so an oblique case is a patient lying obliquely in LPS.
- **Timing.** 2-9 phases; phase 0 pre-contrast at 0 s; phase ``k >= 1`` at
  ``pause + k * dt`` with the temporal resolution ``dt`` in 45-120 s and an optional injection
  pause of 10-30 s; injection ``dt / 2 + U(0, 15)`` s after the pre-contrast scan.
- **Sequence.** 1.5 or 3 T; 3-D spoiled gradient echo, TR 3.5-6 ms, flip angle 10-18 degrees;
  gadoterate, gadobutrol, gadopentetate or gadobenate; fat suppression in half of the cases
  (residual fat signal 8-20 %).
- **Bias field** (coil sensitivity), multiplicative and smooth:
  ``B(x, y, z) = exp(sum_{i+j<=2} c_ij P_i(y') P_j(x') + g y' + d1 z' + d2 z'^2)`` with Legendre
  polynomials ``P`` of coordinates scaled to [-1, 1] and ``g < 0`` (brighter near the breast
  coil, anteriorly); typical spread +-10-25 %.
- **Motion.** Rigid translation of each post-contrast phase relative to the pre-contrast one,
  ``N(0, sigma)`` per axis with sigma (0.3, 0.45, 0.25) mm x a case factor in [0, 1.5], plus
  occasionally one 1-2 mm jump; applied by separable linear interpolation
  (:func:`.synthesis.shift_volume`), which also slightly blurs moved phases (partial volume at
  edges, as real motion does).
- **Noise.** Rician: the magnitude of the noise-free signal plus complex Gaussian noise with
  ``sigma = S_FGT,pre / SNR``, SNR 15-40 for pre-contrast glandular tissue (Gudbjartsson H,
  Patz S. The Rician distribution of noisy MRI data. MRM 1995;34:910-914). To keep clinical-size
  cases fast, the Gaussian samples (Box-Muller, :func:`box_muller`) come from one pool per case
  of 1.25 times the voxel count, and each
  phase and channel reads it at its own random offset: every voxel's noise is a different pool
  sample in every phase and channel, so the noise is white and independent voxel by voxel
  (different phases share samples only between distant voxels).
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk
from numpy.polynomial import legendre

from BreastAIAssistantLib.phantom.kinetics import RELAXIVITY
from BreastAIAssistantLib.phantom.shapes import random_rotation

#: Grid size (x, y, z) of the size presets.
SIZE_PRESETS: dict[str, tuple[int, int, int]] = {
    "small": (96, 96, 32),
    "clinical": (448, 448, 160),
}
#: In-plane spacing and slice thickness ranges (mm) of clinical-like grids.
INPLANE_RANGE_MM = (0.6, 1.0)
THICKNESS_RANGE_MM = (1.0, 2.5)
#: Temporal resolution range (s) and phase count range.
TEMPORAL_RESOLUTION_RANGE_S = (45.0, 120.0)
PHASE_RANGE = (2, 9)


@dataclass(frozen=True)
class Grid:
    """Voxel grid: size, spacing, origin and direction (LPS), as SimpleITK defines them.

    Positions inside the phantom are in *grid millimetres*: ``(i sx, j sy, k sz)``; LPS
    coordinates are ``origin + D (grid mm)``.
    """

    size_xyz: tuple[int, int, int]
    spacing_mm: tuple[float, float, float]
    origin_lps_mm: tuple[float, float, float]
    direction: tuple[float, ...]

    @property
    def shape_zyx(self) -> tuple[int, int, int]:
        """Array shape ``(z, y, x)``."""
        return self.size_xyz[::-1]

    @property
    def extent_mm(self) -> np.ndarray:
        """Grid-mm position of the last voxel centre (x, y, z)."""
        return (np.asarray(self.size_xyz) - 1) * np.asarray(self.spacing_mm)

    def to_lps(self, points_mm: np.ndarray) -> np.ndarray:
        """LPS coordinates of grid-mm points ``(..., 3)``."""
        rot = np.asarray(self.direction, dtype=float).reshape(3, 3)
        return np.asarray(self.origin_lps_mm) + np.asarray(points_mm) @ rot.T

    def box(self, lo_mm: np.ndarray, hi_mm: np.ndarray) -> tuple[slice, slice, slice] | None:
        """``(z, y, x)`` slices of the voxel centres inside ``[lo, hi]`` (grid mm), or ``None``."""
        spacing = np.asarray(self.spacing_mm)
        lo_i = np.maximum(np.ceil(np.asarray(lo_mm) / spacing - 1e-9).astype(int), 0)
        hi_i = np.minimum(
            np.floor(np.asarray(hi_mm) / spacing + 1e-9).astype(int) + 1, self.size_xyz
        )
        if np.any(hi_i <= lo_i):
            return None
        return tuple(slice(int(lo_i[a]), int(hi_i[a])) for a in (2, 1, 0))  # type: ignore[return-value]

    def coords(self, box: tuple[slice, slice, slice]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Broadcastable grid-mm coordinates ``(z, y, x)`` of a box's voxel centres (float32)."""
        sz, sy, sx = box
        x = (np.arange(sx.start, sx.stop) * self.spacing_mm[0]).astype(np.float32)
        y = (np.arange(sy.start, sy.stop) * self.spacing_mm[1]).astype(np.float32)
        z = (np.arange(sz.start, sz.stop) * self.spacing_mm[2]).astype(np.float32)
        return z[:, None, None], y[None, :, None], x[None, None, :]

    def points(self, box: tuple[slice, slice, slice]) -> np.ndarray:
        """Grid-mm points ``(nz, ny, nx, 3)`` (x, y, z) of a box's voxel centres (float64)."""
        z, y, x = (c.astype(np.float64) for c in self.coords(box))
        shape = (z.shape[0], y.shape[1], x.shape[2])
        return np.stack(np.broadcast_arrays(x, y, z), axis=-1).reshape(*shape, 3)

    def image(self, array_zyx: np.ndarray) -> sitk.Image:
        """Wrap a ``(z, y, x)`` array as a SimpleITK image on this grid (copies)."""
        image = sitk.GetImageFromArray(array_zyx)
        image.SetSpacing(self.spacing_mm)
        image.SetOrigin(self.origin_lps_mm)
        image.SetDirection(self.direction)
        return image

    def to_dict(self) -> dict[str, list[float]]:
        """JSON-ready form."""
        return {
            "size_xyz": list(self.size_xyz),
            "spacing_mm": [round(s, 6) for s in self.spacing_mm],
            "origin_lps_mm": [round(o, 4) for o in self.origin_lps_mm],
            "direction": [round(d, 8) for d in self.direction],
        }


def make_grid(
    size_xyz: tuple[int, int, int],
    fov_mm: tuple[float, float, float],
    clinical: bool,
    rng: np.random.Generator,
    oblique: bool,
    spacing_mm: tuple[float, float, float] | None = None,
) -> Grid:
    """Grid covering ``fov_mm`` (x/y in-plane, z slab), with clinical clipping when asked.

    Args:
        size_xyz: Voxels per axis.
        fov_mm: Field of view the anatomy needs (x, y, z) in mm.
        clinical: Clip spacings to the clinical ranges.
        rng: Random generator.
        oblique: Use a random oblique direction matrix (tilt up to 15 degrees).
        spacing_mm: Explicit spacing (overrides the field of view).
    """
    if spacing_mm is None:
        inplane = max(fov_mm[0] / size_xyz[0], fov_mm[1] / size_xyz[1])
        thickness = fov_mm[2] / size_xyz[2]
        if clinical:
            inplane = float(np.clip(inplane, *INPLANE_RANGE_MM))
            thickness = float(np.clip(thickness, *THICKNESS_RANGE_MM))
        spacing_mm = (round(inplane, 4), round(inplane, 4), round(thickness, 4))
    if oblique:
        axis = random_rotation(rng)[:, 0]
        angle = math.radians(rng.uniform(5.0, 15.0))
        k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
        rot = np.eye(3) + math.sin(angle) * k + (1 - math.cos(angle)) * (k @ k)
    else:
        rot = np.eye(3)
    centre_grid = (np.asarray(size_xyz) - 1) * np.asarray(spacing_mm) / 2
    centre_lps = rng.uniform(-20.0, 20.0, 3)
    origin = centre_lps - rot @ centre_grid
    return Grid(
        tuple(int(s) for s in size_xyz),  # type: ignore[arg-type]
        tuple(float(s) for s in spacing_mm),  # type: ignore[arg-type]
        tuple(float(o) for o in origin),  # type: ignore[arg-type]
        tuple(float(d) for d in rot.ravel()),
    )


def phase_times(n_phases: int, temporal_resolution_s: float, pause_s: float) -> tuple[float, ...]:
    """Acquisition times: 0 for the pre-contrast phase, ``pause + k dt`` after it."""
    return (0.0, *(pause_s + k * temporal_resolution_s for k in range(1, n_phases)))


@dataclass(frozen=True)
class SequenceDraw:
    """Random sequence settings of one case (see module docstring for the ranges)."""

    field_t: float
    tr_ms: float
    flip_deg: float
    agent: str
    fat_suppressed: bool
    fat_residual: float
    snr: float
    gain: float
    aif_scale: float


def draw_sequence(rng: np.random.Generator, fat_suppressed: bool | None) -> SequenceDraw:
    """Draw field strength, TR, flip angle, agent, fat suppression, SNR, gain and AIF scale."""
    field_t = float(rng.choice([1.5, 3.0]))
    agents = sorted(RELAXIVITY)
    fs = bool(rng.random() < 0.5) if fat_suppressed is None else bool(fat_suppressed)
    return SequenceDraw(
        field_t=field_t,
        tr_ms=float(rng.uniform(3.5, 6.0)),
        flip_deg=float(rng.uniform(10.0, 18.0)),
        agent=str(agents[int(rng.integers(len(agents)))]),
        fat_suppressed=fs,
        fat_residual=float(rng.uniform(0.08, 0.2)) if fs else 1.0,
        snr=float(rng.uniform(15.0, 40.0)),
        gain=float(12000.0 * rng.uniform(0.7, 1.4)),
        aif_scale=float(rng.uniform(0.85, 1.15)),
    )


def bias_field(
    grid: Grid, rng: np.random.Generator, strength: float = 1.0
) -> tuple[np.ndarray, np.ndarray, dict[str, object]]:
    """Smooth multiplicative bias field as ``(z,)`` and ``(y, x)`` float32 factors.

    Returns:
        ``(bias_z, bias_yx, description)``; the field is ``bias_z[:, None, None] * bias_yx``.
    """
    nx, ny, nz = grid.size_xyz
    xs = np.linspace(-1.0, 1.0, nx)
    ys = np.linspace(-1.0, 1.0, ny)
    zs = np.linspace(-1.0, 1.0, nz)
    coeff = np.zeros((3, 3))
    for i in range(3):
        for j in range(3 - i):
            if i + j:
                coeff[i, j] = rng.normal(0.0, 0.06)
    coil = float(rng.uniform(0.05, 0.15))
    z1, z2 = float(rng.normal(0.0, 0.04)), float(rng.uniform(0.0, 0.12))
    log_xy = legendre.leggrid2d(ys, xs, coeff) - coil * ys[:, None]
    log_z = z1 * zs - z2 * zs**2
    bias_z = np.exp(strength * log_z).astype(np.float32)
    bias_yx = np.exp(strength * log_xy).astype(np.float32)
    description = {
        "model": "exp(sum c_ij P_i(y) P_j(x) - g y + d1 z - d2 z^2), coordinates in [-1, 1]",
        "legendre_yx": np.round(coeff * strength, 5).tolist(),
        "coil_gradient_g": round(coil * strength, 5),
        "z_terms_d1_d2": [round(z1 * strength, 5), round(z2 * strength, 5)],
        "range": [
            round(float(bias_z.min() * bias_yx.min()), 4),
            round(float(bias_z.max() * bias_yx.max()), 4),
        ],
    }
    return bias_z, bias_yx, description


def draw_motion(
    n_phases: int, spacing_mm: tuple[float, float, float], rng: np.random.Generator, amount: float
) -> list[tuple[float, float, float]]:
    """Translation (x, y, z) in mm of each phase; phase 0 is the reference (no motion)."""
    sigma = np.array([0.3, 0.45, 0.25]) * amount
    shifts = [(0.0, 0.0, 0.0)]
    jump = int(rng.integers(1, n_phases)) if rng.random() < 0.15 * amount else -1
    for k in range(1, n_phases):
        t = rng.normal(0.0, 1.0, 3) * sigma
        if k == jump:
            direction = rng.normal(0.0, 1.0, 3)
            t += direction / np.linalg.norm(direction) * rng.uniform(1.0, 2.0)
        shifts.append(tuple(float(v) for v in np.round(t, 4)))
    return shifts


def box_muller(out: np.ndarray, rng: np.random.Generator, chunk: int = 1 << 18) -> np.ndarray:
    """Fill a float32 array with standard normal samples (Box-Muller, in cache-sized chunks).

    ``n1 = r cos(t), n2 = r sin(t)`` with ``r = sqrt(-2 ln(1 - u1))``, ``t = 2 pi u2`` for
    uniform ``u1, u2`` (Box GEP, Muller ME. Ann Math Stat 1958;29:610-611). About twice as fast
    as NumPy's ziggurat for float32 here; float32 uniforms truncate the tails at 5.8 sigma.
    """
    half = chunk // 2
    u = np.empty(chunk, np.float32)
    r = np.empty(half, np.float32)
    theta = np.empty(half, np.float32)
    two_pi = np.float32(2.0 * np.pi)
    for start in range(0, out.size, chunk):
        m = min(chunk, out.size - start)
        h = (m + 1) // 2
        rng.random(2 * h, dtype=np.float32, out=u[: 2 * h])
        u1, u2, rr, tt = u[:h], u[h : 2 * h], r[:h], theta[:h]
        np.subtract(np.float32(1.0), u1, out=u1)
        np.log(u1, out=rr)
        rr *= np.float32(-2.0)
        np.sqrt(rr, out=rr)
        np.multiply(u2, two_pi, out=tt)
        block = out[start : start + m]
        np.cos(tt, out=u1)
        np.multiply(rr, u1, out=block[:h])
        if m > h:
            np.sin(tt[: m - h], out=u1[: m - h])
            np.multiply(rr[: m - h], u1[: m - h], out=block[h:m])
    return out


class NoisePool:
    """A pool of Gaussian samples read at per-phase offsets (see module docstring).

    Args:
        n_voxels: Voxels per phase.
        sigma: Noise standard deviation per channel (the pool is pre-scaled by it).
        rng: Random generator that seeds the pool chunks and draws offsets.
        n_threads: Threads used to fill the pool (the result does not depend on it).
    """

    #: Fixed number of chunks, each with its own seed, so that threads do not change the result.
    CHUNKS = 8

    def __init__(
        self, n_voxels: int, sigma: float, rng: np.random.Generator, n_threads: int = 1
    ) -> None:
        self.n_voxels = int(n_voxels)
        self.margin = max(self.n_voxels // 4, 4096)
        total = self.n_voxels + self.margin
        seeds = rng.integers(0, 2**63 - 1, self.CHUNKS)
        bounds = np.linspace(0, total, self.CHUNKS + 1).astype(int)
        self.pool = np.empty(total, dtype=np.float32)
        scale = np.float32(sigma)

        def fill(c: int) -> None:
            part = self.pool[bounds[c] : bounds[c + 1]]
            box_muller(part, np.random.default_rng(int(seeds[c])))
            part *= scale

        if n_threads > 1:
            with ThreadPoolExecutor(max_workers=n_threads) as pool:
                list(pool.map(fill, range(self.CHUNKS)))
        else:
            for c in range(self.CHUNKS):
                fill(c)
        self._rng = rng

    def offsets(self, n: int) -> np.ndarray:
        """``n`` distinct offsets into the pool."""
        return self._rng.choice(self.margin, size=n, replace=False)

    def view(self, offset: int, shape: tuple[int, ...]) -> np.ndarray:
        """Read-only pool slice of ``n_voxels`` samples starting at ``offset``, reshaped."""
        return self.pool[int(offset) : int(offset) + self.n_voxels].reshape(shape)


def add_rician_noise(
    clean: np.ndarray, real_noise: np.ndarray, imag_noise: np.ndarray, scratch: np.ndarray | None
) -> np.ndarray:
    """In place: ``clean <- sqrt((clean + n_r)^2 + n_i^2)`` (float32). Returns ``clean``."""
    clean += real_noise
    np.square(clean, out=clean)
    scratch = np.square(imag_noise, out=scratch)
    clean += scratch
    np.sqrt(clean, out=clean)
    return clean
