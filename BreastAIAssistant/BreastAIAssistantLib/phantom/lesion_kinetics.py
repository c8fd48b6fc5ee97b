"""Lesion kinetics: extended-Tofts parameters drawn so that the curve shows the intended type.

Each enhancing lesion has two kinetic classes, a *rim* (the most enhancing tissue) and a *core*
with the same ``kep`` but Ktrans, ve and vp times a factor ``c`` (rim enhancement: necrotic
centre, ``c`` 0.1-0.3; heterogeneous 0.35-0.65; clumped non-mass 0.3-0.6; homogeneous
0.8-0.95). A voxel mixes them with its fraction ``alpha``; the lesion's mean noise-free curve is
``(1 - mean alpha) S_core + mean alpha S_rim``.

Ranges of the rim class per intended pattern (Ktrans in 1/min; a Ki-67 factor
``1 + 0.4 clip((Ki67 - 20) / 50, -0.5, 1)`` multiplies malignant Ktrans):

==========  ==============  ==============  ==============
pattern     Ktrans          kep             vp
==========  ==============  ==============  ==============
washout     0.5-1.6         1.5-4.0         0.02-0.10
plateau     0.25-0.9        0.3-1.4         0.01-0.05
persistent  0.08-0.35       0.05-0.5        0.005-0.03
(wide)      0.05-2.0        0.05-8.0        0.005-0.12
==========  ==============  ==============  ==============

with ``kep`` log-uniform and ``ve = Ktrans / kep`` capped at 0.9. Candidates are drawn in
batches of 64 (two batches from the pattern's ranges, then two from the wide ranges, for
acquisitions whose timing needs unusual kinetics) and the first one is kept whose mean curve,
read with the same early/late phases and rule as the kinetic maps
(:func:`BreastAIAssistantLib.dce.timing.select_phases` with the default preset, and
:func:`BreastAIAssistantLib.dce.curves.classify_curve`), has an early enhancement of at least
70 % and a delayed change clearly inside the intended band: washout <= -15 %, plateau within
+-6 %, persistent >= +15 % (the map's boundaries are +-10 %, so noise rarely flips the type).
When no candidate fits (two phases, or too short a series) the closest one is kept; case.json
always reports the type the rule gives on the noise-free mean curve (``curve_type``) beside the
intended one (``kinetic_pattern``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from BreastAIAssistantLib.dce.curves import CurveType, classify_curve
from BreastAIAssistantLib.dce.timing import select_phases
from BreastAIAssistantLib.phantom.kinetics import Protocol, signal_curves
from BreastAIAssistantLib.phantom.receptors import LesionTraits
from BreastAIAssistantLib.phantom.tissues import CYST_TISSUE, LESION_TISSUE, TissueProperties

logger = logging.getLogger(__name__)

Range = tuple[float, float]

#: Pattern -> (Ktrans range, kep range, vp range) of the rim class.
PATTERN_RANGES: dict[str, tuple[Range, Range, Range]] = {
    "washout": ((0.5, 1.6), (1.5, 4.0), (0.02, 0.10)),
    "plateau": ((0.25, 0.9), (0.3, 1.4), (0.01, 0.05)),
    "persistent": ((0.08, 0.35), (0.05, 0.5), (0.005, 0.03)),
}
#: Wide ranges tried when the pattern's own ranges do not fit the acquisition.
WIDE_RANGES: tuple[Range, Range, Range] = ((0.05, 2.0), (0.05, 8.0), (0.005, 0.12))
#: Enhancement -> range of the core factor ``c``.
CORE_FACTOR: dict[str, Range] = {
    "rim": (0.1, 0.3),
    "heterogeneous": (0.35, 0.65),
    "clumped": (0.3, 0.6),
    "homogeneous": (0.8, 0.95),
}
#: Least early enhancement (%) of an enhancing lesion's mean curve.
MIN_EARLY_PE = 70.0
#: Accepted delayed change per pattern (the map's boundaries are +-0.10).
BANDS: dict[str, Range] = {
    "washout": (-np.inf, -0.15),
    "plateau": (-0.06, 0.06),
    "persistent": (0.15, np.inf),
}
CURVE_NAMES = {
    CurveType.NOT_ASSESSED: "not_assessed",
    CurveType.PERSISTENT: "persistent",
    CurveType.PLATEAU: "plateau",
    CurveType.WASHOUT: "washout",
}
#: Candidates per batch, and batches (the first half from the pattern's ranges, then wide).
BATCH = 64
BATCHES = 4


@dataclass(frozen=True)
class LesionKinetics:
    """Kinetic classes of a lesion and what its mean curve shows.

    Attributes:
        core: Base class (``alpha = 0``).
        rim: Second class (``alpha = 1``).
        mean_curve: Noise-free mean signal per phase.
        curve_type: Rule result on the mean curve (``CurveType``).
        early_pe: Early percent enhancement of the mean curve.
        delayed_change: ``(S_late - S_early) / S_early`` of the mean curve.
    """

    core: TissueProperties
    rim: TissueProperties
    mean_curve: np.ndarray
    curve_type: CurveType
    early_pe: float
    delayed_change: float


def _mean_curves(
    rims: list[TissueProperties],
    cores: list[TissueProperties],
    mean_alpha: float,
    times_s: Sequence[float],
    protocol: Protocol,
) -> np.ndarray:
    """Mean signal curves ``(n, n_times)`` of candidate (core, rim) pairs."""
    sig = signal_curves([*cores, *rims], times_s, protocol)
    return (1.0 - mean_alpha) * sig[: len(cores)] + mean_alpha * sig[len(cores) :]


def _result(
    core: TissueProperties, rim: TissueProperties, mean: np.ndarray, early: int, late: int
) -> LesionKinetics:
    pe = 100.0 * (mean[early] - mean[0]) / mean[0] if mean[0] > 0 else 0.0
    change = (mean[late] - mean[early]) / mean[early] if mean[early] > 0 else 0.0
    ctype = classify_curve(mean, early, late)
    return LesionKinetics(core, rim, mean, ctype, float(pe), float(change))


def _candidates(
    rng: np.random.Generator,
    ranges: tuple[Range, Range, Range],
    n: int,
    factor: float,
    core_range: Range,
) -> tuple[list[TissueProperties], list[TissueProperties]]:
    (k_lo, k_hi), (e_lo, e_hi), (v_lo, v_hi) = ranges
    ktrans = rng.uniform(k_lo, k_hi, n) * factor
    kep = np.exp(rng.uniform(np.log(e_lo), np.log(e_hi), n))
    vp = rng.uniform(v_lo, v_hi, n)
    c = rng.uniform(*core_range, n)
    rims = [
        replace(
            LESION_TISSUE,
            name="lesion_rim",
            ktrans_per_min=float(k),
            ve=float(min(k / e, 0.9)),
            vp=float(v),
        )
        for k, e, v in zip(ktrans, kep, vp, strict=True)
    ]
    cores = [r.scaled(float(f), name="lesion_core") for r, f in zip(rims, c, strict=True)]
    return rims, cores


def sample_lesion_kinetics(
    traits: LesionTraits,
    mean_alpha: float,
    times_s: Sequence[float],
    protocol: Protocol,
    rng: np.random.Generator,
) -> LesionKinetics:
    """Draw rim and core classes for a lesion (see module docstring).

    Args:
        traits: Lesion traits (pattern, enhancement, receptors).
        mean_alpha: Mean rim fraction over the lesion's voxels.
        times_s: Acquisition times of the case.
        protocol: Sequence and contrast settings of the case.
        rng: Random generator.

    Returns:
        The chosen classes and what the rule reads on their mean curve.
    """
    choice = select_phases(times_s, len(times_s), "default")
    early, late = choice.early, choice.late
    if traits.pattern == "none":
        mean = _mean_curves([CYST_TISSUE], [CYST_TISSUE], mean_alpha, times_s, protocol)
        return _result(CYST_TISSUE, CYST_TISSUE, mean[0], early, late)
    factor = 1.0
    if traits.receptors is not None:
        ki = traits.receptors.ki67_percent
        factor = 1.0 + 0.4 * float(np.clip((ki - 20.0) / 50.0, -0.5, 1.0))
    core_range = CORE_FACTOR.get(traits.enhancement, (0.8, 0.95))
    lo, hi = BANDS[traits.pattern]
    assessable = late > early
    best: tuple[float, LesionKinetics] | None = None
    for batch in range(BATCHES):
        ranges = PATTERN_RANGES[traits.pattern] if batch < BATCHES // 2 else WIDE_RANGES
        rims, cores = _candidates(rng, ranges, BATCH, factor, core_range)
        mean = _mean_curves(rims, cores, mean_alpha, times_s, protocol)
        pe = 100.0 * (mean[:, early] - mean[:, 0]) / mean[:, 0]
        change = (mean[:, late] - mean[:, early]) / mean[:, early]
        gap = np.maximum(0.0, MIN_EARLY_PE - pe) / 100.0
        if assessable:
            gap = gap + np.maximum(0.0, lo - change) + np.maximum(0.0, change - hi)
        i = int(np.argmin(gap))  # the first of the best: deterministic
        if best is None or gap[i] < best[0]:
            best = (float(gap[i]), _result(cores[i], rims[i], mean[i], early, late))
        if gap[i] == 0.0:
            break
    if best is None:  # pragma: no cover - BATCHES >= 1
        raise RuntimeError("no kinetic candidates were drawn")
    if best[0] > 0:
        logger.debug(
            "no %s draw fits this acquisition (times %s); kept the closest (%s)",
            traits.pattern,
            list(times_s),
            CURVE_NAMES[best[1].curve_type],
        )
    return best[1]
