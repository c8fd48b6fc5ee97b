"""``measure_lesions``: from a lesion mask (and optionally a breast mask) to a measurement report.

The report holds, for each lesion, every registry measurement (:mod:`.registry`), its AJCC T
category with the one-voxel range, and flags; for the study, the overall T stage (largest lesion,
"(m)" for several) and how the lesions were found (grouping summary). ``to_dict()`` gives JSON-ready
data (NaN becomes ``null``).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from BreastAIAssistantLib.measure.grid import Grid
from BreastAIAssistantLib.measure.grouping import GroupingSettings, group_lesions
from BreastAIAssistantLib.measure.lesion import LesionGeometry
from BreastAIAssistantLib.measure.masks import (
    LesionMode,
    MaskError,
    breast_array,
    mask_array,
    resolve_mode,
)
from BreastAIAssistantLib.measure.registry import MEASUREMENTS, compute_measurements
from BreastAIAssistantLib.measure.surfaces import BreastSurfaces
from BreastAIAssistantLib.measure.tstage import overall_t_stage, t_category, t_category_range

logger = logging.getLogger(__name__)

CONVENTIONS = {
    "points": "voxel centres (diameters equal ITK/SimpleITK Feret diameters)",
    "coordinates": "LPS millimetres",
    "t_category": "AJCC 8th edition size categories; T4 never assigned from imaging",
    "t_category_range": "categories of max_diameter_mm -/+ max_diameter_uncertainty_mm",
    "skin": "most anterior breast-mask voxel of each anterior-posterior line",
    "chest_wall": "most posterior breast-mask voxel of each anterior-posterior line",
}

FLAG_SKIN = "possible T4: touches the skin, confirm clinically"
FLAG_CHEST_WALL = "possible T4: touches the chest wall, confirm clinically"
FLAG_OUTSIDE = "mostly outside the breast mask"
#: A lesion whose maximum diameter is at least this many times its thinnest extent is flagged as
#: elongated (a vessel picked up by a threshold?). A flag only: such lesions are still measured.
ELONGATION_FLAG_RATIO = 4.0


@dataclass(frozen=True)
class LesionReport:
    """Measurements of one lesion.

    Attributes:
        id: Lesion number: 1..n by decreasing volume (binary masks) or the label value.
        values: Registry measurements by name.
        t_category: AJCC T size category of ``max_diameter_mm`` (``None`` if NaN).
        t_category_range: Categories of the diameter minus/plus its uncertainty.
        flags: Warnings for the reader (possible T4, near a T boundary, outside the breast,
            elongated).
        components: Connected components merged into this lesion (binary masks; 1 for labels).
    """

    id: int
    values: dict[str, Any]
    t_category: str | None
    t_category_range: tuple[str, str] | None
    flags: tuple[str, ...] = ()
    components: int = 1

    def __getitem__(self, name: str) -> Any:
        return self.values[name]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (NaN -> ``None``)."""
        return _json_ready(
            {
                "id": self.id,
                **self.values,
                "t_category": self.t_category,
                "t_category_range": list(self.t_category_range) if self.t_category_range else None,
                "flags": list(self.flags),
                "components": self.components,
            }
        )


@dataclass(frozen=True)
class MeasurementReport:
    """Measurements of every lesion of a mask, with the T stage and the grouping summary.

    Attributes:
        lesions: One entry per lesion (largest volume first for binary masks).
        t_stage: T category of the largest lesion by diameter, "(m)" for several; ``None``
            without a lesion.
        t_stage_lesion_id: The lesion that sets ``t_stage``.
        flags: Study-level flags (from the lesion that sets T, plus any possible T4).
        mode: ``"binary"`` (grouping rule applied) or ``"labels"`` (one lesion per label).
        grouping: How lesions were found (rule, settings and counts).
        grid: Size and spacing of the mask.
        breast_mask: Whether a breast mask was given (distances are NaN without).
        touch_tolerance_mm: Distance at or below which a lesion counts as touching.
    """

    lesions: tuple[LesionReport, ...]
    t_stage: str | None
    t_stage_lesion_id: int | None
    flags: tuple[str, ...]
    mode: str
    grouping: dict[str, Any]
    grid: dict[str, Any]
    breast_mask: bool
    touch_tolerance_mm: float
    conventions: dict[str, str] = field(default_factory=lambda: dict(CONVENTIONS))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (NaN -> ``None``)."""
        return _json_ready(
            {
                "t_stage": self.t_stage,
                "t_stage_lesion_id": self.t_stage_lesion_id,
                "flags": list(self.flags),
                "n_lesions": len(self.lesions),
                "lesions": [lesion.to_dict() for lesion in self.lesions],
                "mode": self.mode,
                "grouping": self.grouping,
                "grid": self.grid,
                "breast_mask": self.breast_mask,
                "touch_tolerance_mm": self.touch_tolerance_mm,
                "conventions": self.conventions,
                "units": {m.name: m.unit for m in MEASUREMENTS.values()},
            }
        )


def _json_ready(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_ready(v) for v in value]
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def _lesion_flags(
    values: dict[str, Any], t_range: tuple[str, str] | None, tolerance_mm: float
) -> list[str]:
    flags = []
    if values["distance_to_skin_mm"] <= tolerance_mm:  # False for NaN
        flags.append(FLAG_SKIN)
    if values["distance_to_chest_wall_mm"] <= tolerance_mm:
        flags.append(FLAG_CHEST_WALL)
    if t_range and t_range[0] != t_range[1]:
        flags.append(f"near a T boundary ({t_range[0]}-{t_range[1]} within one voxel)")
    if values["fraction_in_breast"] < 0.5:
        flags.append(FLAG_OUTSIDE)
    third = values["perpendicular_diameters_mm"][1]
    if third > 0 and values["max_diameter_mm"] >= ELONGATION_FLAG_RATIO * third:
        flags.append(
            f"elongated ({values['max_diameter_mm']:.0f} x {third:.0f} mm): a vessel? review"
        )
    return flags


def measure_lesion(
    lesion: LesionGeometry,
    lesion_id: int,
    surfaces: BreastSurfaces | None,
    touch_tolerance_mm: float,
    components: int = 1,
) -> LesionReport:
    """All registry measurements, the T category and the flags of one lesion."""
    values = compute_measurements(lesion, surfaces, lesion_id=lesion_id)
    diameter = values["max_diameter_mm"]
    t_range = t_category_range(diameter, values["max_diameter_uncertainty_mm"])
    return LesionReport(
        id=lesion_id,
        values=values,
        t_category=t_category(diameter),
        t_category_range=t_range,
        flags=tuple(_lesion_flags(values, t_range, touch_tolerance_mm)),
        components=components,
    )


def measure_lesions(
    mask: sitk.Image,
    breast_mask: sitk.Image | None = None,
    grouping: GroupingSettings | None = None,
    *,
    mode: LesionMode = "auto",
    touch_tolerance_mm: float | None = None,
    allow_empty: bool = False,
) -> MeasurementReport:
    """Find the lesions of a mask and measure each one.

    Args:
        mask: Lesion mask: binary (one non-zero value) or instance labels (1..n).
        breast_mask: Whole-breast mask on the same grid, for distances to skin and chest wall.
        grouping: Grouping rule for binary masks (default :class:`GroupingSettings` ()).
        mode: ``"auto"`` (binary if one non-zero value, else labels), ``"binary"`` (any non-zero
            voxel is lesion; grouping applies) or ``"labels"`` (each value one lesion; no grouping,
            no minimum volume).
        touch_tolerance_mm: A lesion this close to skin or chest wall is flagged "possible T4"
            (default: one voxel diagonal, i.e. a lesion voxel 26-adjacent to the surface layer).
        allow_empty: Return an empty report for a mask without lesion voxels instead of raising.

    Returns:
        The report.

    Raises:
        MaskError: not a mask, an empty mask (unless ``allow_empty``), or a breast mask that is
            empty or on another grid.
    """
    array = mask_array(mask, "the lesion mask")
    grid = Grid.from_image(mask)
    surfaces = None
    if breast_mask is not None:
        surfaces = BreastSurfaces.from_mask(breast_array(breast_mask, mask), grid)
    if not array.any() and not allow_empty:
        raise MaskError("the lesion mask is empty (no non-zero voxel): nothing to measure")
    resolved = resolve_mode(array, mode)
    tolerance = grid.voxel_diagonal_mm if touch_tolerance_mm is None else touch_tolerance_mm
    if resolved == "binary":
        found = group_lesions(array, grid.spacing_mm[::-1], grouping)
        labels, summary = found.labels_zyx, found.summary()
        ids = list(range(1, found.n_lesions + 1))
        components = list(found.components_per_lesion)
    else:
        if grouping is not None:
            logger.warning("grouping settings are ignored for an instance label map")
        labels = array
        ids = [int(v) for v in np.unique(array[array != 0])]
        components = [1] * len(ids)
        summary = {"rule": "instance labels: each label value is one lesion", "lesions": len(ids)}
    boxes = ndimage.find_objects(labels) if ids else []
    reports = []
    for lesion_id, n_components in zip(ids, components, strict=True):
        geometry = LesionGeometry.from_labels(labels, lesion_id, boxes[lesion_id - 1], grid)
        reports.append(measure_lesion(geometry, lesion_id, surfaces, tolerance, n_components))
    return _assemble(reports, resolved, summary, grid, surfaces is not None, tolerance)


def _assemble(
    reports: list[LesionReport],
    mode: str,
    summary: dict[str, Any],
    grid: Grid,
    has_breast: bool,
    tolerance: float,
) -> MeasurementReport:
    diameters = [r.values["max_diameter_mm"] for r in reports]
    t_stage = overall_t_stage(diameters)
    flags: list[str] = []
    leader = None
    if t_stage is not None:
        leader = max(
            (r for r in reports if math.isfinite(r.values["max_diameter_mm"])),
            key=lambda r: r.values["max_diameter_mm"],
        )
        flags += [f for f in leader.flags if f.startswith("near a T boundary")]
    else:
        flags.append("no lesion to measure")
    for flag in (FLAG_SKIN, FLAG_CHEST_WALL):
        touching = [str(r.id) for r in reports if flag in r.flags]
        if touching:
            flags.append(f"{flag} (lesion {', '.join(touching)})")
    grid_summary = {
        "size_xyz": list(grid.size_xyz),
        "spacing_mm": np.round(grid.spacing_mm, 6).tolist(),
        "voxel_diagonal_mm": round(grid.voxel_diagonal_mm, 6),
    }
    return MeasurementReport(
        lesions=tuple(reports),
        t_stage=t_stage,
        t_stage_lesion_id=leader.id if leader else None,
        flags=tuple(flags),
        mode=mode,
        grouping=summary,
        grid=grid_summary,
        breast_mask=has_breast,
        touch_tolerance_mm=float(tolerance),
    )
