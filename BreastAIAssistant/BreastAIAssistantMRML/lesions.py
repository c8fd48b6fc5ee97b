"""Per-lesion nodes: diameter lines, the lesion table, the time-intensity plot, navigation.

Inputs are the lesion records of the core's ``report.json`` (``run_analysis`` or
``measure_lesions(...).to_dict()["lesions"]``): ``id``, ``volume_ml``, ``max_diameter_mm``,
``endpoints_lps_mm`` (two LPS points), ``centroid_lps_mm``, ``t_category``, ``flags``, and when
the job ran them ``curve_type``, ``kinetics`` (``mean_pe_curve_pct``, ``times_s``) and the
classifier outputs (``malignancy_probability``, ``er``, ``pr``, ``her2``, ``ki67``, ``subtype``).
Missing values are shown as empty cells / NaN, never invented.

* The **diameter line** is a ``vtkMRMLMarkupsLineNode`` on the exact 3-D endpoints (converted to
  RAS in :mod:`.geometry`), locked, in the lesion's colour, labelled with its length measurement
  printed as ``"34.2 mm · T2"`` (``vtkMRMLMeasurement`` print format), so Slicer shows
  ``Lesion 1: 34.2 mm · T2`` beside it.
* The **table** is a ``vtkMRMLTableNode`` with typed columns, units and descriptions
  (:data:`TABLE_COLUMNS`); the lesions' radiomics features, when a saved radiomics model was
  applied, go into a second table (:func:`add_features_table`).
* The **plot** is one ``vtkMRMLPlotSeriesNode`` per lesion (mean percent enhancement against
  time, or phase without times) in one ``vtkMRMLPlotChartNode``, as the Plots module builds them.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import slicer
import vtk

from BreastAIAssistantLib.export import lesion_color
from BreastAIAssistantMRML.geometry import lps_to_ras

logger = logging.getLogger(__name__)

LESION_ID_ATTRIBUTE = "BreastAI.LesionId"
Lesion = Mapping[str, Any]


@dataclass(frozen=True)
class Column:
    """One column of the lesion table.

    Attributes:
        name: Column name (header).
        unit: Unit label ("" for none).
        description: What it is.
        value: Lesion record -> cell value (``None`` = empty).
        numeric: Double column (NaN for empty) or string column.
    """

    name: str
    unit: str
    description: str
    value: Callable[[Lesion], Any]
    numeric: bool = True


def _get(key: str) -> Callable[[Lesion], Any]:
    return lambda lesion: lesion.get(key)


def _flags(lesion: Lesion) -> str:
    return "; ".join(str(f) for f in lesion.get("flags") or ())


#: The lesion table, in order (the registry the table, CSV and tests share).
TABLE_COLUMNS: tuple[Column, ...] = (
    Column("Lesion", "", "lesion number (segment 'Lesion k')", _get("id")),
    Column("Volume", "ml", "lesion volume", _get("volume_ml")),
    Column("Max diameter", "mm", "exact 3-D maximum diameter (voxel centres)",
           _get("max_diameter_mm")),
    Column("Axial diameter", "mm", "longest in-plane diameter on one axial slice",
           _get("axial_diameter_mm")),
    Column("T", "", "AJCC 8th edition T category from the maximum diameter",
           _get("t_category"), numeric=False),
    Column("Curve type", "", "BI-RADS kinetic curve type of the lesion",
           _get("curve_type"), numeric=False),
    Column("Malignancy", "probability", "benign/malignant classifier (research demo)",
           _get("malignancy_probability")),
    Column("ER", "probability", "estrogen receptor positive (research demo)", _get("er")),
    Column("PR", "probability", "progesterone receptor positive (research demo)", _get("pr")),
    Column("HER2", "probability", "HER2 positive (research demo)", _get("her2")),
    Column("Ki-67", "%", "Ki-67 index (research demo)", _get("ki67")),
    Column("Subtype", "", "molecular subtype from the receptor predictions (research demo)",
           _get("subtype"), numeric=False),
    Column("Radiomics", "probability",
           "positive-class probability of the saved radiomics model given to the run (research)",
           _get("radiomics_probability")),
    Column("Flags", "", "warnings for the reader", _flags, numeric=False),
)  # fmt: skip


def diameter_label_format(t_category: str | None) -> str:
    """The measurement print format of a diameter line: ``"%.1f %s · T2"``."""
    suffix = f" · {t_category}" if t_category else ""
    return "%.1f %s" + suffix.replace("%", "%%")


def lesion_endpoints_ras(lesion: Lesion) -> np.ndarray | None:
    """The lesion's maximum-diameter endpoints in RAS, ``(2, 3)``, or ``None`` if unknown."""
    points = lesion.get("endpoints_lps_mm")
    if not points or len(points) != 2 or any(p is None for p in points):
        return None
    return lps_to_ras(np.asarray(points, dtype=float))


def lesion_centre_ras(lesion: Lesion) -> np.ndarray | None:
    """The lesion's centroid in RAS (the diameter's midpoint without a centroid), or ``None``."""
    centroid = lesion.get("centroid_lps_mm")
    if centroid is not None and all(v is not None for v in centroid):
        return lps_to_ras(np.asarray(centroid, dtype=float))
    endpoints = lesion_endpoints_ras(lesion)
    return None if endpoints is None else endpoints.mean(axis=0)


#: Slicer's default slice orientations: ``SliceToRAS`` rotation columns (screen x, screen y,
#: normal), as ``vtkMRMLSliceNode.SetOrientation`` sets them (patient right on screen left).
ORIENTATIONS = {
    "Axial": np.array([[-1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]),
    "Coronal": np.array([[-1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]]),
    "Sagittal": np.array([[0.0, 0.0, -1.0], [-1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]),
}


def diameter_orientation(endpoints_ras: np.ndarray) -> str:
    """The default orientation whose slices are closest to containing the diameter."""
    p0, p1 = np.asarray(endpoints_ras, dtype=float)
    direction = (p1 - p0) / max(float(np.linalg.norm(p1 - p0)), 1e-12)
    return min(ORIENTATIONS, key=lambda name: abs(float(ORIENTATIONS[name][:, 2] @ direction)))


def diameter_slice_to_ras(endpoints_ras: np.ndarray, orientation: str = "Axial") -> np.ndarray:
    """``SliceToRAS`` of the plane nearest an orientation that holds a whole diameter.

    A 3-D maximum diameter is usually oblique to the slices, and Slicer draws a line's label
    only where the line lies in the slice. This plane, centred on the diameter, holds the whole
    line: the orientation's normal made orthogonal to the line, its screen axes projected onto
    the plane (so the view looks like that orientation, tilted as little as possible).

    Args:
        endpoints_ras: The two endpoints, ``(2, 3)``.
        orientation: ``Axial``, ``Coronal``, ``Sagittal`` or ``auto`` (the least tilted one,
            :func:`diameter_orientation`).

    Raises:
        ValueError: the endpoints coincide, or an unknown orientation.
    """
    p0, p1 = np.asarray(endpoints_ras, dtype=float)
    direction = p1 - p0
    if np.linalg.norm(direction) == 0:
        raise ValueError("the diameter's endpoints coincide")
    direction /= np.linalg.norm(direction)
    if orientation == "auto":
        orientation = diameter_orientation(endpoints_ras)
    if orientation not in ORIENTATIONS:
        raise ValueError(f"orientation must be auto or one of {', '.join(ORIENTATIONS)}")
    axes = ORIENTATIONS[orientation]
    normal = axes[:, 2] - float(axes[:, 2] @ direction) * direction
    if np.linalg.norm(normal) < 1e-6:  # the line is along the normal: use the screen y axis
        normal = axes[:, 1] - float(axes[:, 1] @ direction) * direction
    normal /= np.linalg.norm(normal)
    x_axis = axes[:, 0] - float(axes[:, 0] @ normal) * normal
    if np.linalg.norm(x_axis) < 1e-6:
        x_axis = direction.copy()
    x_axis /= np.linalg.norm(x_axis)
    y_axis = np.cross(normal, x_axis)
    if float(y_axis @ axes[:, 1]) < 0:
        y_axis = -y_axis
    matrix = np.eye(4)
    matrix[:3, 0], matrix[:3, 1], matrix[:3, 2] = x_axis, y_axis, normal
    matrix[:3, 3] = (p0 + p1) / 2.0
    return matrix


def update_diameter_line(line: slicer.vtkMRMLMarkupsLineNode, lesion: Lesion) -> None:
    """Put a line node on the lesion's diameter endpoints and label it (no-op without them)."""
    endpoints = lesion_endpoints_ras(lesion)
    was_modifying = line.StartModify()
    line.RemoveAllControlPoints()
    if endpoints is not None:
        for point in endpoints:
            line.AddControlPoint(vtk.vtkVector3d(*(float(v) for v in point)))
    measurement = line.GetMeasurement("length")
    if measurement is not None:
        measurement.SetPrintFormat(diameter_label_format(lesion.get("t_category")))
    line.SetAttribute(LESION_ID_ATTRIBUTE, str(int(lesion["id"])))
    line.EndModify(was_modifying)


def add_diameter_line(scene: slicer.vtkMRMLScene, lesion: Lesion,
                      name: str | None = None) -> slicer.vtkMRMLMarkupsLineNode:
    """Add a locked markups line on a lesion's 3-D maximum diameter.

    Args:
        scene: The ``vtkMRMLScene``.
        lesion: A lesion record (needs ``id`` and ``endpoints_lps_mm``).
        name: Node name (default ``"Lesion k"``).

    Returns:
        The ``vtkMRMLMarkupsLineNode``.
    """
    lesion_id = int(lesion["id"])
    line = scene.AddNewNodeByClass("vtkMRMLMarkupsLineNode", name or f"Lesion {lesion_id}")
    line.CreateDefaultDisplayNodes()
    display = line.GetDisplayNode()
    color = lesion_color(lesion_id)
    display.SetSelectedColor(*color)
    display.SetColor(*color)
    display.SetActiveColor(*color)
    display.SetPointLabelsVisibility(False)
    display.SetPropertiesLabelVisibility(True)
    display.SetLineThickness(0.3)
    update_diameter_line(line, lesion)
    line.SetLocked(True)
    return line


def _cell(column: Column, lesion: Lesion) -> Any:
    value = column.value(lesion)
    if column.numeric:
        try:
            number = float(value)
        except (TypeError, ValueError):
            return math.nan
        return number if math.isfinite(number) else math.nan
    return "" if value is None else str(value)


def fill_lesion_table(table_node: slicer.vtkMRMLTableNode, lesions: Sequence[Lesion]) -> None:
    """Replace the table node's content with one row per lesion (:data:`TABLE_COLUMNS`)."""
    table = vtk.vtkTable()
    for column in TABLE_COLUMNS:
        array = vtk.vtkDoubleArray() if column.numeric else vtk.vtkStringArray()
        array.SetName(column.name)
        array.SetNumberOfValues(len(lesions))
        for row, lesion in enumerate(lesions):
            array.SetValue(row, _cell(column, lesion))
        table.AddColumn(array)
    was_modifying = table_node.StartModify()
    table_node.SetAndObserveTable(table)
    table_node.SetUseColumnTitleAsColumnHeader(True)
    for column in TABLE_COLUMNS:
        title = f"{column.name} ({column.unit})" if column.unit else column.name
        table_node.SetColumnTitle(column.name, title)
        table_node.SetColumnUnitLabel(column.name, column.unit)
        table_node.SetColumnDescription(column.name, column.description)
    table_node.SetLocked(True)
    table_node.EndModify(was_modifying)


def add_lesion_table(scene: slicer.vtkMRMLScene, lesions: Sequence[Lesion],
                     name: str = "Breast AI lesions") -> slicer.vtkMRMLTableNode:
    """Add a ``vtkMRMLTableNode`` of the lesions (see :func:`fill_lesion_table`)."""
    table_node = scene.AddNewNodeByClass("vtkMRMLTableNode", scene.GenerateUniqueName(name))
    fill_lesion_table(table_node, lesions)
    return table_node


def fill_features_table(table_node: slicer.vtkMRMLTableNode,
                        features: Mapping[int, Mapping[str, float]]) -> None:  # fmt: skip
    """Replace the table node's content with the lesions' radiomics features: a ``Feature``
    column (names as in ``breast-ai features``) and one ``Lesion k`` column per lesion (NaN where
    a feature could not be computed)."""
    names = sorted({name for row in features.values() for name in row})
    table = vtk.vtkTable()
    column = vtk.vtkStringArray()
    column.SetName("Feature")
    column.SetNumberOfValues(len(names))
    for row, name in enumerate(names):
        column.SetValue(row, name)
    table.AddColumn(column)
    for lesion_id in sorted(features):
        values = vtk.vtkDoubleArray()
        values.SetName(f"Lesion {lesion_id}")
        values.SetNumberOfValues(len(names))
        for row, name in enumerate(names):
            number = float(features[lesion_id].get(name, math.nan))
            values.SetValue(row, number if math.isfinite(number) else math.nan)
        table.AddColumn(values)
    was_modifying = table_node.StartModify()
    table_node.SetAndObserveTable(table)
    table_node.SetUseColumnTitleAsColumnHeader(True)
    table_node.SetColumnDescription("Feature", "<modality>:<image>_<region>_<family>_<feature>")
    table_node.SetLocked(True)
    table_node.EndModify(was_modifying)


def add_features_table(scene: slicer.vtkMRMLScene, features: Mapping[int, Mapping[str, float]],
                       name: str = "Breast AI radiomics features") -> slicer.vtkMRMLTableNode:
    """Add a ``vtkMRMLTableNode`` of the lesions' radiomics features
    (see :func:`fill_features_table`)."""
    table_node = scene.AddNewNodeByClass("vtkMRMLTableNode", scene.GenerateUniqueName(name))
    fill_features_table(table_node, features)
    return table_node


def table_rows(table_node: slicer.vtkMRMLTableNode) -> list[dict[str, Any]]:
    """The table's rows as dicts by column name (for tests and CSV-like use)."""
    table = table_node.GetTable()
    rows = []
    for row in range(table.GetNumberOfRows()):
        rows.append({table.GetColumnName(c): table.GetValue(row, c).ToString()
                     if table.GetColumn(c).IsA("vtkStringArray")
                     else table.GetValue(row, c).ToDouble()
                     for c in range(table.GetNumberOfColumns())})  # fmt: skip
    return rows


def lesion_curve(lesion: Lesion) -> tuple[list[float], list[float], bool] | None:
    """``(x, y, x_is_time)`` of the lesion's mean percent-enhancement curve, or ``None``."""
    kinetics = lesion.get("kinetics") or {}
    curve = kinetics.get("mean_pe_curve_pct")
    if not curve or any(v is None for v in curve):
        return None
    times = kinetics.get("times_s")
    if times and len(times) == len(curve) and all(t is not None for t in times):
        return [float(t) for t in times], [float(v) for v in curve], True
    return [float(k) for k in range(len(curve))], [float(v) for v in curve], False


def add_curve_plot(scene: slicer.vtkMRMLScene, lesions: Sequence[Lesion],
                   name: str = "Breast AI curves") -> slicer.vtkMRMLPlotChartNode | None:
    """Add the time-intensity plot: a table of curves, one series per lesion, one chart.

    Returns:
        The ``vtkMRMLPlotChartNode``, or ``None`` when no lesion has a curve.
    """
    curves = {int(les["id"]): c for les in lesions if (c := lesion_curve(les)) is not None}
    if not curves:
        return None
    lengths = {len(c[0]) for c in curves.values()}
    x, _, is_time = next(iter(curves.values()))
    if len(lengths) != 1:
        logger.warning("lesion curves have different lengths %s; only the first is plotted",
                       sorted(lengths))  # fmt: skip
        first = next(iter(curves))
        curves = {first: curves[first]}
    x_name = "Time (s)" if is_time else "Phase"
    table = vtk.vtkTable()
    x_array = vtk.vtkDoubleArray()
    x_array.SetName(x_name)
    for value in x:
        x_array.InsertNextValue(value)
    table.AddColumn(x_array)
    for lesion_id, (_, y, _) in curves.items():
        y_array = vtk.vtkDoubleArray()
        y_array.SetName(f"Lesion {lesion_id}")
        for value in y:
            y_array.InsertNextValue(value)
        table.AddColumn(y_array)
    table_node = scene.AddNewNodeByClass("vtkMRMLTableNode",
                                         scene.GenerateUniqueName(f"{name} table"))
    table_node.SetAndObserveTable(table)
    chart = scene.AddNewNodeByClass("vtkMRMLPlotChartNode", scene.GenerateUniqueName(name))
    chart.SetTitle("Lesion time-intensity curves (mean enhancement)")
    chart.SetXAxisTitle(x_name)
    chart.SetYAxisTitle("Enhancement (%)")
    for lesion_id in curves:
        series = scene.AddNewNodeByClass("vtkMRMLPlotSeriesNode", f"Lesion {lesion_id} curve")
        series.SetAndObserveTableNodeID(table_node.GetID())
        series.SetXColumnName(x_name)
        series.SetYColumnName(f"Lesion {lesion_id}")
        series.SetPlotType(slicer.vtkMRMLPlotSeriesNode.PlotTypeScatter)
        series.SetMarkerStyle(slicer.vtkMRMLPlotSeriesNode.MarkerStyleCircle)
        series.SetColor(*lesion_color(lesion_id))
        chart.AddAndObservePlotSeriesNodeID(series.GetID())
    return chart


def jump_to_lesion(scene: slicer.vtkMRMLScene, lesion: Lesion, view_group: int = -1) -> bool:
    """Centre every slice view on the lesion (``vtkMRMLSliceNode.JumpAllSlices``, centred).

    Returns:
        Whether the lesion had a position to jump to.
    """
    centre = lesion_centre_ras(lesion)
    if centre is None:
        return False
    slicer.vtkMRMLSliceNode.JumpAllSlices(scene, *(float(v) for v in centre),
                                          slicer.vtkMRMLSliceNode.CenteredJumpSlice,
                                          view_group)  # fmt: skip
    return True
