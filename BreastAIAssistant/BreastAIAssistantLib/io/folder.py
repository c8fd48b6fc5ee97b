"""A folder of per-phase volumes, ordered by ``study.json`` or by natural file-name order.

Layout::

    study/
      study.json          optional: {"phases": ["pre.nii.gz", "post1.nii.gz", ...],
                                     "times_s": [0, 90, ...], "description": "..."}
      pre.nii.gz          any of .nii, .nii.gz, .nrrd, .nhdr, .mha, .mhd
      post1.nii.gz
      ...

Without ``study.json`` every volume in the folder is a phase, in natural order
(``phase2`` before ``phase10``), the first being pre-contrast, and times are unknown.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

from BreastAIAssistantLib.errors import ReaderError
from BreastAIAssistantLib.io.volumes import read_volume, volume_suffix
from BreastAIAssistantLib.study import DCEStudy

logger = logging.getLogger(__name__)

STUDY_JSON = "study.json"


def natural_key(name: str) -> list[Any]:
    """Sort key that orders digit runs by value: ``p2`` < ``p10``."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def volume_files(folder: Path) -> list[Path]:
    """Volume files directly inside ``folder`` (hidden files skipped), in natural order."""
    files = [
        p
        for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and volume_suffix(p) is not None
    ]
    return sorted(files, key=lambda p: natural_key(p.name))


def detect(path: Path) -> bool:
    """A folder that holds ``study.json`` or at least two volume files."""
    if not path.is_dir():
        return False
    return (path / STUDY_JSON).is_file() or len(volume_files(path)) >= 2


def read_study_json(path: Path) -> dict[str, Any]:
    """Parse and check a ``study.json`` file.

    Raises:
        ReaderError: invalid JSON, missing or mistyped keys.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ReaderError(f"cannot parse {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ReaderError(f"{path} must hold a JSON object with a 'phases' list")
    phases = data.get("phases")
    if phases is not None and (
        not isinstance(phases, list) or not all(isinstance(p, str) for p in phases)
    ):
        raise ReaderError(f"'phases' in {path} must be a list of file names")
    times = data.get("times_s")
    if times is not None and (
        not isinstance(times, list)
        or not all(isinstance(t, (int, float)) and not isinstance(t, bool) for t in times)
    ):
        raise ReaderError(f"'times_s' in {path} must be a list of numbers (seconds)")
    return data


def read(path: Path) -> DCEStudy:
    """Read a folder of per-phase volumes.

    Raises:
        ReaderError: no volumes, a listed phase file is missing, or a file cannot be read.
        StudyError: the phases do not form a valid study (see :meth:`DCEStudy.from_images`).
    """
    config: dict[str, Any] = {}
    if (path / STUDY_JSON).is_file():
        config = read_study_json(path / STUDY_JSON)
    if config.get("phases"):
        files = [path / name for name in config["phases"]]
        missing = [f.name for f in files if not f.is_file()]
        if missing:
            raise ReaderError(
                f"{path / STUDY_JSON} lists phase file(s) that do not exist: {', '.join(missing)}"
            )
        order = "study.json"
    else:
        files = volume_files(path)
        order = "natural file-name order"
    if not files:
        raise ReaderError(
            f"no volume files ({', '.join(('.nii', '.nii.gz', '.nrrd', '.mha'))}) in {path}"
        )
    logger.info("reading %d phase(s) from %s in %s", len(files), path, order)
    images = [read_volume(f) for f in files]
    return DCEStudy.from_images(
        images,
        times_s=config.get("times_s"),
        source=f"{path} (volume folder, {order})",
        metadata={
            "format": "folder",
            "phase_files": [f.name for f in files],
            "description": config.get("description", ""),
        },
        names=[f.name for f in files],
    )
