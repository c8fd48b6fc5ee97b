"""Write a DCE study as classic DICOM MR images (MR Image Storage, one file per slice).

Every phase is written uncompressed (explicit VR little endian), unsigned 16-bit, with the
geometry taken exactly from the ``SimpleITK`` image (see :mod:`BreastAIAssistantLib.io.dicom_build`
for the tag-by-tag mapping); the DICOM reader of this package, and any other that stacks slices
along the normal of ImageOrientationPatient, gets the same origin, spacing and direction back.

**Layouts.** ``"series-per-phase"`` writes one series per phase (series numbers
``first_series_number + k``, descriptions ``"<description> phase <k>"``), as most scanners export
a DCE; ``"multi-temporal"`` writes one series holding every phase as a temporal position, as
Siemens and Philips often do. Both carry, per image, AcquisitionDate/Time and ContentDate/Time
(start + phase time to the microsecond; dates roll over at midnight), TemporalPositionIdentifier
(phase + 1), NumberOfTemporalPositions and AcquisitionNumber (phase + 1); SeriesDate/Time is the
start of the series' first phase. A study without times gets the start time for every phase, so
that it reads back without times too.

**TriggerTime** (phase time in ms, as GE writes it for multi-phase DCE) is written only with
``trigger_time=True``: the standard defines it for the MR Image module as the delay after the
R wave, required with cardiac or pulse gating and otherwise absent, so ``dciodvfy`` reports an
error for it in an ungated breast DCE. The acquisition times carry the same information.

**Folders.** ``folder/<SeriesNumber, 3 digits>_<description made file-safe>/IM_<InstanceNumber,
5 digits>.dcm``, e.g. ``folder/001_BAA_synthetic_DCE_phase_0/IM_00001.dcm``. InstanceNumber counts
slices (and, in the multi-temporal series, phases, phase-major) from 1.

**Pixel values.** Phases are float32; they are stored as ``round((value - intercept) / slope)``
with RescaleSlope and RescaleIntercept chosen once per *series* by :func:`choose_rescale`: the
series' values span (almost) all 16 bits, so every voxel reads back within half a slope step.
Intercept 0 is kept for non-negative data, so stored values stay proportional to the signal even
for tools that ignore the rescale. All phases of the multi-temporal series share one slope and
intercept, so their stored values stay comparable (subtractions of stored values mean something);
one series per phase gives each phase its own, finer, step. Whole-number data that fit in 16 bits
are written losslessly with slope 1 (and then no rescale attributes at all). The classic MR
Image IOD has no Modality LUT module, so validators warn about RescaleSlope/RescaleIntercept;
scanners write them for MR all the same and readers apply them.

**Handedness.** DICOM has no slice axis of its own: readers stack slices along
``row cosine x column cosine``. A left-handed direction (k axis opposite to that normal) cannot be
written without reordering the slices, so :func:`write_dicom_study` refuses it with a
``ValueError``; :func:`make_right_handed` flips the k axis (same voxels at the same physical
points, origin moved to the last slice) and the result can be written.

**Files** are written atomically (a hidden temporary name in the same folder, then
``os.replace``); an existing file is never replaced unless ``overwrite=True``, and then other files
already in the series folders are left alone (a warning names the folder).

**UIDs** come from :func:`pydicom.uid.generate_uid`; with ``uid_seed`` they are derived from the
seed, the layout and the series/instance number, so writing the same phantom seed again gives the
same UIDs (and the same StudyInstanceUID in both layouts).

The defaults mark the data as synthetic (PatientName ``SYNTHETIC^PHANTOM``, Manufacturer
``BreastAIAssistant synthetic phantom``, an ImageComments line); pass ``patient`` and ``protocol``
to describe anything else.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import SimpleITK as sitk
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from BreastAIAssistantLib.errors import OutputError
from BreastAIAssistantLib.io.dicom_build import (
    MRProtocol,
    StackGeometry,
    choose_rescale,
    da_tm,
    ds_str,
    new_dataset,
    safe_name,
    save_atomic,
    set_mr_protocol,
    set_pixels,
    set_plane,
    set_rescale,
)
from BreastAIAssistantLib.study import DCEStudy

logger = logging.getLogger(__name__)

LAYOUTS = ("series-per-phase", "multi-temporal")
DEFAULT_DESCRIPTION = "BAA synthetic DCE"
#: Patient and study attributes written when the caller gives none; they say "synthetic".
SYNTHETIC_PATIENT: Mapping[str, str] = {
    "PatientName": "SYNTHETIC^PHANTOM",
    "PatientID": "BAA-SYNTHETIC",
    "PatientBirthDate": "",
    "PatientSex": "F",
    "PatientComments": "Synthetic phantom made by BreastAIAssistant, not a real patient",
    "StudyID": "BAA1",
    "AccessionNumber": "",
    "ReferringPhysicianName": "",
    "StudyDescription": "Synthetic breast DCE-MRI (BreastAIAssistant)",
}
#: Keywords that ``patient`` may set: the defaults' and a few more patient/study identifiers.
PATIENT_KEYWORDS = frozenset(SYNTHETIC_PATIENT) | {
    "PatientAge",
    "StudyInstanceUID",
    "FrameOfReferenceUID",
    "PositionReferenceIndicator",
    "InstitutionName",
}
_ORIGINAL = ("ORIGINAL", "PRIMARY", "OTHER")
_LO_MAX = 64


def make_right_handed(study: DCEStudy) -> DCEStudy:
    """The study with the k axis of every phase flipped when its direction is left-handed.

    Voxels keep their physical positions: the slice order is reversed, the origin moves to the
    last slice and the direction's third column changes sign. A right-handed study is returned
    as it is.
    """
    if StackGeometry.from_image(study.reference).right_handed():
        return study
    flipped = tuple(sitk.Flip(phase, (False, False, True)) for phase in study.phases)
    logger.info("flipped the slice axis of a left-handed study so that DICOM can hold it")
    return dataclasses.replace(study, phases=flipped)


def check_geometry(geometry: StackGeometry) -> None:
    """Raise unless DICOM slices can hold the geometry as it is.

    Raises:
        ValueError: the direction is not orthonormal, or it is left-handed (use
            :func:`make_right_handed` first).
    """
    if not geometry.orthonormal():
        raise ValueError(
            f"the direction matrix {geometry.direction} is not orthonormal; DICOM slices need "
            "perpendicular unit axes (resample the study onto an orthonormal grid first)"
        )
    if not geometry.right_handed():
        raise ValueError(
            "the study's direction is left-handed (its k axis is not row x column), which DICOM "
            "slices cannot represent without reordering them; flip the k axis first with "
            "make_right_handed(study) (the same voxels at the same physical points)"
        )


@dataclass(frozen=True)
class _Series:
    number: int
    description: str
    phases: tuple[int, ...]
    folder: Path


def _plan(
    n_phases: int, layout: str, folder: Path, description: str, first_number: int
) -> list[_Series]:
    if layout == "multi-temporal":
        groups = [(first_number, description, tuple(range(n_phases)))]
    else:
        groups = [(first_number + k, f"{description} phase {k}", (k,)) for k in range(n_phases)]
    return [
        _Series(number, text, phases, folder / f"{number:03d}_{safe_name(text)}")
        for number, text, phases in groups
    ]


def _check_text(description: str, n_phases: int, layout: str) -> None:
    longest = description if layout == "multi-temporal" else f"{description} phase {n_phases - 1}"
    if "\\" in description or len(longest) > _LO_MAX:
        raise ValueError(
            f"the series description {longest!r} must be at most {_LO_MAX} characters without "
            "backslashes (DICOM LO); give a shorter description"
        )


def _check_patient(patient: Mapping[str, Any] | None) -> dict[str, Any]:
    unknown = sorted(set(patient or {}) - PATIENT_KEYWORDS)
    if unknown:
        raise ValueError(
            f"unknown patient/study keyword(s) {', '.join(unknown)}; choose from "
            f"{', '.join(sorted(PATIENT_KEYWORDS))}"
        )
    return {**SYNTHETIC_PATIENT, **(patient or {})}


class _Uids:
    """Random UIDs, or UIDs derived from a seed string and the role of what they identify."""

    def __init__(self, seed: str | None) -> None:
        self.seed = seed

    def __call__(self, *role: object) -> str:
        if self.seed is None:
            return generate_uid()
        return generate_uid(entropy_srcs=[self.seed, *(str(part) for part in role)])


def write_dicom_study(
    study: DCEStudy,
    folder: str | os.PathLike[str],
    layout: str = "series-per-phase",
    patient: Mapping[str, Any] | None = None,
    description: str = DEFAULT_DESCRIPTION,
    *,
    protocol: MRProtocol | None = None,
    acquired: datetime.datetime | None = None,
    first_series_number: int = 1,
    uid_seed: str | None = None,
    trigger_time: bool = False,
    overwrite: bool = False,
) -> list[Path]:
    """Write every phase of ``study`` as MR Image Storage files (see the module docstring).

    Args:
        study: The study; its phases share one grid, which must be right-handed.
        folder: Output folder (created); the series go into numbered subfolders.
        layout: ``"series-per-phase"`` or ``"multi-temporal"``.
        patient: Patient/study attributes by DICOM keyword (:data:`PATIENT_KEYWORDS`) over
            :data:`SYNTHETIC_PATIENT`; StudyInstanceUID and FrameOfReferenceUID may be given.
        description: SeriesDescription (per-phase series add ``" phase <k>"``).
        protocol: Acquisition and equipment attributes (default: synthetic 3 T DCE).
        acquired: Date and time of phase 0 (StudyDate/Time; default: now).
        first_series_number: SeriesNumber of the first series.
        uid_seed: Derive all UIDs from this string (same seed, same UIDs); default random.
        trigger_time: Also write TriggerTime (ms after phase 0), GE style; not standard for
            ungated images (see the module docstring).
        overwrite: Replace files that already exist.

    Returns:
        The written files, series by series, in InstanceNumber order.

    Raises:
        ValueError: unknown layout or patient keyword, too long a description, or a geometry
            DICOM cannot hold (see :func:`check_geometry`).
        OutputError: a file exists and ``overwrite`` is False (nothing is written then).
    """
    if layout not in LAYOUTS:
        raise ValueError(f"unknown DICOM layout {layout!r}; choose one of {', '.join(LAYOUTS)}")
    geometry = StackGeometry.from_image(study.reference)
    check_geometry(geometry)
    _check_text(description, study.n_phases, layout)
    ids = _check_patient(patient)
    uids = _Uids(uid_seed)
    ids.setdefault("StudyInstanceUID", uids("study"))
    ids.setdefault("FrameOfReferenceUID", uids("frame-of-reference"))
    ids.setdefault("PositionReferenceIndicator", "")
    start = acquired or datetime.datetime.now().replace(microsecond=0)
    times = study.times_s
    if times is None:
        logger.info("the study has no acquisition times; every phase gets the start time")
    plan = _plan(study.n_phases, layout, Path(folder), description, first_series_number)
    targets = [_paths(series, study.size_xyz[2]) for series in plan]
    _check_targets([p for paths in targets for p in paths], overwrite)
    common = _study_attributes(ids, start)
    job = _Job(study, geometry, protocol or MRProtocol(), uids, start, trigger_time, overwrite)
    written: list[Path] = []
    for series, paths in zip(plan, targets, strict=True):
        series_start = start + datetime.timedelta(seconds=times[series.phases[0]] if times else 0)
        header = {
            **common,
            "SeriesInstanceUID": uids("series", layout, series.number),
            "SeriesNumber": series.number,
            "SeriesDescription": series.description,
            "SeriesDate": da_tm(series_start)[0],
            "SeriesTime": da_tm(series_start)[1],
        }
        written += _write_series(job, series, paths, header)
    logger.info("wrote %d DICOM files in %d series to %s", len(written), len(plan), folder)
    return written


@dataclass(frozen=True)
class _Job:
    """What every series of one :func:`write_dicom_study` call shares."""

    study: DCEStudy
    geometry: StackGeometry
    protocol: MRProtocol
    uids: _Uids
    start: datetime.datetime
    trigger_time: bool
    overwrite: bool


def _write_series(
    job: _Job, series: _Series, paths: Sequence[Path], header: Mapping[str, Any]
) -> list[Path]:
    """Write the phases of one series, with one rescale for all of them."""
    series.folder.mkdir(parents=True, exist_ok=True)
    study, times = job.study, job.study.times_s
    arrays = [study.phase_zyx(k) for k in series.phases]
    rescale = choose_rescale(arrays)
    n_slices = arrays[0].shape[0]
    for position, (phase, array_zyx) in enumerate(zip(series.phases, arrays, strict=True)):
        stored_zyx = rescale.to_stored(array_zyx)
        for k in range(n_slices):
            index = position * n_slices + k
            ds = new_dataset(job.uids("instance", header["SeriesInstanceUID"], index))
            ds.update(header)
            time_s = times[phase] if times else None
            _set_image(ds, job, phase, time_s)
            ds.InstanceNumber = index + 1
            set_plane(ds, job.geometry, k)
            set_pixels(ds, stored_zyx[k])
            set_rescale(ds, rescale.slope, rescale.intercept)
            save_atomic(ds, paths[index], job.overwrite)
    logger.debug(
        "series %d: %d files, slope %g, intercept %g",
        series.number,
        len(paths),
        rescale.slope,
        rescale.intercept,
    )
    return list(paths)


def _paths(series: _Series, n_slices: int) -> list[Path]:
    count = len(series.phases) * n_slices
    return [series.folder / f"IM_{number:05d}.dcm" for number in range(1, count + 1)]


def _check_targets(paths: Sequence[Path], overwrite: bool) -> None:
    existing = [p for p in paths if p.exists()]
    if existing and not overwrite:
        raise OutputError(
            f"{existing[0]} already exists ({len(existing)} of the {len(paths)} files to write "
            "do); choose an empty folder or ask to overwrite"
        )
    mine = {p.name for p in paths}
    for parent in sorted({p.parent for p in paths}):
        if parent.is_dir() and any(
            f.name not in mine and f.suffix == ".dcm" for f in parent.iterdir()
        ):
            logger.warning("%s holds other DICOM files, which are left as they are", parent)


def _study_attributes(ids: Mapping[str, Any], start: datetime.datetime) -> dict[str, Any]:
    now = datetime.datetime.now()
    study_date, study_time = da_tm(start)
    return {
        **ids,
        "StudyDate": study_date,
        "StudyTime": study_time,
        "Modality": "MR",
        "ImageType": list(_ORIGINAL),
        "InstanceCreationDate": da_tm(now)[0],
        "InstanceCreationTime": da_tm(now)[1],
        "BurnedInAnnotation": "NO",
        "LossyImageCompression": "00",
    }


def _set_image(ds: Dataset, job: _Job, phase: int, time_s: float | None) -> None:
    """Set the per-image protocol and time attributes of one phase."""
    set_mr_protocol(ds, job.protocol, post_contrast=phase > 0)
    when = job.start + datetime.timedelta(seconds=time_s or 0.0)
    ds.AcquisitionDate, ds.AcquisitionTime = da_tm(when)
    ds.ContentDate, ds.ContentTime = da_tm(when)
    ds.AcquisitionNumber = phase + 1
    ds.TemporalPositionIdentifier = phase + 1
    ds.NumberOfTemporalPositions = job.study.n_phases
    if job.trigger_time and time_s is not None:
        ds.TriggerTime = ds_str(1000.0 * time_s)
