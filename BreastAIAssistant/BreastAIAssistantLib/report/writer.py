"""``write_report``: the self-contained HTML report (and optionally a PDF) of one analysed study.

The report shows, in reading order: the research-use disclaimer; the overall T stage and a lesion
summary table; the study (source, phases, times, grid, orientation, phase choice); one section per
lesion with its measurements, kinetics and key images (:mod:`.keyimages`: subtraction MIP, axial
slice with the axial diameter, oblique plane with the whole 3-D diameter, kinetic curve); the
models used (id, version, sha256, research demo); provenance (software versions, timings) and
the display conventions.

The HTML is one file with inline CSS and ``data:`` PNG images (no script, no external resource),
written to a temporary name and renamed when complete. The optional PDF
(:mod:`.pdf`) uses matplotlib's PDF backend only, drawing the same figures.
A figure that fails to draw is left out, with a warning in the log; it never stops the report.
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
import platform
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk

from BreastAIAssistantLib.dce.maps import DCEMaps
from BreastAIAssistantLib.dce.subtraction import superior_inferior_axis
from BreastAIAssistantLib.measure.masks import MaskError, mask_array
from BreastAIAssistantLib.measure.report import MeasurementReport
from BreastAIAssistantLib.provenance import RECORDED_PACKAGES, package_versions
from BreastAIAssistantLib.report import figures as fig
from BreastAIAssistantLib.report import tables
from BreastAIAssistantLib.report.html import LesionSection, ReportPage, render_page
from BreastAIAssistantLib.report.keyimages import (
    WINDOW_PERCENTILES,
    KeyImage,
    Outline,
    axial_image,
    diameter_image,
    gradcam_image,
    mip_image,
    mip_overlays,
)
from BreastAIAssistantLib.study import DCEStudy, same_grid

logger = logging.getLogger(__name__)

REPORT_HTML = "report.html"
REPORT_PDF = "report.pdf"
TITLE = "Breast DCE-MRI — research report"
BREAST_COLOUR = "#9fb3c8"
#: Permissions of the written files (the temporary file of ``atomic_path`` is private, 0600).
REPORT_MODE = 0o644


def lesions_dict(lesions: MeasurementReport | Mapping[str, Any]) -> dict[str, Any]:
    """The measurement report as its JSON-ready dict."""
    return lesions.to_dict() if isinstance(lesions, MeasurementReport) else dict(lesions)


def kinetics_dicts(kinetics: Mapping[Any, Any] | None) -> dict[int, dict[str, Any]]:
    """Lesion id -> kinetics dict, from :class:`LesionKinetics` objects or their dicts."""
    result: dict[int, dict[str, Any]] = {}
    for key, value in (kinetics or {}).items():
        result[int(key)] = value.to_dict() if hasattr(value, "to_dict") else dict(value)
    return result


def _check_grid(image: sitk.Image, study: DCEStudy, what: str) -> np.ndarray:
    array = mask_array(image, what)
    if not same_grid(image, study.reference):
        raise MaskError(
            f"{what} is not on the study grid (size {image.GetSize()} vs {study.size_xyz}); "
            "resample it onto the pre-contrast phase (nearest neighbour) first"
        )
    return array


def _lesion_figures(
    key_images: list[KeyImage | None], kinetics: Mapping[str, Any] | None
) -> tuple[list[tuple[bytes, str, str, str]], list[Any]]:
    """PNG figures (bytes, alt, caption, class) of one lesion, and the drawables for the PDF."""
    figures: list[tuple[bytes, str, str, str]] = []
    drawables: list[Any] = []
    for key in key_images:
        if key is None:
            continue
        figures.append((fig.png_bytes(fig.key_image_figure(key)), key.title, key.caption, key.kind))
        drawables.append(key)
    if kinetics:
        caption = (
            "Percent enhancement 100 (S − S0) / S0 of the most enhancing part (solid; the top "
            f"{100 * kinetics['hotspot']['fraction']:.0f} % of the lesion's voxels by early "
            "enhancement, where a reader puts the ROI) and of the whole lesion (dashed). "
            "The curve type is read from the solid curve."
        )
        figures.append(
            (fig.png_bytes(fig.curve_figure(kinetics)), "kinetic curve", caption, "curve")
        )
        drawables.append(kinetics)
    return figures, drawables


def _gradcam_key(subtraction: sitk.Image, labels: sitk.Image, lesion: dict[str, Any],
                 early: int, result: Any) -> KeyImage | None:
    """The Grad-CAM key image of one classifier result (``None`` without a map).

    MRSM's map has one volume per phase: the phase with the largest total heat (the most
    informative one, ``gradcam_peak_phase``) is shown. The receptor model's three maps are
    written as files but not drawn.
    """
    heat = result.heatmap
    if heat is None or result.values.get("subtype") is not None:
        return None
    phase_note = ""
    if heat.GetDimension() == 4:
        phase = int(result.values.get("gradcam_peak_phase", 0))
        size = list(heat.GetSize())
        heat = sitk.Extract(heat, [*size[:3], 0], [0, 0, 0, phase])
        phase_note = f", phase {phase}"
    score = result.values.get("malignancy_probability",
                              result.values.get("dmif_malignancy_probability"))
    title = f"Grad-CAM — {result.model}{phase_note}"
    shown = (f" at phase {int(result.values.get('gradcam_peak_phase', 0))}, the phase with the "
             "most heat," if phase_note else "")
    caption = (f"Where {result.model} found evidence for malignancy (its score: {score:.2f}): "
               f"its Grad-CAM map{shown} scaled to 0-1, over the early subtraction (phase "
               f"{early} − 0) on the axial slice through the midpoint of the maximum diameter; "
               "lesion outlined in yellow. Research demo model, not for clinical use.")
    return gradcam_image(subtraction, labels, lesion, heat, title, caption)


def _safe(what: str, lesion_id: int, build: Any, *args: Any) -> Any:
    try:
        return build(*args)
    except Exception as exc:  # one failing figure must not stop the report
        logger.warning("lesion %s: the %s could not be drawn: %s", lesion_id, what, exc)
        return None


def _conventions(measurements: Mapping[str, Any]) -> tables.Rows:
    rows = [
        ("Display", "radiological: patient right on the image left, anterior up (axial); letters "
         "at the edges are computed from the direction matrix"),
        ("Slices", "0-based grid indices along the index axis closest to superior-inferior"),
        ("Grey window", f"{WINDOW_PERCENTILES[0]:g}th-{WINDOW_PERCENTILES[1]:g}th percentile of "
         "each image (MIP: 99.8th)"),
        ("Kinetics", "curve type of the most enhancing part, BI-RADS rule (Kuhl 1999) as the "
         "voxel map; voxel curve-type fractions from the curve-type map"),
    ]  # fmt: skip
    for key, value in (measurements.get("conventions") or {}).items():
        rows.append((f"Measurement {key}", str(value)))
    return rows


def _page(
    study: DCEStudy,
    maps: DCEMaps,
    measurements: Mapping[str, Any],
    kinetics: Mapping[int, Mapping[str, Any]],
    sections: list[LesionSection],
    models: Sequence[Mapping[str, Any]],
    timings: Mapping[str, Any],
) -> ReportPage:
    versions = package_versions((*RECORDED_PACKAGES, "matplotlib"))
    version_rows = [("Python", sys.version.split()[0]), ("Platform", platform.platform())]
    version_rows += [(name, version) for name, version in versions.items()]
    lead = measurements.get("t_stage_lesion_id")
    created = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return ReportPage(
        title=TITLE,
        created=f"Generated {created} · breast-ai-assistant "
        f"{versions.get('breast-ai-assistant', '?')}",
        t_stage=str(measurements.get("t_stage") or "no lesion"),
        t_stage_note=(
            f"set by lesion {lead} (largest maximum diameter); (m) = several lesions"
            if lead is not None
            else ""
        ),
        flags=[str(f) for f in measurements.get("flags") or []],
        summary_header=tables.SUMMARY_HEADER,
        summary_rows=tables.summary_rows(measurements.get("lesions") or [], kinetics),
        study=tables.study_rows(study.describe(), maps.phases.to_dict()),
        lesions=sections,
        models=tables.model_rows(models),
        versions=version_rows,
        timings=tables.timing_rows(timings),
        conventions=_conventions(measurements),
    )


def write_report(
    out_dir: str | os.PathLike[str],
    *,
    study: DCEStudy,
    maps: DCEMaps,
    lesions: MeasurementReport | Mapping[str, Any],
    tumour_labels: sitk.Image,
    kinetics: Mapping[Any, Any] | None = None,
    breast_mask: sitk.Image | None = None,
    models: Sequence[Mapping[str, Any]] = (),
    timings: Mapping[str, float] | None = None,
    pdf: bool = False,
    classified: Mapping[int, Sequence[Any]] | None = None,
    cautions: Sequence[str] = (),
) -> dict[str, Path]:
    """Write ``report.html`` (and ``report.pdf`` if asked) into ``out_dir``.

    Args:
        out_dir: Output folder (created if needed).
        study: The study.
        maps: Its DCE maps (early subtraction, MIP and phase choice are used).
        lesions: The measurement report (or its ``to_dict()``), whose lesion ids are the values
            of ``tumour_labels``.
        tumour_labels: Instance label map of the lesions on the study grid.
        kinetics: Lesion id -> :class:`~BreastAIAssistantLib.dce.lesion_kinetics.LesionKinetics`
            (or its dict); lesions without kinetics get no curve.
        breast_mask: Whole-breast mask on the study grid; its projected outline is drawn on the
            MIP.
        models: One dict per model used: ``id``, ``version``, ``sha256``, ``research_demo``.
        timings: Seconds per pipeline stage, shown under provenance.
        pdf: Also write ``report.pdf`` (same figures, matplotlib's PDF backend).
        classified: Lesion id -> classifier results
            (:class:`~BreastAIAssistantLib.classify.predictor.ClassifierResult`): their
            predictions are tabulated and their Grad-CAM maps drawn.
        cautions: Sentences shown in a caution box above the summary (e.g. a study coarser
            than a model's grid, :mod:`BreastAIAssistantLib.inference.domain`).

    Returns:
        ``{"html": path}`` plus ``"pdf"`` when written.

    Raises:
        MaskError: ``tumour_labels`` or ``breast_mask`` is not a mask on the study grid.
    """
    from BreastAIAssistantLib.io.volumes import atomic_path  # the io package pulls in pydicom

    out = Path(out_dir)
    measurements = lesions_dict(lesions)
    kinetic = kinetics_dicts(kinetics)
    _check_grid(tumour_labels, study, "the tumour label map")
    breast = None if breast_mask is None else _check_grid(breast_mask, study, "the breast mask")
    early = maps.phases.early
    subtraction = maps[f"sub_{early}"]
    mip_axis = maps.settings.mip_axis
    mip_axis = superior_inferior_axis(study.reference) if mip_axis is None else mip_axis
    axes, overlays = mip_overlays(maps["mip"], tumour_labels, mip_axis)
    context, window_mask = [], None
    if breast is not None:
        projected = np.any(breast != 0, axis=2 - mip_axis, keepdims=True)
        window_mask = np.ascontiguousarray(axes.slice_zyx(projected, 0))
        context.append(Outline(window_mask.astype(np.float32), BREAST_COLOUR, 0.8, "dashed"))

    sections: list[LesionSection] = []
    pdf_pages: list[tuple[int, list[Any], tables.Rows]] = []
    for lesion in measurements.get("lesions") or []:
        lesion_id = int(lesion["id"])
        mip = _safe(
            "MIP", lesion_id, mip_image, maps["mip"], axes, overlays, lesion_id, window_mask
        )
        if mip is not None:
            mip.outlines[:0] = context
            mip.caption = (
                f"Maximum-intensity projection of the early subtraction (phase {early} − 0) "
                f"along the {axes.view} axis; lesion {lesion_id} outlined in yellow"
                + (", other lesions dotted" if len(overlays) > 1 else "")
                + (", breast mask dashed; grey window from the breast" if context else "")
                + "."
            )
        key_images = [
            mip,
            _safe("axial slice", lesion_id, axial_image, subtraction, tumour_labels, lesion, early),
            _safe("diameter plane", lesion_id, diameter_image, subtraction, tumour_labels, lesion,
                  early),
        ]  # fmt: skip
        results = list((classified or {}).get(lesion_id, []))
        for result in results:
            key_images.append(_safe("Grad-CAM", lesion_id, _gradcam_key, subtraction,
                                    tumour_labels, lesion, early, result))
        figures, drawables = _lesion_figures(key_images, kinetic.get(lesion_id))
        rows = tables.measurement_rows(lesion)
        sections.append(
            LesionSection(
                lesion_id=lesion_id,
                t_category=tables.t_category(lesion),
                curve_type=tables.curve_name(kinetic.get(lesion_id)),
                measurements=rows,
                kinetics=tables.kinetics_rows(kinetic.get(lesion_id)),
                figures=figures,
                predictions=tables.prediction_rows(results),
            )
        )
        pdf_pages.append(
            (lesion_id, drawables, rows + tables.kinetics_rows(kinetic.get(lesion_id)))
        )

    page = _page(study, maps, measurements, kinetic, sections, models, dict(timings or {}))
    page.cautions = [str(c) for c in cautions]
    written: dict[str, Path] = {}
    path = out / REPORT_HTML
    with atomic_path(path) as tmp:
        tmp.write_text(render_page(page), encoding="utf-8")
        tmp.chmod(REPORT_MODE)
    written["html"] = path
    if pdf:
        from BreastAIAssistantLib.report.pdf import write_pdf

        path = out / REPORT_PDF
        with atomic_path(path) as tmp:
            write_pdf(tmp, page, pdf_pages)
            tmp.chmod(REPORT_MODE)
        written["pdf"] = path
    logger.info("wrote the report of %d lesion(s) to %s", len(sections), out)
    return written
