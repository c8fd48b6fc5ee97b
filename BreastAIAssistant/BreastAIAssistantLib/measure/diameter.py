"""Exact diameters of voxel sets: the farthest pair of points, in 3-D and slice by slice.

Convention (``"centres"``, the default everywhere in this package): a lesion's maximum diameter is
the largest distance between the *centres* of two of its voxels, in physical millimetres. This is
exactly the Feret diameter of ITK/SimpleITK's ``LabelShapeStatisticsImageFilter`` (and of 3D
Slicer's Segment Statistics), which takes the largest distance between border-voxel centres, so
numbers agree with those tools. The ``"corners"`` convention measures the union of the voxel boxes
instead (largest distance between voxel corners): it is never smaller, and exceeds the centre
value by at most one voxel's width along the diameter axis (see
:meth:`~BreastAIAssistantLib.measure.grid.Grid.voxel_width_along`).

Algorithm (exact, no sampling of directions):

1. Candidate points: for every line of voxels along one index axis, only its first and last voxel
   (or their outer corners) can be a vertex of the convex hull, because the voxels in between lie
   on the segment joining them. The line axis is chosen to give the fewest lines.
2. Convex hull of the candidates (``scipy.spatial.ConvexHull``, in the grid frame, which is LPS up
   to a rotation, so distances are unchanged). Flat or collinear sets are projected onto their own
   plane or line first (found by SVD), so one-slice and one-row lesions work too.
3. The farthest pair among the hull vertices, by vectorised brute force in chunks (the diameter of
   a set is attained by two hull vertices). Hull vertices are a few hundred to a few thousand.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy.spatial import ConvexHull, QhullError

logger = logging.getLogger(__name__)

Convention = Literal["centres", "corners"]

#: Largest number of pairwise distances held in memory at once by the brute-force step.
_PAIR_BLOCK = 4_000_000
#: Singular values below this fraction of the largest count as zero (flat or collinear sets).
_RANK_TOLERANCE = 1e-9


@dataclass(frozen=True)
class FarthestPair:
    """The two points of a set that are farthest apart.

    Attributes:
        length_mm: Their distance.
        a: First point (same frame and dimension as the input points).
        b: Second point.
    """

    length_mm: float
    a: np.ndarray
    b: np.ndarray

    @property
    def unit(self) -> np.ndarray:
        """Unit vector from ``a`` to ``b`` (zeros for a single point)."""
        delta = self.b - self.a
        norm = float(np.linalg.norm(delta))
        return delta / norm if norm > 0 else np.zeros_like(delta)


def hull_vertices(points: np.ndarray) -> np.ndarray:
    """The points of a set that are vertices of its convex hull (any dimension, any rank).

    Args:
        points: Shape (n, d), n >= 1.

    Returns:
        The subset of rows of ``points`` that spans the same convex hull (all rows when the hull
        cannot be computed, which is still correct, only slower downstream).
    """
    points = np.asarray(points, dtype=float)
    if len(points) <= points.shape[1] + 1:
        return points
    centred = points - points.mean(axis=0)
    _, singular, basis = np.linalg.svd(centred, full_matrices=False)
    rank = int(np.sum(singular > _RANK_TOLERANCE * max(float(singular[0]), 1e-300)))
    if rank == 0:
        return points[:1]
    projected = centred @ basis[:rank].T
    if rank == 1:
        line = projected[:, 0]
        return points[[int(np.argmin(line)), int(np.argmax(line))]]
    try:
        return points[ConvexHull(projected).vertices]
    except (QhullError, ValueError) as exc:  # pragma: no cover - qhull precision corner cases
        logger.debug("convex hull failed (%s); using all %d points", exc, len(points))
        return points


def farthest_pair(points: np.ndarray) -> FarthestPair:
    """Exact diameter of a finite point set and the two points that attain it.

    Args:
        points: Shape (n, d) with n >= 1, in millimetres.

    Returns:
        The farthest pair (distance 0 and the same point twice for a single point).

    Raises:
        ValueError: ``points`` is empty.
    """
    points = np.asarray(points, dtype=float)
    if points.ndim != 2 or len(points) == 0:
        raise ValueError("farthest_pair needs a non-empty (n, d) array of points")
    candidates = hull_vertices(points)
    shift = candidates.mean(axis=0)
    centred = candidates - shift
    squared = np.einsum("ij,ij->i", centred, centred)
    n = len(centred)
    block = max(1, _PAIR_BLOCK // n)
    best, best_i, best_j = -1.0, 0, 0
    for start in range(0, n, block):
        stop = min(n, start + block)
        # |a - b|² = |a|² + |b|² - 2 a·b on centred points (errors ~1e-12 mm² at breast scale);
        # only the upper triangle is needed, but the square block is faster in NumPy
        d2 = squared[start:stop, None] + squared[None, :] - 2.0 * (centred[start:stop] @ centred.T)
        flat = int(np.argmax(d2))
        i, j = divmod(flat, n)
        if d2[i, j] > best:
            best, best_i, best_j = float(d2[i, j]), start + i, j
    a, b = candidates[best_i], candidates[best_j]
    return FarthestPair(float(np.linalg.norm(b - a)), a.copy(), b.copy())


def _line_axis(mask_zyx: np.ndarray) -> int:
    """The array axis whose lines of voxels are fewest (fewest candidate points)."""
    counts = [int(np.count_nonzero(mask_zyx.any(axis=a))) for a in range(3)]
    return int(np.argmin(counts))


def line_extremes_zyx(mask_zyx: np.ndarray, axis: int | None = None) -> tuple[np.ndarray, int]:
    """First and last voxel of every line of a boolean mask along one array axis.

    Args:
        mask_zyx: Boolean array (any number of dimensions >= 1), not empty.
        axis: Array axis of the lines; by default the one giving the fewest lines.

    Returns:
        ``(indices, axis)``: integer array indices (array order, e.g. z, y, x), shape (2m, ndim),
        of the first and last voxel of the m lines that contain voxels; and the line axis.
    """
    if axis is None:
        axis = _line_axis(mask_zyx) if mask_zyx.ndim == 3 else mask_zyx.ndim - 1
    moved = np.moveaxis(mask_zyx, axis, -1)
    present = moved.any(axis=-1)
    first = np.argmax(moved, axis=-1)
    last = moved.shape[-1] - 1 - np.argmax(moved[..., ::-1], axis=-1)
    other = np.nonzero(present)
    rows = np.stack(other, axis=-1)
    ends = np.concatenate([first[other], last[other]])
    rows = np.concatenate([rows, rows])
    indices = np.insert(rows, axis, ends, axis=1)
    return indices, axis


def candidate_points_index(mask_zyx: np.ndarray, convention: Convention = "centres") -> np.ndarray:
    """Points, as continuous (x, y, z) voxel indices, whose convex hull is the lesion's.

    For ``"centres"`` the hull is that of the voxel centres; for ``"corners"`` that of the union of
    the voxel boxes (each voxel spans its index ± 0.5 along every axis).

    Args:
        mask_zyx: Boolean (z, y, x) array with at least one True voxel.
        convention: ``"centres"`` or ``"corners"``.

    Returns:
        Shape (n, 3) float array of (x, y, z) indices.
    """
    indices, axis = line_extremes_zyx(mask_zyx)
    if convention == "centres":
        return np.unique(indices[:, ::-1], axis=0).astype(float)
    if convention != "corners":
        raise ValueError(f"convention must be 'centres' or 'corners', got {convention!r}")
    half = len(indices) // 2
    outward = np.zeros(len(indices))
    outward[:half], outward[half:] = -0.5, 0.5
    corners = []
    others = [a for a in range(3) if a != axis]
    for s0 in (-0.5, 0.5):
        for s1 in (-0.5, 0.5):
            shifted = indices.astype(float)
            shifted[:, axis] += outward
            shifted[:, others[0]] += s0
            shifted[:, others[1]] += s1
            corners.append(shifted)
    return np.unique(np.concatenate(corners)[:, ::-1], axis=0)


@dataclass(frozen=True)
class PerpendicularExtents:
    """Extents of a point set across its maximum-diameter axis ``u``.

    Attributes:
        second_mm: Largest distance between two points after projecting the set onto the plane
            perpendicular to ``u`` (the longest diameter perpendicular to the maximum diameter).
        third_mm: Extent (max - min of the projections) along ``w = u × v``, where ``v`` is the
            direction of the second diameter: the thickness orthogonal to both.
        v: Unit direction of the second diameter (same frame as the points).
        w: Unit direction of the third extent.
    """

    second_mm: float
    third_mm: float
    v: np.ndarray
    w: np.ndarray


def perpendicular_extents(points: np.ndarray, u: np.ndarray) -> PerpendicularExtents:
    """The two extents perpendicular to a unit axis ``u`` (3-D points), exactly.

    Projection commutes with taking the convex hull, so hull vertices may be passed instead of all
    points.
    """
    points = np.asarray(points, dtype=float)
    u = np.asarray(u, dtype=float)
    if not np.any(u):
        zero = np.zeros(3)
        return PerpendicularExtents(0.0, 0.0, zero, zero)
    # an orthonormal basis (e1, e2) of the plane perpendicular to u
    helper = np.eye(3)[int(np.argmin(np.abs(u)))]
    e1 = np.cross(u, helper)
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(u, e1)
    plane = np.stack([points @ e1, points @ e2], axis=1)
    pair = farthest_pair(plane)
    if pair.length_mm == 0:
        return PerpendicularExtents(0.0, 0.0, np.zeros(3), np.zeros(3))
    v2 = pair.unit
    v = v2[0] * e1 + v2[1] * e2
    w = np.cross(u, v)
    along_w = points @ w
    return PerpendicularExtents(pair.length_mm, float(np.ptp(along_w)), v, w)
