"""The catalogue of per-lesion measurements: name, unit, description and a pure function.

Like pyradiomics feature classes and 3D Slicer's Segment Statistics, every measurement is an entry
in an explicit registry (:data:`MEASUREMENTS`), computed by :func:`compute_measurements`. A
measurement that fails gives NaN (NaNs of its shape for vectors) and a warning in the log; it
never stops the other measurements or the report.

Conventions (details in each module): points are voxel *centres*; lengths in mm; positions in
LPS mm; volumes in ml. Distances to skin and chest wall need a breast mask and are NaN without.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from BreastAIAssistantLib.measure.lesion import LesionGeometry
from BreastAIAssistantLib.measure.surfaces import BreastSurfaces

logger = logging.getLogger(__name__)

MeasureFunction = Callable[[LesionGeometry, "BreastSurfaces | None"], Any]


@dataclass(frozen=True)
class Measurement:
    """One named measurement.

    Attributes:
        name: Key in results and JSON (unit suffix included, e.g. ``volume_ml``).
        unit: Unit of the value (``"ml"``, ``"mm"``, ``"voxels"``, ``"1"`` for ratios).
        description: What is measured and how, in one or two sentences.
        function: Pure function ``(lesion, surfaces) -> value``; ``surfaces`` may be ``None``.
        shape: Shape of the value: ``()`` for a number, ``(3,)`` for a point, ``(2, 3)`` for two.
    """

    name: str
    unit: str
    description: str
    function: MeasureFunction
    shape: tuple[int, ...] = ()

    def missing(self) -> Any:
        """The value reported when the measurement cannot be computed: NaN(s) of its shape."""
        return math.nan if not self.shape else np.full(self.shape, math.nan).tolist()


def _needs_breast(function: Callable[[LesionGeometry, BreastSurfaces], float]) -> MeasureFunction:
    def wrapped(lesion: LesionGeometry, surfaces: BreastSurfaces | None) -> float:
        return math.nan if surfaces is None else function(lesion, surfaces)

    wrapped.__doc__ = function.__doc__
    return wrapped


def _rounded(values: np.ndarray, digits: int = 4) -> list:
    return np.round(np.asarray(values, dtype=float), digits).tolist()


_ENTRIES = (
    Measurement(
        "voxel_count",
        "voxels",
        "Number of voxels of the lesion.",
        lambda lesion, _: lesion.voxel_count,
    ),
    Measurement(
        "volume_ml",
        "ml",
        "Voxel count times voxel volume.",
        lambda lesion, _: lesion.volume_ml,
    ),
    Measurement(
        "max_diameter_mm",
        "mm",
        "Exact maximum 3-D distance between two voxel centres of the lesion (convex hull + "
        "farthest pair; equals ITK's Feret diameter).",
        lambda lesion, _: lesion.diameter.length_mm,
    ),
    Measurement(
        "endpoints_lps_mm",
        "mm",
        "The two voxel centres (LPS) at the ends of the maximum diameter.",
        lambda lesion, _: _rounded(lesion.endpoints_lps_mm),
        (2, 3),
    ),
    Measurement(
        "max_diameter_uncertainty_mm",
        "mm",
        "One voxel's width along the maximum-diameter axis: sum of |axis component| x spacing "
        "(between the smallest spacing and the voxel diagonal).",
        lambda lesion, _: lesion.diameter_uncertainty_mm,
    ),
    Measurement(
        "axial_diameter_mm",
        "mm",
        "Longest in-plane diameter (voxel centres) over the slices perpendicular to the index "
        "axis closest to patient S-I: what a reader measures on one axial slice.",
        lambda lesion, _: lesion.axial.length_mm,
    ),
    Measurement(
        "axial_endpoints_lps_mm",
        "mm",
        "The two voxel centres (LPS) at the ends of the axial diameter.",
        lambda lesion, _: _rounded(np.stack([lesion.axial.a_lps_mm, lesion.axial.b_lps_mm])),
        (2, 3),
    ),
    Measurement(
        "perpendicular_diameters_mm",
        "mm",
        "[second, third]: the largest extent perpendicular to the maximum diameter (diameter of "
        "the lesion projected on the plane normal to it), and the extent orthogonal to both.",
        lambda lesion, _: [lesion.perpendicular.second_mm, lesion.perpendicular.third_mm],
        (2,),
    ),
    Measurement(
        "centroid_lps_mm",
        "mm",
        "Mean of the voxel centres (LPS).",
        lambda lesion, _: _rounded(lesion.centroid_lps_mm),
        (3,),
    ),
    Measurement(
        "distance_to_skin_mm",
        "mm",
        "Shortest distance from a lesion voxel centre to the skin: the most anterior breast-mask "
        "voxel of each anterior-posterior line. NaN without a breast mask.",
        _needs_breast(lambda lesion, s: s.distance_to_skin_mm(lesion.mask_zyx, lesion.offset_zyx)),
    ),
    Measurement(
        "distance_to_chest_wall_mm",
        "mm",
        "Shortest distance from a lesion voxel centre to the chest wall: the most posterior "
        "breast-mask voxel of each anterior-posterior line. NaN without a breast mask.",
        _needs_breast(
            lambda lesion, s: s.distance_to_chest_wall_mm(lesion.mask_zyx, lesion.offset_zyx)
        ),
    ),
    Measurement(
        "fraction_in_breast",
        "1",
        "Fraction of the lesion's voxels inside the breast mask. NaN without a breast mask.",
        _needs_breast(lambda lesion, s: s.fraction_inside(lesion.mask_zyx, lesion.offset_zyx)),
    ),
)

#: Every measurement by name, in report order.
MEASUREMENTS: dict[str, Measurement] = {entry.name: entry for entry in _ENTRIES}


def compute_measurements(
    lesion: LesionGeometry,
    surfaces: BreastSurfaces | None = None,
    names: Iterable[str] | None = None,
    lesion_id: int | str = "?",
) -> dict[str, Any]:
    """Compute registry measurements of one lesion; a failing one gives NaN and a log warning.

    Args:
        lesion: The lesion.
        surfaces: The breast surfaces, or ``None`` (distance measurements are then NaN).
        names: Which measurements (default: all, in registry order).
        lesion_id: Used in log messages only.

    Returns:
        ``{name: value}``; numbers are Python floats/ints, points nested lists.

    Raises:
        KeyError: an unknown measurement name.
    """
    selected = list(MEASUREMENTS) if names is None else list(names)
    unknown = [n for n in selected if n not in MEASUREMENTS]
    if unknown:
        raise KeyError(f"unknown measurements {unknown}; known: {', '.join(MEASUREMENTS)}")
    values: dict[str, Any] = {}
    for name in selected:
        entry = MEASUREMENTS[name]
        try:
            value = entry.function(lesion, surfaces)
            values[name] = float(value) if isinstance(value, np.floating) else value
        except Exception as exc:  # a failing measurement must not stop the report
            logger.warning("lesion %s: measurement %s failed: %s", lesion_id, name, exc)
            values[name] = entry.missing()
    return values


def describe_measurements() -> list[dict[str, str]]:
    """Name, unit and description of every measurement (for reports and ``--help``)."""
    return [
        {"name": m.name, "unit": m.unit, "description": m.description}
        for m in MEASUREMENTS.values()
    ]
