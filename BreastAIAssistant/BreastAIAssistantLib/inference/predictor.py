"""Inference layer 2: predictors configured by a model bundle's manifest.

* :class:`BreastPredictor` runs the whole-breast U-Net on the pre-contrast phase.
* :class:`TumourPredictor` runs the spatial-temporal segmenter on every phase, inside the breast
  mask's bounding box, skipping windows that hold no enhancing breast tissue, and gates the
  probability by the breast mask.

Both resample to the manifest's spacing (same physical extent, :func:`.preprocess.model_grid`),
normalise as the manifest says, run :func:`.sliding_window.sliding_window` with Gaussian blending
under the device policy of :mod:`.device`, and bring the probability back onto the study's
pre-contrast grid. They never print; they report through ``progress(stage, fraction)`` and stop
when ``cancel()`` returns True.

Window skipping rule (tumour): windows come from the whole-volume lattice of a full sliding
window; those that do not touch the (dilated) breast mask's bounding box are not placed, and a
placed window is evaluated only when it holds at least one *candidate* voxel: inside the dilated
breast mask and with early percent enhancement ≥ ``candidate_min_pe`` (default 50 %, the
BI-RADS "medium" initial rise; the I-SPY FTV threshold is 70 %). A lesion's non-enhancing core
lies in the windows of its enhancing rim. ``bench/segment.py --check-cases N`` counts the
ground-truth tumour voxels outside every evaluated window on phantom studies (0 is required).

Of the placed windows, the tumour predictor then evaluates a coarse tiling first and adds the
other windows only around voxels whose probability reaches ``refine_threshold`` (default 0.05):
there the result equals the full sliding window's exactly (see
:func:`.sliding_window.coarse_to_fine_window`). Background parenchymal enhancement makes most
windows of a breast "enhancing", so the skipping rule alone saves little; with the refinement the
tumour stage was 2.3-4.6x faster than MONAI's whole-volume sliding window on three phantom cases,
with identical output (``bench/segment.py``).

Test-time scales (tumour, opt-in): with ``scales=(1, 1.25)`` the whole chain above runs once on
the manifest's grid and once on a grid 1.25x finer, and the two probability maps are averaged on
the study grid. The README gives what that changed on validation and held-out phantom studies.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import SimpleITK as sitk
import torch
from scipy import ndimage

from BreastAIAssistantLib.bundles import BundleError, ModelBundle
from BreastAIAssistantLib.inference.device import precision, resolve_device, with_oom_fallback
from BreastAIAssistantLib.inference.preprocess import (
    model_grid,
    normalise_phases,
    normalise_single,
    resample,
    to_study_grid,
)
from BreastAIAssistantLib.inference.sliding_window import (
    WindowPlan,
    coarse_to_fine_window,
    plan_windows,
    sliding_window,
)
from BreastAIAssistantLib.study import DCEStudy

logger = logging.getLogger(__name__)

Progress = Callable[[str, float], None]
#: Nominal phase interval used when a study has no acquisition times.
NOMINAL_INTERVAL_S = 60.0


@dataclass
class PredictionInfo:
    """What a prediction did: for ``report.json``/``run.json`` and the benchmarks."""

    model: dict[str, Any]
    device: str
    batch_size: int
    windows_evaluated: int
    windows_total: int
    model_grid_size_xyz: tuple[int, ...]
    timings_s: dict[str, float] = field(default_factory=dict)
    #: Test-time scales whose maps were averaged (tumour; windows and timings are their sums).
    scales: tuple[float, ...] = (1.0,)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "device": self.device,
            "batch_size": self.batch_size,
            "windows_evaluated": self.windows_evaluated,
            "windows_total": self.windows_total,
            "model_grid_size_xyz": list(self.model_grid_size_xyz),
            "timings_s": {k: round(v, 4) for k, v in self.timings_s.items()},
            "scales": list(self.scales),
        }


def _pad_to(array: np.ndarray, patch: tuple[int, int, int]) -> tuple[np.ndarray, tuple]:
    """Pad the last three axes (at the end) up to ``patch``; return the crop to undo it."""
    spatial = array.shape[-3:]
    pads = [max(0, p - s) for p, s in zip(patch, spatial, strict=True)]
    if not any(pads):
        return array, tuple(slice(0, s) for s in spatial)
    widths = [(0, 0)] * (array.ndim - 3) + [(0, p) for p in pads]
    return np.pad(array, widths, mode="edge"), tuple(slice(0, s) for s in spatial)


def _part_of(progress: Progress | None, k: int, n: int) -> Progress | None:
    """Progress of the k-th of n equal parts, reported as a fraction of the whole."""
    if progress is None or n == 1:
        return progress

    def report(stage: str, fraction: float) -> None:
        progress(stage, (k + fraction) / n)

    return report


def bounding_box(mask_zyx: np.ndarray, margin: tuple[int, int, int]) -> tuple | None:
    """``((z0, z1), (y0, y1), (x0, x1))`` of the True voxels grown by ``margin``, or None."""
    if not mask_zyx.any():
        return None
    box = []
    for axis, m in enumerate(margin):
        other = tuple(a for a in range(3) if a != axis)
        hits = np.flatnonzero(mask_zyx.any(axis=other))
        box.append((max(0, int(hits[0]) - m), min(mask_zyx.shape[axis], int(hits[-1]) + 1 + m)))
    return tuple(box)


class _Predictor:
    """Shared machinery: bundle, device, model grid, sliding window with OOM fallback."""

    def __init__(
        self,
        bundle: ModelBundle,
        device: str = "auto",
        batch_size: int = 2,
        overlap: float = 0.5,
        expected_task: str = "",
    ) -> None:
        if expected_task and bundle.manifest.task != expected_task:
            raise BundleError(
                f"model {bundle.manifest.id!r} is a {bundle.manifest.task} model, "
                f"not a {expected_task} model"
            )
        self.bundle = bundle
        self.manifest = bundle.manifest
        self.device = resolve_device(device)
        self.batch_size = batch_size
        self.overlap = overlap
        self._module: Any = None

    def _info(self, device: str, batch: int, evaluated: tuple, plan: WindowPlan, grid: sitk.Image,
              prep_s: float, infer_s: float) -> PredictionInfo:  # fmt: skip
        return PredictionInfo(
            self.manifest.summary(), device, batch, len(evaluated), plan.total,
            grid.GetSize(), {"preprocess": prep_s, "inference": infer_s},
        )  # fmt: skip

    def _module_on(self, device: torch.device) -> Any:
        if self._module is None:
            self._module = self.bundle.load("cpu")
        return self._module.to(device)

    def _run(
        self,
        inputs: np.ndarray,
        call: Callable[[Any, torch.Tensor], torch.Tensor],
        plan: WindowPlan,
        progress: Progress | None,
        cancel: Callable[[], bool] | None,
        refine_threshold: float | None = None,
        region: np.ndarray | None = None,
    ) -> tuple[np.ndarray, tuple[tuple[int, int, int], ...], str, int]:
        """Probability map, starts of the windows evaluated, device and batch size used.

        ``refine_threshold`` set: :func:`coarse_to_fine_window` (refining only inside
        ``region`` when given), else the full plan."""
        patch = self.manifest.patch_size_zyx

        def run(device: torch.device, batch_size: int) -> tuple[np.ndarray, tuple]:
            module = self._module_on(device)
            tensor = torch.from_numpy(inputs).to(device)

            def predict(batch: torch.Tensor) -> torch.Tensor:
                return torch.sigmoid(call(module, batch).float())

            options = {"batch_size": batch_size, "progress": progress, "cancel": cancel}
            with precision(device):
                if refine_threshold is None:
                    out, _ = sliding_window(tensor, predict, patch, plan, **options)
                    evaluated = plan.starts
                else:
                    where = None if region is None else torch.from_numpy(region).to(device)
                    out, _, evaluated = coarse_to_fine_window(
                        tensor, predict, patch, plan, refine_threshold, region=where, **options
                    )
            return out[0].cpu().numpy(), evaluated

        (prob, evaluated), device, batch = with_oom_fallback(run, self.device, self.batch_size)
        return prob, evaluated, str(device), batch


class BreastPredictor(_Predictor):
    """Whole-breast probability from the pre-contrast phase (manifest task
    ``breast-segmentation``)."""

    def __init__(self, bundle: ModelBundle, **kwargs: Any) -> None:
        super().__init__(bundle, expected_task="breast-segmentation", **kwargs)

    def predict(
        self,
        study: DCEStudy,
        progress: Progress | None = None,
        cancel: Callable[[], bool] | None = None,
    ) -> tuple[sitk.Image, PredictionInfo]:
        """Breast probability (float32) on the study's pre-contrast grid."""
        clock = time.perf_counter()
        grid = model_grid(study.reference, self.manifest.spacing_mm)
        # a copy, not a view: the resampled image is a temporary
        pre = sitk.GetArrayFromImage(resample(study.reference, grid))
        inputs = normalise_single(pre, self.manifest.normalisation)[None]
        inputs, crop = _pad_to(inputs, self.manifest.patch_size_zyx)
        plan = plan_windows(inputs.shape[-3:], self.manifest.patch_size_zyx, self.overlap)
        prep_s = time.perf_counter() - clock
        clock = time.perf_counter()
        prob, evaluated, device, batch = self._run(inputs, lambda m, b: m(b), plan, progress,
                                                   cancel)  # fmt: skip
        infer_s = time.perf_counter() - clock
        image = sitk.GetImageFromArray(np.ascontiguousarray(prob[crop]))
        image.CopyInformation(grid)
        result = to_study_grid(image, study.reference)
        return result, self._info(device, batch, evaluated, plan, grid, prep_s, infer_s)


class TumourPredictor(_Predictor):
    """Tumour probability from all phases (manifest task ``tumour-segmentation``).

    Args:
        bundle: The tumour model bundle.
        candidate_min_pe: Early percent enhancement that makes a breast voxel a window
            candidate (see the module docstring).
        breast_margin_mm: Dilation of the breast mask for the ROI and the gate, so that a
            tumour at the chest wall or skin is not cut by a slightly small breast mask.
        refine_threshold: Coarse-to-fine windows (see the module docstring): a voxel whose
            probability reaches this value gets every planned window; ``None`` evaluates all
            planned windows.
        scales: Test-time scales: the network runs on the manifest's grid divided by each
            scale (1.25: voxels 1/1.25 as wide, so a lesion looks 1.25x larger) and the
            probability is the mean of the maps, each brought back to the study grid. Default:
            the manifest's ``inputs.scales``, else ``(1.0,)``. Each scale s costs about s³
            times the work of scale 1.
        **kwargs: ``device``, ``batch_size``, ``overlap``.
    """

    def __init__(
        self,
        bundle: ModelBundle,
        candidate_min_pe: float = 50.0,
        breast_margin_mm: float = 3.0,
        refine_threshold: float | None = 0.05,
        scales: Sequence[float] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(bundle, expected_task="tumour-segmentation", **kwargs)
        self.candidate_min_pe = candidate_min_pe
        self.breast_margin_mm = breast_margin_mm
        self.refine_threshold = refine_threshold
        self.max_phases = int(self.manifest.inputs.get("max_phases", 9))
        chosen = scales if scales is not None else self.manifest.inputs.get("scales", (1.0,))
        self.scales = tuple(float(v) for v in chosen)
        if not self.scales or not all(0.25 <= v <= 4.0 for v in self.scales):
            raise BundleError(f"tumour scales must be 0.25-4, at least one; got {chosen!r}")

    def _times(self, study: DCEStudy) -> np.ndarray:
        if study.times_s is not None:
            return np.asarray(study.times_s, dtype=np.float32)
        logger.info("no acquisition times: nominal %.0f s per phase for the time encoding",
                    NOMINAL_INTERVAL_S)  # fmt: skip
        return np.arange(study.n_phases, dtype=np.float32) * NOMINAL_INTERVAL_S

    def predict(
        self,
        study: DCEStudy,
        breast_mask: sitk.Image,
        early_phase: int = 1,
        progress: Progress | None = None,
        cancel: Callable[[], bool] | None = None,
    ) -> tuple[sitk.Image, PredictionInfo]:
        """Tumour probability (float32, 0 outside the breast) on the pre-contrast grid.

        Args:
            study: The study (2 to ``max_phases`` phases).
            breast_mask: Binary breast mask on the study grid.
            early_phase: Phase whose enhancement defines window candidates.
            progress: ``progress(stage, fraction)``.
            cancel: Returns True to stop.

        Raises:
            BundleError: more phases than the model accepts.
        """
        if study.n_phases > self.max_phases:
            raise BundleError(
                f"model {self.manifest.id!r} accepts at most {self.max_phases} phases; the study "
                f"has {study.n_phases}"
            )
        n = len(self.scales)
        maps, infos = [], []
        for k, scale in enumerate(self.scales):
            spacing = tuple(v / scale for v in self.manifest.spacing_mm)
            prob, info = self._predict_on(study, breast_mask, spacing, early_phase,
                                          _part_of(progress, k, n), cancel)  # fmt: skip
            maps.append(prob)
            infos.append(info)
        result = maps[0]
        info = infos[0]
        if n > 1:
            result = sitk.NaryAdd(maps) / float(n)
            info.windows_evaluated = sum(i.windows_evaluated for i in infos)
            info.windows_total = sum(i.windows_total for i in infos)
            info.timings_s = {key: sum(i.timings_s[key] for i in infos) for key in info.timings_s}
        info.scales = self.scales
        return result, info

    def _predict_on(
        self,
        study: DCEStudy,
        breast_mask: sitk.Image,
        spacing: tuple[float, ...],
        early_phase: int,
        progress: Progress | None,
        cancel: Callable[[], bool] | None,
    ) -> tuple[sitk.Image, PredictionInfo]:
        """The probability of one grid (``spacing``, x,y,z mm), on the study grid."""
        clock = time.perf_counter()
        grid = model_grid(study.reference, spacing)
        phases = [sitk.GetArrayFromImage(resample(p, grid)) for p in study.phases]
        breast = sitk.GetArrayFromImage(
            resample(sitk.Cast(breast_mask > 0, sitk.sitkUInt8), grid, sitk.sitkNearestNeighbor)
        ).astype(bool)
        spacing_zyx = np.asarray(spacing[::-1])
        radius = np.maximum(1, np.round(self.breast_margin_mm / spacing_zyx)).astype(int)
        breast = ndimage.binary_dilation(breast, structure=np.ones(2 * radius + 1, bool))
        pre = phases[0]
        enhancement = (phases[early_phase] - pre) / np.maximum(pre, 1e-3 * max(pre.max(), 1.0))
        candidates = breast & (100.0 * enhancement >= self.candidate_min_pe)
        inputs = normalise_phases(phases, self.manifest.normalisation)
        del phases
        patch = self.manifest.patch_size_zyx
        inputs, crop = _pad_to(inputs, patch)
        candidates, _ = _pad_to(candidates, patch)
        gate, _ = _pad_to(breast, patch)
        box = bounding_box(breast, (0, 0, 0))
        plan = plan_windows(inputs.shape[-3:], patch, self.overlap, box,
                            torch.from_numpy(np.ascontiguousarray(candidates)))  # fmt: skip
        times = torch.from_numpy(self._times(study))
        present = torch.ones(study.n_phases, dtype=torch.bool)
        prep_s = time.perf_counter() - clock

        def call(module: Any, batch: torch.Tensor) -> torch.Tensor:
            n = batch.shape[0]
            return module(batch, times.to(batch.device).expand(n, -1),
                          present.to(batch.device).expand(n, -1))  # fmt: skip

        clock = time.perf_counter()
        if plan.starts:
            prob, evaluated, device, batch = self._run(inputs, call, plan, progress, cancel,
                                                       self.refine_threshold,
                                                       np.ascontiguousarray(gate))  # fmt: skip
        else:
            logger.info("no enhancing breast tissue: tumour model not run")
            prob, device, batch = np.zeros(inputs.shape[-3:], np.float32), str(self.device), 0
            evaluated = ()
        infer_s = time.perf_counter() - clock
        prob = np.ascontiguousarray(prob[crop]) * breast[crop]
        image = sitk.GetImageFromArray(prob.astype(np.float32))
        image.CopyInformation(grid)
        result = to_study_grid(image, study.reference)
        return result, self._info(device, batch, evaluated, plan, grid, prep_s, infer_s)
