"""``export_all``: every export of one analysed study into one folder, with fixed file names.

File names (in ``out_dir``):

=============== =================================================================
format          files
=============== =================================================================
``nifti``       ``breast_mask.nii.gz``, ``lesion_labels.nii.gz``
``nrrd``        ``breast_mask.nrrd``, ``lesion_labels.nrrd``
``seg.nrrd``    ``segmentation.seg.nrrd`` (breast in layer 0, lesions in layer 1)
``dicom-seg``   ``segmentation.dcm`` (+ ``segmentation_source/`` for non-DICOM input)
``csv``         ``measurements.csv`` (needs a measurement report)
=============== =================================================================
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import SimpleITK as sitk
from pydicom.dataset import Dataset

from BreastAIAssistantLib.errors import OutputError
from BreastAIAssistantLib.export.dicom_seg import write_dicom_seg
from BreastAIAssistantLib.export.label_map import write_label_map
from BreastAIAssistantLib.export.measurements_csv import write_measurements_csv
from BreastAIAssistantLib.export.segments import breast_lesion_segments
from BreastAIAssistantLib.export.slicer_seg import write_slicer_segmentation
from BreastAIAssistantLib.measure.report import MeasurementReport
from BreastAIAssistantLib.study import DCEStudy

logger = logging.getLogger(__name__)

#: Every format :func:`export_all` knows, in the order it writes them.
FORMATS = ("nifti", "nrrd", "seg.nrrd", "dicom-seg", "csv")
DEFAULT_FORMATS = ("nifti", "seg.nrrd", "dicom-seg", "csv")


def export_all(
    study: DCEStudy,
    out_dir: str | os.PathLike[str],
    breast_mask: sitk.Image | None = None,
    lesion_labels: sitk.Image | None = None,
    report: MeasurementReport | Mapping[str, Any] | None = None,
    formats: Sequence[str] = DEFAULT_FORMATS,
    source: str | os.PathLike[str] | Sequence[Dataset] | None = None,
    uid_seed: str | None = None,
) -> dict[str, list[Path]]:
    """Write the chosen exports of one study (see the module docstring for the file names).

    Args:
        study: The analysed study (its pre-contrast grid is the grid of every mask).
        out_dir: Output folder (created).
        breast_mask: Whole-breast mask, or ``None``.
        lesion_labels: Lesion instance labels (``k`` = lesion ``k``), or ``None``.
        report: Measurement report for the CSV (the ``csv`` format is skipped, with a log line,
            without one).
        formats: Any of :data:`FORMATS`.
        source: DICOM source of a DICOM study (folder or datasets), for ``dicom-seg``.
        uid_seed: Seed of the DICOM UIDs (reproducible output).

    Returns:
        The files written, by format.

    Raises:
        OutputError: an unknown format, no mask for a segmentation format, or any error of the
            individual writers.
    """
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown:
        raise OutputError(f"unknown export format(s) {unknown}; choose from {', '.join(FORMATS)}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, list[Path]] = {}
    masks = {"breast_mask": breast_mask, "lesion_labels": lesion_labels}
    for fmt, suffix in (("nifti", ".nii.gz"), ("nrrd", ".nrrd")):
        if fmt in formats:
            written[fmt] = [
                write_label_map(image, out / f"{name}{suffix}", reference=study.reference)
                for name, image in masks.items()
                if image is not None
            ]
    if {"seg.nrrd", "dicom-seg"} & set(formats):
        layers, segments = breast_lesion_segments(breast_mask, lesion_labels)
        if "seg.nrrd" in formats:
            seg_path = write_slicer_segmentation(layers, segments, out / "segmentation.seg.nrrd")
            written["seg.nrrd"] = [seg_path]
        if "dicom-seg" in formats:
            result = write_dicom_seg(
                layers,
                segments,
                study,
                out / "segmentation.dcm",
                source=source,
                uid_seed=uid_seed,
                overwrite=True,
            )
            written["dicom-seg"] = [result.path, *result.source_files]
    if "csv" in formats:
        if report is None:
            logger.info("no measurement report: measurements.csv not written")
        else:
            written["csv"] = [write_measurements_csv(report, out / "measurements.csv")]
    return written
