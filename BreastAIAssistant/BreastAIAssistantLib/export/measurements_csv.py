"""Lesion measurements as a CSV table: one row per lesion, for spreadsheets and statistics.

Columns, in order: ``lesion_id``; ``t_stage`` (the study's overall AJCC T stage, the same on every
row, e.g. ``T2(m)``); ``t_category`` of the lesion and its one-voxel range ``t_category_low`` /
``t_category_high``; then every measurement of the report in registry order, vectors flattened:

* points (``*_lps_mm`` with 3 values): ``centroid_lps_mm_x``, ``_y``, ``_z``;
* point pairs: ``endpoints_lps_mm`` -> ``endpoint1_lps_mm_x`` ... ``endpoint2_lps_mm_z``, and
  ``axial_endpoints_lps_mm`` -> ``axial_endpoint1_lps_mm_x`` ...;
* other lists: ``perpendicular_diameters_mm`` -> ``perpendicular_diameter1_mm``,
  ``perpendicular_diameter2_mm``; anything else ``<name>_1``, ``<name>_2``, ...;

and last ``flags`` (joined with ``"; "``) and ``components``. Missing values (NaN in the report,
``null`` in its JSON) are empty cells. Numbers are written with full precision (Python ``repr``).
A report without lesions gives the header row only.
"""

from __future__ import annotations

import csv
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from BreastAIAssistantLib.io.volumes import atomic_path
from BreastAIAssistantLib.measure.report import MeasurementReport

logger = logging.getLogger(__name__)

_AXES = ("x", "y", "z")
#: Lesion fields that are not measurements (they get their own columns).
_NON_MEASURES = ("id", "t_category", "t_category_range", "flags", "components")


def _plural_stem(name: str) -> tuple[str, str] | None:
    """Split ``endpoints_lps_mm`` into (``endpoint``, ``_lps_mm``) at its first plural word."""
    words = name.split("_")
    for index, word in enumerate(words):
        if word.endswith("s") and len(word) > 3:
            head = "_".join([*words[:index], word[:-1]])
            tail = "_".join(words[index + 1 :])
            return head, (f"_{tail}" if tail else "")
    return None


def flatten_value(name: str, value: Any) -> dict[str, Any]:
    """Columns of one measurement (see the module docstring for the naming)."""
    if not isinstance(value, list | tuple):
        return {name: value}
    if value and all(isinstance(v, list | tuple) for v in value):
        split = _plural_stem(name)
        columns: dict[str, Any] = {}
        for k, point in enumerate(value, start=1):
            prefix = f"{split[0]}{k}{split[1]}" if split else f"{name}_{k}"
            columns.update(flatten_value(prefix, list(point)))
        return columns
    if len(value) == 3 and name.endswith("lps_mm"):
        return {f"{name}_{axis}": v for axis, v in zip(_AXES, value, strict=True)}
    split = _plural_stem(name)
    if split:
        return {f"{split[0]}{k}{split[1]}": v for k, v in enumerate(value, start=1)}
    return {f"{name}_{k}": v for k, v in enumerate(value, start=1)}


def lesion_row(lesion: Mapping[str, Any], t_stage: str | None) -> dict[str, Any]:
    """One CSV row from a lesion's ``to_dict()``."""
    t_range = lesion.get("t_category_range") or [None, None]
    row: dict[str, Any] = {
        "lesion_id": lesion.get("id"),
        "t_stage": t_stage,
        "t_category": lesion.get("t_category"),
        "t_category_low": t_range[0],
        "t_category_high": t_range[1],
    }
    for name, value in lesion.items():
        if name not in _NON_MEASURES:
            row.update(flatten_value(name, value))
    row["flags"] = "; ".join(lesion.get("flags") or [])
    row["components"] = lesion.get("components")
    return row


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if value != value else repr(value)  # NaN -> empty
    return str(value)


def measurement_rows(report: MeasurementReport | Mapping[str, Any]) -> list[dict[str, Any]]:
    """The CSV rows of a report (a :class:`MeasurementReport` or its ``to_dict()``)."""
    data = report.to_dict() if isinstance(report, MeasurementReport) else report
    if "lesions" not in data:
        raise ValueError("not a measurement report: it has no 'lesions' entry")
    return [lesion_row(lesion, data.get("t_stage")) for lesion in data["lesions"]]


def _columns(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    columns: list[str] = []
    for row in rows:
        columns += [c for c in row if c not in columns]
    tail = [c for c in ("flags", "components") if c in columns]
    return [c for c in columns if c not in tail] + tail


def write_measurements_csv(
    report: MeasurementReport | Mapping[str, Any], path: str | os.PathLike[str]
) -> Path:
    """Write the measurement report as CSV (one row per lesion), atomically.

    Args:
        report: A :class:`~BreastAIAssistantLib.measure.MeasurementReport` or its
            ``to_dict()`` (e.g. read back from ``report.json``).
        path: Output ``.csv`` file.

    Returns:
        The path written.

    Raises:
        ValueError: ``report`` is not a measurement report.
    """
    path = Path(path)
    rows = measurement_rows(report)
    columns = _columns(rows) or list(lesion_row({}, None))
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for row in rows:
            writer.writerow([_cell(row.get(c)) for c in columns])
    logger.info("wrote %d lesion row(s) to %s", len(rows), path)
    return path
