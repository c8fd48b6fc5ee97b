"""Writing a phantom case as a study folder with its ground truth beside it.

Layout (every file written atomically; ``case.json`` last, so its presence marks a complete
case)::

    <folder>/
      phase_00.nii.gz ... phase_NN.nii.gz   the phases (int16 by default, LPS geometry)
      study.json                            {"phases": [...], "times_s": [...], "description"}
      tumour_mask.nii.gz                    uint16 lesion instances (label = lesion record)
      breast_mask.nii.gz                    uint8 whole-breast mask
      tissue_labels.nii.gz                  uint8 tissue map (optional)
      case.json                             the truth record (:mod:`.truth`) plus "files"

The folder reads back with :func:`BreastAIAssistantLib.io.folder.read` (or ``load_study``).
Phases are rounded to int16 (values clipped to 0-32767; the phantom's signals are far below),
as scanners store them; ``phase_dtype="float32"`` keeps them exact.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import SimpleITK as sitk

from BreastAIAssistantLib.phantom.generator import PhantomCase

logger = logging.getLogger(__name__)

PHASE_DTYPES = {"int16": sitk.sitkInt16, "float32": sitk.sitkFloat32}


def _as_dtype(image: sitk.Image, dtype: str) -> sitk.Image:
    if dtype == "float32":
        return image
    clamped = sitk.Clamp(image + 0.5, sitk.sitkFloat32, 0.0, 32767.0)
    return sitk.Cast(clamped, PHASE_DTYPES[dtype])  # truncation of x + 0.5 rounds x >= 0


def write_case(
    case: PhantomCase,
    folder: str | os.PathLike[str],
    phase_dtype: str = "int16",
    compress: bool = True,
    tissue_labels: bool = True,
) -> dict[str, Any]:
    """Write a case's phases, study.json, masks and case.json into ``folder``.

    Args:
        case: The generated case.
        folder: Output folder (created if needed; existing files of the same names are
            replaced atomically).
        phase_dtype: ``"int16"`` (rounded) or ``"float32"``.
        compress: gzip the NIfTI files.
        tissue_labels: Also write the tissue map.

    Returns:
        The ``files`` record also stored in case.json (names relative to ``folder``).

    Raises:
        ValueError: unknown ``phase_dtype``.
    """
    # imported here: the io package pulls in the DICOM readers, which the phantom does not need
    from BreastAIAssistantLib.io.volumes import write_json, write_volume

    if phase_dtype not in PHASE_DTYPES:
        known = ", ".join(PHASE_DTYPES)
        raise ValueError(f"phase_dtype must be one of {known}, got {phase_dtype!r}")
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    study = case.study
    width = max(2, len(str(study.n_phases - 1)))
    names = [f"phase_{k:0{width}d}.nii.gz" for k in range(study.n_phases)]
    for name, image in zip(names, study.phases, strict=True):
        write_volume(_as_dtype(image, phase_dtype), out / name, compress=compress)
    write_json(
        {
            "phases": names,
            "times_s": list(study.times_s or ()),
            "description": f"synthetic phantom case, seed {case.seed} (not patient data)",
        },
        out / "study.json",
    )
    files: dict[str, Any] = {
        "phases": names,
        "phase_dtype": phase_dtype,
        "study": "study.json",
        "tumour_mask": "tumour_mask.nii.gz",
        "breast_mask": "breast_mask.nii.gz",
    }
    write_volume(case.tumour_labels, out / files["tumour_mask"], compress=compress)
    write_volume(case.breast_mask, out / files["breast_mask"], compress=compress)
    if tissue_labels:
        files["tissue_labels"] = "tissue_labels.nii.gz"
        write_volume(case.tissue_labels, out / files["tissue_labels"], compress=compress)
    write_json({**case.truth, "files": files}, out / "case.json")
    logger.info("wrote phantom case %d to %s", case.seed, out)
    return files
