"""DCE-MRI maps: subtraction, MIP, PE, SER, peak/time-to-peak/wash-in/washout, curve type, FTV.

Typical use::

    from BreastAIAssistantLib.dce import compute_maps, write_maps
    maps = compute_maps(study)            # DCEMaps: named SimpleITK images on the study grid
    write_maps(maps, "out/maps")          # one NIfTI per map, written atomically

Formulas, defaults and references are documented in each module.
"""

from __future__ import annotations

from BreastAIAssistantLib.dce.curves import (
    CURVE_TYPE_LABELS,
    CurveType,
    classify_curve,
    curve_type_from_subtractions,
    curve_type_map,
)
from BreastAIAssistantLib.dce.enhancement import (
    peak_kinetics,
    percent_enhancement,
    s0_floor,
    signal_enhancement_ratio,
    wash_in_slope,
)
from BreastAIAssistantLib.dce.ftv import FTVResult, FTVSettings, ftv_mask, functional_tumour_volume
from BreastAIAssistantLib.dce.maps import (
    MAP_CATALOGUE,
    DCEMaps,
    MapInfo,
    MapSettings,
    compute_maps,
    describe_map,
    write_maps,
)
from BreastAIAssistantLib.dce.subtraction import (
    maximum_intensity_projection,
    subtract,
    subtraction_image,
    superior_inferior_axis,
)
from BreastAIAssistantLib.dce.timing import (
    TIMING_PRESETS,
    PhaseChoice,
    PhaseSelectionError,
    TimingPreset,
    select_phases,
)

__all__ = [
    "CURVE_TYPE_LABELS",
    "MAP_CATALOGUE",
    "TIMING_PRESETS",
    "CurveType",
    "DCEMaps",
    "FTVResult",
    "FTVSettings",
    "MapInfo",
    "MapSettings",
    "PhaseChoice",
    "PhaseSelectionError",
    "TimingPreset",
    "classify_curve",
    "compute_maps",
    "curve_type_from_subtractions",
    "curve_type_map",
    "describe_map",
    "ftv_mask",
    "functional_tumour_volume",
    "maximum_intensity_projection",
    "peak_kinetics",
    "percent_enhancement",
    "s0_floor",
    "select_phases",
    "signal_enhancement_ratio",
    "subtract",
    "subtraction_image",
    "superior_inferior_axis",
    "wash_in_slope",
    "write_maps",
]
