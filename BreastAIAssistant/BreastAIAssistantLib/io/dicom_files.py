"""One DICOM file: the header summary the reader works with, DICOM times, pixel decoding.

Headers are read with ``stop_before_pixels`` into a small :class:`SliceHeader`; pixels are decoded
only for the slices of the chosen series, as ``stored * RescaleSlope + RescaleIntercept`` in
float32 (Philips' private floating-point scale (2005,100E) is not applied). A compressed transfer
syntax without an installed pydicom decoder raises
:class:`~BreastAIAssistantLib.errors.UnsupportedTransferSyntaxError` before any decoding is tried.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.pixels import get_decoder
from pydicom.uid import UID

from BreastAIAssistantLib.errors import ReaderError, UnsupportedTransferSyntaxError

SECONDS_PER_DAY = 86400.0


@dataclass(frozen=True)
class SliceHeader:
    """What the reader keeps from the header of one single-frame DICOM image.

    Times of day (``*_time_s``) are seconds after midnight; ``trigger_time_ms`` is as DICOM
    stores it. Missing or unparsable values are ``None``.
    """

    path: Path
    series_uid: str
    series_number: int | None
    description: str
    image_type: tuple[str, ...]
    modality: str
    sop_class_uid: str
    transfer_syntax_uid: str
    rows: int
    columns: int
    frames: int
    pixel_spacing: tuple[float, float] | None
    orientation: tuple[float, ...] | None
    position: tuple[float, ...] | None
    slice_thickness: float | None
    temporal_position: int | None
    trigger_time_ms: float | None
    acquisition_time_s: float | None
    content_time_s: float | None
    series_time_s: float | None
    repetition_time_ms: float | None
    echo_time_ms: float | None
    flip_angle_deg: float | None
    ids: Mapping[str, str] = field(default_factory=dict, compare=False)


#: Study-level attributes kept in the study metadata (from the first slice of phase 0).
ID_KEYWORDS = (
    "PatientID",
    "StudyInstanceUID",
    "FrameOfReferenceUID",
    "StudyDate",
    "Modality",
    "Manufacturer",
)


def _value(ds: Dataset, keyword: str) -> Any:
    try:
        return ds.get(keyword)
    except (ValueError, TypeError, OverflowError):  # malformed element
        return None


def _float(ds: Dataset, keyword: str) -> float | None:
    value = _value(ds, keyword)
    try:
        return float(value) if value not in (None, "") else None
    except (ValueError, TypeError):
        return None


def _int(ds: Dataset, keyword: str) -> int | None:
    value = _float(ds, keyword)
    return int(value) if value is not None else None


def _floats(ds: Dataset, keyword: str, n: int) -> tuple[float, ...] | None:
    value = _value(ds, keyword)
    try:
        values = tuple(float(v) for v in value)
    except (ValueError, TypeError):
        return None
    return values if len(values) == n and np.all(np.isfinite(values)) else None


def parse_time_of_day(value: Any) -> float | None:
    """Seconds after midnight of a DICOM TM value (``HHMMSS.ffffff``, also ``HH:MM:SS``).

    Returns ``None`` for empty or malformed values.
    """
    if value is None:
        return None
    if isinstance(value, datetime.time):
        return value.hour * 3600 + value.minute * 60 + value.second + value.microsecond * 1e-6
    text = str(value).strip().replace(":", "")
    whole, _, fraction = text.partition(".")
    if not whole.isdigit() or len(whole) not in (2, 4, 6) or not (fraction or "0").isdigit():
        return None
    hours, minutes, seconds = int(whole[0:2]), int(whole[2:4] or 0), int(whole[4:6] or 0)
    if hours > 23 or minutes > 59 or seconds > 60:
        return None
    return hours * 3600 + minutes * 60 + seconds + float(f"0.{fraction or '0'}")


def unwrap_midnight(times_s: Sequence[float]) -> list[float]:
    """Times of day made monotonic across midnight (a day is added after the wrap).

    The times are placed on a 24-hour circle; the largest gap between them is taken as the
    stretch of the day when nothing was acquired, and times after it that precede midnight's wrap
    get 86400 s added. A DCE study lasts minutes, so this is unambiguous.
    """
    if len(times_s) < 2:
        return list(times_s)
    ordered = sorted({t % SECONDS_PER_DAY for t in times_s})
    gaps = [b - a for a, b in pairwise(ordered)]
    gaps.append(ordered[0] + SECONDS_PER_DAY - ordered[-1])
    largest = int(np.argmax(gaps))
    if largest == len(gaps) - 1:
        return list(times_s)
    cut = ordered[largest]
    return [t + SECONDS_PER_DAY if t % SECONDS_PER_DAY <= cut else t for t in times_s]


def header_from_dataset(ds: Dataset, path: Path) -> SliceHeader:
    """Extract a :class:`SliceHeader` from a dataset read with or without pixels."""
    meta = getattr(ds, "file_meta", None)
    syntax = str(meta.get("TransferSyntaxUID", "")) if meta is not None else ""
    image_type = _value(ds, "ImageType") or ()
    if isinstance(image_type, str):
        image_type = image_type.split("\\")
    spacing = _floats(ds, "PixelSpacing", 2)
    return SliceHeader(
        path=path,
        series_uid=str(_value(ds, "SeriesInstanceUID") or ""),
        series_number=_int(ds, "SeriesNumber"),
        description=str(_value(ds, "SeriesDescription") or "").strip(),
        image_type=tuple(str(v).strip().upper() for v in image_type),
        modality=str(_value(ds, "Modality") or "").strip().upper(),
        sop_class_uid=str(_value(ds, "SOPClassUID") or ""),
        transfer_syntax_uid=syntax,
        rows=_int(ds, "Rows") or 0,
        columns=_int(ds, "Columns") or 0,
        frames=_int(ds, "NumberOfFrames") or 1,
        pixel_spacing=(spacing[0], spacing[1]) if spacing else None,
        orientation=_floats(ds, "ImageOrientationPatient", 6),
        position=_floats(ds, "ImagePositionPatient", 3),
        slice_thickness=_float(ds, "SliceThickness"),
        temporal_position=_int(ds, "TemporalPositionIdentifier"),
        trigger_time_ms=_float(ds, "TriggerTime"),
        acquisition_time_s=parse_time_of_day(_value(ds, "AcquisitionTime")),
        content_time_s=parse_time_of_day(_value(ds, "ContentTime")),
        series_time_s=parse_time_of_day(_value(ds, "SeriesTime")),
        repetition_time_ms=_float(ds, "RepetitionTime"),
        echo_time_ms=_float(ds, "EchoTime"),
        flip_angle_deg=_float(ds, "FlipAngle"),
        ids={k: str(_value(ds, k)) for k in ID_KEYWORDS if _value(ds, k) not in (None, "")},
    )


def series_label(header: SliceHeader) -> str:
    """``series <number> '<description>'`` for logs and messages."""
    number = header.series_number if header.series_number is not None else "?"
    return f"series {number}" + (f" '{header.description}'" if header.description else "")


def tag_values(tag: str, slices: Sequence[SliceHeader]) -> list[float] | None:
    """Values of a :data:`TIME_GETTERS` tag for all slices, ``None`` if any slice lacks it."""
    getter = TIME_GETTERS[tag]
    values = [getter(s) for s in slices]
    return [v for v in values if v is not None] if None not in values else None


TIME_GETTERS: dict[str, Callable[[SliceHeader], float | None]] = {
    "TemporalPositionIdentifier": lambda s: (
        float(s.temporal_position) if s.temporal_position is not None else None
    ),
    "TriggerTime": lambda s: s.trigger_time_ms,
    "AcquisitionTime": lambda s: s.acquisition_time_s,
    "ContentTime": lambda s: s.content_time_s,
    "SeriesTime": lambda s: s.series_time_s,
}


def check_decodable(syntax: str, path: Path) -> None:
    """Raise if pixel data in ``syntax`` cannot be decoded by an installed pydicom plugin.

    Raises:
        UnsupportedTransferSyntaxError: compressed syntax without an available decoder; the
            message names the syntax and what to install or run.
    """
    if not syntax:
        return
    uid = UID(syntax)
    try:
        if uid.is_transfer_syntax and not uid.is_compressed:
            return
        decoder = get_decoder(uid)
    except (NotImplementedError, ValueError):
        needs = "no pydicom decoder exists for it"
    else:
        if decoder.is_available:
            return
        needs = "pydicom needs one of: " + "; ".join(decoder.missing_dependencies)
    raise UnsupportedTransferSyntaxError(
        f"{path.name} is compressed with the transfer syntax {uid.name} ({uid}), which no "
        f"installed decoder reads ({needs}). Install a decoder, e.g. `pip install pylibjpeg "
        "pylibjpeg-openjpeg pylibjpeg-libjpeg`, or decompress the files first with "
        "`gdcmconv --raw IN OUT` (GDCM) or `dcmdjpeg IN OUT` (DCMTK) and read those"
    )


def read_slice(header: SliceHeader) -> np.ndarray:
    """Decode one slice as float32 ``(rows, columns)`` with the rescale applied.

    Raises:
        UnsupportedTransferSyntaxError: see :func:`check_decodable`.
        ReaderError: unreadable file or pixel data that does not match the header.
    """
    check_decodable(header.transfer_syntax_uid, header.path)
    try:
        ds = pydicom.dcmread(header.path)
        pixels = ds.pixel_array
    except Exception as exc:  # pydicom raises many types for corrupt data
        raise ReaderError(f"cannot decode the pixel data of {header.path}: {exc}") from exc
    if pixels.shape != (header.rows, header.columns):
        raise ReaderError(
            f"{header.path} holds pixel data of shape {pixels.shape}, expected one "
            f"{header.rows}x{header.columns} grey-level frame"
        )
    slope = _float(ds, "RescaleSlope")
    intercept = _float(ds, "RescaleIntercept")
    values = pixels.astype(np.float64) * (1.0 if slope is None else slope)
    return (values + (intercept or 0.0)).astype(np.float32)
