"""Classifier predictors configured by their bundle manifests, with Grad-CAM.

One class per bundle task:

* ``lesion-classification`` (MRSM): benign/malignant from every phase of each lesion slice;
  ``malignancy_probability``; Grad-CAM per phase (a 4-D map, time last).
* ``receptor-prediction``: ER, PR, HER2 probabilities and Ki-67 (%) from one post-contrast phase
  and the lesion's core/rim/shell; the surrogate ``subtype``; Grad-CAM per receptor (4-D, volumes
  ER, PR, HER2).
* ``box-classification`` (DMIF-Net): malignancy from a box alone (a lesion's bounding box or any
  box a user draws); ``dmif_malignancy_probability``; one Grad-CAM map.

Pooling of slice scores into a lesion score: the weighted mean of the slice probabilities (and
of the Ki-67 values), weights = the lesion's area on each slice (uniform over a box's slices),
so that the slices that show the lesion best count most and a grazing edge slice counts little.

Heat maps are computed on the crop grid, upsampled, scaled to [0, 1] per slice, and resampled
onto the part of the study's pre-contrast grid that the crop covers (same spacing, direction and
voxel positions as the study, so they overlay exactly without storing a whole-study volume).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import SimpleITK as sitk
import torch

from BreastAIAssistantLib.bundles import BundleError, ModelBundle, find_bundle
from BreastAIAssistantLib.classify.crops import Crop, box_crop, lesion_crop
from BreastAIAssistantLib.classify.inputs import dmif_input, mrsm_input, receptor_input
from BreastAIAssistantLib.classify.subtype import predicted_subtype
from BreastAIAssistantLib.explain.gradcam import class_activation_map
from BreastAIAssistantLib.inference.device import resolve_device
from BreastAIAssistantLib.inference.preprocess import resample
from BreastAIAssistantLib.study import DCEStudy

logger = logging.getLogger(__name__)

CLASSIFIER_TASKS = ("lesion-classification", "receptor-prediction", "box-classification")


@dataclass
class ClassifierResult:
    """One model's answer for one lesion or box.

    Attributes:
        model: Bundle id.
        values: JSON-ready predictions (names as in ``report.json``).
        heatmap: Grad-CAM on the covered part of the study grid (3-D, or 4-D with
            ``heatmap_volumes`` naming the fourth axis), or ``None``.
        heatmap_volumes: Names of the 4-D map's volumes (phases or receptors).
        slice_scores: Per-slice probabilities (for inspection).
    """

    model: str
    values: dict[str, Any]
    heatmap: sitk.Image | None = None
    heatmap_volumes: list[str] = field(default_factory=list)
    slice_scores: list[float] = field(default_factory=list)


def covered_grid(crop: Crop, reference: sitk.Image) -> sitk.Image:
    """The sub-grid of ``reference`` (same voxel lattice) covering the crop's footprint."""
    size = crop.grid.GetSize()
    corners = [crop.grid.TransformIndexToPhysicalPoint((i, j, k))
               for i in (0, size[0] - 1) for j in (0, size[1] - 1) for k in (0, size[2] - 1)]
    idx = np.array([reference.TransformPhysicalPointToContinuousIndex(c) for c in corners])
    full = np.array(reference.GetSize())
    lo = np.clip(np.floor(idx.min(0)).astype(int), 0, full - 1)
    hi = np.clip(np.ceil(idx.max(0)).astype(int), 0, full - 1)
    grid = sitk.Image([int(v) for v in hi - lo + 1], sitk.sitkUInt8)
    grid.SetSpacing(reference.GetSpacing())
    grid.SetDirection(reference.GetDirection())
    grid.SetOrigin(reference.TransformIndexToPhysicalPoint([int(v) for v in lo]))
    return grid


def _to_study(maps_zyx: np.ndarray, crop: Crop, target: sitk.Image) -> sitk.Image:
    image = sitk.GetImageFromArray(np.ascontiguousarray(maps_zyx, dtype=np.float32))
    image.CopyInformation(crop.grid)
    return resample(image, target)


def _pool(values: np.ndarray, weights: np.ndarray) -> float:
    return float(np.sum(values * weights) / max(float(np.sum(weights)), 1e-12))


class Classifier:
    """Base: loads a verified bundle and runs its network with Grad-CAM on a crop's slices.

    Args:
        bundle: Bundle, id or folder.
        device: ``auto``, ``cpu`` or ``cuda``.
        explain: Compute Grad-CAM maps.
        method: ``gradcam`` or ``gradcam++``.
        batch_size: Slices per forward pass.
    """

    task = ""

    def __init__(self, bundle: ModelBundle | str, device: str = "auto", explain: bool = True,
                 method: str = "gradcam", batch_size: int = 16) -> None:
        self.bundle = bundle if isinstance(bundle, ModelBundle) else find_bundle(bundle)
        manifest = self.bundle.manifest
        if manifest.task != self.task:
            raise BundleError(f"model {manifest.id!r} is a {manifest.task} bundle, not "
                              f"{self.task}")
        self.device = resolve_device(device)
        self.module = self.bundle.load(str(self.device))
        self.inputs = manifest.inputs
        self.crop_settings = dict(self.inputs.get("crop", {}))
        self.explain = explain
        self.method = method
        self.batch_size = batch_size
        self.id = manifest.id

    def _run(self, x: np.ndarray, target: int | None) -> tuple[np.ndarray, np.ndarray | None]:
        """Outputs ``(Z, K)`` and, when ``target`` is given, maps ``(Z, *input spatial)``."""
        outputs, maps = [], []
        for start in range(0, x.shape[0], self.batch_size):
            batch = torch.from_numpy(x[start: start + self.batch_size]).to(self.device)
            if target is None:
                with torch.inference_mode():
                    out, _ = self.module(batch)
            else:
                out, cam = class_activation_map(self.module, batch, target, self.method)
                maps.append(cam.float().cpu().numpy())
            outputs.append(out.float().cpu().numpy())
        return np.concatenate(outputs), (np.concatenate(maps) if maps else None)

    def crop(self, study: DCEStudy, lesion: sitk.Image,
             scale: tuple[float, float] | None = None) -> Crop:
        return lesion_crop(study, lesion, scale=scale, **self.crop_settings)


def _softmax_positive(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e[:, 1] / e.sum(axis=1)


class MRSMClassifier(Classifier):
    """Benign/malignant from all phases (MRSM)."""

    task = "lesion-classification"

    def predict(self, study: DCEStudy, lesion: sitk.Image,
                scale: tuple[float, float] | None = None) -> ClassifierResult:
        crop = self.crop(study, lesion, scale)
        x = mrsm_input(crop)
        logits, cams = self._run(x, 1 if self.explain else None)
        p = _softmax_positive(logits)
        result = ClassifierResult(self.id, {"malignancy_probability": _pool(p, crop.weights)},
                                  slice_scores=[float(v) for v in p])
        if cams is not None:  # (Z, T, S, S) -> one 3-D map per phase
            target = covered_grid(crop, study.reference)
            volumes = [_to_study(cams[:, t], crop, target) for t in range(cams.shape[1])]
            result.heatmap = sitk.JoinSeries(volumes)
            result.heatmap_volumes = [f"phase {t}" for t in range(cams.shape[1])]
            mass = cams.sum(axis=(0, 2, 3))
            result.values["gradcam_peak_phase"] = int(np.argmax(mass))
        return result


class ReceptorClassifier(Classifier):
    """ER, PR, HER2, Ki-67 and subtype from one post-contrast phase."""

    task = "receptor-prediction"
    TARGETS = ("er", "pr", "her2")

    def predict(self, study: DCEStudy, lesion: sitk.Image,
                scale: tuple[float, float] | None = None) -> ClassifierResult:
        crop = self.crop(study, lesion, scale)
        regions = self.inputs.get("regions", {})
        x = receptor_input(crop, int(self.inputs.get("phase", 1)),
                           float(regions.get("rim_mm", 2.0)), float(regions.get("shell_mm", 5.0)))
        outputs, _ = self._run(x, None)
        probs = 1.0 / (1.0 + np.exp(-outputs[:, :3]))
        values: dict[str, Any] = {name: _pool(probs[:, i], crop.weights)
                                  for i, name in enumerate(self.TARGETS)}
        values["ki67"] = _pool(outputs[:, 3], crop.weights)
        cutoff = float(self.bundle.manifest.outputs.get("ki67_cutoff_percent", 20.0))
        values["subtype"] = predicted_subtype(values["er"], values["pr"], values["her2"],
                                              values["ki67"], cutoff)
        result = ClassifierResult(self.id, values, slice_scores=[float(v) for v in probs[:, 0]])
        if self.explain:
            target = covered_grid(crop, study.reference)
            volumes = []
            for i in range(len(self.TARGETS)):
                _, cams = self._run(x, i)
                volumes.append(_to_study(cams, crop, target))
            result.heatmap = sitk.JoinSeries(volumes)
            result.heatmap_volumes = list(self.TARGETS)
        return result


class DMIFClassifier(Classifier):
    """Malignancy from a box (DMIF-Net); no delineation needed."""

    task = "box-classification"

    def predict_box(self, study: DCEStudy, lo_zyx: Sequence[int], hi_zyx: Sequence[int],
                    scale: tuple[float, float] | None = None) -> ClassifierResult:
        crop = box_crop(study, np.asarray(lo_zyx), np.asarray(hi_zyx), scale=scale,
                        **self.crop_settings)
        x = dmif_input(crop, self.inputs.get("sequences", ["phase:1", "subtraction:1"]))
        logits, cams = self._run(x, 1 if self.explain else None)
        p = _softmax_positive(logits)
        result = ClassifierResult(self.id, {"dmif_malignancy_probability": _pool(p, crop.weights)},
                                  slice_scores=[float(v) for v in p])
        if cams is not None:
            result.heatmap = _to_study(cams, crop, covered_grid(crop, study.reference))
        return result

    def predict(self, study: DCEStudy, lesion: sitk.Image,
                scale: tuple[float, float] | None = None) -> ClassifierResult:
        """The lesion's bounding box (the delineation itself is not used)."""
        from BreastAIAssistantLib.classify.crops import index_box

        lo, hi = index_box(sitk.GetArrayViewFromImage(lesion) > 0)
        return self.predict_box(study, lo, hi, scale)


CLASSIFIERS: dict[str, type[Classifier]] = {
    cls.task: cls for cls in (MRSMClassifier, ReceptorClassifier, DMIFClassifier)
}


def load_classifier(bundle: ModelBundle | str, **kwargs: Any) -> Classifier:
    """The predictor class for a classifier bundle's task."""
    bundle = bundle if isinstance(bundle, ModelBundle) else find_bundle(bundle)
    task = bundle.manifest.task
    if task not in CLASSIFIERS:
        raise BundleError(f"model {bundle.manifest.id!r} ({task}) is not a classifier; "
                          f"classifier tasks: {', '.join(CLASSIFIER_TASKS)}")
    return CLASSIFIERS[task](bundle, **kwargs)
