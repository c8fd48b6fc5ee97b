"""Functional tumour volume (FTV), the UCSF / I-SPY definition.

FTV is the volume of voxels inside a region of interest (a box or mask around the tumour) that
enhance strongly in the early phase, after removing dark background and isolated voxels
(Partridge et al., AJR 2005;184:1774-1781; Hylton et al., Radiology 2012;263:663-672 for
ACRIN 6657/I-SPY 1; the same method drives I-SPY 2 randomisation):

1. Background: ``S0 >= background_fraction * P95(S0)``. Default fraction 0.60 and percentile 95,
   the defaults of the UCSF Breast Imaging Research Group's implementation (Breast_DCEMRI_FTV
   3D Slicer extension, Nadkarni et al.), which take the percentile over the region of interest;
   ``background_reference="volume"`` takes it over the whole pre-contrast volume instead.
   Voxels are those inside the region (the UCSF code also counts zeroed omit-region voxels
   inside its box; here only the region's voxels count).
2. Enhancement: early ``PE >= pe_threshold_pct`` (default 70 %, I-SPY), with the early phase at
   about 150 s (the ``"ispy"`` preset of :mod:`.timing`) unless the caller gives PE or a phase.
3. Connectivity: a voxel passing 1 and 2 inside the region is kept if at least ``min_neighbours``
   of its 26 neighbours also pass (default 4, the UCSF extension's default "minimum neighbour
   count"). One pass, not iterated; neighbours outside the region or the volume do not count.
   Counted with :func:`scipy.ndimage.correlate` on uint8 over the region's bounding box.

``volume_ml = voxel_count * prod(spacing_mm) / 1000``.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from BreastAIAssistantLib.dce.enhancement import pe_from_subtraction, percent_scale
from BreastAIAssistantLib.dce.timing import PhaseSelectionError, select_phases
from BreastAIAssistantLib.errors import StudyError
from BreastAIAssistantLib.study import DCEStudy, same_grid

logger = logging.getLogger(__name__)

_NEIGHBOURS = np.ones((3, 3, 3), np.uint8)
_NEIGHBOURS[1, 1, 1] = 0


@dataclass(frozen=True)
class FTVSettings:
    """Thresholds of the FTV segmentation (defaults: UCSF/I-SPY, see module docstring).

    Attributes:
        pe_threshold_pct: Minimum early percent enhancement (%).
        background_fraction: Fraction of the pre-contrast percentile below which voxels are
            background.
        background_percentile: The pre-contrast percentile (0-100).
        background_reference: ``"region"`` (UCSF) or ``"volume"``: where the percentile is taken.
        min_neighbours: Minimum number of the 26 neighbours that must also pass (0-26).
    """

    pe_threshold_pct: float = 70.0
    background_fraction: float = 0.60
    background_percentile: float = 95.0
    background_reference: Literal["region", "volume"] = "region"
    min_neighbours: int = 4

    def __post_init__(self) -> None:
        if not 0 <= self.min_neighbours <= 26:
            raise ValueError(f"min_neighbours must be 0..26, got {self.min_neighbours}")
        if self.background_reference not in ("region", "volume"):
            raise ValueError(
                f"background_reference must be 'region' or 'volume', got "
                f"{self.background_reference!r}"
            )
        if not 0 < self.background_percentile <= 100 or self.background_fraction < 0:
            raise ValueError("need 0 < background_percentile <= 100 and background_fraction >= 0")


@dataclass(frozen=True)
class FTVResult:
    """An FTV segmentation.

    Attributes:
        mask_zyx: uint8 ``(z, y, x)`` mask, 1 = functional tumour voxel.
        voxel_count: Number of voxels in the mask.
        volume_ml: Volume in millilitres.
        background_threshold: The ``S0`` threshold actually used (signal units).
        settings: The thresholds used.
        early_phase: Early phase index when the PE was computed here, else ``None``.
    """

    mask_zyx: np.ndarray
    voxel_count: int
    volume_ml: float
    background_threshold: float
    settings: FTVSettings
    early_phase: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (without the mask)."""
        return {
            "voxel_count": self.voxel_count,
            "volume_ml": self.volume_ml,
            "background_threshold": self.background_threshold,
            "early_phase": self.early_phase,
            "settings": asdict(self.settings),
        }


def _bounding_box(mask: np.ndarray, margin: int = 1) -> tuple[slice, ...]:
    boxes = []
    for axis in range(mask.ndim):
        other = tuple(a for a in range(mask.ndim) if a != axis)
        hits = np.flatnonzero(mask.any(axis=other))
        lo = max(0, int(hits[0]) - margin)
        hi = min(mask.shape[axis], int(hits[-1]) + 1 + margin)
        boxes.append(slice(lo, hi))
    return tuple(boxes)


def ftv_mask(
    pe_zyx: np.ndarray,
    s0_zyx: np.ndarray,
    region_zyx: np.ndarray,
    spacing_mm: tuple[float, float, float],
    settings: FTVSettings | None = None,
) -> FTVResult:
    """FTV inside a region from an early PE map and the pre-contrast signal.

    Args:
        pe_zyx: Early percent enhancement (%).
        s0_zyx: Pre-contrast signal.
        region_zyx: Region of interest, non-zero inside (any integer or bool dtype).
        spacing_mm: Voxel spacing ``(x, y, z)`` in mm (SimpleITK order).
        settings: Thresholds; ``None`` = :class:`FTVSettings` defaults.

    Returns:
        The :class:`FTVResult`.
    """
    settings = settings or FTVSettings()
    if not pe_zyx.shape == s0_zyx.shape == region_zyx.shape:
        raise ValueError(
            f"shape mismatch: pe {pe_zyx.shape}, s0 {s0_zyx.shape}, region {region_zyx.shape}"
        )
    mask = np.zeros(s0_zyx.shape, np.uint8)
    region = region_zyx != 0
    empty = FTVResult(mask, 0, 0.0, float("nan"), settings)
    if not region.any():
        logger.warning("FTV region is empty; FTV = 0")
        return empty
    box = _bounding_box(region)
    region_box = region[box]
    s0_box = s0_zyx[box]
    if settings.background_reference == "region":
        reference = s0_box[region_box]
    else:
        reference = s0_zyx.reshape(-1)
    threshold = settings.background_fraction * float(
        np.percentile(reference, settings.background_percentile)
    )
    selected = s0_box >= threshold
    selected &= pe_zyx[box] >= settings.pe_threshold_pct
    selected &= region_box
    if settings.min_neighbours > 0:
        counts = ndimage.correlate(
            selected.view(np.uint8), _NEIGHBOURS, output=np.uint8, mode="constant", cval=0
        )
        selected &= counts >= settings.min_neighbours
    mask[box] = selected
    count = int(np.count_nonzero(selected))
    volume_ml = count * float(np.prod(spacing_mm)) / 1000.0
    logger.info(
        "FTV: %d voxels, %.3f ml (background threshold %.4g, PE >= %g %%, >= %d neighbours)",
        count,
        volume_ml,
        threshold,
        settings.pe_threshold_pct,
        settings.min_neighbours,
    )
    return FTVResult(mask, count, volume_ml, threshold, settings)


def functional_tumour_volume(
    study: DCEStudy,
    region: sitk.Image | np.ndarray,
    settings: FTVSettings | None = None,
    early: int | None = None,
    pe: sitk.Image | np.ndarray | None = None,
) -> FTVResult:
    """FTV of a study inside a region (mask image on the study grid or ``(z, y, x)`` array).

    Args:
        study: The DCE study.
        region: Region of interest, non-zero inside.
        settings: Thresholds; ``None`` = defaults.
        early: Early phase index; ``None`` = the ``"ispy"`` preset (≈150 s, phase 1 without
            times). Ignored when ``pe`` is given.
        pe: A precomputed early PE map (e.g. ``DCEMaps["pe"]``) to reuse.

    Returns:
        The :class:`FTVResult`.

    Raises:
        StudyError: the region (or PE) image is not on the study grid.
        PhaseSelectionError: ``early`` is not a post-contrast phase.
    """
    shape = study.size_xyz[::-1]

    def as_array(value: sitk.Image | np.ndarray, label: str) -> np.ndarray:
        if isinstance(value, sitk.Image):
            if not same_grid(value, study.reference):
                raise StudyError(
                    f"the FTV {label} is not on the study's pre-contrast grid; resample it first"
                )
            return sitk.GetArrayViewFromImage(value)
        array = np.asarray(value)
        if array.shape != shape:
            raise StudyError(f"the FTV {label} has shape {array.shape}, the study {shape}")
        return array

    region_zyx = as_array(region, "region")
    s0 = study.phase_zyx(0)
    phase = None
    if pe is None:
        if early is None:
            phase = select_phases(study.times_s, study.n_phases, "ispy").early
        elif 1 <= early < study.n_phases:
            phase = early
        else:
            raise PhaseSelectionError(
                f"early phase index {early} is out of range 1..{study.n_phases - 1}"
            )
        sub = np.subtract(study.phase_zyx(phase), s0, dtype=np.float32)
        pe_zyx = pe_from_subtraction(sub, percent_scale(s0, 0.0), out=sub)
    else:
        pe_zyx = as_array(pe, "PE map")
    result = ftv_mask(pe_zyx, s0, region_zyx, study.spacing_mm, settings)
    if phase is None:
        return result
    return FTVResult(
        result.mask_zyx,
        result.voxel_count,
        result.volume_ml,
        result.background_threshold,
        result.settings,
        early_phase=phase,
    )
