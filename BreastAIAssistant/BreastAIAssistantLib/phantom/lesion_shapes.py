"""Lesion shapes from traits: star-shaped masses and cysts, ball unions for non-mass enhancement.

Shape families (the radial function and the ball union are defined in :mod:`.shapes`):

=====================  ================  ========================================================
traits                 ellipsoid axes    perturbation
=====================  ================  ========================================================
round                  1 : 0.9-1 : 0.85-1  0-2 broad bumps, amplitude 0.03-0.10 (smooth outline)
oval                   1 : 0.55-0.8 : ...  same
irregular margin       as shape          3-6 sharper bumps 0.05-0.18 (micro-lobulation)
irregular shape        1 : 0.6-0.95 : ..   4-9 bumps, amplitude -0.15..0.35, kappa 4-12
spiculated             irregular shape   + 6-16 spicules, length 0.3-0.9 of the base radius,
                                         1.2-2.2 mm wide (never thinner than one voxel)
=====================  ================  ========================================================

Each star shape is scaled so that its maximum 3-D diameter equals the drawn target diameter
(two passes: the spicule widths depend on the final size). Non-mass enhancement is a union of
1.5-3.5 mm balls, either clustered in an ellipsoid (*focal*) or strung along 2-4 diverging
branches from an apex towards the chest wall (*segmental*, ductal); its diameter is exact by
construction and the spread of its centres is solved by bisection to give the target.

Grid awareness: features smaller than the voxels cannot be seen, so balls and spicules are at
least about one voxel wide (``min_feature_mm``); on the small test grid this makes shapes
smoother than on the clinical grid.
"""

from __future__ import annotations

import numpy as np

from BreastAIAssistantLib.phantom.receptors import LesionTraits
from BreastAIAssistantLib.phantom.shapes import BallUnion, StarShape, random_rotation


def _unit(rng: np.random.Generator, n: int) -> np.ndarray:
    v = rng.standard_normal((n, 3))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def make_star(traits: LesionTraits, rng: np.random.Generator, min_feature_mm: float) -> StarShape:
    """Star shape centred at 0 whose maximum diameter is ``traits.target_diameter_mm``."""
    shape = traits.shape or "irregular"
    if shape == "round":
        semi = np.array([1.0, rng.uniform(0.9, 1.0), rng.uniform(0.85, 1.0)])
    elif shape == "oval":
        semi = np.array([1.0, rng.uniform(0.55, 0.8), rng.uniform(0.5, 0.8)])
    else:
        semi = np.array([1.0, rng.uniform(0.6, 0.95), rng.uniform(0.5, 0.9)])
    if shape == "irregular":
        m = int(rng.integers(4, 10))
        amps, kappas = rng.uniform(-0.15, 0.35, m), rng.uniform(4.0, 12.0, m)
    elif traits.margin in ("irregular", "spiculated"):
        m = int(rng.integers(3, 7))
        amps, kappas = rng.uniform(0.05, 0.18, m), rng.uniform(6.0, 14.0, m)
    else:
        m = int(rng.integers(0, 3))
        amps, kappas = rng.uniform(0.03, 0.10, m), rng.uniform(2.0, 5.0, m)
    star = StarShape(
        centre_mm=np.zeros(3),
        axes=random_rotation(rng),
        semi_axes_mm=semi,
        bump_dirs=_unit(rng, m),
        bump_amps=amps,
        bump_kappas=kappas,
    )
    target = traits.target_diameter_mm
    if traits.margin == "spiculated":
        s = int(rng.integers(6, 17))
        dirs = _unit(rng, s)
        lengths = rng.uniform(0.3, 0.9, s) * star.radius(dirs)
        widths_mm = np.maximum(rng.uniform(1.2, 2.2, s), min_feature_mm)
        star = StarShape(
            **{
                **star.__dict__,
                "spike_dirs": dirs,
                "spike_lengths_mm": lengths,
                "spike_widths_rad": np.full(s, 0.1),
            }
        )
        for _ in range(2):  # angular widths from the physical widths at the current size
            scale = target / star.max_diameter().length_mm
            base = scale * star.with_scale(1.0).radius(dirs)
            widths = np.clip(0.5 * widths_mm / base, 0.02, 0.35)
            star = StarShape(**{**star.__dict__, "scale": scale, "spike_widths_rad": widths})
    return star.with_scale(target * star.scale / star.max_diameter().length_mm)


def make_ball_union(
    traits: LesionTraits, rng: np.random.Generator, min_feature_mm: float
) -> BallUnion:
    """Non-mass enhancement centred near 0 with a maximum diameter near the target."""
    target = traits.target_diameter_mm
    r_lo = max(1.5, 0.75 * min_feature_mm)
    if traits.distribution == "segmental":
        axis = np.array([0.0, 1.0, 0.0]) + rng.normal(0.0, 0.3, 3)  # towards the chest wall
        axis /= np.linalg.norm(axis)
        centres = []
        for _ in range(int(rng.integers(2, 5))):
            direction = axis + rng.normal(0.0, 0.35, 3)
            direction /= np.linalg.norm(direction)
            pos = np.zeros(3)
            for _ in range(int(rng.integers(6, 14))):
                centres.append(pos.copy())
                step = direction + rng.normal(0.0, 0.25, 3)
                pos = pos + step / np.linalg.norm(step) * rng.uniform(0.6, 1.0)
        pts = np.array(centres)
    else:
        n = int(rng.integers(8, 26))
        pts = rng.normal(0.0, 1.0, (n, 3)) * (1.0, 0.6, 0.5)
        pts = pts @ random_rotation(rng).T
    radii = rng.uniform(r_lo, max(3.5, r_lo + 0.5), len(pts))
    pts = pts - pts.mean(0)
    lo, hi = 0.0, 1.0
    while BallUnion(pts * hi, radii).max_diameter().length_mm < target and hi < 1e4:
        hi *= 2.0
    for _ in range(40):  # the diameter grows monotonically with the spread of the centres
        mid = 0.5 * (lo + hi)
        if BallUnion(pts * mid, radii).max_diameter().length_mm < target:
            lo = mid
        else:
            hi = mid
    return BallUnion(pts * hi, radii)
