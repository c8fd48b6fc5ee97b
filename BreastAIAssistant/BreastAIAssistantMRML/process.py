"""The analysis process: its command line and its progress lines (no Slicer, no Qt here).

The Slicer module never runs the networks in Slicer's own process: a long computation there
freezes the GUI and cannot be stopped (the most common complaint about comparable extensions).
It starts ``breast-ai run`` in a separate Python process (``QProcess``), reads the JSON progress
lines that ``--progress-json`` writes to stderr (see
:func:`BreastAIAssistantLib.cli.common.json_progress`), and kills the process on Cancel. This
module builds that command line and parses those lines, so both are tested without Qt.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

#: Stage names of the core's ``run_analysis`` and how the panel labels them.
STAGE_LABELS = {
    "maps": "Kinetic maps",
    "breast": "Breast mask",
    "tumour": "Tumour segmentation",
    "measure": "Measurements",
    "classify": "Lesion classifiers",
    "write": "Writing outputs",
    "done": "Done",
}
DEVICES = {"Auto": "auto", "CPU": "cpu", "CUDA": "cuda"}
#: Bundle tasks of the lesion classifiers (``BreastAIAssistantLib.classify.predictor``).
CLASSIFIER_TASKS = ("lesion-classification", "receptor-prediction", "box-classification")
#: What the analysis process runs: the CLI's ``main`` (no console script needed inside Slicer).
ENTRY_CODE = "import sys; from BreastAIAssistantLib.cli.main import main; sys.exit(main())"


@dataclass(frozen=True)
class ProgressUpdate:
    """One progress line of the analysis process.

    Attributes:
        stage: Stage name (a key of :data:`STAGE_LABELS`, or another core stage).
        fraction: Progress of the whole job in ``[0, 1]``.
        stage_fraction: Progress inside the stage in ``[0, 1]`` (``None`` if unknown).
        message: The core's full stage text.
    """

    stage: str
    fraction: float
    stage_fraction: float | None
    message: str

    @property
    def label(self) -> str:
        """The stage's panel label."""
        return STAGE_LABELS.get(self.stage, self.stage)


def parse_progress_line(line: str | bytes) -> ProgressUpdate | None:
    """A :class:`ProgressUpdate` from one stderr line, or ``None`` for any other line."""
    text = line.decode("utf-8", "replace") if isinstance(line, bytes) else line
    text = text.strip()
    if not text.startswith("{"):
        return None
    try:
        record = json.loads(text)
        stage, fraction = str(record["stage"]), float(record["fraction"])
    except (ValueError, KeyError, TypeError):
        return None
    stage_fraction = record.get("stage_fraction")
    return ProgressUpdate(
        stage=stage,
        fraction=max(0.0, min(1.0, fraction)),
        stage_fraction=None if stage_fraction is None else max(0.0, min(1.0,
                                                                        float(stage_fraction))),
        message=str(record.get("message", stage)),
    )


def analysis_arguments(study_folder: str | os.PathLike[str], out_dir: str | os.PathLike[str], *,
                       device: str = "Auto", classifiers: Sequence[str] | None = None,
                       gradcam: bool = True, model_dirs: Sequence[str] = (),
                       exports: Sequence[str] = (),
                       radiomics_model: str | os.PathLike[str] | None = None
                       ) -> list[str]:  # fmt: skip
    """Arguments after the Python executable that run ``breast-ai run`` on a study folder.

    Args:
        study_folder: A ``folder`` study (:func:`~.study.write_study_folder`).
        out_dir: Output folder.
        device: ``Auto``, ``CPU`` or ``CUDA`` (the panel's names) or the CLI's.
        classifiers: Classifier bundles (``None``: the CLI's default; empty: none).
        gradcam: Compute Grad-CAM maps.
        model_dirs: Extra bundle folders.
        exports: Extra exports (``nrrd``, ``dicom-seg``).
        radiomics_model: A saved radiomics model folder (``breast-ai radiomics-model``) to apply
            to every lesion (its probability and the lesion's features come back).

    Raises:
        ValueError: unknown device.
    """
    cli_device = DEVICES.get(device, device)
    if cli_device not in DEVICES.values():
        raise ValueError(f"device must be one of {', '.join(DEVICES)}, got {device!r}")
    args = ["-c", ENTRY_CODE, "run", str(study_folder), "--out", str(out_dir),
            "--input-format", "folder", "--device", cli_device, "--progress-json"]  # fmt: skip
    if classifiers is not None and not classifiers:
        args.append("--no-classify")
    for name in classifiers or ():
        args += ["--classifier", name]
    if not gradcam:
        args += ["--gradcam", "none"]
    for folder in model_dirs:
        args += ["--models", str(folder)]
    for fmt in exports:
        args += ["--export", fmt]
    if radiomics_model:
        args += ["--radiomics-model", str(radiomics_model)]
    return args


def available_classifiers(model_dirs: Sequence[str] = ()) -> list[str]:
    """Ids of the classifier bundles that are installed (searched as the CLI searches).

    The module passes them explicitly, so that a classifier missing from an installation is
    skipped instead of failing the whole run.
    """
    from BreastAIAssistantLib.bundles import available_bundles

    return sorted(bundle_id for bundle_id, bundle in available_bundles(model_dirs).items()
                  if bundle.manifest.task in CLASSIFIER_TASKS)  # fmt: skip


def process_environment(base: dict[str, str] | None = None) -> dict[str, str]:
    """Environment of the analysis process: the core's folder first on ``PYTHONPATH``."""
    env = dict(os.environ if base is None else base)
    lib_root = str(Path(__file__).resolve().parents[1])
    parts = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join([lib_root, *[p for p in parts if p != lib_root]])
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env
