"""Tubes on a voxel grid: breast vessels as swept balls along quadratic Bezier curves.

A vessel is the set of points within radius ``r`` of the curve
``B(t) = (1 - t)^2 P0 + 2 t (1 - t) P1 + t^2 P2``, ``t`` in ``[0, 1]``. It is rasterised by
sampling the curve every ``min(spacing) / 2`` mm and painting a ball *stencil* (the voxel
offsets within ``max(r, half a voxel)`` of the centre voxel) at every sample, which makes a tube
at least one voxel wide on any grid. Only voxels whose current code is in an allowed set are
painted, so vessels stay inside the breast parenchyma.

Breast vessels run from the chest wall (perforators of the internal mammary and lateral thoracic
arteries) towards the nipple, 1.5-3 mm wide; their blood enhances early and strongly, like the
heart, and gives the thin linear false positives a detector has to reject.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from BreastAIAssistantLib.phantom.acquisition import Grid


def bezier(p0: np.ndarray, p1: np.ndarray, p2: np.ndarray, n: int) -> np.ndarray:
    """``n`` points ``(n, 3)`` of the quadratic Bezier curve with control points ``p0..p2``."""
    t = np.linspace(0.0, 1.0, max(n, 2))[:, None]
    return (1 - t) ** 2 * p0 + 2 * t * (1 - t) * p1 + t**2 * p2


def ball_stencil(radius_mm: float, spacing_xyz: Sequence[float]) -> np.ndarray:
    """Integer ``(z, y, x)`` offsets ``(m, 3)`` within ``max(radius, half a voxel)`` of 0."""
    sx, sy, sz = spacing_xyz
    r = max(radius_mm, 0.5 * min(spacing_xyz))
    nx, ny, nz = (int(np.floor(r / s)) for s in (sx, sy, sz))
    dz, dy, dx = np.meshgrid(
        np.arange(-nz, nz + 1), np.arange(-ny, ny + 1), np.arange(-nx, nx + 1), indexing="ij"
    )
    keep = (dx * sx) ** 2 + (dy * sy) ** 2 + (dz * sz) ** 2 <= r * r + 1e-9
    return np.stack([dz[keep], dy[keep], dx[keep]], axis=1)


def paint_tube(
    labels: np.ndarray,
    grid: Grid,
    points_mm: np.ndarray,
    radius_mm: float,
    code: int,
    allowed: Sequence[int],
) -> int:
    """Paint a tube of ``radius_mm`` along grid-mm ``points_mm`` into ``labels`` (in place).

    Args:
        labels: ``(z, y, x)`` uint8 codes.
        grid: The voxel grid.
        points_mm: ``(n, 3)`` curve samples (x, y, z grid mm), spaced at most half a voxel.
        radius_mm: Tube radius.
        code: Code to paint.
        allowed: Codes that may be overwritten.

    Returns:
        Number of voxels painted.
    """
    spacing = np.asarray(grid.spacing_mm)
    centres = np.rint(points_mm / spacing).astype(np.int64)[:, ::-1]  # (z, y, x)
    centres = np.unique(centres, axis=0)
    stencil = ball_stencil(radius_mm, grid.spacing_mm)
    idx = (centres[:, None, :] + stencil[None, :, :]).reshape(-1, 3)
    shape = np.asarray(labels.shape)
    idx = idx[np.all((idx >= 0) & (idx < shape), axis=1)]
    if not len(idx):
        return 0
    flat = np.unique(np.ravel_multi_index(idx.T, labels.shape))
    current = labels.reshape(-1)[flat]
    flat = flat[np.isin(current, np.asarray(allowed, dtype=labels.dtype))]
    labels.reshape(-1)[flat] = code
    return int(flat.size)
