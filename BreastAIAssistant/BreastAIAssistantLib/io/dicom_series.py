"""DICOM slices to volumes: temporal splitting, slice stacking, geometry and phase times.

This is the geometry half of the DICOM reader (:mod:`BreastAIAssistantLib.io.dicom` decides which
series form the DCE study). Everything stays in DICOM's patient coordinate system, LPS, which is
also SimpleITK's:

* the slice normal is the cross product of the row and column cosines of
  ``ImageOrientationPatient``;
* slices are sorted by the projection of ``ImagePositionPatient`` on that normal; the origin is the
  position of the first slice, the slice spacing the median step between positions (a warning is
  logged when steps differ from it by more than 1 %, an error raised when two slices of one
  volume share a position);
* the direction matrix has the columns row cosine, column cosine, normal, so oblique scans keep
  their true geometry and index ``(i, j, k)`` lands where DICOM says the pixel is;
* the in-plane spacing is ``PixelSpacing[1]`` along rows (x) and ``PixelSpacing[0]`` along
  columns (y).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

import numpy as np
import SimpleITK as sitk

from BreastAIAssistantLib.errors import ReaderError
from BreastAIAssistantLib.io.dicom_files import (
    SECONDS_PER_DAY,
    SliceHeader,
    read_slice,
    series_label,
    tag_values,
    unwrap_midnight,
)

logger = logging.getLogger(__name__)

#: Slices closer than this along the slice normal (mm) are at the same position.
POSITION_TOLERANCE_MM = 0.01
#: Relative deviation of a slice step from the median step that triggers a warning.
NONUNIFORM_TOLERANCE = 0.01
#: Time tags that can tell apart the temporal positions of one series, in order of preference.
SPLIT_TAGS = ("TemporalPositionIdentifier", "TriggerTime", "AcquisitionTime", "ContentTime")


def slice_axes(orientation: Sequence[float]) -> np.ndarray:
    """3x3 matrix with columns row cosine, column cosine, slice normal (orthonormalised)."""
    row = np.asarray(orientation[:3], dtype=float)
    col = np.asarray(orientation[3:], dtype=float)
    row /= np.linalg.norm(row)
    col -= np.dot(col, row) * row
    col /= np.linalg.norm(col)
    return np.column_stack([row, col, np.cross(row, col)])


def positions_mm(slices: Sequence[SliceHeader]) -> np.ndarray:
    """``(n, 3)`` LPS ImagePositionPatient of the slices.

    Raises:
        ReaderError: a slice has no ImagePositionPatient.
    """
    if any(s.position is None for s in slices):
        raise ReaderError(f"{series_label(slices[0])} has slices without ImagePositionPatient")
    return np.array([s.position for s in slices], dtype=float)


def position_clusters(slices: Sequence[SliceHeader], normal: np.ndarray) -> np.ndarray:
    """Index of the distinct slice position of each slice (positions projected on ``normal``)."""
    projection = positions_mm(slices) @ normal
    order = np.argsort(projection, kind="stable")
    new = np.diff(projection[order]) > POSITION_TOLERANCE_MM
    cluster = np.empty(len(slices), dtype=int)
    cluster[order] = np.concatenate([[0], np.cumsum(new)])
    return cluster


@dataclass(frozen=True)
class Volume:
    """One candidate 3-D phase: sorted slices of one series (or one temporal position of it).

    Attributes:
        slices: Slices sorted along the slice normal.
        origin: LPS position of the first slice (mm).
        spacing: ``(x, y, z)`` spacing in mm.
        direction: Row-major 3x3 direction (columns: row cosine, column cosine, normal).
        temporal_index: Index of the temporal position within its series (0 if not split).
        split: Whether the volume is one temporal position of a multi-temporal series.
    """

    slices: tuple[SliceHeader, ...]
    origin: tuple[float, float, float]
    spacing: tuple[float, float, float]
    direction: tuple[float, ...]
    temporal_index: int = 0
    split: bool = False

    @property
    def first(self) -> SliceHeader:
        """The first slice (series-level attributes are read from it)."""
        return self.slices[0]

    @property
    def size(self) -> tuple[int, int, int]:
        """Grid size ``(x, y, z)``."""
        return (self.first.columns, self.first.rows, len(self.slices))

    @property
    def temporal(self) -> bool:
        """Whether this is a temporal position (split, or slices carry TemporalPositionIdentifier).

        TriggerTime is then the preferred acquisition time.
        """
        return self.split or all(s.temporal_position is not None for s in self.slices)

    @property
    def label(self) -> str:
        """Human-readable name for logs and error messages."""
        text = series_label(self.first)
        return text + (f" temporal position {self.temporal_index + 1}" if self.split else "")

    def earliest(self, tag: str) -> float | None:
        """Earliest value of a time tag over the slices, ``None`` if a slice lacks it.

        ``TriggerTime`` is returned in seconds; times of day in seconds after midnight.
        """
        values = tag_values(tag, self.slices)
        if values is None:
            return None
        if tag == "TriggerTime":
            return min(values) / 1000.0
        return min(unwrap_midnight(values)) % SECONDS_PER_DAY


def stack(slices: Sequence[SliceHeader], temporal_index: int = 0, split: bool = False) -> Volume:
    """Sort the slices of one volume along the normal and derive its geometry.

    Raises:
        ReaderError: two slices share a position.
    """
    first = slices[0]
    if first.orientation is None or first.pixel_spacing is None:
        raise ReaderError(f"{series_label(first)} has no ImageOrientationPatient/PixelSpacing")
    axes = slice_axes(first.orientation)
    normal = axes[:, 2]
    positions = positions_mm(slices)
    projection = positions @ normal
    order = np.argsort(projection, kind="stable")
    steps = np.diff(projection[order])
    name = series_label(first)
    duplicates = int(np.sum(steps <= POSITION_TOLERANCE_MM))
    if duplicates:
        raise ReaderError(
            f"{name} has {duplicates + 1} slices at the same position that no temporal tag "
            "tells apart; export each phase as its own series or remove duplicated files"
        )
    if len(slices) > 1:
        step = float(np.median(steps))
        deviation = float(np.max(np.abs(steps - step)))
        if deviation > NONUNIFORM_TOLERANCE * step:
            logger.warning(
                "%s: slice spacing is not uniform (steps %.4g to %.4g mm); using the median "
                "%.4g mm, so some slices are placed up to %.3g mm off",
                name,
                float(steps.min()),
                float(steps.max()),
                step,
                deviation,
            )
        extent = positions[order[-1]] - positions[order[0]]
        in_plane = extent - np.dot(extent, normal) * normal
        if np.linalg.norm(in_plane) > NONUNIFORM_TOLERANCE * np.linalg.norm(extent):
            logger.warning(
                "%s: slices are not stacked along the slice normal (gantry tilt or shear of "
                "%.3g mm); the volume geometry is approximate",
                name,
                float(np.linalg.norm(in_plane)),
            )
    else:
        step = first.slice_thickness or 1.0
    row_spacing, col_spacing = first.pixel_spacing
    origin = positions[order[0]]
    return Volume(
        slices=tuple(slices[i] for i in order),
        origin=(float(origin[0]), float(origin[1]), float(origin[2])),
        spacing=(float(col_spacing), float(row_spacing), step),
        direction=tuple(float(v) for v in axes.ravel()),
        temporal_index=temporal_index,
        split=split,
    )


def split_series(slices: Sequence[SliceHeader]) -> list[Volume]:
    """Split one series into volumes: one, or one per temporal position.

    A series whose slice positions repeat is split by the first of :data:`SPLIT_TAGS` that tells
    apart the repeats: by value for TemporalPositionIdentifier, else by rank of the time at each
    position (the k-th earliest slice at every position belongs to phase k).

    Raises:
        ReaderError: positions repeat and no tag tells the repeats apart.
    """
    if slices[0].orientation is None:
        raise ReaderError(f"{series_label(slices[0])} has no ImageOrientationPatient")
    normal = slice_axes(slices[0].orientation)[:, 2]
    cluster = position_clusters(slices, normal)
    if np.bincount(cluster).max() == 1:
        return [stack(slices)]
    for tag in SPLIT_TAGS:
        phases = _split_by(tag, slices, cluster)
        if phases is not None:
            logger.debug(
                "%s: split %d slices into %d phases by %s",
                series_label(slices[0]),
                len(slices),
                len(phases),
                tag,
            )
            return [stack(p, k, split=True) for k, p in enumerate(phases)]
    raise ReaderError(
        f"{series_label(slices[0])} has {len(slices)} slices at {cluster.max() + 1} positions, "
        f"but none of {', '.join(SPLIT_TAGS)} tells the repeated positions apart; export each "
        "phase as its own series"
    )


def _split_by(
    tag: str, slices: Sequence[SliceHeader], cluster: np.ndarray
) -> list[list[SliceHeader]] | None:
    values = tag_values(tag, slices)
    if values is None:
        return None
    groups: list[list[int]] = []
    if tag == "TemporalPositionIdentifier":
        by_value: dict[float, list[int]] = {}
        for i, v in enumerate(values):
            by_value.setdefault(v, []).append(i)
        groups = [by_value[v] for v in sorted(by_value)]
    else:
        if tag != "TriggerTime":
            values = unwrap_midnight(values)
        by_position: dict[int, list[int]] = {}
        for i, c in enumerate(cluster):
            by_position.setdefault(int(c), []).append(i)
        for members in by_position.values():
            members.sort(key=lambda i: values[i])
            times = [values[i] for i in members]
            if any(b - a <= 1e-6 for a, b in pairwise(times)):
                return None
            for rank, i in enumerate(members):
                if rank == len(groups):
                    groups.append([])
                groups[rank].append(i)
    if len(groups) < 2 or any(len({int(cluster[i]) for i in g}) != len(g) for g in groups):
        return None
    return [[slices[i] for i in g] for g in groups]


def read_volume(volume: Volume) -> sitk.Image:
    """Decode a volume's slices into a float32 ``SimpleITK.Image`` with its LPS geometry."""
    first = volume.first
    array_zyx = np.empty((len(volume.slices), first.rows, first.columns), dtype=np.float32)
    for k, header in enumerate(volume.slices):
        array_zyx[k] = read_slice(header)
    image = sitk.GetImageFromArray(array_zyx)
    image.SetOrigin(volume.origin)
    image.SetSpacing(volume.spacing)
    image.SetDirection(volume.direction)
    return image


def phase_times(volumes: Sequence[Volume]) -> tuple[tuple[float, ...] | None, str]:
    """Acquisition time of each phase in seconds from phase 0, and the tag it came from.

    TriggerTime is used first when every phase is a temporal position; then the earliest
    AcquisitionTime, ContentTime or SeriesTime of each phase's slices (midnight wrap handled).
    The first tag that every phase has and that strictly increases wins.

    Returns:
        ``(times, tag)``, or ``(None, reason)`` when no tag gives usable times.
    """
    tags = ["AcquisitionTime", "ContentTime", "SeriesTime"]
    if all(v.temporal for v in volumes):
        tags.insert(0, "TriggerTime")
    problems = []
    for tag in tags:
        earliest = [v.earliest(tag) for v in volumes]
        values = [t for t in earliest if t is not None]
        if len(values) != len(volumes):
            problems.append(f"{tag} missing in {len(volumes) - len(values)} phase(s)")
            continue
        if tag != "TriggerTime":
            values = unwrap_midnight(values)
        if all(b > a for a, b in pairwise(values)):
            return tuple(t - values[0] for t in values), tag
        shown = ", ".join(f"{t - values[0]:.3f}" for t in values)
        problems.append(f"{tag} not increasing ({shown} s)")
    return None, "; ".join(problems)
