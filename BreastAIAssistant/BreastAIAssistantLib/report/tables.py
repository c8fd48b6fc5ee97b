"""The report's tables as plain rows of text: measurements, kinetics, study, models, provenance.

Pure formatting (no markup), shared by the HTML and the PDF. Missing values (``None``, NaN) show
as an em dash; lengths in mm with one decimal, volumes in ml with two.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from BreastAIAssistantLib.dce.curves import CURVE_TYPE_LABELS

MISSING = "—"

Rows = list[tuple[str, str]]

#: Column titles of the lesion summary table.
SUMMARY_HEADER = (
    "Lesion",
    "Volume (ml)",
    "Max 3-D diameter (mm)",
    "Axial diameter (mm)",
    "T category (range)",
    "Curve type",
    "Flags",
)


def number(value: Any, digits: int = 1, unit: str = "") -> str:
    """A number with ``digits`` decimals and an optional unit; ``—`` for missing/NaN."""
    if value is None or isinstance(value, bool):
        return MISSING if value is None else str(value)
    try:
        x = float(value)
    except (TypeError, ValueError):
        return str(value)
    if not math.isfinite(x):
        return MISSING
    return f"{x:.{digits}f}" + (f" {unit}" if unit else "")


def point(value: Any) -> str:
    """An LPS point as ``(x, y, z)`` mm with one decimal."""
    if value is None:
        return MISSING
    return "(" + ", ".join(number(v) for v in value) + ")"


def t_category(lesion: Mapping[str, Any]) -> str:
    """T category with its one-voxel range when it differs (``T2 (T1c–T2)``)."""
    category = lesion.get("t_category") or MISSING
    span = lesion.get("t_category_range")
    if span and span[0] != span[1]:
        return f"{category} (range {span[0]}–{span[1]})"
    return str(category)


def curve_name(kinetics: Mapping[str, Any] | None) -> str:
    """Hotspot curve-type name, or ``—`` without kinetics."""
    if not kinetics:
        return MISSING
    return str(kinetics.get("curve_type_name") or CURVE_TYPE_LABELS[0]["name"])


def summary_rows(
    lesions: Sequence[Mapping[str, Any]], kinetics: Mapping[int, Mapping[str, Any]]
) -> list[tuple[str, ...]]:
    """One row per lesion for the summary table (:data:`SUMMARY_HEADER`)."""
    rows = []
    for lesion in lesions:
        lid = int(lesion["id"])
        rows.append(
            (
                str(lid),
                number(lesion.get("volume_ml"), 2),
                number(lesion.get("max_diameter_mm")),
                number(lesion.get("axial_diameter_mm")),
                t_category(lesion),
                curve_name(kinetics.get(lid)),
                "; ".join(lesion.get("flags") or []) or "none",
            )
        )
    return rows


def measurement_rows(lesion: Mapping[str, Any]) -> Rows:
    """Measurements of one lesion as (label, value) rows."""
    perpendicular = lesion.get("perpendicular_diameters_mm") or [None, None]
    rows: Rows = [
        ("Volume", number(lesion.get("volume_ml"), 2, "ml")),
        ("Voxels", str(lesion.get("voxel_count", MISSING))),
        (
            "Max 3-D diameter",
            f"{number(lesion.get('max_diameter_mm'), 1, 'mm')} "
            f"(± {number(lesion.get('max_diameter_uncertainty_mm'), 1, 'mm')}, one voxel)",
        ),
        ("Axial diameter", number(lesion.get("axial_diameter_mm"), 1, "mm")),
        (
            "Perpendicular diameters",
            f"{number(perpendicular[0], 1, 'mm')} × {number(perpendicular[1], 1, 'mm')}",
        ),
        ("T category (AJCC 8th, size)", t_category(lesion)),
        ("Centroid (LPS)", point(lesion.get("centroid_lps_mm")) + " mm"),
    ]
    for key, label in (
        ("distance_to_skin_mm", "Distance to skin"),
        ("distance_to_chest_wall_mm", "Distance to chest wall"),
    ):
        if lesion.get(key) is not None:
            rows.append((label, number(lesion.get(key), 1, "mm")))
    if lesion.get("components", 1) not in (None, 1):
        rows.append(("Connected components", str(lesion["components"])))
    rows.append(("Flags", "; ".join(lesion.get("flags") or []) or "none"))
    return rows


def kinetics_rows(kinetics: Mapping[str, Any] | None) -> Rows:
    """Kinetics of one lesion as (label, value) rows (empty without kinetics)."""
    if not kinetics:
        return []
    composition = kinetics.get("composition") or {}
    mix = ", ".join(
        f"{name.replace('_', ' ')} {number(100 * (fraction or 0.0), 0)} %"
        for name, fraction in composition.items()
    )
    times = kinetics.get("times_s")
    peak = kinetics.get("peak_phase")
    peak_at = f"phase {peak}" + (f" ({number(times[peak], 0)} s)" if times and peak else "")
    rule = kinetics.get("curve_rule") or {}
    rows: Rows = [
        ("Curve type (most enhancing part)", curve_name(kinetics)),
        (
            "Curve type (whole-lesion mean)",
            str(kinetics.get("mean_curve_type_name", MISSING)),
        ),
        (
            "Early / late enhancement",
            f"{number(_at(kinetics['pe_curve_pct'], kinetics['early']), 0, '%')} / "
            f"{number(_at(kinetics['pe_curve_pct'], kinetics['late']), 0, '%')} "
            f"(phases {kinetics['early']} / {kinetics['late']})",
        ),
        (
            "Peak enhancement",
            f"{number(kinetics.get('peak_enhancement_pct'), 0, '%')} at {peak_at}",
        ),
        ("SER (early / late)", number(kinetics.get("ser"), 2)),
        ("Voxel curve types", mix or MISSING),
        (
            "Most enhancing part",
            f"{kinetics.get('hotspot_voxel_count')} of {kinetics.get('voxel_count')} voxels "
            f"(top {number(100 * (kinetics.get('hotspot', {}).get('fraction') or 0), 0)} % "
            "by early enhancement)",
        ),
        (
            "Curve rule",
            f"assessed if early enhancement ≥ {number(rule.get('min_enhancement_pct'), 0)} %; "
            f"plateau within ±{number(100 * (rule.get('tolerance') or 0), 0)} % of early",
        ),
    ]
    for note in kinetics.get("notes") or []:
        rows.append(("Note", str(note)))
    return rows


def _at(values: Sequence[Any], index: int) -> Any:
    return values[index] if 0 <= index < len(values) else None


def study_rows(summary: Mapping[str, Any], phases: Mapping[str, Any] | None) -> Rows:
    """Study summary rows from :meth:`DCEStudy.describe` and the phase choice."""
    times = summary.get("times_s")
    spacing = ", ".join(number(v, 3) for v in summary.get("spacing_mm", []))
    oblique = " (oblique)" if summary.get("oblique") else ""
    rows: Rows = [
        ("Source", str(summary.get("source") or MISSING)),
        ("Phases", f"{summary.get('n_phases')} (phase 0 = pre-contrast)"),
        (
            "Acquisition times",
            ", ".join(number(t, 0) for t in times) + " s" if times else "unknown (phase order)",
        ),
        ("Grid size (x × y × z)", " × ".join(str(v) for v in summary.get("size_xyz", []))),
        ("Spacing (x, y, z)", f"{spacing} mm"),
        ("Orientation", f"{summary.get('orientation')}{oblique}"),
        ("Origin (LPS)", point(summary.get("origin_lps_mm")) + " mm"),
        ("Direction", ", ".join(number(v, 4) for v in summary.get("direction", []))),
    ]
    if phases:
        rows.append(("Early / late phases", str(phases.get("reason", MISSING))))
    return rows


def model_rows(models: Sequence[Mapping[str, Any]]) -> list[tuple[str, ...]]:
    """Models table rows: id, version, sha256, research demo."""
    rows = []
    for model in models:
        demo = model.get("research_demo")
        rows.append(
            (
                str(model.get("id", MISSING)),
                str(model.get("version", MISSING)),
                str(model.get("sha256", MISSING)),
                MISSING if demo is None else ("yes" if demo else "no"),
            )
        )
    return rows


def timing_rows(timings: Mapping[str, Any]) -> Rows:
    """Stage timings in seconds."""
    return [(str(stage), number(seconds, 2, "s")) for stage, seconds in timings.items()]


def prediction_rows(results: Sequence[Any]) -> Rows:
    """Classifier predictions of one lesion (``ClassifierResult`` objects) as rows."""
    rows: Rows = []
    for result in results:
        values = result.values
        if "malignancy_probability" in values:
            rows.append((f"Malignancy (MRSM, {result.model})",
                         number(values["malignancy_probability"], 2)))
        if "dmif_malignancy_probability" in values:
            rows.append((f"Malignancy from box (DMIF-Net, {result.model})",
                         number(values["dmif_malignancy_probability"], 2)))
        for key, label in (("er", "ER positive"), ("pr", "PR positive"),
                           ("her2", "HER2 positive")):
            if key in values:
                rows.append((f"{label} (probability)", number(values[key], 2)))
        if "ki67" in values:
            rows.append(("Ki-67 index", number(values["ki67"], 0, "%")))
        if "subtype" in values:
            rows.append(("Surrogate subtype", str(values["subtype"]).replace("_", " ")))
    return rows
