"""Painting one breast into the compartments: skin, nipple, fat/FGT mix, BPE, implant, vessels.

The equations (FGT score, density threshold, BPE patches, implant) are documented in
:mod:`.anatomy`; the shapes in :mod:`.breast`. Work is confined to the breast's bounding box.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np

from BreastAIAssistantLib.phantom import tissues as T
from BreastAIAssistantLib.phantom.acquisition import Grid
from BreastAIAssistantLib.phantom.breast import Breast, Thorax
from BreastAIAssistantLib.phantom.texture import (
    coarse_shape,
    powerlaw_noise,
    smooth_field,
    upsample_linear,
)
from BreastAIAssistantLib.phantom.vessels import bezier, paint_tube

if TYPE_CHECKING:  # anatomy imports this module
    from BreastAIAssistantLib.phantom.anatomy import AnatomyParams

logger = logging.getLogger(__name__)

#: Width (in score units) of the soft FGT threshold: partial-volume-like transitions.
FGT_SOFTNESS = 0.3
#: Interior voxels sampled to solve for the density threshold.
THRESHOLD_SAMPLES = 200_000


def _solve_threshold(score: np.ndarray, target: float) -> float:
    """``T`` such that ``mean(clip((score - T) / s + 0.5, 0, 1)) = target`` (bisection)."""
    lo, hi = float(score.min()) - 1.0, float(score.max()) + 1.0
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        frac = float(np.clip((score - mid) / FGT_SOFTNESS + 0.5, 0.0, 1.0).mean())
        if frac > target:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def _sample(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """At most :data:`THRESHOLD_SAMPLES` of ``values[mask]``, evenly strided (deterministic)."""
    picked = values[mask]
    step = max(1, picked.size // THRESHOLD_SAMPLES)
    return picked[::step]


def _coarse_score(
    breast: Breast,
    thorax: Thorax,
    params: AnatomyParams,
    grid: Grid,
    ref: np.ndarray,
    box: tuple[slice, slice, slice],
    coarse_mm: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """FGT score ``S`` on a grid of ``coarse_mm`` with the box's first voxel as origin."""
    shape = coarse_shape([b.stop - b.start for b in box], grid.spacing_mm[::-1], coarse_mm)
    start = [b.start * s for b, s in zip(box, grid.spacing_mm[::-1], strict=True)]
    z, y, x = (
        (start[a] + np.arange(shape[a], dtype=np.float32) * coarse_mm - ref[2 - a])
        .reshape([-1 if k == a else 1 for k in range(3)])
        .astype(np.float32)
        for a in range(3)
    )
    d = thorax.chest_front(x).astype(np.float32) - y
    xi, eta, zeta, a, h = breast.local(x, d, z)
    _, depth = breast.implicit_local(xi, eta, zeta, a, h)
    fat_layers = np.clip((depth - params.subcutaneous_breast_fat_mm) / 3.0 + 0.5, 0.0, 1.0)
    fat_layers *= np.clip((d - params.retromammary_fat_mm) / 3.0 + 0.5, 0.0, 1.0)
    axial = np.maximum(1.0 - np.maximum(eta, 0.0) ** breast.exponent, 0.05)
    radial = np.exp(-(xi * xi + zeta * zeta) / axial / params.fgt_spread**2)
    radial *= np.where((xi > 0) & (zeta > 0), np.float32(1.25), np.float32(1.0))
    noise = powerlaw_noise(
        shape, (coarse_mm,) * 3, rng, float(rng.uniform(3.4, 4.2)), 15.0, (1.0, 0.5, 1.0)
    )
    return (2.0 * fat_layers * radial + 0.7 * (0.3 + 0.7 * fat_layers) * noise).astype(np.float32)


def paint_breast(
    breast: Breast,
    thorax: Thorax,
    params: AnatomyParams,
    grid: Grid,
    ref: np.ndarray,
    comp: np.ndarray,
    alpha: np.ndarray,
    beta: np.ndarray,
    mix_box: tuple[slice, slice, slice],
    breast_mask: np.ndarray,
    rng: np.random.Generator,
) -> dict[str, float]:
    """Paint one breast (in place) and return its measured FGT fraction and volume.

    Args:
        breast: Breast shape.
        thorax: Chest wall.
        params: The case's :class:`.anatomy.AnatomyParams`.
        grid: Voxel grid.
        ref: Grid-mm position of the body origin.
        comp: Compartment volume, modified.
        alpha: FGT fraction on ``mix_box``, modified.
        beta: Share of the FGT fraction in the less enhancing BPE class, modified.
        mix_box: Slices of ``alpha`` in ``comp``.
        breast_mask: Whole-breast mask, modified.
        rng: Random generator.

    Returns:
        ``{"fgt_fraction": ..., "volume_ml": ...}`` measured on the voxels.
    """
    lo, hi = breast.bounds(thorax, margin=2.0)
    box = grid.box(lo + ref, hi + ref)
    if box is None:
        logger.warning("the %s breast lies outside the field of view", breast.side)
        return {"fgt_fraction": 0.0, "volume_ml": 0.0}
    z, y, x = grid.coords(box)
    bx_, by_, bz_ = x - np.float32(ref[0]), y - np.float32(ref[1]), z - np.float32(ref[2])
    d = thorax.chest_front(bx_).astype(np.float32) - by_
    xi, eta, zeta, a, h = breast.local(bx_, d, bz_)
    g, depth = breast.implicit_local(xi, eta, zeta, a, h)
    inside = (g <= 1.0) & (d >= 0) & (np.abs(bx_) < thorax.half_width)
    interior = inside & ((depth >= thorax.skin_mm) | (d < thorax.subcutaneous_mm - thorax.skin_mm))
    sub = comp[box]
    skin = inside & ~interior & (sub != T.BREAST)
    sub[skin] = T.SKIN
    sub[interior] = T.BREAST
    breast_mask[box] |= inside

    # fibroglandular fraction: the smooth score on the coarse texture grid, upsampled, then
    # thresholded at full resolution (see anatomy module docstring)
    spacing_zyx = grid.spacing_mm[::-1]
    coarse = max(1.5, min(grid.spacing_mm))
    score = upsample_linear(
        _coarse_score(breast, thorax, params, grid, ref, box, coarse, rng),
        coarse,
        sub.shape,
        spacing_zyx,
    )
    threshold = _solve_threshold(_sample(score, interior), params.fgt_fraction)
    score -= np.float32(threshold)
    score *= np.float32(1.0 / FGT_SOFTNESS)
    score += np.float32(0.5)
    fgt = np.minimum(np.maximum(score, np.float32(0.0), out=score), np.float32(1.0), out=score)

    # alpha lives on the mix box: write this breast's interior there
    rel = tuple(
        slice(b.start - m.start, b.stop - m.start) for b, m in zip(box, mix_box, strict=True)
    )
    alpha_sub = alpha[rel]
    alpha_sub[interior] = fgt[interior]

    # patchy BPE: a smooth share ``beta`` of the gland belongs to the less enhancing class
    patches = smooth_field(sub.shape, spacing_zyx, rng, max(3.0, coarse), 3.5, 10.0)
    cut = float(np.quantile(_sample(patches, interior), params.bpe_patch_fraction))
    low_share = 1.0 / (1.0 + np.exp((patches - cut) / 0.3))
    beta_sub = beta[rel]
    beta_sub[interior] = (fgt * low_share)[interior]

    if breast.side in params.implant_sides:
        centre = float(rng.uniform(0.15, 0.3))
        half = float(rng.uniform(0.12, 0.22))
        width = float(rng.uniform(0.6, 0.75))
        shape = (xi / width) ** 2 + (zeta / width) ** 2 + ((eta - centre) / half) ** 2
        sub[interior & (shape <= 1.0) & (depth >= thorax.skin_mm + 4.0)] = T.IMPLANT

    # nipple: a column with a rounded end in front of the apex, reaching back to the breast
    # surface, and the skin/gland just behind the apex
    tx, ty, tz = breast.tip(thorax)
    length, radius = breast.nipple_length, breast.nipple_radius
    front = np.maximum(ty - 0.4 * length - by_, 0.0) / (0.6 * length)
    column = ((bx_ - tx) ** 2 + (bz_ - tz) ** 2) / radius**2 + front**2 <= 1.0
    nipple = column & ((sub == T.AIR) | (inside & (by_ <= ty + 3.0)))
    sub[nipple] = T.NIPPLE
    breast_mask[box] |= nipple

    voxel_ml = float(np.prod(grid.spacing_mm)) / 1000.0
    n_int = int(interior.sum())
    return {
        "fgt_fraction": float(fgt[interior].mean()) if n_int else 0.0,
        "volume_ml": float(inside.sum() + nipple.sum()) * voxel_ml,
    }


def paint_breast_vessels(
    breast: Breast,
    thorax: Thorax,
    count: int,
    grid: Grid,
    ref: np.ndarray,
    comp: np.ndarray,
    rng: np.random.Generator,
) -> int:
    """Paint ``count`` vessels from the chest wall towards the nipple; returns voxels painted."""
    painted = 0
    step = 0.5 * min(grid.spacing_mm)
    for _ in range(count):
        phi = float(rng.uniform(-np.pi, np.pi))
        r0 = float(rng.uniform(0.4, 0.85))
        start = (r0 * np.cos(phi), 0.03, r0 * np.sin(phi))
        phi2 = phi + float(rng.uniform(-0.5, 0.5))
        r2 = float(rng.uniform(0.05, 0.3))
        end = (r2 * np.cos(phi2), float(rng.uniform(0.55, 0.9)), r2 * np.sin(phi2))
        mid = tuple(
            0.5 * (s + e) + float(rng.uniform(-0.2, 0.2)) for s, e in zip(start, end, strict=True)
        )
        ctrl = []
        for xi, eta, zeta in (start, mid, end):
            bx, bd, bz = breast.point(xi, min(max(eta, 0.0), 1.0), zeta)
            by = float(thorax.chest_front(np.array(bx))) - bd
            ctrl.append(np.array([bx, by, bz]) + ref)
        length = float(np.linalg.norm(ctrl[1] - ctrl[0]) + np.linalg.norm(ctrl[2] - ctrl[1]))
        points = bezier(*ctrl, int(length / step) + 2)
        painted += paint_tube(
            comp,
            grid,
            points,
            float(rng.uniform(0.7, 1.4)),
            T.BREAST_VESSEL,
            (T.BREAST,),
        )
    return painted
