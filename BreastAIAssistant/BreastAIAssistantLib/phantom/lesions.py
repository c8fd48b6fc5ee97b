"""Placing lesions in the breasts, rasterising them, and their enhancement texture.

Size: a lesion is never smaller than three voxels of the largest spacing (3-7.5 mm on clinical
grids, about 13 mm on the small test grid), and spicules are drawn only on lesions of at least
five such voxels (smaller ones get irregular margins and say so): smaller features would not be
seen. ``target_diameter_mm`` in case.json is the target after this floor, ``max_diameter_mm``
the exact diameter of the shape.

Placement (per lesion, largest first, up to 40 tries per size, then the target diameter is
shrunk by 25 % up to three times before the lesion is dropped with a log line):

- side: any breast present; location: quadrant weights UOQ 50 %, UIQ 15 %, LOQ 12 %, LIQ 8 %,
  central 15 %, depth 15-80 % of the breast projection, at most 75 % of the local radius off
  the nipple axis;
- *interior* lesions must lie in breast parenchyma (fat/gland mix or small vessels) with at
  least one voxel of it between the lesion and skin, nipple, muscle, implant or another lesion;
- masses are sometimes placed *touching the skin* (12 %) or *the chest wall* (10 %): the centre
  is moved outwards (or posteriorly) in 0.5-voxel steps as far as the lesion stays inside the
  body, and kept when the lesion then reaches the skin (it may replace skin voxels, never air)
  or the pectoralis (which it may invade, never the ribs).

Truth flags (on the voxels, before the lesion is painted): ``touches_skin`` when the lesion
dilated by one voxel (26-neighbourhood) meets skin, nipple or air; ``touches_chest_wall`` when
it meets the pectoralis or the chest wall. These are descriptive flags; T4 (invasion of the
chest wall proper or skin ulceration) is not modelled.

Enhancement texture ``alpha`` (rim fraction of :mod:`.lesion_kinetics`): rim lesions 1 within
the rim thickness (2-4 mm, at least one voxel; lesions under 10 mm are heterogeneous instead),
about 0.1 inside; heterogeneous ``0.5 + 0.3 n``; homogeneous ``0.92 + 0.05 n``; clumped
non-mass ``0.6 + 0.3 n``, clipped to [0, 1], with ``n`` smoothed unit noise (1.5 mm).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from BreastAIAssistantLib.phantom import tissues as T
from BreastAIAssistantLib.phantom.acquisition import Grid
from BreastAIAssistantLib.phantom.anatomy import Anatomy
from BreastAIAssistantLib.phantom.breast import Breast
from BreastAIAssistantLib.phantom.lesion_shapes import make_ball_union, make_star
from BreastAIAssistantLib.phantom.receptors import LesionTraits
from BreastAIAssistantLib.phantom.shapes import BallUnion, Diameter, StarShape

logger = logging.getLogger(__name__)

QUADRANTS = {"UOQ": 0.50, "UIQ": 0.15, "LOQ": 0.12, "LIQ": 0.08, "central": 0.15}
#: Codes a lesion may occupy, per placement mode.
ALLOWED = {
    "interior": (T.BREAST, T.BREAST_VESSEL),
    "skin": (T.BREAST, T.BREAST_VESSEL, T.SKIN),
    "chest_wall": (T.BREAST, T.BREAST_VESSEL, T.PECTORALIS),
}
SKIN_CODES = (T.SKIN, T.NIPPLE, T.AIR)
WALL_CODES = (T.PECTORALIS, T.CHEST_WALL)
TRIES_PER_SIZE = 40
#: Surface samples used while searching for a position (the final check is on voxels).
SEARCH_POINTS = 500
#: Smallest lesion diameter in voxels (largest spacing): smaller ones would not be seen.
MIN_DIAMETER_VOXELS = 3.0
#: Smallest diameter (voxels of the largest spacing) that shows spicules.
MIN_SPICULATED_VOXELS = 5.0


@dataclass
class Lesion:
    """A placed lesion.

    Attributes:
        index: 0-based index (its tumour-mask label is ``index + 1``).
        traits: Drawn traits.
        side: Breast side.
        geometry: The analytic solid, positioned (grid mm).
        diameter: Exact maximum diameter and end points (grid mm).
        volume_mm3: Analytic volume.
        box: ``(z, y, x)`` slices of the lesion's box.
        mask: Voxels of the lesion inside ``box``.
        alpha: Rim fraction on the mask voxels.
        placement: ``"interior"``, ``"skin"`` or ``"chest_wall"``.
        touches_skin: Flag (see module docstring).
        touches_chest_wall: Flag.
        quadrant: BI-RADS location.
    """

    index: int
    traits: LesionTraits
    side: str
    geometry: StarShape | BallUnion
    diameter: Diameter
    volume_mm3: float
    box: tuple[slice, slice, slice]
    mask: np.ndarray
    alpha: np.ndarray
    placement: str
    touches_skin: bool
    touches_chest_wall: bool
    quadrant: str

    @property
    def label(self) -> int:
        """Value in the tumour instance mask."""
        return self.index + 1

    @property
    def code(self) -> int:
        """Compartment code."""
        return T.LESION_BASE + self.index


Box = tuple[slice, slice, slice]
Raster = tuple[Box, np.ndarray, np.ndarray]


def rasterise(geometry: StarShape | BallUnion, grid: Grid) -> Raster | None:
    """``(box, inside, depth)`` of a solid on the grid, or ``None`` if it misses the grid."""
    lo, hi = geometry.bounds_mm()
    box = grid.box(lo, hi)
    if box is None:
        return None
    inside, depth = geometry.inside(grid.points(box))
    return box, inside, depth.astype(np.float32)


def _codes_at(anatomy: Anatomy, grid: Grid, points_mm: np.ndarray) -> np.ndarray:
    """Compartment codes at grid-mm points (255 outside the grid)."""
    idx = np.rint(points_mm / np.asarray(grid.spacing_mm)).astype(np.int64)[:, ::-1]
    shape = np.asarray(anatomy.comp.shape)
    ok = np.all((idx >= 0) & (idx < shape), axis=1)
    out = np.full(len(idx), 255, dtype=np.uint8)
    out[ok] = anatomy.comp[tuple(idx[ok].T)]
    return out


def _within(box: Box, outer: Box) -> bool:
    return all(b.start >= o.start and b.stop <= o.stop for b, o in zip(box, outer, strict=True))


def _check(anatomy: Anatomy, box: Box, inside: np.ndarray, mode: str) -> tuple[bool, bool, bool]:
    """``(acceptable, touches_skin, touches_chest_wall)`` of a rasterised candidate."""
    if not inside.any() or not _within(box, anatomy.mix_box):
        return False, False, False
    sub = anatomy.comp[box]
    under = sub[inside]
    if not np.isin(under, ALLOWED[mode]).all():
        return False, False, False
    ring = ndimage.binary_dilation(inside, np.ones((3, 3, 3), bool)) & ~inside
    around = sub[ring]
    skin = bool(np.isin(around, SKIN_CODES).any() or (under == T.SKIN).any())
    wall = bool(np.isin(around, WALL_CODES).any() or (under == T.PECTORALIS).any())
    if (around >= T.LESION_BASE).any() or (around == T.IMPLANT).any():
        return False, skin, wall
    if mode == "interior" and (skin or wall):
        return False, skin, wall
    if mode == "skin" and not skin:
        return False, skin, wall
    if mode == "chest_wall" and not wall:
        return False, skin, wall
    return True, skin, wall


def _start_point(
    breast: Breast, anatomy: Anatomy, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """A random grid-mm centre in the breast, its axis point and its quadrant."""
    names = list(QUADRANTS)
    quadrant = names[int(rng.choice(len(names), p=np.array(list(QUADRANTS.values()))))]
    eta = float(rng.uniform(0.15, 0.8))
    radius = np.sqrt(max(1.0 - eta**breast.exponent, 0.0))
    if quadrant == "central":
        eta = float(rng.uniform(0.5, 0.8))
        radius = np.sqrt(max(1.0 - eta**breast.exponent, 0.0))
        r, phi = rng.uniform(0.0, 0.25) * radius, rng.uniform(-np.pi, np.pi)
    else:
        r = float(rng.uniform(0.15, 0.75)) * radius
        base = {"UOQ": 0.25, "UIQ": 0.75, "LIQ": -0.75, "LOQ": -0.25}[quadrant] * np.pi
        phi = base + rng.uniform(-0.25, 0.25) * np.pi
    thorax = anatomy.params.thorax

    def to_grid(xi: float, zeta: float) -> np.ndarray:
        x, d, z = breast.point(xi, eta, zeta)
        y = float(thorax.chest_front(np.array(x))) - d
        return anatomy.grid_mm(np.array([x, y, z]))

    return to_grid(r * np.cos(phi), r * np.sin(phi)), to_grid(0.0, 0.0)


def _alpha(
    lesion_depth: np.ndarray,
    inside: np.ndarray,
    traits: LesionTraits,
    grid: Grid,
    rng: np.random.Generator,
    rim_mm: float,
) -> np.ndarray:
    sigma = [1.5 / s for s in grid.spacing_mm[::-1]]
    noise = ndimage.gaussian_filter(rng.standard_normal(inside.shape).astype(np.float32), sigma)
    noise /= max(float(noise.std()), 1e-6)
    enh = traits.enhancement
    if enh == "rim":
        a = np.where(lesion_depth < rim_mm, 1.0, 0.1 + 0.05 * noise)
    elif enh == "homogeneous":
        a = 0.92 + 0.05 * noise
    elif enh == "clumped":
        a = 0.6 + 0.3 * noise
    elif enh == "none":
        a = np.zeros_like(noise)
    else:
        a = 0.5 + 0.3 * noise
    return np.clip(a, 0.0, 1.0).astype(np.float32)[inside]


def place_lesion(
    index: int,
    traits: LesionTraits,
    anatomy: Anatomy,
    grid: Grid,
    rng: np.random.Generator,
) -> Lesion | None:
    """Shape, place and rasterise one lesion (not yet painted); ``None`` if it does not fit."""
    breasts = anatomy.params.breasts
    if not breasts:
        return None
    min_feature = max(grid.spacing_mm)
    if traits.target_diameter_mm < MIN_DIAMETER_VOXELS * min_feature:
        traits = LesionTraits(
            **{**traits.__dict__, "target_diameter_mm": MIN_DIAMETER_VOXELS * min_feature}
        )
    if (
        traits.margin == "spiculated"
        and traits.target_diameter_mm < MIN_SPICULATED_VOXELS * min_feature
    ):
        traits = LesionTraits(**{**traits.__dict__, "margin": "irregular"})
    mode = "interior"
    if traits.kind == "mass" and traits.target_diameter_mm >= 8.0:
        u = rng.random()
        mode = "skin" if u < 0.12 else ("chest_wall" if u < 0.22 else "interior")
    for shrink in range(4):
        t = traits
        if shrink:
            t = LesionTraits(
                **{
                    **traits.__dict__,
                    "target_diameter_mm": traits.target_diameter_mm * 0.75**shrink,
                }
            )
        if t.kind == "non_mass":
            shape: StarShape | BallUnion = make_ball_union(t, rng, min_feature)
        else:
            shape = make_star(t, rng, min_feature)
        # diameter and volume are invariant under translation: measure once, at the origin
        origin = shape.centre_mm.copy()
        surface = shape.surface_points(SEARCH_POINTS) - origin
        diameter = shape.max_diameter()
        volume = shape.volume_mm3()
        for _ in range(TRIES_PER_SIZE):
            breast = breasts[int(rng.integers(len(breasts)))]
            centre, axis_point = _start_point(breast, anatomy, rng)
            placed = _position(shape, surface, centre, axis_point, mode, anatomy, grid)
            if placed is None:
                continue
            geometry, (box, inside, depth), skin, wall = placed
            moved = geometry.centre_mm - origin
            body = anatomy.body(geometry.centre_mm)
            d = float(anatomy.params.thorax.chest_front(np.array(body[0]))) - body[1]
            small = t.enhancement == "rim" and t.target_diameter_mm < 10.0
            if small:
                t = LesionTraits(**{**t.__dict__, "enhancement": "heterogeneous"})
            rim_mm = max(float(rng.uniform(2.0, 4.0)), min(grid.spacing_mm))
            return Lesion(
                index=index,
                traits=t,
                side=breast.side,
                geometry=geometry,
                diameter=Diameter(
                    diameter.length_mm, diameter.end_a_mm + moved, diameter.end_b_mm + moved
                ),
                volume_mm3=volume,
                box=box,
                mask=inside,
                alpha=_alpha(depth, inside, t, grid, rng, rim_mm),
                placement=mode,
                touches_skin=skin,
                touches_chest_wall=wall,
                quadrant=breast.quadrant(body[0], d, body[2]),
            )
    logger.warning(
        "could not place a %.0f mm %s %s lesion in this anatomy; dropped",
        traits.target_diameter_mm,
        "malignant" if traits.malignant else "benign",
        traits.kind,
    )
    return None


def _moved(shape: StarShape | BallUnion, centre: np.ndarray) -> StarShape | BallUnion:
    if isinstance(shape, StarShape):
        return shape.moved_to(centre)
    return BallUnion(shape.centres_mm - shape.centre_mm + centre, shape.radii_mm)


def _position(
    shape: StarShape | BallUnion,
    surface: np.ndarray,
    centre: np.ndarray,
    axis_point: np.ndarray,
    mode: str,
    anatomy: Anatomy,
    grid: Grid,
) -> tuple[StarShape | BallUnion, Raster, bool, bool] | None:
    """Move the shape to ``centre`` (and outwards for touching modes); rasterise and check.

    ``surface`` holds surface points of ``shape`` relative to its centre, for a cheap search.
    """
    if mode != "interior":
        if mode == "skin":
            direction = centre - axis_point
            direction[1] = 0.3 * direction[1]
        else:
            direction = np.array([0.0, 1.0, 0.0])
        norm = float(np.linalg.norm(direction))
        if norm < 1e-6:
            return None
        direction = direction / norm
        step = 0.5 * min(grid.spacing_mm)
        forbidden_outside = (T.AIR, 255) if mode == "skin" else (T.CHEST_WALL, T.LUNG, 255)
        reached = SKIN_CODES[:2] if mode == "skin" else WALL_CODES[:1]
        last_ok = None
        for k in range(400):
            position = centre + k * step * direction
            codes = _codes_at(anatomy, grid, surface + position)
            if np.isin(codes, forbidden_outside).any() or (codes >= T.LESION_BASE).any():
                break
            last_ok = position
            if np.isin(codes, reached).any():
                break
        if last_ok is None:
            return None
        centre = last_ok
    elif not np.isin(_codes_at(anatomy, grid, surface + centre), ALLOWED["interior"]).all():
        return None
    geometry = _moved(shape, centre)
    raster = rasterise(geometry, grid)
    if raster is None:
        return None
    ok, skin, wall = _check(anatomy, raster[0], raster[1], mode)
    if not ok:
        return None
    return geometry, raster, skin, wall


def paint_lesion(lesion: Lesion, anatomy: Anatomy) -> None:
    """Write the lesion into the compartment volume, ``alpha``, ``beta`` and the breast mask."""
    box = lesion.box
    sub = anatomy.comp[box]
    sub[lesion.mask] = lesion.code
    rel = tuple(
        slice(b.start - m.start, b.stop - m.start)
        for b, m in zip(box, anatomy.mix_box, strict=True)
    )
    alpha = anatomy.alpha[rel]
    alpha[lesion.mask] = lesion.alpha
    beta = anatomy.beta[rel]
    beta[lesion.mask] = 0.0
    anatomy.breast_mask[box] |= lesion.mask
