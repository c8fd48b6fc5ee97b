"""Write tiny synthetic DICOM MR series for the reader tests.

Geometry is given the SimpleITK way: ``origin`` (LPS mm) of voxel ``(0, 0, 0)``, ``spacing``
``(x, y, z)`` in mm and a row-major 3x3 ``direction`` whose columns are the i, j and k axes. Slice
``k`` is written with ``ImagePositionPatient = origin + k * spacing_z * k_axis`` and
``ImageOrientationPatient = (i_axis, j_axis)``; when ``k_axis`` is not ``i_axis x j_axis`` (a
left-handed direction) a reader sorting along the DICOM normal stacks the slices the other way.

Arrays are the *stored* (pre-rescale) values, ``(z, y, x)``, written as unsigned 16-bit; the
modality value a reader should return is ``stored * slope + intercept``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    ExplicitVRLittleEndian,
    MRImageStorage,
    generate_uid,
)
from pydicom.valuerep import format_number_as_ds

IDENTITY = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)


def oblique_direction(
    degrees: float = 20.0, axis: Sequence[float] = (1.0, 2.0, 3.0)
) -> tuple[float, ...]:
    """Row-major rotation matrix of ``degrees`` about ``axis`` (Rodrigues), a right-handed basis."""
    u = np.asarray(axis, dtype=float) / np.linalg.norm(axis)
    angle = math.radians(degrees)
    cross = np.array([[0, -u[2], u[1]], [u[2], 0, -u[0]], [-u[1], u[0], 0]])
    rotation = np.eye(3) * math.cos(angle) + math.sin(angle) * cross
    rotation += (1 - math.cos(angle)) * np.outer(u, u)
    return tuple(float(v) for v in rotation.ravel())


@dataclass(frozen=True)
class Geometry:
    """Voxel grid of a written series (SimpleITK conventions, LPS)."""

    origin: tuple[float, float, float] = (0.0, 0.0, 0.0)
    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0)
    direction: tuple[float, ...] = IDENTITY

    @property
    def axes(self) -> np.ndarray:
        """3x3 matrix whose columns are the i, j, k axes."""
        return np.asarray(self.direction, dtype=float).reshape(3, 3)

    def slice_position(self, k: int) -> np.ndarray:
        """LPS position of voxel ``(0, 0, k)``."""
        return np.asarray(self.origin) + k * self.spacing[2] * self.axes[:, 2]


@dataclass(frozen=True)
class StudyIds:
    """Identifiers shared by the series of one synthetic study."""

    study_uid: str = field(default_factory=generate_uid)
    frame_uid: str = field(default_factory=generate_uid)
    patient_id: str = "BAA-TEST-001"


def tm(seconds: float) -> str:
    """DICOM TM ``HHMMSS.ffffff`` of a time in seconds after midnight (wraps at 24 h)."""
    micro = round(seconds * 1e6) % (86400 * 10**6)
    hours, rest = divmod(micro, 3600 * 10**6)
    minutes, rest = divmod(rest, 60 * 10**6)
    secs, micro = divmod(rest, 10**6)
    return f"{hours:02d}{minutes:02d}{secs:02d}.{micro:06d}"


def _ds(values: Sequence[float]) -> list[str]:
    return [format_number_as_ds(float(v)) for v in values]


def write_series(
    folder: Path,
    phases_zyx: Sequence[np.ndarray],
    geometry: Geometry,
    *,
    ids: StudyIds,
    times_s: Sequence[float] | None = None,
    start_time_s: float = 10 * 3600.0,
    description: str = "Ax VIBRANT DCE",
    series_number: int = 1,
    image_type: Sequence[str] = ("ORIGINAL", "PRIMARY", "OTHER"),
    rescale: tuple[float, float] = (1.0, 0.0),
    temporal_positions: Sequence[int] | None = None,
    trigger_times: bool = True,
    sequence: tuple[float, float, float] = (4.5, 2.1, 12.0),
    transfer_syntax: str = ExplicitVRLittleEndian,
    shuffle_seed: int | None = None,
    extra: Mapping[str, Any] | None = None,
) -> list[Path]:
    """Write one series holding one or several temporal positions of a volume.

    Args:
        folder: Output folder (created).
        phases_zyx: One stored-value ``(z, y, x)`` array per temporal position.
        geometry: Voxel grid of every phase.
        ids: Study identifiers.
        times_s: Time of each phase after ``start_time_s`` (default: all at ``start_time_s``).
        start_time_s: Time of day of time 0, seconds after midnight.
        description: SeriesDescription.
        series_number: SeriesNumber.
        image_type: ImageType values.
        rescale: ``(RescaleSlope, RescaleIntercept)``.
        temporal_positions: TemporalPositionIdentifier of each phase (default 1..n); an empty
            sequence writes no temporal tags.
        trigger_times: Write TriggerTime (ms after time 0).
        sequence: ``(RepetitionTime ms, EchoTime ms, FlipAngle deg)``.
        transfer_syntax: Transfer syntax UID; a compressed one gets undecodable encapsulated junk.
        shuffle_seed: Shuffle the file names (so directory order is not slice order).
        extra: More attributes set on every file (keyword -> value).

    Returns:
        The written paths, in phase-then-slice order.
    """
    folder.mkdir(parents=True, exist_ok=True)
    n_phases, nz = len(phases_zyx), phases_zyx[0].shape[0]
    times = list(times_s) if times_s is not None else [0.0] * n_phases
    positions = list(temporal_positions) if temporal_positions is not None else None
    if positions is None:
        positions = list(range(1, n_phases + 1))
    series_uid = generate_uid()
    numbers = np.arange(n_phases * nz)
    if shuffle_seed is not None:
        numbers = np.random.default_rng(shuffle_seed).permutation(numbers)
    paths = []
    for t, volume in enumerate(phases_zyx):
        for k in range(nz):
            index = t * nz + k
            path = folder / f"S{series_number:03d}_IM{int(numbers[index]):04d}.dcm"
            ds = _slice_dataset(path, geometry, k, volume[k], transfer_syntax)
            ds.update(
                {
                    "PatientID": ids.patient_id,
                    "PatientName": "Phantom^Breast",
                    "StudyInstanceUID": ids.study_uid,
                    "FrameOfReferenceUID": ids.frame_uid,
                    "SeriesInstanceUID": series_uid,
                    "StudyDate": "20240131",
                    "Modality": "MR",
                    "Manufacturer": "BreastAIAssistant tests",
                    "SeriesDescription": description,
                    "SeriesNumber": series_number,
                    "InstanceNumber": index + 1,
                    "ImageType": list(image_type),
                    "SeriesTime": tm(start_time_s + times[0]),
                    "AcquisitionTime": tm(start_time_s + times[t]),
                    "ContentTime": tm(start_time_s + times[t]),
                    "RescaleSlope": format_number_as_ds(float(rescale[0])),
                    "RescaleIntercept": format_number_as_ds(float(rescale[1])),
                    "RepetitionTime": format_number_as_ds(float(sequence[0])),
                    "EchoTime": format_number_as_ds(float(sequence[1])),
                    "FlipAngle": format_number_as_ds(float(sequence[2])),
                }
            )
            if positions:
                ds.TemporalPositionIdentifier = positions[t]
                ds.NumberOfTemporalPositions = max(positions)
            if trigger_times:
                ds.TriggerTime = format_number_as_ds(1000.0 * times[t])
            for keyword, value in (extra or {}).items():
                setattr(ds, keyword, value)
            ds.save_as(path, enforce_file_format=True)
            paths.append(path)
    return paths


def _slice_dataset(
    path: Path, geometry: Geometry, k: int, pixels_yx: np.ndarray, transfer_syntax: str
) -> FileDataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MRImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = transfer_syntax
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = MRImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    axes = geometry.axes
    position = geometry.slice_position(k)
    ds.ImagePositionPatient = _ds(position)
    ds.SliceLocation = format_number_as_ds(
        float(np.dot(position, np.cross(axes[:, 0], axes[:, 1])))
    )
    ds.ImageOrientationPatient = _ds(np.concatenate([axes[:, 0], axes[:, 1]]))
    ds.PixelSpacing = _ds([geometry.spacing[1], geometry.spacing[0]])
    ds.SliceThickness = format_number_as_ds(float(geometry.spacing[2]))
    ds.Rows, ds.Columns = pixels_yx.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    if meta.TransferSyntaxUID.is_compressed:
        ds.PixelData = encapsulate([b"\xff\x4f\xff\x51 not really JPEG 2000 \x00"])
        ds["PixelData"].VR = "OB"
    else:
        ds.PixelData = np.ascontiguousarray(pixels_yx, dtype="<u2").tobytes()
        ds["PixelData"].VR = "OW"
    return ds


def write_dce(
    folder: Path,
    phases_zyx: Sequence[np.ndarray],
    geometry: Geometry,
    times_s: Sequence[float],
    *,
    ids: StudyIds,
    multi_temporal: bool = False,
    first_series_number: int = 10,
    transfer_syntaxes: Mapping[int, str] | None = None,
    **options: Any,
) -> list[Path]:
    """Write a DCE study as one series per phase (in subfolders) or one multi-temporal series.

    Args:
        folder: Output folder.
        phases_zyx: Stored-value arrays, pre-contrast first.
        geometry: Grid of every phase.
        times_s: Time of each phase after the first, in seconds.
        ids: Study identifiers.
        multi_temporal: Write one series with all temporal positions instead of one per phase.
        first_series_number: SeriesNumber of the (first) series; phases count up from it.
        transfer_syntaxes: Per-phase transfer syntax overrides (phase index -> UID), for
            one-series-per-phase only.
        **options: Passed on to :func:`write_series`.

    Returns:
        The written paths.
    """
    if multi_temporal:
        return write_series(
            folder,
            phases_zyx,
            geometry,
            ids=ids,
            times_s=times_s,
            series_number=first_series_number,
            **options,
        )
    default_syntax = options.pop("transfer_syntax", ExplicitVRLittleEndian)
    temporal = options.pop("temporal_positions", None)
    paths = []
    for k, phase in enumerate(phases_zyx):
        paths += write_series(
            folder / f"series_{first_series_number + k}",
            [phase],
            geometry,
            ids=ids,
            times_s=[times_s[k]],
            series_number=first_series_number + k,
            temporal_positions=[k + 1] if temporal is None else temporal,
            transfer_syntax=(transfer_syntaxes or {}).get(k, default_syntax),
            **options,
        )
    return paths
