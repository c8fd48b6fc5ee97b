"""Training cases: where they come from and how they are put on the model grid.

Sources (each yields :class:`LabelledStudy` objects):

* a phantom dataset folder written by ``breast-ai phantom`` (``<case>/study.json`` + phases,
  ``tumour_mask.nii.gz``, ``breast_mask.nii.gz``);
* the MAMA-MIA layout: ``images/<ID>/<ID>_000k.nii.gz`` and ``segmentations/expert/<ID>.nii.gz``
  (no breast masks: the breast model cannot be trained from it);
* phantom cases generated on the fly from a seed range (no files).

Each case is preprocessed with the same functions the predictors use
(:mod:`BreastAIAssistantLib.inference.preprocess`), so training and inference cannot drift apart,
and kept in memory as float16, cropped to the breast's bounding box plus a margin for the tumour
model.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk

from BreastAIAssistantLib.errors import ReaderError
from BreastAIAssistantLib.inference.predictor import bounding_box
from BreastAIAssistantLib.inference.preprocess import (
    model_grid,
    normalise_phases,
    normalise_single,
    resample,
)
from BreastAIAssistantLib.study import DCEStudy

logger = logging.getLogger(__name__)


@dataclass
class LabelledStudy:
    """A study with its ground truth on the pre-contrast grid."""

    case_id: str
    study: DCEStudy
    tumour: sitk.Image | None
    breast: sitk.Image | None
    tissues: sitk.Image | None = None
    truth: dict[str, Any] | None = None


@dataclass
class TumourSample:
    """A case on the tumour model grid, cropped around the breast (float16 to save memory)."""

    case_id: str
    phases: np.ndarray  # (T, Z, Y, X) float16, shared-first-post scaled
    times_s: np.ndarray  # (T,)
    tumour: np.ndarray  # (Z, Y, X) uint8
    breast: np.ndarray  # (Z, Y, X) uint8
    #: Flat voxel indices of each connected tumour component (26-connectivity), so that the
    #: sampler can visit every lesion equally often, small ones included. Empty: not computed.
    lesions: tuple[np.ndarray, ...] = ()


def lesion_voxels(tumour: np.ndarray) -> tuple[np.ndarray, ...]:
    """Flat indices of the voxels of each 26-connected component of a binary mask."""
    from scipy import ndimage

    labels, n = ndimage.label(tumour > 0, structure=np.ones((3, 3, 3), bool))
    if n == 0:
        return ()
    flat = labels.ravel()
    order = np.argsort(flat, kind="stable")
    bounds = np.searchsorted(flat[order], np.arange(1, n + 2))
    return tuple(order[bounds[k]:bounds[k + 1]].astype(np.int64) for k in range(n))


@dataclass
class BreastSample:
    """A case on the breast model grid (the whole field of view)."""

    case_id: str
    image: np.ndarray  # (Z, Y, X) float16 in [0, 1]
    breast: np.ndarray  # (Z, Y, X) uint8


def _read_mask(path: Path) -> sitk.Image | None:
    return sitk.ReadImage(str(path)) if path.is_file() else None


def enhancing_lesions(labels: sitk.Image | None, truth: dict[str, Any] | None) -> sitk.Image | None:
    """The phantom's lesion labels without its non-enhancing cysts.

    The tumour model segments enhancing lesions (the Patterns 2023 ground truth is the enhancing
    tumour); a simple cyst does not enhance and cannot be told from other non-enhancing tissue
    by DCE alone, so it is neither a training target nor counted in the evaluation.
    """
    if labels is None or not truth:
        return labels
    cysts = [les["label"] for les in truth.get("lesions", []) if les.get("kind") == "cyst"]
    if not cysts:
        return labels
    array = sitk.GetArrayFromImage(labels)
    array[np.isin(array, cysts)] = 0
    image = sitk.GetImageFromArray(array)
    image.CopyInformation(labels)
    return image


def folder_cases(root: str | Path) -> Iterator[LabelledStudy]:
    """Cases of a phantom dataset folder or a MAMA-MIA dataset root.

    Raises:
        ReaderError: the folder holds neither layout.
    """
    from BreastAIAssistantLib.io import load_study

    root = Path(root)
    mama_images = root / "images"
    if mama_images.is_dir() and (root / "segmentations").is_dir():
        expert = root / "segmentations" / "expert"
        for case_dir in sorted(p for p in mama_images.iterdir() if p.is_dir()):
            mask = expert / f"{case_dir.name}.nii.gz"
            if not mask.is_file():
                logger.warning("MAMA-MIA case %s has no expert segmentation; skipped",
                               case_dir.name)  # fmt: skip
                continue
            yield LabelledStudy(case_dir.name, load_study(case_dir), _read_mask(mask), None)
        return
    case_dirs = sorted(p for p in root.iterdir() if (p / "study.json").is_file())
    if not case_dirs:
        raise ReaderError(
            f"{root} is neither a phantom dataset (case folders with study.json) nor a MAMA-MIA "
            "root (images/ and segmentations/expert/)"
        )
    for case_dir in case_dirs:
        truth_path = case_dir / "case.json"
        truth = json.loads(truth_path.read_text()) if truth_path.is_file() else None
        yield LabelledStudy(
            case_dir.name,
            load_study(case_dir, "folder"),
            enhancing_lesions(_read_mask(case_dir / "tumour_mask.nii.gz"), truth),
            _read_mask(case_dir / "breast_mask.nii.gz"),
            _read_mask(case_dir / "tissue_labels.nii.gz"),
            truth,
        )


def phantom_cases(
    seeds: Sequence[int], size: str = "clinical", **spec: Any
) -> Iterator[LabelledStudy]:
    """Phantom cases generated on the fly, one per seed."""
    from BreastAIAssistantLib.phantom.generator import generate_case

    for seed in seeds:
        case = generate_case(int(seed), size=size, **spec)
        yield LabelledStudy(
            f"phantom-{seed}",
            case.study,
            enhancing_lesions(case.tumour_labels, case.truth),
            case.breast_mask,
            case.tissue_labels,
            case.truth,
        )


def _on_grid(mask: sitk.Image | None, grid: sitk.Image) -> np.ndarray:
    if mask is None:
        return np.zeros(grid.GetSize()[::-1], np.uint8)
    binary = sitk.Cast(mask > 0, sitk.sitkUInt8)
    resampled = resample(binary, grid, sitk.sitkNearestNeighbor)
    return sitk.GetArrayFromImage(resampled).astype(np.uint8)


def tumour_sample(
    case: LabelledStudy,
    spacing_mm: Sequence[float],
    normalisation: dict[str, Any],
    margin_mm: float = 20.0,
) -> TumourSample:
    """Put a case on the tumour model grid and crop it to the breast box plus ``margin_mm``."""
    grid = model_grid(case.study.reference, spacing_mm)
    phases = [sitk.GetArrayFromImage(resample(p, grid)) for p in case.study.phases]
    scaled = normalise_phases(phases, normalisation)[:, 0]
    tumour = _on_grid(case.tumour, grid)
    breast = _on_grid(case.breast, grid)
    region = breast if breast.any() else np.ones_like(breast)
    margin = tuple(round(margin_mm / s) for s in spacing_mm[::-1])
    box = bounding_box(region | tumour, margin)
    crop = tuple(slice(lo, hi) for lo, hi in box)  # type: ignore[union-attr]
    times = case.study.times_s or tuple(60.0 * k for k in range(case.study.n_phases))
    return TumourSample(
        case.case_id,
        scaled[(slice(None), *crop)].astype(np.float16),
        np.asarray(times, np.float32),
        tumour[crop],
        breast[crop],
        lesion_voxels(tumour[crop]),
    )


def breast_sample(
    case: LabelledStudy, spacing_mm: Sequence[float], normalisation: dict[str, Any]
) -> BreastSample:
    """Put a case's pre-contrast phase and breast mask on the breast model grid."""
    if case.breast is None:
        raise ReaderError(f"case {case.case_id} has no breast mask; the breast model needs one")
    grid = model_grid(case.study.reference, spacing_mm)
    pre = sitk.GetArrayFromImage(resample(case.study.reference, grid))
    image = normalise_single(pre, normalisation).astype(np.float16)
    return BreastSample(case.case_id, image, _on_grid(case.breast, grid))
