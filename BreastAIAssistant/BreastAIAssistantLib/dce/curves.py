"""BI-RADS kinetic curve types (persistent, plateau, washout) per voxel and for a mean curve.

Rule (Kuhl et al., Radiology 1999;211:101-110; ACR BI-RADS Atlas, MRI lexicon, 5th ed. 2013,
"delayed phase" descriptors), on the early and late phases of :mod:`.timing`:

1. Assess only voxels that enhance in the initial phase: percent enhancement
   ``PE = 100 (S_e - S0) / S0 >= min_enhancement_pct`` (default 50 %, the BI-RADS boundary between
   a *slow* and a *medium* initial rise) on valid voxels (``S0`` above the floor of
   :mod:`.enhancement`). Others are 0, *not assessed*.
2. Delayed change relative to the early signal ``change = (S_l - S_e) / S_e``:

   - ``change > +tolerance``  -> 1 *persistent* (type I, continued rise);
   - ``|change| <= tolerance`` -> 2 *plateau* (type II);
   - ``change < -tolerance``  -> 3 *washout* (type III).

   ``tolerance`` defaults to 0.10, Kuhl's ±10 %. The boundaries belong to the plateau. The test
   is done without division, ``S_l - S_e`` against ``tolerance * S_e`` in float32, so a change of
   exactly ±10 % is classified as plateau.
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np

from BreastAIAssistantLib.dce.enhancement import pe_from_subtraction, percent_scale

#: Default initial-enhancement threshold (%) for a voxel or curve to be assessed.
DEFAULT_MIN_ENHANCEMENT_PCT = 50.0
#: Default ± relative change that separates persistent/plateau/washout (Kuhl 1999).
DEFAULT_TOLERANCE = 0.10


class CurveType(IntEnum):
    """Label values of the curve-type map."""

    NOT_ASSESSED = 0
    PERSISTENT = 1
    PLATEAU = 2
    WASHOUT = 3


#: Label value -> display name and RGB colour (0-255), for tables, legends and colour maps.
CURVE_TYPE_LABELS: dict[int, dict[str, object]] = {
    CurveType.NOT_ASSESSED.value: {"name": "not assessed", "color": (0, 0, 0)},
    CurveType.PERSISTENT.value: {"name": "persistent", "color": (30, 100, 255)},
    CurveType.PLATEAU.value: {"name": "plateau", "color": (255, 210, 0)},
    CurveType.WASHOUT.value: {"name": "washout", "color": (230, 30, 30)},
}


def _check(min_enhancement_pct: float, tolerance: float) -> None:
    if not min_enhancement_pct > 0:
        raise ValueError(
            f"min_enhancement_pct must be > 0 (invalid voxels have PE 0), got {min_enhancement_pct}"
        )
    if not 0 <= tolerance < 1:
        raise ValueError(f"tolerance must be in [0, 1), got {tolerance}")


def curve_type_from_subtractions(
    s0: np.ndarray,
    sub_early: np.ndarray,
    sub_late: np.ndarray,
    pe_early: np.ndarray,
    min_enhancement_pct: float = DEFAULT_MIN_ENHANCEMENT_PCT,
    tolerance: float = DEFAULT_TOLERANCE,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Curve-type labels from pre-contrast signal, subtractions and early PE.

    Args:
        s0: Pre-contrast signal.
        sub_early: ``S_e - S0``.
        sub_late: ``S_l - S0``.
        pe_early: Early percent enhancement, 0 on invalid voxels
            (:func:`.enhancement.pe_from_subtraction`).
        min_enhancement_pct: Initial-enhancement threshold (%), ``> 0``.
        tolerance: Relative change threshold (0.10 = ±10 %).
        out: Optional uint8 output.

    Returns:
        uint8 labels, values of :class:`CurveType`.
    """
    _check(min_enhancement_pct, tolerance)
    out = np.empty(s0.shape, np.uint8) if out is None else out
    band = np.add(s0, sub_early, dtype=np.float32)  # S_e
    band *= np.float32(tolerance)
    diff = np.subtract(sub_late, sub_early, dtype=np.float32)  # S_l - S_e
    # branch-free: label = (2 - [rising] + [falling]) * [assessed], on uint8 views of the masks
    rising = (diff > band).view(np.uint8)
    np.negative(band, out=band)
    falling = (diff < band).view(np.uint8)
    assessed = (pe_early >= np.float32(min_enhancement_pct)).view(np.uint8)
    np.subtract(np.uint8(CurveType.PLATEAU), rising, out=out)
    np.add(out, falling, out=out)
    np.multiply(out, assessed, out=out)
    return out


def curve_type_map(
    s0: np.ndarray,
    s_early: np.ndarray,
    s_late: np.ndarray,
    floor: float,
    min_enhancement_pct: float = DEFAULT_MIN_ENHANCEMENT_PCT,
    tolerance: float = DEFAULT_TOLERANCE,
) -> np.ndarray:
    """Curve-type labels from the pre-contrast, early and late signals (see module rule)."""
    sub_early = np.subtract(s_early, s0, dtype=np.float32)
    sub_late = np.subtract(s_late, s0, dtype=np.float32)
    pe = pe_from_subtraction(sub_early, percent_scale(s0, floor))
    return curve_type_from_subtractions(s0, sub_early, sub_late, pe, min_enhancement_pct, tolerance)


def classify_curve(
    curve: np.ndarray,
    early: int,
    late: int,
    min_enhancement_pct: float = DEFAULT_MIN_ENHANCEMENT_PCT,
    tolerance: float = DEFAULT_TOLERANCE,
) -> CurveType:
    """Curve type of one signal-time curve (e.g. a lesion's mean curve), same rule as the map.

    Args:
        curve: Signal per phase, ``curve[0]`` pre-contrast (1-D, length ``>= 2``).
        early: Early phase index.
        late: Late phase index.
        min_enhancement_pct: Initial-enhancement threshold (%).
        tolerance: Relative change threshold.

    Returns:
        The :class:`CurveType`; ``NOT_ASSESSED`` when ``curve[0] <= 0`` (no floor is applied to a
        mean curve) or the early enhancement is below the threshold.
    """
    values = np.asarray(curve, dtype=np.float32).reshape(-1)
    if values.size < 2:
        raise ValueError(f"a curve needs at least 2 phases, got {values.size}")
    for name, k in (("early", early), ("late", late)):
        if not 1 <= k < values.size:
            raise ValueError(f"{name} index {k} outside 1..{values.size - 1}")
    label = curve_type_map(
        values[:1],
        values[early : early + 1],
        values[late : late + 1],
        0.0,
        min_enhancement_pct,
        tolerance,
    )
    return CurveType(int(label[0]))
