"""Analytic lesion shapes whose maximum 3-D diameter and volume are known without voxels.

Two families, both in the grid's millimetre frame (``x, y, z`` = index times spacing):

**Star-shaped solids** (:class:`StarShape`), the masses and cysts. A point ``p`` is inside when
``|p - c| <= r(u)`` with ``u = (p - c) / |p - c|`` and the radial function::

    r(u) = s [ r_E(u) (1 + sum_j c_j exp(kappa_j (u . d_j - 1)))
               + sum_i L_i (1 - x_i^2)^(1/4) ],      x_i = min(1, (1 - u . e_i) / (1 - cos w_i))

- ``r_E(u) = (sum_k (u . q_k)^2 / a_k^2)^(-1/2)``, the radial function of an ellipsoid with
  semi-axes ``a_k`` along the orthonormal axes ``q_k``;
- von Mises-Fisher bumps (direction ``d_j``, amplitude ``c_j``, concentration ``kappa_j``)
  give lobulation (smooth: oval/round; many and strong: irregular);
- spicules: caps of axis ``e_i``, length ``L_i`` (mm) and angular half-width ``w_i``
  (``x_i`` is about ``(angle / w_i)^2``); the quartic-root profile gives them a blunt tip at
  ``u = e_i``, so that a spicule one voxel wide is resolved to within half a voxel of its end;
- ``s`` scales the whole shape, so a shape can be sized to an exact target diameter.

The maximum diameter ``max |p - q|`` over surface points is found from the surface sampled on
a Fibonacci sphere (plus every spicule, bump and ellipsoid axis, where extremes sit), reduced to
its convex hull, and then refined by a shrinking local search around the best pair; the result
is exact to well below 0.01 mm for the sizes used. The volume is the quadrature
``V = (1/3) sum_n r(u_n)^3 (4 pi / N)`` on a dense Fibonacci sphere.

**Unions of balls** (:class:`BallUnion`), the non-mass enhancements: the maximum diameter of a
union of balls is exactly ``max_{i,j} |c_i - c_j| + r_i + r_j``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy.spatial import ConvexHull, QhullError
from scipy.spatial.distance import pdist

#: Directions used to find the diameter before refinement.
DIAMETER_SAMPLES = 2000
#: Directions used for the volume quadrature.
VOLUME_SAMPLES = 40000


def fibonacci_sphere(n: int) -> np.ndarray:
    """``n`` nearly uniform unit vectors (golden-angle spiral), shape ``(n, 3)`` float64."""
    i = np.arange(n, dtype=np.float64) + 0.5
    z = 1.0 - 2.0 * i / n
    rho = np.sqrt(np.maximum(0.0, 1.0 - z * z))
    phi = math.pi * (1.0 + math.sqrt(5.0)) * i
    return np.stack([rho * np.cos(phi), rho * np.sin(phi), z], axis=1)


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    """A uniformly random 3x3 rotation matrix (QR of a Gaussian matrix, sign-fixed)."""
    q, r = np.linalg.qr(rng.standard_normal((3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


def _farthest_pair(points: np.ndarray) -> tuple[int, int, float]:
    """Indices and distance of the farthest pair (searched on the convex hull)."""
    try:
        candidates = ConvexHull(points).vertices
    except (QhullError, ValueError):
        candidates = np.arange(len(points))
    if len(candidates) < 2:
        return 0, 0, 0.0
    d2 = pdist(points[candidates], "sqeuclidean")
    k = int(np.argmax(d2))
    n = len(candidates)
    # condensed index k -> (i, j), i < j
    i = int(n - 2 - np.floor(np.sqrt(-8 * k + 4 * n * (n - 1) - 7) / 2.0 - 0.5))
    j = int(k + i + 1 - n * (n - 1) // 2 + (n - i) * ((n - i) - 1) // 2)
    return int(candidates[i]), int(candidates[j]), float(np.sqrt(d2[k]))


def _cone(u: np.ndarray, angle: float, n: int, rng: np.random.Generator) -> np.ndarray:
    """``u`` plus ``n`` unit vectors within ``angle`` radians of it."""
    helper = np.array([1.0, 0.0, 0.0]) if abs(u[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    e1 = np.cross(u, helper)
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(u, e1)
    theta = angle * np.sqrt(rng.random(n))
    phi = 2 * math.pi * rng.random(n)
    v = (
        np.cos(theta)[:, None] * u
        + (np.sin(theta) * np.cos(phi))[:, None] * e1
        + (np.sin(theta) * np.sin(phi))[:, None] * e2
    )
    return np.vstack([u[None], v])


@dataclass(frozen=True)
class Diameter:
    """Maximum 3-D diameter and its end points (grid millimetres)."""

    length_mm: float
    end_a_mm: np.ndarray
    end_b_mm: np.ndarray


@dataclass(frozen=True)
class StarShape:
    """A star-shaped solid (see module docstring); all lengths in mm, positions in grid mm.

    Attributes:
        centre_mm: Centre ``c`` (x, y, z).
        axes: 3x3 matrix whose columns are the ellipsoid axes ``q_k``.
        semi_axes_mm: Ellipsoid semi-axes ``a_k``.
        bump_dirs: ``(m, 3)`` unit bump directions ``d_j``.
        bump_amps: ``(m,)`` amplitudes ``c_j`` (``> -0.5``).
        bump_kappas: ``(m,)`` concentrations ``kappa_j``.
        spike_dirs: ``(s, 3)`` unit spicule axes ``e_i``.
        spike_lengths_mm: ``(s,)`` spicule lengths ``L_i``.
        spike_widths_rad: ``(s,)`` angular half-widths ``w_i``.
        scale: Overall scale ``s``.
    """

    centre_mm: np.ndarray
    axes: np.ndarray
    semi_axes_mm: np.ndarray
    bump_dirs: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    bump_amps: np.ndarray = field(default_factory=lambda: np.zeros(0))
    bump_kappas: np.ndarray = field(default_factory=lambda: np.zeros(0))
    spike_dirs: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    spike_lengths_mm: np.ndarray = field(default_factory=lambda: np.zeros(0))
    spike_widths_rad: np.ndarray = field(default_factory=lambda: np.zeros(0))
    scale: float = 1.0

    def radius(self, u: np.ndarray) -> np.ndarray:
        """``r(u)`` in mm for unit vectors ``u`` of shape ``(..., 3)``."""
        u = np.asarray(u)
        proj = u @ self.axes  # (..., 3) components along q_k
        inv = ((proj / self.semi_axes_mm) ** 2).sum(-1)
        r = 1.0 / np.sqrt(inv)
        if len(self.bump_amps):
            dots = u @ self.bump_dirs.T
            r = r * (1.0 + (self.bump_amps * np.exp(self.bump_kappas * (dots - 1.0))).sum(-1))
        if len(self.spike_lengths_mm):
            dots = u @ self.spike_dirs.T
            width = 1.0 - np.cos(self.spike_widths_rad)
            x = np.clip((1.0 - dots) / width, 0.0, 1.0)
            cap = np.sqrt(np.sqrt(1.0 - x * x))
            r = r + (self.spike_lengths_mm * cap).sum(-1)
        return self.scale * r

    def with_scale(self, scale: float) -> StarShape:
        """The same shape with another overall scale."""
        return StarShape(**{**self.__dict__, "scale": float(scale)})

    def moved_to(self, centre_mm: np.ndarray) -> StarShape:
        """The same shape centred elsewhere."""
        return StarShape(**{**self.__dict__, "centre_mm": np.asarray(centre_mm, dtype=float)})

    def special_directions(self) -> np.ndarray:
        """Directions where extremes of ``r`` are likely: axes, bumps, spicules (both signs)."""
        dirs = [self.axes.T, self.bump_dirs, self.spike_dirs]
        d = np.vstack([x for x in dirs if len(x)])
        return np.vstack([d, -d])

    def surface_points(self, n: int = DIAMETER_SAMPLES) -> np.ndarray:
        """Surface points ``c + r(u) u`` for a Fibonacci sphere plus the special directions."""
        u = np.vstack([fibonacci_sphere(n), self.special_directions()])
        return self.centre_mm + self.radius(u)[:, None] * u

    def max_radius(self) -> float:
        """Largest ``r(u)`` over the sampled directions (mm), with a 2 % safety margin."""
        u = np.vstack([fibonacci_sphere(DIAMETER_SAMPLES), self.special_directions()])
        return 1.02 * float(self.radius(u).max())

    def max_diameter(self) -> Diameter:
        """Maximum 3-D diameter of the analytic surface (see module docstring)."""
        u = np.vstack([fibonacci_sphere(DIAMETER_SAMPLES), self.special_directions()])
        pts = self.radius(u)[:, None] * u
        i, j, _ = _farthest_pair(pts)
        ua, ub = u[i], u[j]
        rng = np.random.default_rng(0)  # fixed: the refinement is part of the measurement
        angle = 2.0 * math.sqrt(4 * math.pi / DIAMETER_SAMPLES)
        for _ in range(16):
            pb = self.radius(ub) * ub
            cand = _cone(ua, angle, 48, rng)
            pa_all = self.radius(cand)[:, None] * cand
            ua = cand[int(np.argmax(((pa_all - pb) ** 2).sum(-1)))]
            pa = self.radius(ua) * ua
            cand = _cone(ub, angle, 48, rng)
            pb_all = self.radius(cand)[:, None] * cand
            ub = cand[int(np.argmax(((pb_all - pa) ** 2).sum(-1)))]
            angle *= 0.6
        pa = self.radius(ua) * ua
        pb = self.radius(ub) * ub
        return Diameter(float(np.linalg.norm(pa - pb)), self.centre_mm + pa, self.centre_mm + pb)

    def volume_mm3(self) -> float:
        """Volume by quadrature of ``r^3 / 3`` over a dense Fibonacci sphere."""
        u = fibonacci_sphere(VOLUME_SAMPLES)
        return float((self.radius(u) ** 3).mean() * 4.0 * math.pi / 3.0)

    def bounds_mm(self) -> tuple[np.ndarray, np.ndarray]:
        """Axis-aligned bounding box (grid mm) that contains the solid."""
        r = self.max_radius()
        return self.centre_mm - r, self.centre_mm + r

    def inside(self, points_mm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Membership and radial depth ``r(u) - |p - c|`` (mm) for points ``(..., 3)``."""
        v = np.asarray(points_mm, dtype=np.float64) - self.centre_mm
        rho = np.sqrt((v * v).sum(-1))
        safe = np.where(rho > 0, rho, 1.0)
        u = v / safe[..., None]
        u[rho == 0] = (1.0, 0.0, 0.0)
        depth = self.radius(u) - rho
        return depth >= 0, depth


@dataclass(frozen=True)
class BallUnion:
    """A union of balls (non-mass enhancement); positions in grid mm.

    Attributes:
        centres_mm: ``(m, 3)`` ball centres.
        radii_mm: ``(m,)`` radii.
    """

    centres_mm: np.ndarray
    radii_mm: np.ndarray

    @property
    def centre_mm(self) -> np.ndarray:
        """Centre of the bounding box."""
        lo, hi = self.bounds_mm()
        return (lo + hi) / 2

    def max_diameter(self) -> Diameter:
        """Exact maximum diameter ``max_{i,j} |c_i - c_j| + r_i + r_j``."""
        c, r = self.centres_mm, self.radii_mm
        dist = np.sqrt(((c[:, None] - c[None]) ** 2).sum(-1)) + r[:, None] + r[None]
        i, j = np.unravel_index(int(np.argmax(dist)), dist.shape)
        if i == j:
            return Diameter(float(2 * r[i]), c[i] - (r[i], 0, 0), c[i] + (r[i], 0, 0))
        u = (c[j] - c[i]) / np.linalg.norm(c[j] - c[i])
        return Diameter(float(dist[i, j]), c[i] - r[i] * u, c[j] + r[j] * u)

    def volume_mm3(self, n: int = 50000) -> float:
        """Volume by Monte Carlo over the bounding box (fixed seed: deterministic)."""
        lo, hi = self.bounds_mm()
        pts = lo + (hi - lo) * np.random.default_rng(0).random((n, 3))
        inside, _ = self.inside(pts)
        return float(inside.mean() * np.prod(hi - lo))

    def bounds_mm(self) -> tuple[np.ndarray, np.ndarray]:
        """Axis-aligned bounding box (grid mm)."""
        r = self.radii_mm[:, None]
        return (self.centres_mm - r).min(0), (self.centres_mm + r).max(0)

    def surface_points(self, n: int = 2000) -> np.ndarray:
        """About ``n`` points on the balls' spheres (at least 16 per ball; some lie inside)."""
        u = fibonacci_sphere(max(16, n // len(self.radii_mm)))
        return (self.centres_mm[:, None, :] + self.radii_mm[:, None, None] * u[None]).reshape(-1, 3)

    def inside(self, points_mm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Membership and depth ``max_i (r_i - |p - c_i|)`` (mm) for points ``(..., 3)``."""
        p = np.asarray(points_mm, dtype=np.float64)
        depth = np.full(p.shape[:-1], -np.inf)
        for c, r in zip(self.centres_mm, self.radii_mm, strict=True):
            d = r - np.sqrt(((p - c) ** 2).sum(-1))
            np.maximum(depth, d, out=depth)
        return depth >= 0, depth
