"""The source images a DICOM Segmentation refers to: found in the input, or written for it.

A DICOM SEG describes frames of *source images*; every output of this project is on the study's
pre-contrast grid, so the source images are the pre-contrast phase's slices, one per slice of the
label map.

* **DICOM input** (the study's metadata holds ``StudyInstanceUID`` and the per-phase
  ``SeriesInstanceUID`` list, as :mod:`BreastAIAssistantLib.io.dicom` records them): the caller
  passes the input folder or the datasets. :func:`select_source_slices` keeps the images of the
  pre-contrast series and, for each slice ``k`` of the label grid, the image whose
  ImagePositionPatient is that slice's position (orientation, rows and columns must match too).
  When several images share a position (a multi-temporal series holding every phase), the
  earliest temporal position is taken (TemporalPositionIdentifier, then TriggerTime,
  AcquisitionTime, ContentTime, InstanceNumber). Patient and study identifiers then come from
  these images, so the SEG joins the original study. A study with no series recorded may still
  be given DICOM sources: the one series whose images cover the grid is used (several such
  series are an error: give the pre-contrast series only).
* **Other input** (NIfTI, NRRD, MAMA-MIA ...): there are no source images, so
  :func:`write_source_series` writes the pre-contrast phase as a classic MR series with
  :func:`~BreastAIAssistantLib.io.dicom_write.write_dicom_study` (phase 0 only, one file per
  slice, geometry exact) into a folder beside the SEG, and the SEG refers to it. The series is
  marked as converted (PatientComments, ImageComments) and says that its acquisition attributes
  (TR, TE, flip angle, field strength) are placeholders, because the input did not carry them. A
  left-handed grid (common in NIfTI) is written with its slice order reversed
  (:func:`~BreastAIAssistantLib.io.dicom_write.make_right_handed`); matching by position puts
  every label slice on the right image regardless.

Images are read without pixel data: the SEG needs only their headers.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import SimpleITK as sitk
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from BreastAIAssistantLib import __version__
from BreastAIAssistantLib.errors import OutputError
from BreastAIAssistantLib.io.dicom_build import MRProtocol, StackGeometry
from BreastAIAssistantLib.io.dicom_write import make_right_handed, write_dicom_study
from BreastAIAssistantLib.study import DCEStudy

logger = logging.getLogger(__name__)

#: Largest distance (mm) between a slice position and an image position that still matches.
POSITION_TOLERANCE_MM = 0.01
#: Largest difference between direction cosines that still matches.
ORIENTATION_TOLERANCE = 1e-4
SOURCE_DESCRIPTION = "BAA converted pre-contrast"
CONVERTED_PROTOCOL = MRProtocol(
    manufacturer="unknown (converted by BreastAIAssistant)",
    model="unknown",
    software=f"BreastAIAssistant {__version__}",
    contrast_agent="",
    comment=(
        "Pre-contrast phase converted to DICOM by BreastAIAssistant so that a DICOM SEG can refer "
        "to it; TR, TE, flip angle and field strength are placeholders, not the acquisition's"
    ),
)


def is_dicom_study(study: DCEStudy) -> bool:
    """Whether the study was read from DICOM (its metadata names its study and series)."""
    meta = study.metadata
    return bool(meta.get("StudyInstanceUID")) and bool(meta.get("SeriesInstanceUID"))


def read_headers(folder: str | os.PathLike[str]) -> list[Dataset]:
    """Headers (no pixel data) of every DICOM image file below ``folder``.

    Raises:
        OutputError: ``folder`` is not a folder.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise OutputError(f"the DICOM source {folder} is not a folder")
    datasets = []
    for file in sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")):
        try:
            ds = pydicom.dcmread(file, stop_before_pixels=True)
        except (InvalidDicomError, OSError, ValueError, EOFError):
            continue
        if "ImagePositionPatient" in ds and "ImageOrientationPatient" in ds:
            datasets.append(ds)
    return datasets


def _floats(ds: Dataset, keyword: str) -> np.ndarray | None:
    try:
        return np.asarray([float(v) for v in ds.get(keyword)], dtype=float)
    except (TypeError, ValueError):
        return None


def _temporal_key(ds: Dataset) -> tuple[Any, ...]:
    def number(keyword: str) -> float:
        try:
            return float(ds.get(keyword))
        except (TypeError, ValueError):
            return 0.0

    return (
        number("TemporalPositionIdentifier"),
        number("TriggerTime"),
        str(ds.get("AcquisitionTime", "")),
        str(ds.get("ContentTime", "")),
        number("InstanceNumber"),
    )


def select_source_slices(
    datasets: Sequence[Dataset], reference: sitk.Image, study: DCEStudy
) -> list[Dataset]:
    """The source image of every slice of ``reference`` (in ``k`` order).

    Args:
        datasets: Candidate images (any series; headers are enough).
        reference: The label map's grid (the study's pre-contrast grid).
        study: The study, whose metadata names the pre-contrast series and the study.

    Raises:
        OutputError: images from another study, some slice without a matching image, or
            several series that match (give only the pre-contrast one then).
    """
    geometry = StackGeometry.from_image(reference)
    columns, rows, n_slices = reference.GetSize()
    meta = study.metadata
    series = (meta.get("SeriesInstanceUID") or [None])[0]
    candidates = [ds for ds in datasets if series is None or ds.get("SeriesInstanceUID") == series]
    if series is not None and not candidates:
        raise OutputError(
            f"none of the {len(datasets)} DICOM image(s) given belongs to the pre-contrast series "
            f"{series}; give the folder the study was read from"
        )
    study_uid = meta.get("StudyInstanceUID")
    if study_uid and any(ds.get("StudyInstanceUID") != study_uid for ds in candidates):
        raise OutputError("the DICOM source images belong to another study than the input")
    by_series: dict[str, list[list[Dataset]]] = {}
    for ds in candidates:
        k = _slice_index(ds, geometry, rows, columns, n_slices)
        if k is not None:
            empty: list[list[Dataset]] = [[] for _ in range(n_slices)]
            by_series.setdefault(str(ds.get("SeriesInstanceUID", "")), empty)[k].append(ds)
    complete = {uid: s for uid, s in by_series.items() if all(s)}
    if len(complete) > 1:
        raise OutputError(
            f"{len(complete)} DICOM series cover the label grid; give only the pre-contrast "
            "series as the source"
        )
    if not complete:
        found = max(by_series.values(), key=lambda s: sum(map(bool, s)), default=[[]] * n_slices)
        missing = [k for k, images in enumerate(found) if not images]
        raise OutputError(
            f"{len(missing)} of the {n_slices} slices of the label grid (first: slice "
            f"{missing[0]}) have no source image at their position; give the DICOM folder the "
            "study was read from (the pre-contrast series must be complete)"
        )
    return [min(images, key=_temporal_key) for images in next(iter(complete.values()))]


def _slice_index(
    ds: Dataset, geometry: StackGeometry, rows: int, columns: int, n_slices: int
) -> int | None:
    """The slice of the grid whose position, orientation and size the image has, if any."""
    iop, ipp = _floats(ds, "ImageOrientationPatient"), _floats(ds, "ImagePositionPatient")
    if iop is None or ipp is None or iop.shape != (6,) or ipp.shape != (3,):
        return None
    if (ds.get("Rows"), ds.get("Columns")) != (rows, columns):
        return None
    axes = geometry.axes
    orientation = np.concatenate([axes[:, 0], axes[:, 1]])
    if not np.allclose(iop, orientation, rtol=0.0, atol=ORIENTATION_TOLERANCE):
        return None
    offset = ipp - np.asarray(geometry.origin)
    k = round(float(np.dot(offset, axes[:, 2])) / geometry.spacing[2])
    if 0 <= k < n_slices and np.linalg.norm(ipp - geometry.slice_position(k)) <= (
        POSITION_TOLERANCE_MM
    ):
        return k
    return None


def write_source_series(
    study: DCEStudy,
    folder: str | os.PathLike[str],
    uid_seed: str | None = None,
    overwrite: bool = False,
) -> list[Path]:
    """Write the pre-contrast phase as a DICOM MR series (see the module docstring).

    Args:
        study: The (non-DICOM) study.
        folder: Output folder; the series goes into a numbered subfolder.
        uid_seed: Derive the UIDs from this string (same seed, same UIDs).
        overwrite: Replace files that exist.

    Returns:
        The files written, in slice order along the DICOM normal.

    Raises:
        OutputError: files exist and ``overwrite`` is False.
    """
    single = dataclasses.replace(study, phases=(study.reference,), times_s=None)
    single = make_right_handed(single)
    name = str(study.metadata.get("case_id") or study.metadata.get("PatientID") or "ANONYMOUS")
    patient = {
        "PatientName": "",
        "PatientID": name[:64],
        "PatientSex": "",
        "PatientComments": f"Converted by BreastAIAssistant from {study.source or 'an image file'}",
        "StudyDescription": "Breast DCE-MRI (converted by BreastAIAssistant)",
    }
    return write_dicom_study(
        single,
        folder,
        layout="series-per-phase",
        patient=patient,
        description=SOURCE_DESCRIPTION,
        protocol=CONVERTED_PROTOCOL,
        uid_seed=uid_seed,
        overwrite=overwrite,
    )
