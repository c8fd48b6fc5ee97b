"""DCE studies from MRML nodes, and back: volume sequences, ordered volume lists, study folders.

Slicer 5 loads a 4-D DICOM DCE series (one series with several temporal positions, or several
series through the MultiVolume importer) as a ``vtkMRMLSequenceNode`` of scalar volumes, browsed
through a proxy node; the index values are the frame times. Users who loaded phases one by one
have a list of scalar volume nodes instead. Both become a core
:class:`~BreastAIAssistantLib.study.DCEStudy` here; phases on another grid than the pre-contrast
phase are resampled by ``DCEStudy.from_images`` (logged), never silently ignored.

**Acquisition times** are taken, in this order, from:

1. explicit ``times_s`` given by the caller;
2. the sequence's index values, when every value is numeric and the index unit is a time unit
   (``s``, ``ms``, ``min``; an empty unit with index name ``time`` counts as seconds) -- this is
   how the Sequences and MultiVolume importers store TriggerTime (``ms``) or times in ``s``;
   an index named like ``AcquisitionTime`` in ``HHMMSS.frac`` clock form is converted;
3. the sequence's ``MultiVolume.FrameLabels`` attribute (comma-separated, with
   ``MultiVolume.FrameIdentifyingDICOMTagUnits``), as the MultiVolume importer writes it;
4. a numeric attribute on every phase node: ``BreastAI.AcquisitionTime_s`` (seconds) or
   ``DICOM.TriggerTime`` (milliseconds).

Times that are missing, not numeric or not increasing give a study without times (every map
still works in phase order), with a log line that says why.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from itertools import pairwise
from pathlib import Path

import SimpleITK as sitk
import slicer

from BreastAIAssistantLib.errors import StudyError
from BreastAIAssistantLib.io.volumes import write_json, write_volume
from BreastAIAssistantLib.study import DCEStudy
from BreastAIAssistantMRML.geometry import image_from_volume_node, update_volume_from_image

logger = logging.getLogger(__name__)

#: Attribute a phase node may carry with its acquisition time in seconds.
TIME_ATTRIBUTE = "BreastAI.AcquisitionTime_s"
_UNIT_SCALE = {"s": 1.0, "sec": 1.0, "second": 1.0, "seconds": 1.0, "ms": 1e-3, "msec": 1e-3,
               "min": 60.0, "minute": 60.0, "minutes": 60.0}  # fmt: skip


def _floats(values: Sequence[str]) -> list[float] | None:
    try:
        numbers = [float(v) for v in values]
    except (TypeError, ValueError):
        return None
    return numbers if all(math.isfinite(v) for v in numbers) else None


def _clock_seconds(value: float) -> float:
    """``HHMMSS.frac`` (DICOM TM as a number) -> seconds since midnight."""
    hours, rest = divmod(value, 10000.0)
    minutes, seconds = divmod(rest, 100.0)
    return 3600.0 * hours + 60.0 * minutes + seconds


def _increasing(times: Sequence[float]) -> bool:
    return all(b > a for a, b in pairwise(times))


def times_from_index(name: str, unit: str, values: Sequence[str]) -> list[float] | None:
    """Acquisition times in seconds from a sequence index, or ``None`` when it is not time.

    Args:
        name: Index name (``"time"``, ``"TriggerTime"``, ``"AcquisitionTime"``, ``"frame"``).
        unit: Index unit (``"s"``, ``"ms"``, ``"min"`` or empty).
        values: Index values as stored (strings).
    """
    numbers = _floats(values)
    if numbers is None:
        return None
    key, unit_key = name.strip().lower(), unit.strip().lower()
    if "acquisitiontime" in key.replace(" ", "") and unit_key in ("", "hhmmss"):
        return [_clock_seconds(v) for v in numbers]
    if unit_key in _UNIT_SCALE:
        return [v * _UNIT_SCALE[unit_key] for v in numbers]
    if not unit_key and key in ("time", "t"):
        return numbers
    return None


def sequence_times_s(sequence_node: slicer.vtkMRMLSequenceNode) -> list[float] | None:
    """Acquisition times (s) of a volume sequence (see the module docstring), or ``None``."""
    n = sequence_node.GetNumberOfDataNodes()
    values = [sequence_node.GetNthIndexValue(i) for i in range(n)]
    times = times_from_index(sequence_node.GetIndexName(), sequence_node.GetIndexUnit(), values)
    if times is None:
        labels = sequence_node.GetAttribute("MultiVolume.FrameLabels")
        if labels:
            unit = sequence_node.GetAttribute("MultiVolume.FrameIdentifyingDICOMTagUnits") or "ms"
            times = times_from_index("time", unit, labels.split(","))
            if times is not None and len(times) != n:
                times = None
    if times is None:
        times = node_times_s([sequence_node.GetNthDataNode(i) for i in range(n)])
    return times


def node_times_s(nodes: Sequence[slicer.vtkMRMLNode]) -> list[float] | None:
    """Acquisition times (s) from the phase nodes' attributes, or ``None`` unless all have one."""
    times = []
    for node in nodes:
        seconds = node.GetAttribute(TIME_ATTRIBUTE)
        trigger_ms = node.GetAttribute("DICOM.TriggerTime")
        if seconds is not None and _floats([seconds]) is not None:
            times.append(float(seconds))
        elif trigger_ms is not None and _floats([trigger_ms]) is not None:
            times.append(float(trigger_ms) / 1000.0)
        else:
            return None
    return times


def _study(images: list[sitk.Image], names: list[str], times: list[float] | None,
           pre_contrast_index: int, source: str) -> DCEStudy:  # fmt: skip
    if not 0 <= pre_contrast_index < len(images):
        raise StudyError(
            f"pre-contrast phase {pre_contrast_index} does not exist: the input has "
            f"{len(images)} volume(s), numbered from 0"
        )
    if pre_contrast_index:
        logger.info("phases before the chosen pre-contrast phase %d are not used (%s)",
                    pre_contrast_index, ", ".join(names[:pre_contrast_index]))  # fmt: skip
    images, names = images[pre_contrast_index:], names[pre_contrast_index:]
    if times is not None:
        times = times[pre_contrast_index:]
        if not _increasing(times):
            logger.warning("acquisition times %s do not increase; the study is analysed in "
                           "phase order without times", times)  # fmt: skip
            times = None
    return DCEStudy.from_images(images, times, source=source, names=names,
                                metadata={"phase_names": names})  # fmt: skip


def study_from_sequence(sequence_node: slicer.vtkMRMLSequenceNode, pre_contrast_index: int = 0,
                        times_s: Sequence[float] | None = None) -> DCEStudy:  # fmt: skip
    """A DCE study from a ``vtkMRMLSequenceNode`` of scalar volumes (Slicer's 4-D volume).

    Args:
        sequence_node: The sequence; item ``i`` is phase ``i``.
        pre_contrast_index: The item that is the pre-contrast phase; earlier items are dropped.
        times_s: Acquisition times (s), one per item, overriding the sequence's own.

    Returns:
        The study, on the pre-contrast item's grid.

    Raises:
        StudyError: fewer than 2 phases, an item that is not a scalar volume, or what
            ``DCEStudy.from_images`` refuses.
    """
    n = sequence_node.GetNumberOfDataNodes()
    nodes = [sequence_node.GetNthDataNode(i) for i in range(n)]
    for index, node in enumerate(nodes):
        if node is None or not node.IsA("vtkMRMLScalarVolumeNode"):
            kind = node.GetClassName() if node is not None else "nothing"
            raise StudyError(f"item {index} of sequence {sequence_node.GetName()!r} is {kind}, "
                             "not a scalar volume")  # fmt: skip
    times = list(times_s) if times_s is not None else sequence_times_s(sequence_node)
    if times is None:
        logger.info("sequence %r has no usable acquisition times (index %r in %r); phases are "
                    "used in order", sequence_node.GetName(), sequence_node.GetIndexName(),
                    sequence_node.GetIndexUnit())  # fmt: skip
    names = [f"{sequence_node.GetIndexName()} {sequence_node.GetNthIndexValue(i)}"
             for i in range(n)]  # fmt: skip
    images = [image_from_volume_node(node) for node in nodes]
    return _study(images, names, times, pre_contrast_index,
                  f"Slicer sequence {sequence_node.GetName()!r}")  # fmt: skip


def study_from_volume_nodes(volume_nodes: Sequence[slicer.vtkMRMLScalarVolumeNode],
                            pre_contrast_index: int = 0,
                            times_s: Sequence[float] | None = None) -> DCEStudy:  # fmt: skip
    """A DCE study from scalar volume nodes given in phase order.

    Args:
        volume_nodes: Phase volumes, pre-contrast (or earlier) first.
        pre_contrast_index: Which of them is the pre-contrast phase; earlier ones are dropped.
        times_s: Acquisition times (s), one per node; default: the nodes' attributes.

    Raises:
        StudyError: fewer than 2 phases, or what ``DCEStudy.from_images`` refuses.
    """
    nodes = list(volume_nodes)
    names = [node.GetName() for node in nodes]
    times = list(times_s) if times_s is not None else node_times_s(nodes)
    images = [image_from_volume_node(node) for node in nodes]
    return _study(images, names, times, pre_contrast_index,
                  "Slicer volumes " + ", ".join(repr(n) for n in names))  # fmt: skip


def add_volume_sequence(scene: slicer.vtkMRMLScene, images: Sequence[sitk.Image],
                        times_s: Sequence[float] | None,
                        name: str = "DCE") -> slicer.vtkMRMLSequenceNode:  # fmt: skip
    """Add a ``vtkMRMLSequenceNode`` of scalar volumes (what Slicer's 4-D readers create).

    Index name ``time`` with unit ``s`` and the times as values; without times, index name
    ``phase`` and the phase numbers (which :func:`sequence_times_s` does not take for times).
    The sequence copies each item; no browser or proxy node is created.

    Returns:
        The sequence node.
    """
    sequence = scene.AddNewNodeByClass("vtkMRMLSequenceNode", scene.GenerateUniqueName(name))
    sequence.SetIndexName("time" if times_s is not None else "phase")
    sequence.SetIndexUnit("s" if times_s is not None else "")
    sequence.SetIndexType(sequence.NumericIndex)
    for index, image in enumerate(images):
        item = slicer.vtkMRMLScalarVolumeNode()
        item.SetName(f"{name} {index}")
        update_volume_from_image(item, image)
        value = times_s[index] if times_s is not None else index
        sequence.SetDataNodeAtValue(item, f"{float(value):g}")
    return sequence


def write_study_folder(study: DCEStudy, folder: str | os.PathLike[str]) -> Path:
    """Write a study as a ``folder`` study (phases as NRRD + ``study.json``) for ``breast-ai``.

    The Slicer module hands the study to the analysis process this way: the CLI reads it back
    exactly (``--input-format folder``), geometry included.

    Returns:
        The folder.
    """
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    width = max(2, len(str(study.n_phases - 1)))
    names = [f"phase_{k:0{width}d}.nrrd" for k in range(study.n_phases)]
    for file_name, image in zip(names, study.phases, strict=True):
        write_volume(image, out / file_name, compress=False)
    record = {"phases": names, "description": study.source or "study from 3D Slicer"}
    if study.times_s is not None:
        record["times_s"] = list(study.times_s)
    write_json(record, out / "study.json")
    return out
