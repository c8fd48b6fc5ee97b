"""Choosing the early and late post-contrast phases of a DCE study.

Semi-quantitative breast DCE maps compare three time points: the pre-contrast phase ``S0``, an
*early* post-contrast phase near the end of the initial upslope, and a *late* (delayed) phase.

Presets (a small registry of frozen dataclasses, :data:`TIMING_PRESETS`):

- ``"default"``: early ≈ 90 s after the pre-contrast scan, late = the last phase. This is the
  clinical BI-RADS reading: the initial phase covers the first ~2 minutes after injection and the
  delayed phase the rest of the series (Kuhl et al., Radiology 1999;211:101-110; ACR BI-RADS
  Atlas, MRI lexicon, 5th ed. 2013).
- ``"ispy"``: early ≈ 150 s, late ≈ 450 s after the pre-contrast scan, the timing used for
  percent enhancement, SER and functional tumour volume in ACRIN 6657/I-SPY 1 and I-SPY 2
  (Hylton et al., Radiology 2012;263:663-672; Partridge et al., AJR 2005;184:1774-1781).

Rules: with known times, each target picks the post-contrast phase whose time is nearest to it
(ties go to the earlier phase). The early phase is searched among phases ``1 .. N-1`` so that a
later phase remains, and the late phase among the phases after the early one. With unknown times
the early phase is phase 1 and the late phase the last one. A study with a single post-contrast
phase uses it for both (``early == late == 1``). Explicit indices override the preset.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from BreastAIAssistantLib.errors import BreastAIError

logger = logging.getLogger(__name__)


class PhaseSelectionError(BreastAIError):
    """The early/late phases cannot be chosen (unknown preset, bad index, too few phases)."""


@dataclass(frozen=True)
class TimingPreset:
    """Target acquisition times of the early and late phases.

    Attributes:
        name: Registry key.
        early_s: Target time of the early phase in seconds after the pre-contrast scan.
        late_s: Target time of the late phase in seconds, or ``None`` for the last phase.
        description: One line for help texts and provenance.
    """

    name: str
    early_s: float
    late_s: float | None
    description: str


#: Registry of timing presets, by name.
TIMING_PRESETS: dict[str, TimingPreset] = {
    "default": TimingPreset(
        "default",
        early_s=90.0,
        late_s=None,
        description="early ≈ 90 s after pre-contrast, late = last phase (BI-RADS/Kuhl 1999)",
    ),
    "ispy": TimingPreset(
        "ispy",
        early_s=150.0,
        late_s=450.0,
        description="early ≈ 150 s, late ≈ 450 s after pre-contrast (I-SPY, Hylton 2012)",
    ),
}


@dataclass(frozen=True)
class PhaseChoice:
    """The phases chosen for the maps.

    Attributes:
        early: Index of the early post-contrast phase (``>= 1``).
        late: Index of the late post-contrast phase (``>= early``).
        reason: Human-readable explanation, kept for provenance.
    """

    early: int
    late: int
    reason: str

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return {"early": self.early, "late": self.late, "reason": self.reason}


def get_preset(preset: str | TimingPreset) -> TimingPreset:
    """Look a preset up by name (a :class:`TimingPreset` is returned as is).

    Raises:
        PhaseSelectionError: unknown preset name.
    """
    if isinstance(preset, TimingPreset):
        return preset
    try:
        return TIMING_PRESETS[preset]
    except KeyError:
        known = ", ".join(sorted(TIMING_PRESETS))
        raise PhaseSelectionError(
            f"unknown timing preset {preset!r}; choose one of: {known}"
        ) from None


def _nearest(times: Sequence[float], candidates: range, target: float) -> int:
    """Index in ``candidates`` whose time is nearest ``target``; ties go to the earlier phase."""
    return min(candidates, key=lambda k: (abs(times[k] - target), k))


def _check_index(name: str, value: int, n_phases: int) -> None:
    if not 1 <= value <= n_phases - 1:
        raise PhaseSelectionError(
            f"{name} phase index {value} is out of range: post-contrast phases are "
            f"1..{n_phases - 1} for a {n_phases}-phase study (phase 0 is pre-contrast)"
        )


def select_phases(
    times_s: Sequence[float] | None,
    n_phases: int,
    preset: str | TimingPreset = "default",
    early: int | None = None,
    late: int | None = None,
) -> PhaseChoice:
    """Choose the early and late post-contrast phases.

    Args:
        times_s: Acquisition times in seconds, one per phase (any origin; phase 0 is taken as
            time 0), or ``None`` when unknown.
        n_phases: Number of phases including the pre-contrast one (``>= 2``).
        preset: Preset name from :data:`TIMING_PRESETS` or a :class:`TimingPreset`.
        early: Explicit early phase index (overrides the preset).
        late: Explicit late phase index (overrides the preset).

    Returns:
        The chosen phases with the reason.

    Raises:
        PhaseSelectionError: unknown preset, fewer than 2 phases, times that do not match the
            phase count, an index outside ``1..n_phases-1``, or ``early >= late`` (allowed only
            as ``early == late == 1`` for a 2-phase study).
    """
    if n_phases < 2:
        raise PhaseSelectionError(
            f"kinetic maps need a pre-contrast and at least one post-contrast phase, "
            f"got {n_phases} phase(s)"
        )
    spec = get_preset(preset)
    if times_s is not None and len(times_s) != n_phases:
        raise PhaseSelectionError(f"got {len(times_s)} acquisition time(s) for {n_phases} phases")
    for name, value in (("early", early), ("late", late)):
        if value is not None:
            _check_index(name, value, n_phases)
    last = n_phases - 1
    notes: list[str] = []

    if early is None:
        if n_phases == 2:
            early = 1
            notes.append("early = phase 1 (only post-contrast phase)")
        elif times_s is None:
            early = 1
            notes.append("early = phase 1 (acquisition times unknown)")
        else:
            times = [float(t) - float(times_s[0]) for t in times_s]
            upper = last if late is None else max(late, 2)
            early = _nearest(times, range(1, upper), spec.early_s)
            notes.append(
                f"early = phase {early} at {times[early]:g} s (preset {spec.name!r} "
                f"target {spec.early_s:g} s)"
            )
    else:
        notes.append(f"early = phase {early} (given)")

    if late is None:
        if times_s is None or spec.late_s is None or early >= last:
            late = last
            why = "last phase" if times_s is not None else "last phase, times unknown"
            notes.append(f"late = phase {late} ({why})")
        else:
            times = [float(t) - float(times_s[0]) for t in times_s]
            late = _nearest(times, range(early + 1, n_phases), spec.late_s)
            notes.append(
                f"late = phase {late} at {times[late]:g} s (preset {spec.name!r} "
                f"target {spec.late_s:g} s)"
            )
    else:
        notes.append(f"late = phase {late} (given)")

    if early > late or (early == late and n_phases > 2):
        raise PhaseSelectionError(
            f"the early phase ({early}) must come before the late phase ({late}); "
            "choose an earlier early phase or a later late phase"
        )
    reason = "; ".join(notes)
    if times_s is None:
        logger.info("acquisition times unknown: %s", reason)
    else:
        logger.debug("phase choice: %s", reason)
    return PhaseChoice(early=early, late=late, reason=reason)
