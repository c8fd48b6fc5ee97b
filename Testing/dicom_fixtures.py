"""Write tiny synthetic DICOM MR series for the reader tests.

The dataset-building pieces (file meta, Image Plane, Image Pixel and MR attributes, times) are
the core writer's (:mod:`BreastAIAssistantLib.io.dicom_build`); what this module adds are the odd
files a reader must cope with: shuffled file order, undecodable compressed pixel data, missing or
unusual time tags, several series with chosen descriptions and image types, and left-handed
stacks, which the core writer refuses.

Geometry is given the SimpleITK way (:class:`Geometry`, the core's ``StackGeometry``): ``origin``
(LPS mm) of voxel ``(0, 0, 0)``, ``spacing`` ``(x, y, z)`` in mm and a row-major 3x3 ``direction``
whose columns are the i, j and k axes. Slice ``k`` is written with ``ImagePositionPatient = origin
+ k * spacing_z * k_axis`` and ``ImageOrientationPatient = (i_axis, j_axis)``; when ``k_axis`` is
not ``i_axis x j_axis`` (a left-handed direction) a reader sorting along the DICOM normal stacks
the slices the other way.

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
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from BreastAIAssistantLib.io.dicom_build import (
    IDENTITY,
    MRProtocol,
    ds_str,
    new_dataset,
    save_atomic,
    set_mr_protocol,
    set_pixels,
    set_plane,
    set_rescale,
    tm,
)
from BreastAIAssistantLib.io.dicom_build import StackGeometry as Geometry

__all__ = [
    "IDENTITY",
    "Geometry",
    "StudyIds",
    "oblique_direction",
    "tm",
    "write_dce",
    "write_series",
]


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
class StudyIds:
    """Identifiers shared by the series of one synthetic study."""

    study_uid: str = field(default_factory=generate_uid)
    frame_uid: str = field(default_factory=generate_uid)
    patient_id: str = "BAA-TEST-001"


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
    repetition_ms, echo_ms, flip_deg = sequence
    protocol = MRProtocol(
        repetition_time_ms=repetition_ms,
        echo_time_ms=echo_ms,
        flip_angle_deg=flip_deg,
        manufacturer="BreastAIAssistant tests",
        comment="",
    )
    numbers = np.arange(n_phases * nz)
    if shuffle_seed is not None:
        numbers = np.random.default_rng(shuffle_seed).permutation(numbers)
    paths = []
    for t, volume in enumerate(phases_zyx):
        for k in range(nz):
            index = t * nz + k
            path = folder / f"S{series_number:03d}_IM{int(numbers[index]):04d}.dcm"
            ds = _slice_dataset(geometry, k, volume[k], transfer_syntax)
            ds.update(
                {
                    "PatientID": ids.patient_id,
                    "PatientName": "Phantom^Breast",
                    "StudyInstanceUID": ids.study_uid,
                    "FrameOfReferenceUID": ids.frame_uid,
                    "SeriesInstanceUID": series_uid,
                    "StudyDate": "20240131",
                    "Modality": "MR",
                    "SeriesDescription": description,
                    "SeriesNumber": series_number,
                    "InstanceNumber": index + 1,
                    "ImageType": list(image_type),
                    "SeriesTime": tm(start_time_s + times[0]),
                    "AcquisitionTime": tm(start_time_s + times[t]),
                    "ContentTime": tm(start_time_s + times[t]),
                }
            )
            set_mr_protocol(ds, protocol)
            set_rescale(ds, *rescale)
            if positions:
                ds.TemporalPositionIdentifier = positions[t]
                ds.NumberOfTemporalPositions = max(positions)
            if trigger_times:
                ds.TriggerTime = ds_str(1000.0 * times[t])
            for keyword, value in (extra or {}).items():
                setattr(ds, keyword, value)
            save_atomic(ds, path)
            paths.append(path)
    return paths


def _slice_dataset(
    geometry: Geometry, k: int, pixels_yx: np.ndarray, transfer_syntax: str
) -> Dataset:
    ds = new_dataset(generate_uid(), transfer_syntax=transfer_syntax)
    set_plane(ds, geometry, k)
    set_pixels(ds, pixels_yx)
    if ds.file_meta.TransferSyntaxUID.is_compressed:
        ds.PixelData = encapsulate([b"\xff\x4f\xff\x51 not really JPEG 2000 \x00"])
        ds["PixelData"].VR = "OB"
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
