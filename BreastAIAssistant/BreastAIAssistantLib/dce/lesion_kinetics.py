"""Per-lesion kinetics: mean signal curves, percent enhancement, BI-RADS curve type, composition.

For every lesion of an instance label map (values ``1..n`` on the study grid) this computes:

- the *mean curve*: the mean signal of all the lesion's voxels in each phase;
- the *hotspot curve*: the mean signal of the lesion's most enhancing part. A radiologist reads
  the kinetic curve from a small region of interest placed on the most enhancing part of the
  lesion, not from the whole lesion, whose necrotic or slowly enhancing parts flatten the mean
  (ACR BI-RADS Atlas, MRI lexicon, 5th ed. 2013: the curve that is "worst" decides). The hotspot
  here is the voxels at or above the lesion's 90th percentile of early percent enhancement, i.e.
  its top 10 % by early PE (``hotspot_fraction``), at least ``hotspot_min_voxels`` (3, a minimal
  ROI) or the whole lesion when it is smaller. The voxels are chosen by rank, so the count is
  exact with ties broken by voxel order; they are not required to be contiguous;
- percent-enhancement curves ``PE_k = 100 (S_k - S_0) / S_0`` of both curves (``PE_0 = 0``);
- the BI-RADS curve type of the hotspot curve (and of the mean curve), by
  :func:`.curves.classify_curve`: the same ±10 % rule and early-enhancement threshold as the
  voxel map;
- the voxel curve-type composition: the fraction of the lesion's voxels labelled not assessed,
  persistent, plateau and washout in the ``curve_type`` map, over all voxels and over the
  assessed ones;
- SER and peak enhancement of the hotspot curve, with its time (or phase) to peak.

Everything is vectorised over the lesion voxels (``np.bincount`` over labels, one ``lexsort`` for
the per-lesion ranks); there is no Python loop over voxels, only over phases and lesions.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import SimpleITK as sitk

from BreastAIAssistantLib.dce.curves import (
    CURVE_TYPE_LABELS,
    DEFAULT_MIN_ENHANCEMENT_PCT,
    DEFAULT_TOLERANCE,
    CurveType,
    classify_curve,
)
from BreastAIAssistantLib.dce.curves import curve_type_map as _curve_type_map
from BreastAIAssistantLib.dce.enhancement import s0_floor
from BreastAIAssistantLib.dce.maps import DCEMaps, MapSettings
from BreastAIAssistantLib.dce.timing import PhaseChoice, select_phases
from BreastAIAssistantLib.measure.masks import MaskError, mask_array
from BreastAIAssistantLib.study import DCEStudy, same_grid

logger = logging.getLogger(__name__)

#: Default share of a lesion's voxels (by early PE rank) that forms its hotspot.
DEFAULT_HOTSPOT_FRACTION = 0.10
#: Default smallest hotspot, in voxels.
DEFAULT_HOTSPOT_MIN_VOXELS = 3

#: Composition keys, in curve-type label order.
COMPOSITION_KEYS: tuple[str, ...] = tuple(
    str(CURVE_TYPE_LABELS[t.value]["name"]).replace(" ", "_") for t in CurveType
)


@dataclass(frozen=True)
class LesionKinetics:
    """Kinetics of one lesion.

    Attributes:
        lesion_id: The label value.
        voxel_count: Voxels of the lesion.
        hotspot_voxel_count: Voxels of its most enhancing part.
        mean_curve: Mean signal per phase over the whole lesion (phase 0 first).
        hotspot_curve: Mean signal per phase over the hotspot.
        mean_pe_curve_pct: Percent enhancement of ``mean_curve`` per phase (0 at phase 0).
        pe_curve_pct: Percent enhancement of ``hotspot_curve`` per phase.
        curve_type: BI-RADS curve type of the hotspot curve.
        mean_curve_type: BI-RADS curve type of the whole-lesion mean curve.
        composition: Fraction of the lesion's voxels per voxel curve type (keys
            :data:`COMPOSITION_KEYS`); sums to 1.
        assessed_composition: Fractions of persistent/plateau/washout among assessed voxels
            (empty when no voxel is assessed).
        ser: Signal enhancement ratio of the hotspot curve, ``(S_e - S0) / (S_l - S0)``; NaN when
            the late enhancement is not positive.
        peak_enhancement_pct: Highest PE of the hotspot curve over the post-contrast phases.
        peak_phase: Phase of that peak (first one on ties).
        early: Early phase index used.
        late: Late phase index used.
        times_s: Acquisition times (``None`` when unknown: plot against phase index).
        hotspot_fraction: Hotspot share used.
        hotspot_min_voxels: Minimal hotspot used.
        min_enhancement_pct: Early PE threshold of the curve-type rule.
        tolerance: Relative change separating plateau from persistent/washout.
        notes: Warnings (e.g. a hotspot whose pre-contrast signal is below the floor).
    """

    lesion_id: int
    voxel_count: int
    hotspot_voxel_count: int
    mean_curve: tuple[float, ...]
    hotspot_curve: tuple[float, ...]
    mean_pe_curve_pct: tuple[float, ...]
    pe_curve_pct: tuple[float, ...]
    curve_type: CurveType
    mean_curve_type: CurveType
    composition: dict[str, float]
    assessed_composition: dict[str, float]
    ser: float
    peak_enhancement_pct: float
    peak_phase: int
    early: int
    late: int
    times_s: tuple[float, ...] | None = None
    hotspot_fraction: float = DEFAULT_HOTSPOT_FRACTION
    hotspot_min_voxels: int = DEFAULT_HOTSPOT_MIN_VOXELS
    min_enhancement_pct: float = DEFAULT_MIN_ENHANCEMENT_PCT
    tolerance: float = DEFAULT_TOLERANCE
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def curve_type_name(self) -> str:
        """Display name of the hotspot curve type (``"washout"``...)."""
        return str(CURVE_TYPE_LABELS[int(self.curve_type)]["name"])

    @property
    def time_to_peak_s(self) -> float | None:
        """Acquisition time of the peak phase, ``None`` without times."""
        return None if self.times_s is None else float(self.times_s[self.peak_phase])

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (NaN -> ``None``)."""

        def num(value: float) -> float | None:
            return round(float(value), 6) if math.isfinite(value) else None

        return {
            "lesion_id": self.lesion_id,
            "voxel_count": self.voxel_count,
            "hotspot_voxel_count": self.hotspot_voxel_count,
            "mean_curve": [num(v) for v in self.mean_curve],
            "hotspot_curve": [num(v) for v in self.hotspot_curve],
            "mean_pe_curve_pct": [num(v) for v in self.mean_pe_curve_pct],
            "pe_curve_pct": [num(v) for v in self.pe_curve_pct],
            "curve_type": int(self.curve_type),
            "curve_type_name": self.curve_type_name,
            "mean_curve_type": int(self.mean_curve_type),
            "mean_curve_type_name": str(CURVE_TYPE_LABELS[int(self.mean_curve_type)]["name"]),
            "composition": {k: num(v) for k, v in self.composition.items()},
            "assessed_composition": {k: num(v) for k, v in self.assessed_composition.items()},
            "ser": num(self.ser),
            "peak_enhancement_pct": num(self.peak_enhancement_pct),
            "peak_phase": self.peak_phase,
            "time_to_peak_s": self.time_to_peak_s,
            "early": self.early,
            "late": self.late,
            "times_s": list(self.times_s) if self.times_s is not None else None,
            "hotspot": {
                "rule": "top fraction of the lesion's voxels by early percent enhancement",
                "fraction": self.hotspot_fraction,
                "min_voxels": self.hotspot_min_voxels,
            },
            "curve_rule": {
                "min_enhancement_pct": self.min_enhancement_pct,
                "tolerance": self.tolerance,
            },
            "notes": list(self.notes),
        }


def _percent(curve: np.ndarray) -> np.ndarray:
    """``100 (S_k - S_0) / S_0`` of each row of ``curves`` (NaN where ``S_0 <= 0``)."""
    s0 = curve[..., :1]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(s0 > 0, 100.0 * (curve - s0) / np.where(s0 > 0, s0, 1.0), np.nan)


def _hotspot_mask(
    codes: np.ndarray, score: np.ndarray, counts: np.ndarray, fraction: float, min_voxels: int
) -> np.ndarray:
    """Boolean mask of each lesion's top voxels by ``score`` (per-lesion rank, no voxel loop).

    Args:
        codes: Dense lesion code (0..m-1) of each lesion voxel.
        score: Score of each lesion voxel (early PE).
        counts: Voxels per lesion code.
        fraction: Share of each lesion to keep.
        min_voxels: Smallest number kept (capped at the lesion size).
    """
    order = np.lexsort((np.arange(score.size), score, codes))  # by lesion, then score, then voxel
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    rank = np.empty(score.size, dtype=np.int64)
    rank[order] = np.arange(score.size) - np.repeat(starts, counts)
    keep = np.minimum(counts, np.maximum(np.ceil(fraction * counts), min_voxels)).astype(np.int64)
    return rank >= (counts - keep)[codes]


def _labels_array(labels: sitk.Image, study: DCEStudy) -> np.ndarray:
    array = mask_array(labels, "the lesion label map")
    if not same_grid(labels, study.reference):
        raise MaskError(
            "the lesion label map is not on the study grid (size "
            f"{labels.GetSize()} vs {study.size_xyz}); resample it onto the pre-contrast phase "
            "(nearest neighbour) first"
        )
    return array


def lesion_kinetics(
    study: DCEStudy,
    labels: sitk.Image,
    *,
    maps: DCEMaps | None = None,
    settings: MapSettings | None = None,
    phases: PhaseChoice | None = None,
    hotspot_fraction: float = DEFAULT_HOTSPOT_FRACTION,
    hotspot_min_voxels: int = DEFAULT_HOTSPOT_MIN_VOXELS,
) -> dict[int, LesionKinetics]:
    """Kinetic curves, curve type and curve-type composition of every lesion.

    Args:
        study: The study.
        labels: Instance label map (0 background, ``1..n`` lesions) on the study grid.
        maps: The study's maps. When given, their phase choice, settings, ``S0`` floor and
            ``curve_type``/``pe`` maps are used, so the composition matches the displayed map.
        settings: Map settings when ``maps`` is not given (phase preset, floor, curve rule);
            default :class:`MapSettings`.
        phases: Explicit early/late phases (overrides ``maps`` and ``settings``).
        hotspot_fraction: Share of each lesion, by early PE rank, forming its hotspot (0, 1].
        hotspot_min_voxels: Smallest hotspot in voxels (``>= 1``).

    Returns:
        Lesion id -> :class:`LesionKinetics`, ascending ids (empty for an empty label map).

    Raises:
        MaskError: ``labels`` is not a label map or not on the study grid.
        PhaseSelectionError: the early/late phases cannot be chosen.
        ValueError: bad hotspot settings.
    """
    if not 0 < hotspot_fraction <= 1:
        raise ValueError(f"hotspot_fraction must be in (0, 1], got {hotspot_fraction}")
    if hotspot_min_voxels < 1:
        raise ValueError(f"hotspot_min_voxels must be >= 1, got {hotspot_min_voxels}")
    label_zyx = _labels_array(labels, study)
    if maps is not None:
        settings = maps.settings
    settings = settings or MapSettings()
    if phases is None:
        phases = (
            maps.phases
            if maps is not None
            else select_phases(
                study.times_s, study.n_phases, settings.preset, settings.early, settings.late
            )
        )
    flat_labels = label_zyx.reshape(-1)
    where = np.flatnonzero(flat_labels)
    if where.size == 0:
        logger.info("lesion kinetics: the label map is empty")
        return {}
    ids, codes = np.unique(flat_labels[where], return_inverse=True)
    counts = np.bincount(codes, minlength=ids.size)

    # one gather per phase: (n_phases, n_lesion_voxels) float64
    signal = np.stack([study.phase_zyx(k).reshape(-1)[where] for k in range(study.n_phases)])
    s0, s_early, s_late = signal[0], signal[phases.early], signal[phases.late]
    if maps is not None:
        floor = maps.s0_floor
        voxel_types = maps.array("curve_type").reshape(-1)[where].astype(np.int64)
        pe_early = maps.array("pe").reshape(-1)[where].astype(np.float64)
    else:
        floor = s0_floor(
            study.phase_zyx(0),
            settings.s0_floor_fraction,
            settings.s0_floor_percentile,
            settings.s0_floor,
        )
        voxel_types = _curve_type_map(
            s0.astype(np.float32),
            s_early.astype(np.float32),
            s_late.astype(np.float32),
            floor,
            settings.curve_min_enhancement_pct,
            settings.curve_tolerance,
        ).astype(np.int64)
        valid = (s0 >= floor) & (s0 > 0)
        pe_early = np.where(valid, 100.0 * (s_early - s0) / np.where(valid, s0, 1.0), 0.0)

    hot = _hotspot_mask(codes, pe_early, counts, hotspot_fraction, hotspot_min_voxels)
    hot_counts = np.bincount(codes[hot], minlength=ids.size)
    mean_curves = (
        np.stack([np.bincount(codes, weights=row, minlength=ids.size) for row in signal], axis=1)
        / counts[:, None]
    )
    hot_curves = (
        np.stack(
            [np.bincount(codes[hot], weights=row[hot], minlength=ids.size) for row in signal],
            axis=1,
        )
        / hot_counts[:, None]
    )
    n_types = len(CurveType)
    type_counts = np.bincount(
        codes * n_types + np.clip(voxel_types, 0, n_types - 1), minlength=ids.size * n_types
    ).reshape(ids.size, n_types)

    context = _Context(
        phases, settings, study.times_s, hotspot_fraction, hotspot_min_voxels, float(floor)
    )
    result: dict[int, LesionKinetics] = {}
    for m, lesion_id in enumerate(ids.tolist()):
        result[int(lesion_id)] = _one_lesion(
            int(lesion_id),
            (int(counts[m]), int(hot_counts[m])),
            mean_curves[m],
            hot_curves[m],
            type_counts[m],
            context,
        )
    logger.info(
        "lesion kinetics of %d lesion(s) on phases %d/%d", len(result), phases.early, phases.late
    )
    return result


@dataclass(frozen=True)
class _Context:
    """What every lesion of one call shares."""

    phases: PhaseChoice
    settings: MapSettings
    times_s: tuple[float, ...] | None
    hotspot_fraction: float
    hotspot_min_voxels: int
    floor: float


def _one_lesion(
    lesion_id: int,
    voxel_counts: tuple[int, int],
    mean_curve: np.ndarray,
    hot_curve: np.ndarray,
    type_counts: np.ndarray,
    context: _Context,
) -> LesionKinetics:
    """Assemble one lesion's record from its curves and curve-type counts."""
    count, hot_count = voxel_counts
    phases, settings, floor = context.phases, context.settings, context.floor
    rule = (settings.curve_min_enhancement_pct, settings.curve_tolerance)
    curve_type = classify_curve(hot_curve, phases.early, phases.late, *rule)
    mean_type = classify_curve(mean_curve, phases.early, phases.late, *rule)
    pe_hot, pe_mean = _percent(hot_curve), _percent(mean_curve)
    s0 = float(hot_curve[0])
    late_rise = float(hot_curve[phases.late]) - s0
    ser = (float(hot_curve[phases.early]) - s0) / late_rise if late_rise > 0 else math.nan
    post = pe_hot[1:]
    peak_phase = 1 + int(np.nanargmax(post)) if np.isfinite(post).any() else 1
    notes = []
    if s0 < floor:
        notes.append(
            f"hotspot pre-contrast signal {s0:.4g} is below the S0 floor {floor:.4g}: "
            "percent enhancement is unreliable"
        )
    names = COMPOSITION_KEYS
    composition = {name: float(type_counts[t]) / count for t, name in enumerate(names)}
    assessed = int(type_counts[1:].sum())
    assessed_composition = (
        {name: float(type_counts[t]) / assessed for t, name in enumerate(names) if t > 0}
        if assessed
        else {}
    )
    return LesionKinetics(
        lesion_id=lesion_id,
        voxel_count=count,
        hotspot_voxel_count=hot_count,
        mean_curve=tuple(float(v) for v in mean_curve),
        hotspot_curve=tuple(float(v) for v in hot_curve),
        mean_pe_curve_pct=tuple(float(v) for v in pe_mean),
        pe_curve_pct=tuple(float(v) for v in pe_hot),
        curve_type=curve_type,
        mean_curve_type=mean_type,
        composition=composition,
        assessed_composition=assessed_composition,
        ser=ser,
        peak_enhancement_pct=float(post[peak_phase - 1]),
        peak_phase=peak_phase,
        early=phases.early,
        late=phases.late,
        times_s=context.times_s,
        hotspot_fraction=context.hotspot_fraction,
        hotspot_min_voxels=context.hotspot_min_voxels,
        min_enhancement_pct=rule[0],
        tolerance=rule[1],
        notes=tuple(notes),
    )
