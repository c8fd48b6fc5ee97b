"""Anatomy of the phantom: random body parameters and the compartment volume built from them.

What is modelled (shapes in :mod:`.breast`, codes in :mod:`.tissues`):

- **Thorax**, the same in every slice: skin, subcutaneous fat, pectoralis major, ribs and
  intercostal muscles (one "chest wall" layer, which also stands for the spine and paraspinal
  tissue), mediastinal fat, both lungs (dark), the descending aorta and the internal mammary
  vessels.
- **Heart** (ellipsoid of myocardium with right- and left-ventricular blood pools) in the lower
  slices, and the **great vessels** above it (ascending aorta, pulmonary trunk, superior vena
  cava) as vertical cylinders.
- **Breasts**: one or two pendant breasts (prone position) with skin, nipple, fat and
  fibroglandular tissue (FGT). The FGT fraction per voxel is ``alpha = clip((S - T) / 0.3 + 0.5,
  0, 1)`` of the score ``S = 2 E + 0.7 (0.3 + 0.7 w) N``, where ``N`` is power-law texture
  (:mod:`.texture`, elongated towards the nipple), ``w`` keeps a subcutaneous and a retromammary
  fat layer fatty, ``E = w exp(-rho^2 / s^2) (1 + 0.25 [upper outer])`` concentrates gland
  centrally and in the upper outer quadrant (``rho`` the normalised distance from the nipple
  axis), and ``T`` is solved by bisection so that the mean of ``alpha`` over the breast interior
  is the case's FGT fraction. BI-RADS density (ACR BI-RADS Atlas 5th ed., 2013) sets that
  fraction: a 3-20 %, b 20-45 %, c 45-70 %, d 70-88 %.
- **Background parenchymal enhancement** (BPE): minimal, mild, moderate or marked (more likely
  in dense breasts) sets the FGT Ktrans; a smooth random field (about 1 cm blobs) moves 30-70 %
  of the gland, with soft transitions, to a class enhancing at 50-80 % of that Ktrans (patchy
  BPE without hard edges).
- **Breast vessels**: 2-6 enhancing tubes per breast (:mod:`.vessels`).
- Optionally **one breast only** (the other side flat, as after mastectomy) and an
  **implant-like** non-enhancing ellipsoid behind the gland of one or both breasts (no
  deformation of the surrounding tissue, no capsule).

Not modelled: arms and axillae, ribs as separate bones, liver and abdomen, Cooper's ligaments as
distinct structures, nipple enhancement variants, deformation by the coil, z-variation of the
thorax. The whole-breast mask is the breast solids (skin and nipple included, pectoralis
excluded) plus any lesion voxel.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from BreastAIAssistantLib.phantom import tissues as T
from BreastAIAssistantLib.phantom.acquisition import Grid
from BreastAIAssistantLib.phantom.breast import Breast, Thorax
from BreastAIAssistantLib.phantom.breast_tissue import paint_breast, paint_breast_vessels

logger = logging.getLogger(__name__)

#: BI-RADS density -> range of the FGT volume fraction of the breast interior.
DENSITY_FGT_RANGE: dict[str, tuple[float, float]] = {
    "a": (0.03, 0.20),
    "b": (0.20, 0.45),
    "c": (0.45, 0.70),
    "d": (0.70, 0.88),
}
#: Population frequency of the density categories (about 10/40/40/10 %).
DENSITY_WEIGHTS = {"a": 0.1, "b": 0.4, "c": 0.4, "d": 0.1}
BPE_LEVELS = ("minimal", "mild", "moderate", "marked")
#: P(BPE level | density): denser breasts tend to enhance more.
BPE_GIVEN_DENSITY = {
    "a": (0.6, 0.3, 0.08, 0.02),
    "b": (0.45, 0.35, 0.15, 0.05),
    "c": (0.3, 0.35, 0.25, 0.1),
    "d": (0.2, 0.35, 0.3, 0.15),
}
#: Breast projection range (mm) by density: fatty breasts tend to be larger.
PROJECTION_RANGE = {"a": (70, 140), "b": (55, 120), "c": (45, 100), "d": (35, 85)}


@dataclass(frozen=True)
class AnatomyParams:
    """Random anatomy of one case (mm, body coordinates; see :mod:`.breast`)."""

    thorax: Thorax
    breasts: tuple[Breast, ...]
    heart_centre: tuple[float, float, float]
    heart_semi_axes: tuple[float, float, float]
    vessel_radii: dict[str, float]
    density: str
    fgt_fraction: float
    bpe: str
    bpe_patch_fraction: float
    bpe_patch_factor: float
    implant_sides: tuple[str, ...]
    subcutaneous_breast_fat_mm: float
    retromammary_fat_mm: float
    fgt_spread: float
    vessels_per_breast: int

    def fov_mm(self, margins: tuple[float, float, float]) -> tuple[float, float, float]:
        """Field of view (x, y, z) that holds the body width, the breasts and the margins."""
        t = self.thorax
        width = 2 * (t.half_width + t.subcutaneous_mm) + 2 * margins[0]
        front = self.anterior_extent() + margins[1]
        depth = front + 2 * t.half_depth + t.subcutaneous_mm
        z_lo, z_hi = self.z_extent()
        return width, max(width, 0.75 * depth), (z_hi - z_lo) + 2 * margins[2]

    def anterior_extent(self) -> float:
        """Largest distance (mm) in front of the chest-wall origin (nipple tips)."""
        if not self.breasts:
            return self.thorax.subcutaneous_mm + 10.0
        return max(b.projection + b.nipple_length for b in self.breasts) + 5.0

    def z_extent(self) -> tuple[float, float]:
        """Lowest and highest breast Z (mm); +-60 mm without breasts."""
        if not self.breasts:
            return -60.0, 60.0
        lo = min(b.cz - b.h_inf + min(0.0, b.tilt_z * b.projection) for b in self.breasts)
        hi = max(b.cz + b.h_sup + max(0.0, b.tilt_z * b.projection) for b in self.breasts)
        return lo, hi


def _pick(
    rng: np.random.Generator,
    options: dict[str, float] | tuple[str, ...],
    weights: tuple[float, ...] | None = None,
) -> str:
    keys = list(options)
    w = np.asarray(list(options.values()) if weights is None else weights, dtype=float)
    return keys[int(rng.choice(len(keys), p=w / w.sum()))]


def sample_anatomy(
    rng: np.random.Generator,
    density: str | None = None,
    bpe: str | None = None,
    breasts: str | None = None,
    implant: bool | None = None,
) -> AnatomyParams:
    """Draw the anatomy of one case.

    Args:
        rng: Random generator.
        density: BI-RADS density ``"a"``-``"d"``, or ``None`` to draw it.
        bpe: BPE level (:data:`BPE_LEVELS`), or ``None`` to draw it given the density.
        breasts: ``"both"``, ``"left"`` or ``"right"``, or ``None`` (5 % one breast only).
        implant: Whether to add an implant-like region, or ``None`` (6 % of cases).

    Raises:
        ValueError: an unknown density, BPE level or side.
    """
    density = density or _pick(rng, DENSITY_WEIGHTS)
    if density not in DENSITY_FGT_RANGE:
        raise ValueError(f"density must be one of a, b, c, d; got {density!r}")
    bpe = bpe or _pick(rng, BPE_LEVELS, BPE_GIVEN_DENSITY[density])
    if bpe not in BPE_LEVELS:
        raise ValueError(f"bpe must be one of {', '.join(BPE_LEVELS)}; got {bpe!r}")
    if breasts is None:
        breasts = "both" if rng.random() > 0.05 else str(rng.choice(["left", "right"]))
    if breasts not in ("both", "left", "right"):
        raise ValueError(f"breasts must be 'both', 'left' or 'right'; got {breasts!r}")
    fatty = {"a": 1.0, "b": 0.7, "c": 0.45, "d": 0.25}[density]
    thorax = Thorax(
        half_width=float(rng.uniform(125, 160)),
        half_depth=float(rng.uniform(85, 110)),
        pectoral_mm=float(rng.uniform(6, 16)),
        chest_wall_mm=float(rng.uniform(8, 14)),
        subcutaneous_mm=float(rng.uniform(4, 8) + 10 * fatty * rng.random()),
        skin_mm=float(rng.uniform(1.2, 2.2)),
    )
    p = float(rng.uniform(*PROJECTION_RANGE[density]))
    size = (p / 90.0) ** 0.3
    base = {
        "a_med": rng.uniform(55, 70) * size,
        "a_lat": rng.uniform(65, 90) * size,
        "h_sup": rng.uniform(55, 75) * size,
        "h_inf": rng.uniform(50, 70) * size,
        "exponent": rng.uniform(1.7, 2.8),
        "tilt_x": rng.uniform(0.0, 0.25),
        "tilt_z": rng.uniform(-0.15, 0.1),
        "offset": rng.uniform(70, 95),
    }
    made = []
    sides = ("right", "left") if breasts == "both" else (breasts,)
    for side in sides:
        jitter = rng.uniform(0.93, 1.07, 6)
        lat = 1.0 if side == "left" else -1.0
        a_med, a_lat = base["a_med"] * jitter[0], base["a_lat"] * jitter[1]
        offset = float(np.clip(base["offset"], a_med + 5, 0.92 * thorax.half_width - a_lat))
        made.append(
            Breast(
                side=side,
                cx=lat * offset,
                cz=float(rng.uniform(-5, 5)),
                a_med=float(a_med),
                a_lat=float(a_lat),
                h_sup=float(base["h_sup"] * jitter[2]),
                h_inf=float(base["h_inf"] * jitter[3]),
                projection=float(p * jitter[4]),
                exponent=float(base["exponent"]),
                tilt_x=float(base["tilt_x"] * jitter[5]),
                tilt_z=float(base["tilt_z"]),
                nipple_radius=float(rng.uniform(4, 6)),
                nipple_length=float(rng.uniform(3, 7)),
            )
        )
    hb = float(rng.uniform(36, 46))
    implant = bool(rng.random() < 0.06) if implant is None else implant
    implant_sides: tuple[str, ...] = ()
    if implant:
        implant_sides = sides if (len(sides) == 1 or rng.random() < 0.8) else (sides[0],)
    return AnatomyParams(
        thorax=thorax,
        breasts=tuple(made),
        heart_centre=(
            float(rng.uniform(12, 32)),
            thorax.chest_wall_mm + hb + float(rng.uniform(2, 8)),
            float(rng.uniform(-55, -15)),
        ),
        heart_semi_axes=(float(rng.uniform(50, 65)), hb, float(rng.uniform(45, 60))),
        vessel_radii={
            "ascending_aorta": float(rng.uniform(12, 16)),
            "pulmonary_trunk": float(rng.uniform(11, 13)),
            "superior_vena_cava": float(rng.uniform(8, 11)),
            "descending_aorta": float(rng.uniform(10, 13)),
            "internal_mammary": float(rng.uniform(1.2, 2.0)),
        },
        density=density,
        fgt_fraction=float(rng.uniform(*DENSITY_FGT_RANGE[density])),
        bpe=bpe,
        bpe_patch_fraction=float(rng.uniform(0.3, 0.7)),
        bpe_patch_factor=float(rng.uniform(0.5, 0.8)),
        implant_sides=implant_sides,
        subcutaneous_breast_fat_mm=float(rng.uniform(2, 5) + 7 * fatty * rng.random()),
        retromammary_fat_mm=float(rng.uniform(2, 4) + 4 * fatty * rng.random()),
        fgt_spread=float(rng.uniform(0.5, 0.8) + 0.5 * (1 - fatty)),
        vessels_per_breast=int(rng.integers(2, 7)),
    )


@dataclass
class Anatomy:
    """The built anatomy on a grid.

    Attributes:
        params: The drawn parameters.
        ref_mm: Grid-mm position (x, y, z) of the body origin.
        comp: ``(z, y, x)`` uint8 compartment codes (:mod:`.tissues`).
        alpha: FGT (later also lesion rim) fraction on ``mix_box``.
        beta: Part of ``alpha`` in the less enhancing BPE class, on ``mix_box``.
        mix_box: ``(z, y, x)`` slices that ``alpha`` and ``beta`` cover.
        breast_mask: ``(z, y, x)`` bool whole-breast mask.
        breast_boxes: Side -> ``(z, y, x)`` slices of that breast.
        stats: Measured FGT fraction and volume (ml) per side.
    """

    params: AnatomyParams
    ref_mm: np.ndarray
    comp: np.ndarray
    alpha: np.ndarray
    beta: np.ndarray
    mix_box: tuple[slice, slice, slice]
    breast_mask: np.ndarray
    breast_boxes: dict[str, tuple[slice, slice, slice]] = field(default_factory=dict)
    stats: dict[str, dict[str, float]] = field(default_factory=dict)

    def body(self, points_mm: np.ndarray) -> np.ndarray:
        """Body coordinates of grid-mm points."""
        return np.asarray(points_mm) - self.ref_mm

    def grid_mm(self, body_xyz: np.ndarray) -> np.ndarray:
        """Grid-mm coordinates of body points."""
        return np.asarray(body_xyz) + self.ref_mm


def _thorax_template(params: AnatomyParams, grid: Grid, ref: np.ndarray) -> np.ndarray:
    """The ``(y, x)`` uint8 label slice shared by every z."""
    t = params.thorax
    nx, ny, _ = grid.size_xyz
    x = (np.arange(nx) * grid.spacing_mm[0] - ref[0]).astype(np.float32)[None, :]
    y = (np.arange(ny) * grid.spacing_mm[1] - ref[1]).astype(np.float32)[:, None]
    yc = t.half_depth
    front = t.chest_front(x).astype(np.float32)
    d = front - y
    within = np.abs(x) < t.half_width

    def ellipse(w: float, h: float, cx: float = 0.0, cy: float = yc) -> np.ndarray:
        return ((x - cx) / w) ** 2 + ((y - cy) / h) ** 2 <= 1.0

    outer = ellipse(t.half_width + t.subcutaneous_mm, t.half_depth + t.subcutaneous_mm)
    band = within & (d >= 0) & (d <= t.subcutaneous_mm)
    body = outer | band
    inner_skin = ellipse(
        t.half_width + t.subcutaneous_mm - t.skin_mm, t.half_depth + t.subcutaneous_mm - t.skin_mm
    )
    interior = inner_skin | (within & (d < t.subcutaneous_mm - t.skin_mm) & (y < yc))
    labels = np.full((ny, nx), T.AIR, dtype=np.uint8)
    labels[body] = T.FAT
    ribs = ellipse(t.half_width, t.half_depth)
    labels[body & ~ribs & (d < 0) & (y < t.rib_front(x))] = T.PECTORALIS
    labels[ribs] = T.CHEST_WALL
    wi, hi = t.half_width - t.chest_wall_mm, t.half_depth - t.chest_wall_mm
    labels[ellipse(wi, hi)] = T.MEDIASTINUM
    # lungs fill the rib cage but for the mediastinum, wider in front (the heart is painted
    # later); behind the centre, spine and paraspinal soft tissue (chest-wall class)
    inner = ellipse(wi, hi)
    mediastinum = np.abs(x - 5.0) < 14.0 + 14.0 * np.clip((yc - y) / hi, 0.0, 1.0)
    labels[inner & ~mediastinum] = T.LUNG
    spine = (mediastinum & (y > yc + 0.2 * hi)) | ellipse(20.0, 18.0, 0.0, yc + hi - 12.0)
    labels[inner & spine] = T.CHEST_WALL
    r = params.vessel_radii
    for xs in (-30.0, 30.0):
        ys = float(t.rib_front(np.array(xs))) + t.chest_wall_mm + r["internal_mammary"] + 1
        labels[((x - xs) ** 2 + (y - ys) ** 2) <= r["internal_mammary"] ** 2] = T.BLOOD
    desc = ((x - 22.0) ** 2 + (y - (yc + 0.6 * hi)) ** 2) <= r["descending_aorta"] ** 2
    labels[desc] = T.BLOOD
    labels[body & ~interior] = T.SKIN
    return labels


def _paint_ellipsoid(
    comp: np.ndarray,
    grid: Grid,
    ref: np.ndarray,
    centre: np.ndarray,
    semi: np.ndarray,
    code: int,
    allowed: tuple[int, ...],
) -> None:
    lo = np.asarray(centre) - semi + ref
    hi = np.asarray(centre) + semi + ref
    box = grid.box(lo, hi)
    if box is None:
        return
    z, y, x = grid.coords(box)
    q = ((x - ref[0] - centre[0]) / semi[0]) ** 2 + ((y - ref[1] - centre[1]) / semi[1]) ** 2
    q = q + ((z - ref[2] - centre[2]) / semi[2]) ** 2
    sub = comp[box]
    sub[(q <= 1.0) & np.isin(sub, allowed)] = code


def _paint_cylinder(
    comp: np.ndarray,
    grid: Grid,
    ref: np.ndarray,
    cxy: tuple[float, float],
    radius: float,
    z_range: tuple[float, float],
    code: int,
    allowed: tuple[int, ...],
) -> None:
    lo = np.array([cxy[0] - radius, cxy[1] - radius, z_range[0]]) + ref
    hi = np.array([cxy[0] + radius, cxy[1] + radius, z_range[1]]) + ref
    box = grid.box(lo, hi)
    if box is None:
        return
    _, y, x = grid.coords(box)
    disc = ((x - ref[0] - cxy[0]) ** 2 + (y - ref[1] - cxy[1]) ** 2) <= radius**2
    sub = comp[box]
    sub[disc & np.isin(sub, allowed)] = code


def _heart_and_vessels(
    comp: np.ndarray, params: AnatomyParams, grid: Grid, ref: np.ndarray
) -> None:
    inside = (T.MEDIASTINUM, T.LUNG)
    c = np.asarray(params.heart_centre)
    s = np.asarray(params.heart_semi_axes)
    _paint_ellipsoid(comp, grid, ref, c, s, T.MYOCARDIUM, inside)
    rv = c + s * (-0.25, -0.3, 0.0)
    lv = c + s * (0.2, 0.15, -0.1)
    _paint_ellipsoid(comp, grid, ref, rv, s * (0.45, 0.35, 0.6), T.BLOOD, (T.MYOCARDIUM,))
    _paint_ellipsoid(comp, grid, ref, lv, s * (0.35, 0.4, 0.55), T.BLOOD, (T.MYOCARDIUM,))
    top = 1e4
    r = params.vessel_radii
    allowed = (*inside, T.MYOCARDIUM)
    _paint_cylinder(
        comp,
        grid,
        ref,
        (c[0] - 20, c[1] - 0.1 * s[1]),
        r["ascending_aorta"],
        (c[2], top),
        T.BLOOD,
        allowed,
    )
    _paint_cylinder(
        comp,
        grid,
        ref,
        (c[0] + 2, c[1] - 0.45 * s[1]),
        r["pulmonary_trunk"],
        (c[2] + 0.3 * s[2], c[2] + s[2] + 25),
        T.BLOOD,
        allowed,
    )
    _paint_cylinder(
        comp,
        grid,
        ref,
        (c[0] - 42, c[1]),
        r["superior_vena_cava"],
        (c[2] + 0.5 * s[2], top),
        T.BLOOD,
        allowed,
    )


def _union_box(
    boxes: list[tuple[slice, slice, slice]], shape: tuple[int, int, int]
) -> tuple[slice, slice, slice]:
    if not boxes:
        return (slice(0, 1), slice(0, 1), slice(0, 1))
    return tuple(  # type: ignore[return-value]
        slice(min(b[a].start for b in boxes), max(b[a].stop for b in boxes)) for a in range(3)
    )


def build_anatomy(
    params: AnatomyParams, grid: Grid, ref_mm: np.ndarray, rng: np.random.Generator
) -> Anatomy:
    """Build the compartment volume, FGT fractions and whole-breast mask of a case.

    Args:
        params: Drawn anatomy.
        grid: Voxel grid.
        ref_mm: Grid-mm position of the body origin.
        rng: Random generator (texture, BPE patches, implant, vessels).

    Returns:
        The :class:`Anatomy`.
    """
    ref = np.asarray(ref_mm, dtype=float)
    shape = grid.shape_zyx
    comp = np.empty(shape, dtype=np.uint8)
    comp[...] = _thorax_template(params, grid, ref)
    _heart_and_vessels(comp, params, grid, ref)

    # the mix box holds every breast plus room behind it for lesions reaching the chest wall
    mix_boxes = []
    for breast in params.breasts:
        lo, hi = breast.bounds(params.thorax, margin=2.0)
        box = grid.box(lo + ref - (5, 5, 5), hi + ref + (5, 20, 5))
        if box is not None:
            mix_boxes.append(box)
    mix_box = _union_box(mix_boxes, shape)
    alpha = np.zeros(tuple(s.stop - s.start for s in mix_box), dtype=np.float32)
    beta = np.zeros_like(alpha)
    breast_mask = np.zeros(shape, dtype=bool)
    anatomy = Anatomy(params, ref, comp, alpha, beta, mix_box, breast_mask)
    for breast in params.breasts:
        anatomy.stats[breast.side] = paint_breast(
            breast, params.thorax, params, grid, ref, comp, alpha, beta, mix_box, breast_mask, rng
        )
        lo, hi = breast.bounds(params.thorax, margin=2.0)
        box = grid.box(lo + ref, hi + ref)
        if box is not None:
            anatomy.breast_boxes[breast.side] = box
    for breast in params.breasts:
        paint_breast_vessels(breast, params.thorax, params.vessels_per_breast, grid, ref, comp, rng)
    return anatomy
