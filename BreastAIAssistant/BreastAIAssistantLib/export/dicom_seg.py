"""DICOM Segmentation (SEG) objects, written with highdicom.

One multi-frame Segmentation Storage instance holds every segment as a BINARY segmentation (so
overlapping segments -- the tumour inside the breast -- are fine), one frame per segment and
source slice, empty frames omitted. Each segment carries:

* SegmentLabel = the segment's name; the coded category, type, optional type modifier and
  anatomic region of its :class:`~BreastAIAssistantLib.export.terminology.Terminology` (the same
  SNOMED CT codes as in the ``.seg.nrrd``);
* SegmentAlgorithmType ``AUTOMATIC`` with the algorithm identification: name
  ``BreastAIAssistant``, family *Artificial Intelligence* (DCM 123110), the package version;
* RecommendedDisplayCIELabValue from the segment's RGB colour.

The frames are placed on the **source images**, which are the pre-contrast slices (every output
is on that grid): the images of the input series for DICOM input, or a pre-contrast series
written beside the SEG for other input -- see :mod:`.dicom_source`. Patient, study and frame of
reference identifiers come from those images. Oblique geometry needs nothing special: the frames
take the source images' ImageOrientationPatient and ImagePositionPatient.

The SEG's UIDs are random, or derived from ``uid_seed`` (same seed, same UIDs).
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import SimpleITK as sitk
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.uid import generate_uid

from BreastAIAssistantLib import __version__
from BreastAIAssistantLib.errors import OutputError
from BreastAIAssistantLib.export.dicom_source import (
    is_dicom_study,
    read_headers,
    select_source_slices,
    write_source_series,
)
from BreastAIAssistantLib.export.segments import (
    SegmentInfo,
    as_layers,
    check_segmentation,
    layer_array,
    segment_mask,
)
from BreastAIAssistantLib.io.volumes import atomic_path
from BreastAIAssistantLib.study import DCEStudy, same_grid

logger = logging.getLogger(__name__)

ALGORITHM_NAME = "BreastAIAssistant"
DEFAULT_SERIES_DESCRIPTION = "BreastAIAssistant segmentation (research use)"
DEFAULT_SERIES_NUMBER = 900
CONTENT_LABEL = "BREAST_AI"
_LO_MAX = 64


@dataclass(frozen=True)
class DicomSegOutput:
    """What :func:`write_dicom_seg` wrote.

    Attributes:
        path: The SEG file.
        source_files: The pre-contrast series written for non-DICOM input (empty otherwise).
        n_frames: Number of frames in the SEG (non-empty segment x slice pairs).
    """

    path: Path
    source_files: tuple[Path, ...] = ()
    n_frames: int = 0


def default_source_folder(path: Path) -> Path:
    """Where the pre-contrast series of a non-DICOM study goes: ``<SEG name>_source`` beside it."""
    name = path.name[: -len(".dcm")] if path.name.lower().endswith(".dcm") else path.stem
    return path.with_name(f"{name}_source")


def _segment_descriptions(segments: Sequence[SegmentInfo]) -> list[hd.seg.SegmentDescription]:
    algorithm = hd.AlgorithmIdentificationSequence(
        name=ALGORITHM_NAME, family=codes.cid7162.ArtificialIntelligence, version=__version__
    )
    descriptions = []
    for number, segment in enumerate(segments, start=1):
        terms = segment.terminology
        if terms is None:
            raise OutputError(
                f"segment {segment.name!r} has no terminology; a DICOM SEG needs a coded "
                "category and type for every segment"
            )
        if len(segment.name) > _LO_MAX or "\\" in segment.name:
            raise OutputError(
                f"segment name {segment.name!r} must be at most {_LO_MAX} characters without "
                "backslashes for DICOM"
            )
        description = hd.seg.SegmentDescription(
            segment_number=number,
            segment_label=segment.name,
            segmented_property_category=terms.category.to_dicom(),
            segmented_property_type=terms.type.to_dicom(),
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
            algorithm_identification=algorithm,
            anatomic_regions=[terms.region.to_dicom()] if terms.region else None,
            display_color=hd.color.CIELabColor.from_rgb(*segment.color_rgb255),
        )
        if terms.type_modifier is not None:
            item = description.SegmentedPropertyTypeCodeSequence[0]
            item.SegmentedPropertyTypeModifierCodeSequence = [
                hd.sr.CodedConcept.from_code(terms.type_modifier.to_dicom())
            ]
        if terms.region is not None and terms.region_modifier is not None:
            item = description.AnatomicRegionSequence[0]
            item.AnatomicRegionModifierSequence = [
                hd.sr.CodedConcept.from_code(terms.region_modifier.to_dicom())
            ]
        descriptions.append(description)
    return descriptions


def _source_images(
    study: DCEStudy,
    reference: sitk.Image,
    source: str | os.PathLike[str] | Sequence[Dataset] | None,
    source_folder: Path,
    uid_seed: str | None,
    overwrite: bool,
) -> tuple[list[Dataset], tuple[Path, ...]]:
    if source is None and is_dicom_study(study):
        raise OutputError(
            "the study was read from DICOM: give its folder (or its datasets) as the source of "
            "the DICOM SEG, so that the SEG refers to the original images"
        )
    written: tuple[Path, ...] = ()
    if source is None:
        written = tuple(write_source_series(study, source_folder, uid_seed, overwrite))
        datasets = [pydicom.dcmread(p, stop_before_pixels=True) for p in written]
        logger.info(
            "wrote the pre-contrast phase as %d DICOM files to %s", len(written), source_folder
        )
        selected = select_source_slices(datasets, reference, _without_series(study))
    elif isinstance(source, str | os.PathLike):
        selected = select_source_slices(read_headers(source), reference, study)
    else:
        selected = select_source_slices(list(source), reference, study)
    return selected, written


def _without_series(study: DCEStudy) -> DCEStudy:
    """The study with no DICOM series recorded (the written series is matched by position)."""
    drop = ("SeriesInstanceUID", "StudyInstanceUID")
    return dataclasses.replace(
        study, metadata={k: v for k, v in study.metadata.items() if k not in drop}
    )


def write_dicom_seg(
    labels: sitk.Image | Sequence[sitk.Image],
    segments: Sequence[SegmentInfo],
    study: DCEStudy,
    path: str | os.PathLike[str],
    source: str | os.PathLike[str] | Sequence[Dataset] | None = None,
    *,
    source_folder: str | os.PathLike[str] | None = None,
    series_description: str = DEFAULT_SERIES_DESCRIPTION,
    series_number: int = DEFAULT_SERIES_NUMBER,
    uid_seed: str | None = None,
    overwrite: bool = False,
) -> DicomSegOutput:
    """Write the segments as one DICOM Segmentation file referring to the pre-contrast slices.

    Args:
        labels: One label map or one per layer (as for the ``.seg.nrrd``), on the study's
            pre-contrast grid.
        segments: The segments; each needs a terminology. Segment numbers follow this order.
        study: The study the labels were computed from.
        path: Output file (``.dcm``).
        source: For a study read from DICOM: its folder or its datasets (required). For other
            studies: ``None``; the pre-contrast phase is then written as DICOM (see
            :mod:`.dicom_source`).
        source_folder: Where that series goes (default ``<SEG name>_source`` beside the SEG).
        series_description: SeriesDescription of the SEG.
        series_number: SeriesNumber of the SEG.
        uid_seed: Derive the UIDs of the SEG (and of a written source series) from this string.
        overwrite: Replace files of a written source series that exist.

    Returns:
        The SEG's path, the source files written (if any) and the number of frames.

    Raises:
        OutputError: labels not on the pre-contrast grid, segments without terminology, all
            segments empty, no DICOM source for a DICOM study, source images that do not cover
            the grid or come from another study, or source files that exist.
    """
    path = Path(path)
    layers = as_layers(labels)
    check_segmentation(layers, segments)
    if not same_grid(layers[0], study.reference):
        raise OutputError("the label map is not on the study's pre-contrast grid")
    arrays = [layer_array(image, f"label layer {k}") for k, image in enumerate(layers)]
    masks = np.stack([segment_mask(arrays, s) for s in segments], axis=-1)
    if not masks.any():
        raise OutputError("nothing to export to DICOM SEG: every segment is empty")
    for segment, present in zip(segments, masks.any(axis=(0, 1, 2)), strict=True):
        if not present:
            logger.warning(
                "segment %r is empty; the DICOM SEG lists it without frames", segment.name
            )
    descriptions = _segment_descriptions(segments)
    folder = Path(source_folder) if source_folder is not None else default_source_folder(path)
    images, written = _source_images(study, layers[0], source, folder, uid_seed, overwrite)

    def uid(role: str) -> str:
        return generate_uid(entropy_srcs=[uid_seed, "seg", role]) if uid_seed else generate_uid()

    seg = hd.seg.Segmentation(
        source_images=images,
        pixel_array=masks,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions,
        series_instance_uid=uid("series"),
        series_number=series_number,
        sop_instance_uid=uid("instance"),
        instance_number=1,
        manufacturer="BreastAIAssistant",
        manufacturer_model_name="BreastAIAssistant",
        software_versions=__version__,
        device_serial_number="0",
        series_description=series_description[:_LO_MAX],
        content_label=CONTENT_LABEL,
        content_description="Automatic segmentation, research use only",
        omit_empty_frames=True,
    )
    with atomic_path(path) as tmp:
        seg.save_as(tmp)
    n_frames = int(seg.NumberOfFrames)
    logger.info(
        "wrote a DICOM SEG with %d segment(s), %d frame(s) to %s", len(segments), n_frames, path
    )
    return DicomSegOutput(path=path, source_files=written, n_frames=n_frames)
