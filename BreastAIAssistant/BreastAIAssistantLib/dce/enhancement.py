"""Semi-quantitative enhancement maps: PE, SER, peak enhancement, time to peak, wash-in, washout.

Notation: ``S0`` pre-contrast signal, ``S_k`` post-contrast phase ``k = 1..N``, ``sub_k = S_k - S0``
(the subtraction), ``S_e``/``S_l`` the early/late phases (:mod:`.timing`).

Definitions (all float32, vectorised, any array shape):

- Percent enhancement ``PE = 100 * (S_e - S0) / S0`` (%), Hylton et al., Radiology
  2012;263:663-672; Partridge et al., AJR 2005;184:1774-1781.
- Signal enhancement ratio ``SER = (S_e - S0) / (S_l - S0)`` (unitless; > 1 means washout),
  Hylton, Radiology 2012; Partridge 2005.
- Peak enhancement ``100 * (S_peak - S0) / S0`` (%) with ``S_peak = max_k S_k`` over the
  post-contrast phases.
- Time to peak: acquisition time (s) of the first phase reaching ``S_peak``; the phase index
  ``1..N`` when times are unknown.
- Wash-in slope ``peak enhancement / time to peak`` in %/min (``60 * PE_peak / TTP_s``); in
  %/phase (``PE_peak / k_peak``) when times are unknown. This is the mean initial slope from the
  pre-contrast scan to the peak (a common semi-quantitative wash-in rate, e.g. ACR BI-RADS "initial
  phase" speed; Kuhl et al., Radiology 1999;211:101-110).
- Washout ``100 * (S_peak - S_N) / S_peak`` (%) with ``S_N`` the last phase: the fraction of the
  peak signal lost by the end of the series; positive = washout, 0 = still rising or flat at
  the end.

Guards (documented choices):

- ``S0`` floor: a voxel is *valid* when ``S0 >= floor`` and ``S0 > 0``. The floor defaults to
  ``5 %`` of the 99th percentile of ``S0`` (:func:`s0_floor`, a strided sub-sample of about a
  million voxels, so air and noise do not give huge ratios); an absolute floor may be given.
  Every map is 0 outside valid voxels.
- SER is 0 where the late enhancement ``S_l - S0 <= 0`` (undefined or negative); negative ratios
  are clipped to 0 and an optional upper clip limits noise-level denominators.
- Time to peak, wash-in and washout are 0 where the voxel never enhances (``S_peak <= S0``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: Default floor as a fraction of the robust high percentile of S0.
DEFAULT_FLOOR_FRACTION = 0.05
#: Default robust high percentile of S0 the floor is relative to.
DEFAULT_FLOOR_PERCENTILE = 99.0
#: Sub-sample size used for the percentile.
FLOOR_SAMPLES = 1 << 20

_F32 = np.float32
#: Smallest denominator of a guarded ratio (keeps quotients finite; see _guarded_ratio).
_TINY = np.float32(1e-20)


def s0_floor(
    s0_zyx: np.ndarray,
    fraction: float = DEFAULT_FLOOR_FRACTION,
    percentile: float = DEFAULT_FLOOR_PERCENTILE,
    absolute: float | None = None,
    max_samples: int = FLOOR_SAMPLES,
) -> float:
    """Pre-contrast signal floor below which enhancement ratios are not computed.

    ``floor = fraction * P_percentile(S0)``, the percentile taken over every ``step``-th voxel
    (``step`` odd, about ``max_samples`` voxels), or ``absolute`` when given.

    Args:
        s0_zyx: Pre-contrast signal.
        fraction: Fraction of the percentile (``>= 0``).
        percentile: Robust high percentile in ``(0, 100]``.
        absolute: Absolute floor in signal units; overrides the relative rule.
        max_samples: Approximate number of voxels sampled.

    Returns:
        The floor in signal units (``0`` if the percentile is not positive).
    """
    if absolute is not None:
        return float(absolute)
    if fraction < 0 or not 0 < percentile <= 100:
        raise ValueError(
            f"need fraction >= 0 and 0 < percentile <= 100, got {fraction}, {percentile}"
        )
    flat = s0_zyx.reshape(-1)
    step = max(1, flat.size // max(1, max_samples)) | 1
    high = float(np.percentile(flat[::step], percentile))
    return fraction * high if high > 0 else 0.0


def _guarded_ratio(
    numerator: np.ndarray, denominator: np.ndarray, defined: np.ndarray, out: np.ndarray | None
) -> np.ndarray:
    """``numerator / denominator`` where ``defined``, else 0, without masked (branchy) loops.

    The denominator is raised to at least ``1e-20`` before dividing so that the quotient is
    finite everywhere, then multiplied by the 0/1 mask. Masked ufuncs (``where=``) and
    ``copyto(..., where=)`` are 20-40x slower on noisy masks, hence this form.
    """
    safe = np.maximum(denominator, _TINY, dtype=_F32)
    out = np.divide(numerator, safe, out=out, dtype=_F32)
    np.multiply(out, defined, out=out)
    return out


def percent_scale(s0: np.ndarray, floor: float, out: np.ndarray | None = None) -> np.ndarray:
    """``100 / S0`` on valid voxels (``S0 >= floor`` and ``S0 > 0``), else 0 (float32)."""
    valid = s0 >= floor
    valid &= s0 > 0
    hundred = np.full(s0.shape, _F32(100), _F32) if out is None else out
    if out is not None:
        out.fill(100)
    return _guarded_ratio(hundred, s0, valid, out=hundred)


def pe_from_subtraction(
    sub: np.ndarray, scale: np.ndarray, out: np.ndarray | None = None
) -> np.ndarray:
    """Percent enhancement from a subtraction and :func:`percent_scale`: ``sub * 100 / S0``."""
    return np.multiply(sub, scale, out=out, dtype=_F32)


def ser_from_subtractions(
    sub_early: np.ndarray,
    sub_late: np.ndarray,
    scale: np.ndarray,
    clip_max: float | None = None,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """SER ``sub_early / sub_late`` on valid voxels with ``sub_late > 0``, else 0.

    Negative ratios are set to 0; values above ``clip_max`` (when given) are set to it.
    """
    defined = sub_late > 0
    defined &= scale > 0
    out = _guarded_ratio(sub_early, sub_late, defined, out)
    np.maximum(out, _F32(0), out=out)
    if clip_max is not None:
        np.minimum(out, _F32(clip_max), out=out)
    return out


def update_peak(peak_sub: np.ndarray, peak_at: np.ndarray, sub_k: np.ndarray, at_k: float) -> None:
    """Running maximum over phases: where ``sub_k > peak_sub`` take ``sub_k`` and ``at_k``.

    Strictly greater, so the earliest phase wins ties. Initialise with ``peak_sub = sub_1`` and
    ``peak_at = at_1``; ``at_k`` must exceed every earlier ``at`` (times or indices increase),
    which lets the update be ``peak_at = max(peak_at, [sub_k > peak_sub] * at_k)``, branch-free.
    """
    better = np.multiply(sub_k > peak_sub, _F32(at_k), dtype=_F32)
    np.maximum(peak_at, better, out=peak_at)
    np.maximum(peak_sub, sub_k, out=peak_sub)


def finish_time_to_peak(peak_at: np.ndarray, peak_sub: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Zero the time to peak in place where the voxel is invalid or never enhances."""
    enhancing = peak_sub > 0
    enhancing &= scale > 0
    np.multiply(peak_at, enhancing, out=peak_at)
    return peak_at


def washout_from_subtractions(
    s0: np.ndarray,
    peak_sub: np.ndarray,
    last_sub: np.ndarray,
    scale: np.ndarray,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Washout ``100 * (S_peak - S_N) / S_peak`` with ``S_peak = S0 + peak_sub``.

    Zero where the voxel is invalid or never enhances (``peak_sub <= 0``).
    """
    denominator = np.add(s0, peak_sub, dtype=_F32)
    denominator *= _F32(0.01)
    numerator = np.subtract(peak_sub, last_sub, dtype=_F32)
    defined = peak_sub > 0
    defined &= scale > 0
    return _guarded_ratio(numerator, denominator, defined, out)


def wash_in_slope(
    peak_pct: np.ndarray,
    time_to_peak: np.ndarray,
    per_minute: bool = True,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Wash-in slope ``peak enhancement / time to peak``, 0 where the time to peak is 0.

    Args:
        peak_pct: Peak enhancement (%).
        time_to_peak: Time to peak in seconds (``per_minute``) or phase index.
        per_minute: ``True``: %/min (``60 * peak / ttp_s``); ``False``: %/phase.
        out: Optional float32 output.
    """
    out = _guarded_ratio(peak_pct, time_to_peak, time_to_peak > 0, out)
    if per_minute:
        out *= _F32(60)
    return out


# --- whole-array conveniences (the same formulas, for callers holding phases) -----------------


def percent_enhancement(
    s0: np.ndarray, s_post: np.ndarray, floor: float | None = None
) -> np.ndarray:
    """``PE = 100 * (S_post - S0) / S0`` (%), 0 where ``S0`` is below ``floor``.

    Args:
        s0: Pre-contrast signal.
        s_post: Post-contrast signal (usually the early phase).
        floor: ``S0`` floor; ``None`` = :func:`s0_floor` defaults on ``s0``.
    """
    floor = s0_floor(s0) if floor is None else floor
    sub = np.subtract(s_post, s0, dtype=_F32)
    return pe_from_subtraction(sub, percent_scale(s0, floor), out=sub)


def signal_enhancement_ratio(
    s0: np.ndarray,
    s_early: np.ndarray,
    s_late: np.ndarray,
    floor: float | None = None,
    clip_max: float | None = None,
) -> np.ndarray:
    """``SER = (S_e - S0) / (S_l - S0)``; 0 where undefined (see module guards)."""
    floor = s0_floor(s0) if floor is None else floor
    return ser_from_subtractions(
        np.subtract(s_early, s0, dtype=_F32),
        np.subtract(s_late, s0, dtype=_F32),
        percent_scale(s0, floor),
        clip_max=clip_max,
    )


def peak_kinetics(
    s0: np.ndarray,
    posts: Sequence[np.ndarray],
    times_s: Sequence[float] | None = None,
    floor: float | None = None,
) -> dict[str, np.ndarray]:
    """Peak enhancement, time to peak, wash-in slope and washout from all post phases.

    Args:
        s0: Pre-contrast signal.
        posts: Post-contrast phases ``S_1..S_N`` (at least one).
        times_s: Times of all phases including phase 0 (``N + 1`` values), or ``None``.
        floor: ``S0`` floor; ``None`` = :func:`s0_floor` defaults.

    Returns:
        ``{"peak_enhancement": %, "time_to_peak": s or index, "wash_in": %/min or %/phase,
        "washout": %}``.
    """
    if not posts:
        raise ValueError("need at least one post-contrast phase")
    if times_s is not None and len(times_s) != len(posts) + 1:
        raise ValueError(f"need {len(posts) + 1} times (phase 0 included), got {len(times_s)}")
    floor = s0_floor(s0) if floor is None else floor
    at = [float(t) - float(times_s[0]) for t in times_s] if times_s is not None else None
    scale = percent_scale(s0, floor)
    peak_sub = np.subtract(posts[0], s0, dtype=_F32)
    peak_at = np.full(s0.shape, _F32(at[1] if at else 1), _F32)
    for k, post in enumerate(posts[1:], start=2):
        update_peak(peak_sub, peak_at, np.subtract(post, s0, dtype=_F32), at[k] if at else k)
    last_sub = np.subtract(posts[-1], s0, dtype=_F32)
    washout = washout_from_subtractions(s0, peak_sub, last_sub, scale)
    ttp = finish_time_to_peak(peak_at, peak_sub, scale)
    peak = pe_from_subtraction(peak_sub, scale)
    return {
        "peak_enhancement": peak,
        "time_to_peak": ttp,
        "wash_in": wash_in_slope(peak, ttp, per_minute=at is not None),
        "washout": washout,
    }
