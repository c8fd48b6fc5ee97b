"""Exports: label maps (NIfTI/NRRD), Slicer ``.seg.nrrd``, DICOM SEG and measurement CSV.

Typical use::

    from BreastAIAssistantLib.export import (
        breast_lesion_segments, write_dicom_seg, write_label_map, write_measurements_csv,
        write_slicer_segmentation,
    )
    layers, segments = breast_lesion_segments(breast_mask, lesion_labels)
    write_slicer_segmentation(layers, segments, "out/segmentation.seg.nrrd")
    write_dicom_seg(layers, segments, study, "out/segmentation.dcm", source=dicom_folder)
    write_label_map(lesion_labels, "out/lesion_labels.nii.gz", reference=study.reference)
    write_measurements_csv(report, "out/measurements.csv")

or :func:`export_all` for all of them with fixed names. Every writer is atomic (temporary name,
then rename) and writes on the label map's grid, the study's pre-contrast grid.

Modules, one concept each: :mod:`.terminology` (SNOMED CT codes, Slicer's terminology string),
:mod:`.segments` (segments and label layers), :mod:`.nrrd` (exact NRRD I/O),
:mod:`.slicer_seg`, :mod:`.label_map`, :mod:`.dicom_source` (the images a SEG refers to),
:mod:`.dicom_seg`, :mod:`.measurements_csv`, :mod:`.exporter`.
"""

from __future__ import annotations

from BreastAIAssistantLib.export.dicom_seg import DicomSegOutput, write_dicom_seg
from BreastAIAssistantLib.export.exporter import DEFAULT_FORMATS, FORMATS, export_all
from BreastAIAssistantLib.export.label_map import write_label_map
from BreastAIAssistantLib.export.measurements_csv import measurement_rows, write_measurements_csv
from BreastAIAssistantLib.export.segments import (
    BREAST_COLOR,
    LESION_COLORS,
    SegmentInfo,
    breast_lesion_segments,
    lesion_color,
)
from BreastAIAssistantLib.export.slicer_seg import (
    SlicerSegmentation,
    read_slicer_segmentation,
    write_slicer_segmentation,
)
from BreastAIAssistantLib.export.terminology import (
    BREAST,
    BREAST_MASS,
    Code,
    Terminology,
)

__all__ = [
    "BREAST",
    "BREAST_COLOR",
    "BREAST_MASS",
    "DEFAULT_FORMATS",
    "FORMATS",
    "LESION_COLORS",
    "Code",
    "DicomSegOutput",
    "SegmentInfo",
    "SlicerSegmentation",
    "Terminology",
    "breast_lesion_segments",
    "export_all",
    "lesion_color",
    "measurement_rows",
    "read_slicer_segmentation",
    "write_dicom_seg",
    "write_label_map",
    "write_measurements_csv",
    "write_slicer_segmentation",
]
