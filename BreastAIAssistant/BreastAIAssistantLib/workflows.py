"""End-to-end jobs shared by the CLI, the Slicer module, the tests and the benchmarks.

Each job takes a progress callback and never prints. Outputs are written atomically, with a
``run.json`` provenance record written last, so a folder with ``run.json`` is complete.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from BreastAIAssistantLib.dce import DCEMaps, MapSettings, compute_maps, write_maps
from BreastAIAssistantLib.io.volumes import write_json
from BreastAIAssistantLib.provenance import run_record
from BreastAIAssistantLib.study import DCEStudy

logger = logging.getLogger(__name__)

Progress = Callable[[str, float], None]

RUN_JSON = "run.json"


def run_maps(
    study: DCEStudy,
    out_dir: str | Path,
    settings: MapSettings | None = None,
    fmt: str = ".nii.gz",
    progress: Progress | None = None,
    arguments: Mapping[str, Any] | None = None,
) -> tuple[DCEMaps, dict[str, Path]]:
    """Compute all DCE maps of ``study`` and write them, plus ``run.json``, to ``out_dir``.

    Args:
        study: The study.
        out_dir: Output folder (created if needed).
        settings: Map settings (defaults if ``None``).
        fmt: Volume suffix of the map files.
        progress: ``progress(stage, fraction)`` callback.
        arguments: The caller's arguments, recorded in ``run.json``.

    Returns:
        The maps and the written paths (``run.json`` included).
    """
    out = Path(out_dir)
    clock = time.perf_counter()

    def compute_progress(stage: str, fraction: float) -> None:
        if progress is not None:
            progress(stage, 0.8 * fraction)

    maps = compute_maps(study, settings, progress=compute_progress)
    compute_s = time.perf_counter() - clock
    clock = time.perf_counter()
    if progress is not None:
        progress("writing", 0.85)
    written = write_maps(maps, out, fmt)
    write_s = time.perf_counter() - clock
    record = run_record(
        "maps",
        arguments or {},
        study=study.describe(),
        outputs={name: path.name for name, path in written.items()},
        timings_s={
            "maps": compute_s,
            "write": write_s,
            **{f"maps.{k}": v for k, v in maps.timings_s.items()},
        },
        extra={"dce": maps.provenance()},
    )
    written["run.json"] = write_json(record, out / RUN_JSON)
    if progress is not None:
        progress("done", 1.0)
    logger.info("maps written to %s", out)
    return maps, written

