"""MAMA-MIA layout: ``<ID>_0000.nii.gz`` (pre-contrast), ``<ID>_0001.nii.gz``, ...

The MAMA-MIA challenge data (Garrucho et al., Sci. Data 2025) stores one case per folder under
``images/<ID>/``. The path may be the case folder or any one of its phase files. Acquisition times
are not in the files (they are in the dataset's clinical table); pass them with ``--times`` or a
``study.json`` next to the files when known.
"""

from __future__ import annotations

import re
from pathlib import Path

from BreastAIAssistantLib.errors import ReaderError
from BreastAIAssistantLib.io.folder import STUDY_JSON, read_study_json
from BreastAIAssistantLib.io.volumes import read_volume
from BreastAIAssistantLib.study import DCEStudy

PHASE_FILE = re.compile(r"^(?P<case>.+)_(?P<phase>\d{4})\.nii(?:\.gz)?$")


def _case_files(folder: Path) -> dict[str, dict[int, Path]]:
    cases: dict[str, dict[int, Path]] = {}
    for p in folder.iterdir():
        match = PHASE_FILE.match(p.name)
        if match and p.is_file():
            cases.setdefault(match["case"], {})[int(match["phase"])] = p
    return cases


def detect(path: Path) -> bool:
    """A ``<ID>_NNNN.nii[.gz]`` file, or a folder whose NIfTI files all follow that pattern."""
    if path.is_file():
        return PHASE_FILE.match(path.name) is not None
    if not path.is_dir():
        return False
    niftis = [p for p in path.iterdir() if p.name.endswith((".nii", ".nii.gz"))]
    return bool(niftis) and all(PHASE_FILE.match(p.name) for p in niftis)


def read(path: Path) -> DCEStudy:
    """Read one MAMA-MIA case.

    Raises:
        ReaderError: several cases in the folder, or phase numbers with gaps / not from 0000.
    """
    wanted = None
    if path.is_file():
        match = PHASE_FILE.match(path.name)
        wanted = match["case"] if match else None
        path = path.parent
    cases = _case_files(path)
    if wanted is not None:
        cases = {wanted: cases.get(wanted, {})}
    if len(cases) != 1:
        names = ", ".join(sorted(cases)[:5])
        raise ReaderError(
            f"{path} holds {len(cases)} MAMA-MIA cases ({names}...); point at one case folder "
            "or one of its phase files"
        )
    ((case, by_index),) = cases.items()
    indices = sorted(by_index)
    if indices != list(range(len(indices))):
        raise ReaderError(
            f"MAMA-MIA case {case} has phase numbers {indices}; they must run 0000, 0001, ... "
            "without gaps (0000 = pre-contrast)"
        )
    times = None
    if (path / STUDY_JSON).is_file():
        times = read_study_json(path / STUDY_JSON).get("times_s")
    files = [by_index[k] for k in indices]
    return DCEStudy.from_images(
        [read_volume(f) for f in files],
        times_s=times,
        source=f"{path} (MAMA-MIA case {case})",
        metadata={"format": "mama-mia", "case_id": case, "phase_files": [f.name for f in files]},
        names=[f.name for f in files],
    )
