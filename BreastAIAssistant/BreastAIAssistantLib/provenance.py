"""Provenance records (``run.json``) written beside every result.

Like nnU-Net's plans and pyradiomics' diagnostics: the command and its arguments, the study it
read, package versions, the machine and the time each stage took, so that a result can be traced
and reproduced.
"""

from __future__ import annotations

import datetime as _dt
import platform
import sys
from collections.abc import Mapping
from importlib import metadata
from typing import Any

#: Packages whose versions are recorded (those not installed are skipped).
RECORDED_PACKAGES = (
    "breast-ai-assistant",
    "numpy",
    "scipy",
    "SimpleITK",
    "pydicom",
    "torch",
    "click",
)


def package_versions(names: tuple[str, ...] = RECORDED_PACKAGES) -> dict[str, str]:
    """Installed versions of ``names`` (without importing them)."""
    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def run_record(
    command: str,
    arguments: Mapping[str, Any],
    study: Mapping[str, Any] | None = None,
    outputs: Mapping[str, Any] | None = None,
    timings_s: Mapping[str, float] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A JSON-ready provenance record.

    Args:
        command: The sub-command (``"maps"``, ``"run"``, ...).
        arguments: Its effective arguments and settings.
        study: The study summary (:meth:`DCEStudy.describe`).
        outputs: Output names -> file names, relative to the output folder.
        timings_s: Seconds per stage.
        extra: Anything else worth keeping (phase choice, model ids and hashes...).
    """
    record: dict[str, Any] = {
        "tool": "breast-ai",
        "command": command,
        "created_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "arguments": dict(arguments),
        "study": dict(study or {}),
        "outputs": dict(outputs or {}),
        "timings_s": {k: round(v, 4) for k, v in (timings_s or {}).items()},
        "environment": {
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "machine": platform.machine(),
            "packages": package_versions(),
        },
        "intended_use": "research use only; not for clinical decisions",
    }
    if extra:
        record.update(extra)
    return record
