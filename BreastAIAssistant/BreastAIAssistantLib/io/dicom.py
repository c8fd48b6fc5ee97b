"""Read a folder of DICOM MR files (searched recursively) as a DCE study.

Headers of every file are read with pydicom (``stop_before_pixels``) and grouped by
SeriesInstanceUID; pixels are decoded only for the series that form the DCE. How the DCE is found:

1. **Series that are not DCE phases are skipped**, each with a ``logger.info`` line naming it:
   subtractions (ImageType ``SUB``/``SUBTRACTION``, or a description word like ``sub``, ``SUB2``,
   ``subtraction``); localizers (ImageType ``LOCALIZER``, descriptions like ``loc``, ``scout``,
   ``survey``, ``3-plane``, or slices in several orientations); MIP/projection/MPR images;
   other contrasts named in the description or ImageType (T2, STIR, DWI, DTI, ADC, diffusion,
   trace, b-values, FLAIR, HASTE); non-MR modalities; series without patient geometry; enhanced
   (multi-frame) images, which are not supported. Derived/secondary series that are none of the
   above are kept in reserve and used, with a warning, only when original series give no DCE.
2. **Each remaining series becomes one or more volumes.** When a slice position occurs several
   times, the series holds several temporal positions and is split by TemporalPositionIdentifier,
   else TriggerTime, else AcquisitionTime, else ContentTime (see
   :func:`~BreastAIAssistantLib.io.dicom_series.split_series`). Repeats that none of these tell
   apart are an error if the series looks like part of the DCE, else the series is skipped.
3. **Volumes are grouped**: same study, size (rows, columns, slice count), spacing, orientation,
   first-slice position (within half a voxel) and, where both have them, RepetitionTime, EchoTime
   and FlipAngle. **The largest group is the DCE** (ties: more slices, then the first found);
   volumes outside it are logged as skipped with the difference that excluded them. This covers
   one series per phase, one multi-temporal series, and a pre-contrast series followed by a
   multi-temporal post-contrast series.
4. **Phases are ordered** by the earliest acquisition time of their series (AcquisitionTime, else
   ContentTime, else SeriesTime; midnight wrap handled), then SeriesNumber, then temporal index.
5. **Times** are TriggerTime/1000 when every phase is a temporal position, else each phase's
   earliest AcquisitionTime (ContentTime, SeriesTime), relative to phase 0; when none is present
   for all phases and strictly increasing, the study has no times and the reason is logged.

Study metadata keeps PatientID, StudyInstanceUID, FrameOfReferenceUID, StudyDate, Modality,
Manufacturer (from phase 0), per-phase lists ``SeriesInstanceUID``, ``SeriesNumber`` and
``SeriesDescription``, the tag the times came from (``time_source``) and the skipped series
(``skipped_series``).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.errors import InvalidDicomError

from BreastAIAssistantLib.errors import ReaderError, StudyError
from BreastAIAssistantLib.io.dicom_files import (
    SliceHeader,
    header_from_dataset,
    series_label,
    unwrap_midnight,
)
from BreastAIAssistantLib.io.dicom_series import Volume, phase_times, read_volume, split_series
from BreastAIAssistantLib.study import DCEStudy

logger = logging.getLogger(__name__)

#: How many files and folders :func:`detect` looks at before giving up.
DETECT_MAX_FILES = 16
DETECT_MAX_FOLDERS = 256
_DICOM_SUFFIXES = (".dcm", ".ima", ".dicom")
_MULTIFRAME_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.4.1",  # Enhanced MR Image Storage
    "1.2.840.10008.5.1.4.1.1.4.3",  # Enhanced MR Color Image Storage
    "1.2.840.10008.5.1.4.1.1.4.4",  # Legacy Converted Enhanced MR Image Storage
}
_SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
_SUB_WORDS = re.compile(r"\b(sub\d*|subtract\w*)\b")
_LOCALIZER_WORDS = re.compile(r"\b(loc|locali[sz]er\w*|scout|survey|3 ?plane|tri ?pilot)\b")
_PROJECTION_WORDS = re.compile(r"\b(mip\w*|mnip|mpr|proj\w*|reformat\w*)\b")
_OTHER_CONTRAST_WORDS = re.compile(
    r"\b(t2\w*|stir|tirm|dwi|dti|adc|diff\w*|trace\w*|ep2d|b\d{2,4}|flair|haste|ivim)\b"
)
_SUB_TYPES = {"SUB", "SUBTRACT", "SUBTRACTION"}
_LOCALIZER_TYPES = {"LOCALIZER", "SCOUT"}
_PROJECTION_TYPES = {"MIP", "MNIP", "MINIP", "PROJECTION IMAGE", "MPR", "REFORMATTED", "CPR"}
_OTHER_CONTRAST_TYPES = {"ADC", "EADC", "DIFFUSION", "TRACEW", "FA", "T2 MAP", "T2_MAP"}


def detect(path: Path) -> bool:
    """Whether ``path`` is a folder with DICOM files in it or below it.

    Cheap: looks at no more than :data:`DETECT_MAX_FILES` files (and
    :data:`DETECT_MAX_FOLDERS` folders), checking for the ``DICM`` magic at byte 128 or a DICOM
    file suffix (``.dcm``, ``.ima``, ``.dicom``).
    """
    path = Path(path)
    if not path.is_dir():
        return False
    checked = 0
    for visited, (root, dirs, files) in enumerate(os.walk(path)):
        if visited >= DETECT_MAX_FOLDERS:
            return False
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(f for f in files if not f.startswith(".")):
            if name.lower().endswith(_DICOM_SUFFIXES) or _has_magic(Path(root) / name):
                return True
            checked += 1
            if checked >= DETECT_MAX_FILES:
                return False
    return False


def _has_magic(path: Path) -> bool:
    try:
        with open(path, "rb") as handle:
            head = handle.read(132)
    except OSError:
        return False
    return head[128:132] == b"DICM"


@dataclass
class Candidates:
    """Volumes found in a folder, sorted into what may form the DCE and what was set aside."""

    original: list[Volume] = field(default_factory=list)
    derived: list[Volume] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    multiframe: list[str] = field(default_factory=list)
    broken: list[tuple[SliceHeader, ReaderError]] = field(default_factory=list)


def scan(path: Path) -> dict[str, list[SliceHeader]]:
    """Read the header of every DICOM image file below ``path``, grouped by SeriesInstanceUID.

    Raises:
        ReaderError: no DICOM image is found.
    """
    files = sorted(p for p in Path(path).rglob("*") if p.is_file() and not p.name.startswith("."))
    series: dict[str, list[SliceHeader]] = {}
    for file in files:
        ds = _read_header(file)
        if ds is None or "Rows" not in ds or "Columns" not in ds:
            continue
        header = header_from_dataset(ds, file)
        key = header.series_uid or f"no SeriesInstanceUID in {file.parent}"
        series.setdefault(key, []).append(header)
    if not series:
        what = f"looked at {len(files)} file(s)" if files else "the folder is empty"
        raise ReaderError(
            f"no readable DICOM images in {path} ({what}); choose the folder that holds the "
            "study's DICOM files"
        )
    logger.debug("found %d DICOM series in %s", len(series), path)
    return series


def _read_header(file: Path) -> pydicom.Dataset | None:
    if file.name.upper() == "DICOMDIR":
        return None
    try:
        return pydicom.dcmread(file, stop_before_pixels=True)
    except InvalidDicomError:
        if not file.name.lower().endswith(_DICOM_SUFFIXES):
            return None
        try:  # a .dcm file without the preamble
            ds = pydicom.dcmread(file, stop_before_pixels=True, force=True)
        except Exception:  # not DICOM after all
            return None
        return ds if "SOPClassUID" in ds else None
    except Exception as exc:  # truncated or unreadable files are skipped, not fatal
        logger.debug("skipping %s: %s", file, exc)
        return None


def classify(slices: Sequence[SliceHeader]) -> tuple[str | None, bool]:
    """Why a series is not a DCE phase candidate.

    Returns:
        ``(reason, reserve)``: ``reason`` is ``None`` for a candidate; ``reserve`` is True for
        derived/secondary series that may still serve when no original series forms a DCE.
    """
    first = slices[0]
    words = " ".join(re.split(r"[^0-9a-z]+", first.description.lower())).strip()
    types = set(first.image_type)
    if first.frames > 1 or first.sop_class_uid in _MULTIFRAME_CLASSES:
        return "enhanced (multi-frame) images are not supported", False
    if first.modality and first.modality != "MR":
        return f"modality {first.modality}, not MR", False
    if types & _LOCALIZER_TYPES or _LOCALIZER_WORDS.search(words):
        return "localizer", False
    if types & _SUB_TYPES or _SUB_WORDS.search(words):
        return "subtraction images", False
    if types & _PROJECTION_TYPES or _PROJECTION_WORDS.search(words):
        return "MIP/projection/reformatted images", False
    if types & _OTHER_CONTRAST_TYPES or _OTHER_CONTRAST_WORDS.search(words):
        return "not a DCE sequence (T2/STIR/diffusion/ADC by its description)", False
    if any(s.orientation is None or s.position is None or s.pixel_spacing is None for s in slices):
        return "no patient geometry (ImageOrientationPatient/Position, PixelSpacing)", False
    orientations = np.array([s.orientation for s in slices], dtype=float)
    if len({(s.rows, s.columns) for s in slices}) > 1 or np.ptp(orientations, axis=0).max() > 1e-3:
        return "slices of several sizes or orientations (localizer or reformat)", False
    sop = first.sop_class_uid
    if sop == _SECONDARY_CAPTURE or sop.startswith(_SECONDARY_CAPTURE + "."):
        return "secondary capture", False
    if first.image_type[:1] == ("DERIVED",) or "SECONDARY" in first.image_type[1:2]:
        return "derived/secondary images", True
    return None, False


def candidate_volumes(path: Path) -> Candidates:
    """Scan ``path``, set aside non-DCE series (logged) and split the rest into volumes.

    Raises:
        ReaderError: no DICOM image is found.
    """
    found = Candidates()
    series = scan(path)
    for headers in sorted(series.values(), key=_series_order):
        name = series_label(headers[0])
        reason, reserve = classify(headers)
        if reason and not reserve:
            logger.info("skipping %s (%d images): %s", name, len(headers), reason)
            found.skipped.append(f"{name}: {reason}")
            if "multi-frame" in reason:
                found.multiframe.append(name)
            continue
        try:
            volumes = split_series(headers)
        except ReaderError as exc:
            found.broken.append((headers[0], exc))
            continue
        (found.derived if reserve else found.original).extend(volumes)
    return found


def _series_order(headers: list[SliceHeader]) -> tuple[float, str]:
    number = headers[0].series_number
    return (float(number) if number is not None else float("inf"), headers[0].series_uid)


def difference(volume: Volume, reference: Volume) -> str | None:
    """Why ``volume`` cannot be a phase of the same DCE as ``reference`` (``None`` if it can)."""
    a, b = volume.first, reference.first
    study_a, study_b = a.ids.get("StudyInstanceUID"), b.ids.get("StudyInstanceUID")
    if study_a and study_b and study_a != study_b:
        return f"another study ({study_a})"
    if volume.size != reference.size:
        return f"size {volume.size} voxels, the DCE has {reference.size}"
    if not np.allclose(volume.spacing, reference.spacing, rtol=1e-3, atol=1e-4):
        return f"spacing {volume.spacing} mm, the DCE has {reference.spacing}"
    if not np.allclose(volume.direction, reference.direction, atol=1e-3):
        return "another orientation"
    shift = float(np.linalg.norm(np.subtract(volume.origin, reference.origin)))
    if shift > 0.5 * min(reference.spacing):
        return f"another position ({shift:.1f} mm away)"
    for what, x, y in (
        ("RepetitionTime", a.repetition_time_ms, b.repetition_time_ms),
        ("EchoTime", a.echo_time_ms, b.echo_time_ms),
        ("FlipAngle", a.flip_angle_deg, b.flip_angle_deg),
    ):
        if x is not None and y is not None and not np.isclose(x, y, rtol=1e-3, atol=1e-3):
            return f"{what} {x:g}, the DCE has {y:g}"
    return None


def group_volumes(volumes: Sequence[Volume]) -> list[list[Volume]]:
    """Greedy grouping of volumes that :func:`difference` finds compatible with a group's first."""
    groups: list[list[Volume]] = []
    for volume in volumes:
        for group in groups:
            if difference(volume, group[0]) is None:
                group.append(volume)
                break
        else:
            groups.append([volume])
    return groups


def _largest(groups: list[list[Volume]]) -> list[Volume]:
    return max(groups, key=lambda g: (len(g), g[0].size[2])) if groups else []


def choose_dce(volumes: Sequence[Volume]) -> list[Volume]:
    """The largest group of mutually compatible volumes, in acquisition order.

    Volumes left out are logged (once per series) with the reason.
    """
    groups = group_volumes(volumes)
    best = _largest(groups)
    for group in groups:
        if group is best:
            continue
        if len(group) > 1:
            logger.warning(
                "%s also looks like a DCE (%d phases) but is not the largest group; not read",
                group[0].label,
                len(group),
            )
        seen: set[str] = set()
        for volume in group:
            if volume.first.series_uid not in seen:
                seen.add(volume.first.series_uid)
                logger.info(
                    "skipping %s: not part of the DCE (%s)",
                    series_label(volume.first),
                    difference(volume, best[0]),
                )
    return _in_acquisition_order(best)


def _in_acquisition_order(volumes: list[Volume]) -> list[Volume]:
    firsts: dict[str, Volume] = {}
    for volume in sorted(volumes, key=lambda v: v.temporal_index):
        firsts.setdefault(volume.first.series_uid, volume)
    start: dict[str, float] = {uid: 0.0 for uid in firsts}
    for tag in ("AcquisitionTime", "ContentTime", "SeriesTime"):
        times = [v.earliest(tag) for v in firsts.values()]
        known = [t for t in times if t is not None]
        if len(known) == len(times):
            start = dict(zip(firsts, unwrap_midnight(known), strict=True))
            break

    def key(volume: Volume) -> tuple[float, float, int]:
        number = volume.first.series_number
        order = float(number) if number is not None else float("inf")
        return (start[volume.first.series_uid], order, volume.temporal_index)

    return sorted(volumes, key=key)


def build_study(
    volumes: Sequence[Volume],
    source: str,
    names: Sequence[str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> DCEStudy:
    """Decode the volumes (phase 0 first) and make the validated study with times and metadata.

    Raises:
        UnsupportedTransferSyntaxError: compressed pixel data without an installed decoder.
        ReaderError: undecodable pixel data.
        StudyError: the phases do not form a valid study.
    """
    images = [read_volume(v) for v in volumes]
    times, how = phase_times(volumes)
    if times is None:
        logger.info("acquisition times unknown (%s); phases are in index order only", how)
    metadata: dict[str, Any] = dict(volumes[0].first.ids)
    metadata.update(
        reader="dicom",
        SeriesInstanceUID=[v.first.series_uid for v in volumes],
        SeriesNumber=[v.first.series_number for v in volumes],
        SeriesDescription=[v.first.description for v in volumes],
        time_source=how if times is not None else None,
    )
    metadata.update(extra or {})
    studies = {v.first.ids.get("StudyInstanceUID") for v in volumes}
    frames = {v.first.ids.get("FrameOfReferenceUID") for v in volumes}
    if len(studies) > 1 or len(frames) > 1:
        logger.warning("the phases come from several studies or frames of reference")
    return DCEStudy.from_images(
        images,
        times_s=times,
        source=source,
        metadata=metadata,
        names=list(names) if names is not None else [v.label for v in volumes],
    )


def read(path: Path) -> DCEStudy:
    """Read a DICOM folder (recursively) as a DCE study; see the module docstring for the rule.

    Raises:
        ReaderError: no DICOM images, no DCE series, only enhanced multi-frame images,
            unexplained duplicated slice positions, undecodable pixel data.
        UnsupportedTransferSyntaxError: compressed pixel data without an installed decoder.
        StudyError: only one phase, or phases that do not form a valid study.
    """
    path = Path(path)
    if not path.is_dir():
        raise ReaderError(f"{path} is not a folder; give the folder that holds the DICOM files")
    found = candidate_volumes(path)
    usable = found.original
    with_derived = found.original + found.derived
    if found.derived and len(_largest(group_volumes(found.original))) < 2:
        if len(_largest(group_volumes(with_derived))) >= 2:
            logger.warning("no original series form a DCE; using derived/secondary series")
            usable = with_derived
    if usable is not with_derived:
        for name in sorted({series_label(v.first) for v in found.derived}):
            logger.info("skipping %s: derived/secondary images", name)
            found.skipped.append(f"{name}: derived/secondary images")
    chosen = choose_dce(usable)
    for header, error in found.broken:
        if not chosen or _same_protocol(header, chosen[0]):
            raise error
        logger.warning("skipping %s: %s", series_label(header), error)
        found.skipped.append(f"{series_label(header)}: {error}")
    if not chosen:
        if found.multiframe:
            raise ReaderError(
                f"{path} holds only enhanced (multi-frame) MR images "
                f"({', '.join(found.multiframe)}), which this reader does not support; convert "
                "them to single-frame files first (e.g. dcm4che `emf2sf`)"
            )
        raise ReaderError(
            f"no DCE series in {path}; every series was skipped: {'; '.join(found.skipped)}"
        )
    if len(chosen) < 2:
        raise StudyError(
            f"only one DCE phase found in {path} ({chosen[0].label}); a DCE study needs the "
            "pre-contrast and at least one post-contrast phase: check that all phases were "
            "exported"
        )
    extra = {"skipped_series": found.skipped}
    return build_study(chosen, source=f"DICOM folder {path}", extra=extra)


def _same_protocol(header: SliceHeader, volume: Volume) -> bool:
    first = volume.first
    return (
        (header.rows, header.columns) == (first.rows, first.columns)
        and header.pixel_spacing is not None
        and first.pixel_spacing is not None
        and np.allclose(header.pixel_spacing, first.pixel_spacing, rtol=1e-3)
        and header.orientation is not None
        and first.orientation is not None
        and np.allclose(header.orientation, first.orientation, atol=1e-3)
    )
