"""The synthetic breast DCE-MRI phantom: one call, one case, the same case for the same seed.

``generate_case(seed, size="clinical", n_phases=6)`` returns a :class:`PhantomCase`: a
:class:`~BreastAIAssistantLib.study.DCEStudy` plus the ground truth (tumour instance mask,
whole-breast mask, tissue map, and the case.json record of :mod:`.truth`).

**The phantom is synthetic.** It models, in simplified form: the anatomy of :mod:`.anatomy`
(breasts of BI-RADS density a-d with texture, skin, nipple, pectoralis, chest wall, lungs,
heart and great vessels, breast vessels, optional implant or single breast); contrast kinetics
from a population AIF and the extended Tofts model per tissue, turned into signal by the spoiled
gradient-echo equation (:mod:`.kinetics`); lesions of :mod:`.lesions` with traits and receptor
labels from the generative model of :mod:`.receptors`; and the acquisition of
:mod:`.acquisition` (timing, spacing, bias field, motion, Rician noise).
It does not model: k-space sampling, the point-spread function, Gibbs ringing, fold-over or
fat-water chemical shift, B1 inhomogeneity of the flip angle, inflow and partial saturation of
blood, water exchange, T2* effects, patient-specific physiology, breathing or cardiac motion
within a phase, deformation of the breast, or any real radiology-pathology correlation.

Determinism: every random choice comes from its own stream,
``numpy.random.default_rng([seed, crc32(stream name)])`` (anatomy, acquisition, texture,
lesions, kinetics, bias, motion, noise), so a case depends only on the seed and the spec, not
on the thread count, and changing e.g. the phase count leaves the anatomy unchanged.
"""

from __future__ import annotations

import logging
import os
import time
import zlib
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import SimpleITK as sitk

from BreastAIAssistantLib.dce.timing import select_phases
from BreastAIAssistantLib.phantom import tissues as T
from BreastAIAssistantLib.phantom.acquisition import (
    SIZE_PRESETS,
    TEMPORAL_RESOLUTION_RANGE_S,
    Grid,
    NoisePool,
    bias_field,
    draw_motion,
    draw_sequence,
    make_grid,
    phase_times,
)
from BreastAIAssistantLib.phantom.anatomy import Anatomy, build_anatomy, sample_anatomy
from BreastAIAssistantLib.phantom.kinetics import Protocol, signal_curves
from BreastAIAssistantLib.phantom.lesion_kinetics import LesionKinetics, sample_lesion_kinetics
from BreastAIAssistantLib.phantom.lesions import Lesion, paint_lesion, place_lesion
from BreastAIAssistantLib.phantom.receptors import LesionTraits, sample_traits
from BreastAIAssistantLib.phantom.synthesis import SynthesisInputs, synthesize_phases
from BreastAIAssistantLib.phantom.truth import DISCLAIMER, SCHEMA, lesion_record
from BreastAIAssistantLib.study import DCEStudy

logger = logging.getLogger(__name__)

#: Lesion spec names accepted in :attr:`PhantomSpec.lesions`.
LESION_KINDS = ("malignant", "benign", "cyst", "malignant_non_mass", "benign_non_mass")
#: P(number of lesions) for 0..4 when not given.
LESION_COUNT_WEIGHTS = (0.2, 0.4, 0.25, 0.1, 0.05)
#: P(class) of a drawn lesion.
LESION_CLASS_WEIGHTS = {"malignant": 0.5, "benign": 0.3, "cyst": 0.2}
#: P(phase count) for 2..9 when not given.
PHASE_COUNT_WEIGHTS = (0.04, 0.08, 0.14, 0.2, 0.2, 0.14, 0.1, 0.1)


@dataclass(frozen=True)
class PhantomSpec:
    """What to generate; every ``None`` is drawn from the seed.

    Attributes:
        size: ``"small"`` (96 x 96 x 32, for tests) or ``"clinical"`` (448 x 448 x 160).
        size_xyz: Explicit grid size (overrides ``size``'s matrix).
        spacing_mm: Explicit spacing (x, y, z); by default it follows the field of view.
        n_phases: Phase count including the pre-contrast phase (``>= 2``; drawn 2-9).
        temporal_resolution_s: Seconds between post-contrast phases (drawn 45-120).
        lesions: Lesion classes to place, e.g. ``("malignant", "benign", "cyst")``; items from
            :data:`LESION_KINDS`; ``None`` draws 0-4 lesions.
        non_mass: Whether drawn malignant lesions may be non-mass enhancement.
        density: BI-RADS density ``"a"``-``"d"``.
        bpe: ``"minimal"``, ``"mild"``, ``"moderate"`` or ``"marked"``.
        breasts: ``"both"``, ``"left"`` or ``"right"``.
        implant: Add an implant-like region.
        oblique: Oblique direction cosines (drawn true in 20 % of cases).
        fat_suppressed: Fat-suppressed acquisition (drawn 50 %).
        motion: Motion amount factor (0 = none; drawn 0-1.5).
        noise: Add Rician noise (``False`` gives noise-free phases).
        bias: Apply the bias field.
        n_threads: Worker threads (``None`` = CPU count, at most 8); results do not depend on it.
    """

    size: str = "small"
    size_xyz: tuple[int, int, int] | None = None
    spacing_mm: tuple[float, float, float] | None = None
    n_phases: int | None = None
    temporal_resolution_s: float | None = None
    lesions: tuple[str, ...] | None = None
    non_mass: bool = True
    density: str | None = None
    bpe: str | None = None
    breasts: str | None = None
    implant: bool | None = None
    oblique: bool | None = None
    fat_suppressed: bool | None = None
    motion: float | None = None
    noise: bool = True
    bias: bool = True
    n_threads: int | None = None

    def __post_init__(self) -> None:
        if self.size not in SIZE_PRESETS:
            raise ValueError(f"size must be one of {', '.join(SIZE_PRESETS)}, got {self.size!r}")
        if self.n_phases is not None and self.n_phases < 2:
            raise ValueError(f"a DCE study needs at least 2 phases, got n_phases={self.n_phases}")
        if self.temporal_resolution_s is not None and not self.temporal_resolution_s > 0:
            raise ValueError("temporal_resolution_s must be > 0")
        for item in self.lesions or ():
            if item not in LESION_KINDS:
                raise ValueError(f"unknown lesion {item!r}; use one of {', '.join(LESION_KINDS)}")
        if self.motion is not None and self.motion < 0:
            raise ValueError("motion must be >= 0")

    def to_dict(self) -> dict[str, Any]:
        """The fields that were set and shape the case (JSON-ready; not ``n_threads``)."""
        return {
            k: (list(v) if isinstance(v, tuple) else v)
            for k, v in asdict(self).items()
            if v is not None and k != "n_threads"
        }


@dataclass
class PhantomCase:
    """One generated case.

    Attributes:
        study: The DCE study (float32 phases in LPS, times in seconds).
        tumour_labels: uint16 lesion instances (label ``i`` = ``truth["lesions"][i - 1]``).
        breast_mask: uint8 whole-breast mask (1 inside).
        tissue_labels: uint8 tissue map (codes of :data:`.tissues.TISSUE_NAMES`).
        truth: JSON-ready case.json record (:mod:`.truth`).
        seed: The seed.
        spec: The spec.
        timings_s: Seconds per generation stage.
    """

    study: DCEStudy
    tumour_labels: sitk.Image
    breast_mask: sitk.Image
    tissue_labels: sitk.Image
    truth: dict[str, Any]
    seed: int
    spec: PhantomSpec
    timings_s: dict[str, float] = field(default_factory=dict)


def stream(seed: int, name: str) -> np.random.Generator:
    """The named random stream of a seed."""
    return np.random.default_rng([int(seed), zlib.crc32(name.encode())])


def _draw_lesion_traits(spec: PhantomSpec, rng: np.random.Generator) -> list[LesionTraits]:
    if spec.lesions is not None:
        items = list(spec.lesions)
    else:
        n = int(rng.choice(len(LESION_COUNT_WEIGHTS), p=LESION_COUNT_WEIGHTS))
        names = list(LESION_CLASS_WEIGHTS)
        probs = np.array(list(LESION_CLASS_WEIGHTS.values()))
        items = [names[int(rng.choice(len(names), p=probs))] for _ in range(n)]
    traits = []
    for item in items:
        cls, _, kind = item.partition("_")
        forced = "non_mass" if kind else (None if spec.non_mass or cls != "malignant" else "mass")
        traits.append(sample_traits(rng, cls, forced))
    return traits


def _luts(
    anatomy: Anatomy,
    lesions: list[Lesion],
    kinetics: list[LesionKinetics],
    times: tuple[float, ...],
    protocol: Protocol,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Per-phase base and difference signals of every compartment, and the FGT pre signal."""
    params = anatomy.params
    fgt_a = replace(T.TISSUES[T.FIBROGLANDULAR], ktrans_per_min=T.BPE_KTRANS[params.bpe])
    fgt_b = replace(fgt_a, ktrans_per_min=fgt_a.ktrans_per_min * params.bpe_patch_factor)
    codes = sorted(T.TISSUES)
    classes = [T.TISSUES[c] for c in codes] + [fgt_a, fgt_b]
    for k in kinetics:
        classes += [k.core, k.rim]
    sig = signal_curves(classes, times, protocol).astype(np.float32)
    n = len(times)
    lut_a = np.zeros((n, 256), np.float32)
    lut_d = np.zeros((n, 256), np.float32)
    lut_d2 = np.zeros((n, 256), np.float32)
    for i, code in enumerate(codes):
        lut_a[:, code] = sig[i]
    fat = sig[codes.index(T.FAT)]
    base = len(codes)
    lut_a[:, T.BREAST] = fat
    lut_d[:, T.BREAST] = sig[base] - fat
    lut_d2[:, T.BREAST] = sig[base + 1] - sig[base]
    for j, lesion in enumerate(lesions):
        core, rim = sig[base + 2 + 2 * j], sig[base + 3 + 2 * j]
        lut_a[:, lesion.code] = core
        lut_d[:, lesion.code] = rim - core
    return lut_a, lut_d, lut_d2, float(sig[base][0])


def _label_images(
    anatomy: Anatomy, lesions: list[Lesion], grid: Grid
) -> tuple[sitk.Image, sitk.Image, sitk.Image]:
    tumour = np.zeros(anatomy.comp.shape, np.uint16)
    for lesion in lesions:
        sub = tumour[lesion.box]
        sub[lesion.mask] = lesion.label
    lut = np.zeros(256, np.uint8)
    for code in T.TISSUE_NAMES:
        lut[code] = code
    lut[T.BREAST] = T.FAT
    lut[T.LESION_BASE :] = T.LESION
    tissue = lut[anatomy.comp]
    mix = anatomy.comp[anatomy.mix_box]
    gland = (mix == T.BREAST) & (anatomy.alpha >= 0.5)
    tissue[anatomy.mix_box][gland] = T.FIBROGLANDULAR
    return (
        grid.image(tumour),
        grid.image(anatomy.breast_mask.view(np.uint8)),
        grid.image(tissue),
    )


def generate_case(seed: int, spec: PhantomSpec | None = None, **overrides: Any) -> PhantomCase:
    """Generate one synthetic case (deterministic for a seed and spec).

    Args:
        seed: Any non-negative integer.
        spec: What to generate (``None`` = :class:`PhantomSpec` defaults).
        **overrides: :class:`PhantomSpec` fields replacing those of ``spec``
            (e.g. ``size="clinical", n_phases=6``).

    Returns:
        The :class:`PhantomCase`.

    Raises:
        ValueError: invalid spec values.
    """
    spec = replace(spec or PhantomSpec(), **overrides)
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    clock = time.perf_counter()
    timings: dict[str, float] = {}
    n_threads = spec.n_threads or min(os.cpu_count() or 1, 8)

    params = sample_anatomy(
        stream(seed, "anatomy"), spec.density, spec.bpe, spec.breasts, spec.implant
    )
    acq = stream(seed, "acquisition")
    n_phases = spec.n_phases or int(2 + acq.choice(8, p=PHASE_COUNT_WEIGHTS))
    dt = spec.temporal_resolution_s or float(acq.uniform(*TEMPORAL_RESOLUTION_RANGE_S))
    pause = float(acq.uniform(10.0, 30.0)) if acq.random() < 0.4 else 0.0
    times = phase_times(n_phases, dt, pause)
    seq = draw_sequence(acq, spec.fat_suppressed)
    oblique = bool(acq.random() < 0.2) if spec.oblique is None else spec.oblique
    margins = tuple(float(m) for m in acq.uniform(8.0, 25.0, 3))
    grid = make_grid(
        spec.size_xyz or SIZE_PRESETS[spec.size],
        params.fov_mm(margins),
        spec.size == "clinical" and spec.size_xyz is None,
        acq,
        oblique,
        spec.spacing_mm,
    )
    z_lo, z_hi = params.z_extent()
    extent = grid.extent_mm
    ref = np.array(
        [
            extent[0] / 2 + acq.uniform(-8, 8),
            margins[1] + params.anterior_extent(),
            extent[2] / 2 - (z_lo + z_hi) / 2,
        ]
    )
    protocol = Protocol(
        field_t=seq.field_t,
        tr_ms=seq.tr_ms,
        flip_deg=seq.flip_deg,
        agent=seq.agent,
        injection_s=dt / 2 + float(acq.uniform(0.0, 15.0)),
        aif_scale=seq.aif_scale,
        gain=seq.gain,
        fat_residual=seq.fat_residual,
    )

    anatomy = build_anatomy(params, grid, ref, stream(seed, "texture"))
    timings["anatomy"] = time.perf_counter() - clock

    clock = time.perf_counter()
    traits = _draw_lesion_traits(spec, stream(seed, "lesion-traits"))
    order = sorted(range(len(traits)), key=lambda i: -traits[i].target_diameter_mm)
    place_rng = stream(seed, "lesion-placement")
    lesions: list[Lesion] = []
    for i in order:
        lesion = place_lesion(len(lesions), traits[i], anatomy, grid, place_rng)
        if lesion is not None:
            paint_lesion(lesion, anatomy)
            lesions.append(lesion)
    kin_rng = stream(seed, "lesion-kinetics")
    kinetics = [
        sample_lesion_kinetics(les.traits, float(les.alpha.mean()), times, protocol, kin_rng)
        for les in lesions
    ]
    timings["lesions"] = time.perf_counter() - clock

    clock = time.perf_counter()
    lut_a, lut_d, lut_d2, fgt_pre = _luts(anatomy, lesions, kinetics, times, protocol)
    sigma = fgt_pre / seq.snr
    bias_z, bias_yx, bias_info = bias_field(grid, stream(seed, "bias"), 1.0 if spec.bias else 0.0)
    motion_rng = stream(seed, "motion")
    amount = float(motion_rng.uniform(0.0, 1.5)) if spec.motion is None else spec.motion
    motion_mm = draw_motion(n_phases, grid.spacing_mm, motion_rng, amount)
    shifts = [
        (z / grid.spacing_mm[2], y / grid.spacing_mm[1], x / grid.spacing_mm[0])
        for x, y, z in motion_mm
    ]
    pool, offsets = None, None
    if spec.noise:
        pool = NoisePool(int(np.prod(grid.shape_zyx)), sigma, stream(seed, "noise"), n_threads)
        offsets = pool.offsets(2 * n_phases).reshape(n_phases, 2)
    inputs = SynthesisInputs(
        anatomy.comp,
        anatomy.alpha,
        anatomy.beta,
        anatomy.mix_box,
        lut_a,
        lut_d,
        lut_d2,
        bias_z,
        bias_yx,
        shifts,
        pool,
        offsets,
    )
    images = synthesize_phases(inputs, grid.image, n_threads)
    del pool, inputs
    timings["phases"] = time.perf_counter() - clock

    clock = time.perf_counter()
    study = DCEStudy.from_images(
        images,
        times,
        source=f"BreastAIAssistant synthetic phantom (seed {seed}, {spec.size})",
        metadata={"format": "phantom", "synthetic": True, "seed": seed, "size": spec.size},
    )
    tumour, breast_mask, tissue = _label_images(anatomy, lesions, grid)
    choice = select_phases(times, n_phases, "default")
    truth = {
        "schema": SCHEMA,
        "synthetic": True,
        "disclaimer": DISCLAIMER,
        "generator": {"module": __name__, "seed": seed, "spec": spec.to_dict()},
        "acquisition": {
            "n_phases": n_phases,
            "times_s": [round(t, 3) for t in times],
            "temporal_resolution_s": round(dt, 3),
            "injection_pause_s": round(pause, 3),
            "early_phase": choice.early,
            "late_phase": choice.late,
            **grid.to_dict(),
            "oblique": oblique,
            **protocol.to_dict(),
            "fat_suppressed": seq.fat_suppressed,
            "snr_fibroglandular": round(seq.snr, 3),
            "noise": {"model": "rician", "sigma": round(sigma, 4) if spec.noise else 0.0},
            "bias_field": bias_info if spec.bias else None,
            "motion_amount": round(amount, 4),
            "motion_mm": [list(m) for m in motion_mm],
            "motion_lps_mm": np.round(
                np.asarray(motion_mm) @ np.asarray(grid.direction).reshape(3, 3).T, 4
            ).tolist(),
        },
        "anatomy": _anatomy_record(anatomy, grid),
        "tissue_labels": {str(k): v for k, v in T.TISSUE_NAMES.items()},
        "lesions": [lesion_record(les, k, grid) for les, k in zip(lesions, kinetics, strict=True)],
    }
    timings["truth"] = time.perf_counter() - clock
    logger.info(
        "phantom case %d: %d phases, %d lesions, %s",
        seed,
        n_phases,
        len(lesions),
        {k: round(v, 3) for k, v in timings.items()},
    )
    return PhantomCase(study, tumour, breast_mask, tissue, truth, seed, spec, timings)


def _anatomy_record(anatomy: Anatomy, grid: Grid) -> dict[str, Any]:
    p = anatomy.params
    heart_lps = grid.to_lps(anatomy.grid_mm(np.asarray(p.heart_centre)))
    return {
        "breasts": [b.side for b in p.breasts],
        "density": p.density,
        "fgt_fraction_target": round(p.fgt_fraction, 4),
        "fgt_fraction": {s: round(v["fgt_fraction"], 4) for s, v in anatomy.stats.items()},
        "breast_volume_ml": {s: round(v["volume_ml"], 2) for s, v in anatomy.stats.items()},
        "bpe": p.bpe,
        "bpe_ktrans_per_min": T.BPE_KTRANS[p.bpe],
        "implant": list(p.implant_sides),
        "heart_centre_lps_mm": np.round(heart_lps, 3).tolist(),
        "thorax_mm": {k: round(v, 3) for k, v in p.thorax.__dict__.items()},
        "breast_shapes_mm": [b.to_dict() for b in p.breasts],
    }
