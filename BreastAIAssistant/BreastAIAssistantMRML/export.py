"""Exports from the (possibly edited) segmentation node and lesion table, through the core.

What is exported is what the node holds now -- after Segment Editor edits -- read back onto the
study grid (:func:`~.segmentation.lesion_labels_from_segmentation`) in the core's layout: layer 0
the breast (value 1), layer 1 the lesions (value ``k`` = lesion ``k``), with each segment's own
name, colour and terminology tag. The files are then written by the core's exporters
(:mod:`BreastAIAssistantLib.export`), so a ``.seg.nrrd``, NIfTI or DICOM SEG made from Slicer is
the same as one made by ``breast-ai run``.

A DICOM SEG references the images it was computed on. When the pre-contrast volume came from
Slicer's DICOM database, its ``DICOM.instanceUIDs`` attribute names them and
:func:`dicom_source_datasets` reads them (the caller passes
``slicer.dicomDatabase.fileForInstance``); otherwise the core writes a DICOM copy of the
pre-contrast phase beside the SEG.
"""

from __future__ import annotations

import csv
import logging
import os
import shutil
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk
import slicer
import vtk

from BreastAIAssistantLib.errors import OutputError
from BreastAIAssistantLib.export import (
    BREAST,
    BREAST_MASS,
    SegmentInfo,
    write_dicom_seg,
    write_label_map,
    write_measurements_csv,
    write_slicer_segmentation,
)
from BreastAIAssistantLib.export.terminology import Terminology
from BreastAIAssistantLib.io.volumes import atomic_path
from BreastAIAssistantLib.study import DCEStudy
from BreastAIAssistantMRML.segmentation import breast_segment_id, lesion_labels_from_segmentation

logger = logging.getLogger(__name__)


def _color(segment: slicer.vtkSegment) -> tuple[float, float, float]:
    red, green, blue = (float(np.clip(c, 0.0, 1.0)) for c in segment.GetColor())
    return red, green, blue


def _terminology(segment: slicer.vtkSegment, fallback: Terminology) -> Terminology:
    text = vtk.reference("")
    if segment.GetTag(slicer.vtkSegment.GetTerminologyEntryTagName(), text) and str(text):
        try:
            return Terminology.from_slicer(str(text))
        except ValueError as exc:
            logger.warning("segment %r: unreadable terminology (%s); using %s",
                           segment.GetName(), exc, fallback.type.meaning)  # fmt: skip
    return fallback


def segmentation_layers(segmentation_node: slicer.vtkMRMLSegmentationNode,
                        reference_volume: slicer.vtkMRMLScalarVolumeNode | None = None
                        ) -> tuple[list[sitk.Image], list[SegmentInfo]]:  # fmt: skip
    """The node's segments as the core's label layers and segment descriptions.

    Returns:
        ``(layers, segments)`` ready for the core's writers.

    Raises:
        OutputError: the node holds no non-empty segment.
    """
    labels, breast, lesion_ids = lesion_labels_from_segmentation(segmentation_node,
                                                                 reference_volume)
    segmentation = segmentation_node.GetSegmentation()
    layers: list[sitk.Image] = []
    segments: list[SegmentInfo] = []
    if breast is not None:
        segment = segmentation.GetSegment(breast_segment_id(segmentation_node))
        layers.append(breast)
        segments.append(SegmentInfo(1, segment.GetName(), _color(segment),
                                    _terminology(segment, BREAST), layer=0))  # fmt: skip
    if lesion_ids:
        layer = len(layers)
        layers.append(labels)
        for lesion_id, segment_id in lesion_ids.items():
            segment = segmentation.GetSegment(segment_id)
            segments.append(SegmentInfo(lesion_id, segment.GetName(), _color(segment),
                                        _terminology(segment, BREAST_MASS), layer))  # fmt: skip
    if not layers:
        raise OutputError(f"segmentation {segmentation_node.GetName()!r} has no non-empty "
                          "segment to export")  # fmt: skip
    return layers, segments


def export_seg_nrrd(segmentation_node: slicer.vtkMRMLSegmentationNode,
                    path: str | os.PathLike[str],
                    reference_volume: slicer.vtkMRMLScalarVolumeNode | None = None
                    ) -> Path:  # fmt: skip
    """Write the node as a Slicer ``.seg.nrrd`` with the core's writer."""
    layers, segments = segmentation_layers(segmentation_node, reference_volume)
    return write_slicer_segmentation(layers, segments, path)


def export_nifti(segmentation_node: slicer.vtkMRMLSegmentationNode,
                 folder: str | os.PathLike[str],
                 reference_volume: slicer.vtkMRMLScalarVolumeNode | None = None,
                 suffix: str = ".nii.gz") -> list[Path]:  # fmt: skip
    """Write ``lesion_labels`` and ``breast_mask`` label maps (NIfTI or NRRD) into ``folder``."""
    labels, breast, lesion_ids = lesion_labels_from_segmentation(segmentation_node,
                                                                 reference_volume)
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    written = [write_label_map(labels, out / f"lesion_labels{suffix}")]
    if breast is not None:
        written.append(write_label_map(breast, out / f"breast_mask{suffix}"))
    logger.info("exported %d lesion(s) as label maps to %s", len(lesion_ids), out)
    return written


def dicom_source_datasets(volume_node: slicer.vtkMRMLVolumeNode,
                          file_for_instance: Callable[[str], str]) -> list[Any] | None:
    """The DICOM headers of the images a volume was loaded from (Slicer's DICOM database).

    Args:
        volume_node: Volume node (its ``DICOM.instanceUIDs`` attribute lists the SOP instances).
        file_for_instance: SOP Instance UID -> file path (``slicer.dicomDatabase.fileForInstance``).

    Returns:
        The datasets (pixels not read), or ``None`` when the volume did not come from DICOM or a
        file is missing.
    """
    import pydicom

    uids = (volume_node.GetAttribute("DICOM.instanceUIDs") or "").split()
    if not uids:
        return None
    files = [file_for_instance(uid) for uid in uids]
    if not all(files) or not all(Path(f).is_file() for f in files):
        logger.warning("some DICOM files of %r are not in the database; the SEG will reference "
                       "a generated copy instead", volume_node.GetName())  # fmt: skip
        return None
    return [pydicom.dcmread(f, stop_before_pixels=True) for f in files]


def export_dicom_seg(segmentation_node: slicer.vtkMRMLSegmentationNode, study: DCEStudy,
                     path: str | os.PathLike[str],
                     reference_volume: slicer.vtkMRMLScalarVolumeNode | None = None,
                     source: Any = None) -> Path:  # fmt: skip
    """Write the node as a DICOM SEG with the core's writer.

    Args:
        segmentation_node: The segmentation.
        study: The analysed study (its pre-contrast grid is the SEG's).
        path: Output ``.dcm`` file.
        reference_volume: Study-grid volume (default: the segmentation's reference geometry).
        source: DICOM datasets or folder of the pre-contrast series (see
            :func:`dicom_source_datasets`); ``None`` writes a DICOM copy beside the SEG.

    Returns:
        The SEG file.
    """
    layers, segments = segmentation_layers(segmentation_node, reference_volume)
    result = write_dicom_seg(layers, segments, study, path, source=source, overwrite=True)
    return result.path


def export_table_csv(table_node: slicer.vtkMRMLTableNode, path: str | os.PathLike[str]) -> Path:
    """Write a table node as CSV with its column titles (units included), atomically."""
    table = table_node.GetTable()
    path = Path(path)
    titles = []
    for column in range(table.GetNumberOfColumns()):
        name = table.GetColumnName(column)
        titles.append(table_node.GetColumnTitle(name) or name)
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(titles)
        for row in range(table.GetNumberOfRows()):
            writer.writerow([table.GetValue(row, c).ToString()
                             for c in range(table.GetNumberOfColumns())])  # fmt: skip
    return path


def export_measurements_csv(lesions: Sequence[Mapping[str, Any]], t_stage: str | None,
                            path: str | os.PathLike[str]) -> Path:  # fmt: skip
    """Write the full measurement CSV of the core (every measurement, one row per lesion)."""
    return write_measurements_csv({"lesions": list(lesions), "t_stage": t_stage}, path)


def copy_report(result_folder: str | os.PathLike[str], destination: str | os.PathLike[str]
                ) -> list[Path]:  # fmt: skip
    """Copy ``report.html`` (and ``report.pdf``, ``report.json`` when present) of a run.

    Raises:
        OutputError: the folder holds no report.
    """
    source, out = Path(result_folder), Path(destination)
    names = [n for n in ("report.html", "report.pdf", "report.json") if (source / n).is_file()]
    if "report.html" not in names and "report.json" not in names:
        raise OutputError(f"{source} holds no report")
    out.mkdir(parents=True, exist_ok=True)
    copied = []
    for name in names:
        with atomic_path(out / name) as tmp:
            shutil.copyfile(source / name, tmp)
        copied.append(out / name)
    return copied
