"""Readers and writers, chosen from an explicit registry of study formats.

``load_study(path)`` detects the format (or takes the one named) and returns a
:class:`~BreastAIAssistantLib.study.DCEStudy`. Detection order matters: the more specific
layouts are tried first.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from BreastAIAssistantLib.errors import ReaderError
from BreastAIAssistantLib.io import breastdm, dicom, folder, mamamia, nifti4d
from BreastAIAssistantLib.study import DCEStudy

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class StudyFormat:
    """One study layout: a cheap detector and a reader."""

    name: str
    description: str
    detect: Callable[[Path], bool]
    read: Callable[[Path], DCEStudy]


#: Study formats in detection order (most specific first).
FORMATS: dict[str, StudyFormat] = {
    f.name: f
    for f in (
        StudyFormat("nifti4d", "one 4-D NIfTI file, time last", nifti4d.detect, nifti4d.read),
        StudyFormat(
            "breastdm",
            "BreastDM case: VIBRANT, VIBRANT+C1.. DICOM folders",
            breastdm.detect,
            breastdm.read,
        ),
        StudyFormat(
            "mama-mia",
            "MAMA-MIA case: <ID>_0000.nii.gz, <ID>_0001.nii.gz, ...",
            mamamia.detect,
            mamamia.read,
        ),
        StudyFormat(
            "folder",
            "folder of per-phase volumes (+ optional study.json)",
            folder.detect,
            folder.read,
        ),
        StudyFormat(
            "dicom",
            "DICOM folder: one series per phase or one multi-temporal series",
            dicom.detect,
            dicom.read,
        ),
    )
}


def detect_format(path: Path) -> str:
    """Name of the first format whose detector accepts ``path``.

    Raises:
        ReaderError: the path does not exist or no format recognises it.
    """
    if not path.exists():
        raise ReaderError(f"no such file or folder: {path}")
    for fmt in FORMATS.values():
        if fmt.detect(path):
            return fmt.name
    raise ReaderError(
        f"cannot recognise {path} as a study; expected a 4-D NIfTI file or a folder of "
        "per-phase volumes, a MAMA-MIA or BreastDM case, or DICOM files"
    )


def load_study(
    path: str | os.PathLike[str],
    fmt: str = "auto",
    times_s: Sequence[float] | None = None,
) -> DCEStudy:
    """Load a DCE study from any supported form.

    Args:
        path: File or folder.
        fmt: A key of :data:`FORMATS`, or ``"auto"`` to detect.
        times_s: Acquisition times (s) that override whatever the files say.

    Raises:
        ReaderError: unknown format name, unrecognised or unreadable input.
        StudyError: the phases do not form a valid study.
    """
    path = Path(path)
    if fmt == "auto":
        fmt = detect_format(path)
    elif fmt not in FORMATS:
        raise ReaderError(f"unknown study format {fmt!r}; choose one of {', '.join(FORMATS)}")
    elif not path.exists():
        raise ReaderError(f"no such file or folder: {path}")
    logger.info("reading %s as %s", path, fmt)
    study = FORMATS[fmt].read(path)
    if times_s is not None:
        study = study.with_times(times_s)
    return study


__all__ = ["FORMATS", "StudyFormat", "detect_format", "load_study"]
