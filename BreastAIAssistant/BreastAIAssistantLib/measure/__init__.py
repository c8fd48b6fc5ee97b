"""Lesion measurements: volume, exact diameters, distances to skin and chest wall, AJCC T stage.

Typical use::

    from BreastAIAssistantLib.measure import GroupingSettings, measure_lesions
    report = measure_lesions(mask_image, breast_mask=breast_image)   # MeasurementReport
    report.t_stage, report.lesions[0]["max_diameter_mm"], report.to_dict()

Modules, one concept each: :mod:`.grid` (index <-> LPS), :mod:`.diameter` (exact farthest pair,
convex hull, perpendicular extents), :mod:`.grouping` (fragments -> lesions), :mod:`.surfaces`
(skin and chest wall of a breast mask), :mod:`.lesion` (one lesion's cached geometry),
:mod:`.registry` (the named measurements), :mod:`.tstage` (AJCC 8th edition), :mod:`.masks`
(input checks), :mod:`.report` (``measure_lesions``).
"""

from __future__ import annotations

from BreastAIAssistantLib.measure.diameter import FarthestPair, farthest_pair
from BreastAIAssistantLib.measure.grid import Grid
from BreastAIAssistantLib.measure.grouping import (
    FOCUS_VOLUME_ML,
    Grouping,
    GroupingSettings,
    group_lesions,
)
from BreastAIAssistantLib.measure.lesion import LesionGeometry
from BreastAIAssistantLib.measure.masks import MaskError
from BreastAIAssistantLib.measure.registry import (
    MEASUREMENTS,
    Measurement,
    compute_measurements,
    describe_measurements,
)
from BreastAIAssistantLib.measure.report import (
    LesionReport,
    MeasurementReport,
    measure_lesion,
    measure_lesions,
)
from BreastAIAssistantLib.measure.surfaces import BreastSurfaces
from BreastAIAssistantLib.measure.tstage import overall_t_stage, t_category, t_category_range

__all__ = [
    "FOCUS_VOLUME_ML",
    "MEASUREMENTS",
    "BreastSurfaces",
    "FarthestPair",
    "Grid",
    "Grouping",
    "GroupingSettings",
    "LesionGeometry",
    "LesionReport",
    "MaskError",
    "Measurement",
    "MeasurementReport",
    "compute_measurements",
    "describe_measurements",
    "farthest_pair",
    "group_lesions",
    "measure_lesion",
    "measure_lesions",
    "overall_t_stage",
    "t_category",
    "t_category_range",
]
