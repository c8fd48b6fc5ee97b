"""BreastDM case folders: one DICOM folder per phase, named by the scanner's series.

A BreastDM case (Zhao et al., 2023) holds the pre-contrast GE VIBRANT acquisition in ``VIBRANT``,
the post-contrast phases in ``VIBRANT+C1`` ... ``VIBRANT+C8`` and the subtractions in ``SUB1`` ...
``SUBn``. Folder names are matched case-insensitively (``VIBRANT + C2`` and ``vibrant+c2`` also
match); post-contrast folders are ordered by their number, not alphabetically, so ``C10`` follows
``C9``. Subtraction folders are skipped with a log line, other entries are ignored.

Each phase folder is read with the DICOM reader's series logic (recursive scan, non-DCE series
skipped, slice stacking and geometry, rescale) and must hold exactly one image volume. Acquisition
times come from the DICOM headers when present (see
:func:`~BreastAIAssistantLib.io.dicom_series.phase_times`); the phase order is the folder order.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from BreastAIAssistantLib.errors import ReaderError
from BreastAIAssistantLib.io import dicom
from BreastAIAssistantLib.io.dicom_series import Volume
from BreastAIAssistantLib.study import DCEStudy

logger = logging.getLogger(__name__)

_PRE = re.compile(r"^vibrant$", re.IGNORECASE)
_POST = re.compile(r"^vibrant\s*\+\s*c\s*(\d+)$", re.IGNORECASE)
_SUB = re.compile(r"^sub\s*\d*$", re.IGNORECASE)


def _subfolders(path: Path) -> list[Path]:
    try:
        return sorted(p for p in path.iterdir() if p.is_dir())
    except OSError:
        return []


def phase_folders(path: Path) -> list[Path]:
    """The phase folders of a case, pre-contrast first, post-contrast in numeric order.

    Raises:
        ReaderError: no ``VIBRANT`` folder, several of them, or no ``VIBRANT+C<k>`` folder.
    """
    folders = _subfolders(Path(path))
    pre = [p for p in folders if _PRE.match(p.name)]
    posts = sorted(
        ((int(m.group(1)), p) for p in folders if (m := _POST.match(p.name))),
        key=lambda item: (item[0], item[1].name),
    )
    if len(pre) != 1 or not posts:
        raise ReaderError(
            f"{path} is not a BreastDM case: it needs one VIBRANT folder (found {len(pre)}) and "
            f"VIBRANT+C1, VIBRANT+C2, ... folders (found {len(posts)})"
        )
    numbers = [k for k, _ in posts]
    if len(set(numbers)) != len(numbers):
        raise ReaderError(f"{path} has several folders for one post-contrast phase: {numbers}")
    return [pre[0]] + [p for _, p in posts]


def detect(path: Path) -> bool:
    """Whether ``path`` is a folder with a ``VIBRANT`` and at least one ``VIBRANT+C<k>`` folder."""
    names = [p.name for p in _subfolders(Path(path))] if Path(path).is_dir() else []
    return any(_PRE.match(n) for n in names) and any(_POST.match(n) for n in names)


def _read_phase_volume(folder: Path) -> Volume:
    found = dicom.candidate_volumes(folder)
    if found.broken:
        error = found.broken[0][1]
        raise ReaderError(f"{folder.name}: {error}") from error
    volumes = found.original
    if not volumes and found.derived:
        logger.warning("%s: only derived/secondary images; using them", folder.name)
        volumes = found.derived
    if not volumes:
        raise ReaderError(
            f"no usable image series in the phase folder {folder} "
            f"({'; '.join(found.skipped) or 'no series'})"
        )
    if len(volumes) > 1:
        raise ReaderError(
            f"the phase folder {folder} holds {len(volumes)} image volumes "
            f"({', '.join(v.label for v in volumes)}); a BreastDM phase folder must hold one"
        )
    return volumes[0]


def read(path: Path) -> DCEStudy:
    """Read a BreastDM case folder as a DCE study (pre-contrast, then C1, C2, ...).

    Raises:
        ReaderError: not a BreastDM case, or a phase folder without exactly one image volume.
        UnsupportedTransferSyntaxError: compressed pixel data without an installed decoder.
        StudyError: the phases do not form a valid study.
    """
    path = Path(path)
    folders = phase_folders(path)
    for sub in _subfolders(path):
        if sub in folders:
            continue
        if _SUB.match(sub.name):
            logger.info("skipping %s: subtraction images", sub.name)
        else:
            logger.info("ignoring %s: not a BreastDM phase folder", sub.name)
    volumes = [_read_phase_volume(folder) for folder in folders]
    names = [folder.name for folder in folders]
    return dicom.build_study(
        volumes,
        source=f"BreastDM case {path}",
        names=names,
        extra={"reader": "breastdm", "phase_folders": names},
    )
