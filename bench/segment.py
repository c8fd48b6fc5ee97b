"""Benchmark of the segmentation stages (issue 4), against MONAI's whole-volume sliding window.

What it measures, on a seeded phantom study (default: clinical size, 448 x 448 x 160, 6 phases):

* **ours**, as ``breast-ai run`` does it (:func:`BreastAIAssistantLib.pipeline.run_analysis`):
  ``BreastPredictor.predict``, ``clean_breast_mask``, ``TumourPredictor.predict`` (ROI = the
  dilated breast box, windows without enhancing breast tissue skipped), ``lesion_instances`` and
  ``grow_small_lesions`` (the manifest's ``outputs.grow``; nothing when it declares none), each
  timed separately (model loading included, as in a run), with the predictors' own
  :class:`~BreastAIAssistantLib.inference.predictor.PredictionInfo`, windows evaluated vs. the
  windows of a full sliding window over the whole model grid, and peak memory (``ru_maxrss`` after
  the stages plus a 10 ms RSS sampler during them).
* **the peer**, in the same run: MONAI's ``sliding_window_inference`` (overlap 0.5, Gaussian
  blending, the same windows per batch) over the *whole* model-grid volume, no ROI and no skipping,
  with the same scripted tumour network loaded again from the same bundle. Its input is prepared
  with the same functions ``TumourPredictor`` uses (``model_grid``, ``resample``,
  ``normalise_phases`` -> ``(T, 2, Z, Y, X)``), flattened to MONAI's ``(1, T*2, Z, Y, X)``; the
  predictor callable folds the channels back to ``(B, T, 2, ...)`` and calls the network with the
  acquisition times and an all-True phase mask, then applies the same sigmoid. The result is gated
  by the same dilated breast mask (our breast mask, dilated as ``TumourPredictor`` does) and brought
  back to the study grid with ``to_study_grid``. Reported: its seconds (preprocessing, model load +
  inference, gating), windows, the ratio peer / ours for the tumour stage, and the Dice between the
  two binary outputs (threshold of the manifest, default 0.5) on the study grid.
* **the window-skipping rule**: the ground-truth tumour voxels (study grid) that lie outside every
  evaluated window (windows drawn on the model grid, brought back by nearest neighbour), for the
  benchmark case and ``--check-cases N`` more phantom cases (seeds ``seed+1..seed+N``, phase count
  drawn by the seed), each with our predicted breast mask (what a run does) and with the phantom's
  true breast mask (the rule alone). Check cases only plan windows: the network is not run.

The phantom is generated and written (float32, uncompressed) by a child process and read back as
a study folder, as ``breast-ai run`` would read it, so that the phantom generator's memory does not
count in our peak RSS. Goals (2 CPU cores, clinical size): segmentation stages < 30 s (CUDA:
< 2 s on an H100), peak RSS < 4 GiB, tumour stage >= 3x faster than the peer with Dice >= 0.99,
no tumour voxel outside the evaluated windows. MONAI is not a project dependency: without it
the peer is reported as skipped.

Run (full benchmark, trained bundles from Resources/Models or ``--models``)::

    OMP_NUM_THREADS=2 .venv/bin/python bench/segment.py --check-cases 3 --dice-cases 3

Prints one JSON object. Timings with untrained development bundles say nothing about accuracy.
"""

from __future__ import annotations

import argparse
import gc
import json
import multiprocessing
import os
import platform
import resource
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk
import torch
from scipy import ndimage

from BreastAIAssistantLib.bundles import ModelBundle, find_bundle
from BreastAIAssistantLib.dce.timing import select_phases
from BreastAIAssistantLib.errors import BreastAIError
from BreastAIAssistantLib.inference.device import describe_device, precision, resolve_device
from BreastAIAssistantLib.inference.postprocess import (
    clean_breast_mask,
    lesion_grouping,
    lesion_instances,
    lesion_thresholds,
)
from BreastAIAssistantLib.inference.predictor import (
    NOMINAL_INTERVAL_S,
    BreastPredictor,
    TumourPredictor,
)
from BreastAIAssistantLib.inference.preprocess import (
    model_grid,
    normalise_phases,
    resample,
    to_study_grid,
)
from BreastAIAssistantLib.inference.refine import grow_small_lesions, growth_settings
from BreastAIAssistantLib.inference.sliding_window import WindowPlan, plan_windows
from BreastAIAssistantLib.io import load_study
from BreastAIAssistantLib.pipeline import BREAST_MODEL, TUMOUR_MODEL
from BreastAIAssistantLib.study import DCEStudy

GIB = float(1 << 30)
OVERLAP = 0.5
BATCH_SIZE = 2  # AnalysisSettings.batch_size: windows per network call, ours and the peer's
MIN_LESION_ML = 0.02  # AnalysisSettings.min_lesion_ml
GOALS = {
    "segmentation_s_cpu": 30.0,
    "segmentation_s_cuda": 2.0,
    "peak_rss_gib": 4.0,
    "speedup_vs_peer": 3.0,
    "dice_vs_peer": 0.99,
    "tumour_voxels_outside_windows": 0,
}


# --- memory -------------------------------------------------------------------------------------


def rss_bytes() -> int:
    """Current resident set size."""
    with open("/proc/self/statm", encoding="ascii") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def max_rss_bytes() -> int:
    """Peak resident set size of this process so far (``ru_maxrss`` is in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class RssSampler:
    """Peak current RSS over a block, sampled every 10 ms on a thread."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, rss_bytes())

    def __enter__(self) -> RssSampler:
        self.peak = rss_bytes()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_bytes())


# --- phantom cases ------------------------------------------------------------------------------


@dataclass
class BenchCase:
    """A phantom case read back from its folder."""

    seed: int
    study: DCEStudy
    tumour_labels: np.ndarray  # (z, y, x) instance labels on the study grid
    breast_truth: sitk.Image
    lesions: list[dict[str, Any]]
    generate_s: float
    load_s: float


def _write_phantom(seed: int, size: str, n_phases: int | None, folder: str) -> None:
    """Child process: generate one case and write it (float32, uncompressed)."""
    from BreastAIAssistantLib.phantom import generate_case, write_case

    case = generate_case(seed, size=size, n_phases=n_phases)
    write_case(case, folder, phase_dtype="float32", compress=False, tissue_labels=False)


def load_case(seed: int, size: str, n_phases: int | None, workdir: Path) -> BenchCase:
    """Generate a case in a child process, then read it as ``breast-ai run`` reads a study."""
    folder = workdir / f"case_{seed}"
    clock = time.perf_counter()
    child = multiprocessing.get_context("spawn").Process(
        target=_write_phantom, args=(seed, size, n_phases, str(folder))
    )
    child.start()
    child.join()
    if child.exitcode != 0:
        raise RuntimeError(f"phantom generation for seed {seed} failed ({child.exitcode})")
    generate_s = time.perf_counter() - clock
    clock = time.perf_counter()
    record = json.loads((folder / "case.json").read_text(encoding="utf-8"))
    study = load_study(folder)
    labels = sitk.GetArrayFromImage(sitk.ReadImage(str(folder / record["files"]["tumour_mask"])))
    breast = sitk.ReadImage(str(folder / record["files"]["breast_mask"]))
    load_s = time.perf_counter() - clock
    return BenchCase(seed, study, labels, breast, record.get("lesions", []), generate_s, load_s)


# --- the window plan a prediction used ----------------------------------------------------------


class _PlanReady(Exception):
    """Raised by :class:`PlanRecorder` in plan-only mode once the plan is known."""


class PlanRecorder(TumourPredictor):
    """A ``TumourPredictor`` that keeps the window plan (and padded shape) it evaluated.

    With ``plan_only`` it stops before running the network: the plan is all that the coverage
    check needs, and it comes from the predictor's own code, not from a copy of it.
    """

    def __init__(self, bundle: ModelBundle, plan_only: bool = False, **kwargs: Any) -> None:
        super().__init__(bundle, **kwargs)
        self.plan_only = plan_only
        self.plan: WindowPlan | None = None
        self.evaluated: tuple[tuple[int, int, int], ...] = ()

    def _run(
        self,
        inputs: np.ndarray,
        call: Callable[[Any, torch.Tensor], torch.Tensor],
        plan: WindowPlan,
        progress: Callable[[str, float], None] | None,
        cancel: Callable[[], bool] | None,
        refine_threshold: float | None = None,
        region: np.ndarray | None = None,
    ) -> tuple[np.ndarray, tuple[tuple[int, int, int], ...], str, int]:
        self.plan = plan
        if self.plan_only:
            raise _PlanReady
        result = super()._run(inputs, call, plan, progress, cancel, refine_threshold, region)
        self.evaluated = result[1]
        return result

    def plan_for(self, study: DCEStudy, breast_mask: sitk.Image, early: int) -> WindowPlan | None:
        """The plan ``predict`` would evaluate (None: no window at all)."""
        self.plan = None
        try:
            self.predict(study, breast_mask, early)
        except _PlanReady:
            pass
        return self.plan


def padded_shape(grid: sitk.Image, patch_zyx: Sequence[int]) -> tuple[int, int, int]:
    """Model-grid shape after the predictors' padding up to one patch."""
    zyx = grid.GetSize()[::-1]
    return tuple(max(int(s), int(p)) for s, p in zip(zyx, patch_zyx, strict=True))  # type: ignore[return-value]


def full_window_count(grid: sitk.Image, patch_zyx: Sequence[int]) -> int:
    """Windows of a plain sliding window over the whole (padded) model grid."""
    return plan_windows(padded_shape(grid, patch_zyx), patch_zyx, OVERLAP).total


def breast_gate(
    breast_mask: sitk.Image, grid: sitk.Image, predictor: TumourPredictor
) -> np.ndarray:
    """The dilated breast mask on the model grid, as ``TumourPredictor.predict`` makes it."""
    binary = sitk.Cast(breast_mask > 0, sitk.sitkUInt8)
    breast = sitk.GetArrayFromImage(resample(binary, grid, sitk.sitkNearestNeighbor)).astype(bool)
    spacing_zyx = np.asarray(predictor.manifest.spacing_mm[::-1])
    radius = np.maximum(1, np.round(predictor.breast_margin_mm / spacing_zyx)).astype(int)
    return ndimage.binary_dilation(breast, structure=np.ones(2 * radius + 1, bool))


def to_study_mask(mask_zyx: np.ndarray, grid: sitk.Image, reference: sitk.Image) -> np.ndarray:
    """A boolean model-grid mask on the study grid (nearest neighbour: the containing voxel)."""
    image = sitk.GetImageFromArray(np.ascontiguousarray(mask_zyx, dtype=np.uint8))
    image.CopyInformation(grid)
    return sitk.GetArrayFromImage(to_study_grid(image, reference, sitk.sitkNearestNeighbor)) > 0


def window_coverage(
    plan: WindowPlan | None, grid: sitk.Image, patch_zyx: Sequence[int]
) -> np.ndarray:
    """Union of the evaluated windows on the (unpadded) model grid."""
    covered = np.zeros(padded_shape(grid, patch_zyx), bool)
    pz, py, px = patch_zyx
    for z, y, x in plan.starts if plan is not None else ():
        covered[z : z + pz, y : y + py, x : x + px] = True
    gz, gy, gx = grid.GetSize()[::-1]
    return covered[:gz, :gy, :gx]


def lost_voxels(
    labels_zyx: np.ndarray, kept: np.ndarray, lesions: Sequence[dict[str, Any]]
) -> dict[str, Any]:
    """Ground-truth tumour voxels outside ``kept``, in total and per lesion."""
    tumour = labels_zyx > 0
    outside = tumour & ~kept
    n_labels = int(labels_zyx.max()) + 1
    per_total = np.bincount(labels_zyx[tumour].ravel(), minlength=n_labels)
    per_out = np.bincount(labels_zyx[outside].ravel(), minlength=n_labels)
    by_label = {int(r["label"]): r for r in lesions}
    per_lesion = [
        {
            "label": k,
            "kind": by_label.get(k, {}).get("kind"),
            "class": by_label.get(k, {}).get("class"),
            "voxels": int(per_total[k]),
            "outside": int(per_out[k]),
        }
        for k in range(1, n_labels)
        if per_total[k]
    ]
    return {"outside": int(outside.sum()), "total": int(tumour.sum()), "per_lesion": per_lesion}


def rule_check(
    case: BenchCase,
    bundle: ModelBundle,
    breast_masks: dict[str, sitk.Image],
    early: int,
    plans: dict[str, WindowPlan | None] | None = None,
) -> dict[str, Any]:
    """Tumour voxels outside the evaluated windows and outside the breast gate, per breast mask.

    ``plans`` gives plans already known (from a real prediction); the others are planned here.
    """
    recorder = PlanRecorder(bundle, plan_only=True, device="cpu", batch_size=BATCH_SIZE)
    patch = recorder.manifest.patch_size_zyx
    grid = model_grid(case.study.reference, recorder.manifest.spacing_mm)
    result: dict[str, Any] = {}
    for name, mask in breast_masks.items():
        known = plans or {}
        plan = known[name] if name in known else recorder.plan_for(case.study, mask, early)
        covered = to_study_mask(window_coverage(plan, grid, patch), grid, case.study.reference)
        gated = to_study_mask(breast_gate(mask, grid, recorder), grid, case.study.reference)
        windows = lost_voxels(case.tumour_labels, covered, case.lesions)
        result[name] = {
            "windows_evaluated": len(plan.starts) if plan is not None else 0,
            "windows_full_volume": full_window_count(grid, patch),
            "tumour_voxels_outside_windows": windows["outside"],
            "tumour_voxels_outside_breast_gate": int(((case.tumour_labels > 0) & ~gated).sum()),
            "tumour_voxels": windows["total"],
            "per_lesion": windows["per_lesion"],
        }
    return result


# --- ours ---------------------------------------------------------------------------------------


def timed(function: Callable[[], Any]) -> tuple[Any, float]:
    """``(function(), seconds)``."""
    clock = time.perf_counter()
    value = function()
    return value, time.perf_counter() - clock


def run_ours(
    study: DCEStudy, bundles: dict[str, ModelBundle], device: str, early: int
) -> dict[str, Any]:
    """The segmentation stages of ``run_analysis``, each timed; returns results and report."""
    kwargs = {"device": device, "batch_size": BATCH_SIZE}
    tumour_predictor = PlanRecorder(bundles["tumour"], **kwargs)
    threshold, seed = lesion_thresholds(bundles["tumour"].manifest.outputs)
    gap, merge_below = lesion_grouping(bundles["tumour"].manifest.outputs)
    with RssSampler() as sampler:
        (breast_prob, breast_info), breast_s = timed(
            lambda: BreastPredictor(bundles["breast"], **kwargs).predict(study)
        )
        breast_mask, clean_s = timed(lambda: clean_breast_mask(breast_prob))
        (tumour_prob, tumour_info), tumour_s = timed(
            lambda: tumour_predictor.predict(study, breast_mask, early)
        )
        labels, lesions_s = timed(
            lambda: lesion_instances(tumour_prob, threshold, MIN_LESION_ML, seed, gap, merge_below)
        )
        growth = growth_settings(bundles["tumour"].manifest.outputs)
        labels, grow_s = timed(lambda: grow_small_lesions(labels, study, breast_mask, growth))
    peak = max(sampler.peak, max_rss_bytes())
    stages = {
        "breast_predict": breast_s,
        "clean_breast_mask": clean_s,
        "tumour_predict": tumour_s,
        "lesion_instances": lesions_s,
        "grow_small_lesions": grow_s,
    }
    grids = {
        name: model_grid(study.reference, bundles[name].manifest.spacing_mm)
        for name in ("breast", "tumour")
    }
    windows = {
        name: {
            "evaluated": info.windows_evaluated,
            "roi_total": info.windows_total,
            "full_volume": full_window_count(grids[name], bundles[name].manifest.patch_size_zyx),
        }
        for name, info in (("breast", breast_info), ("tumour", tumour_info))
    }
    report = {
        "stages_s": {k: round(v, 3) for k, v in stages.items()},
        "segmentation_s": round(sum(stages.values()), 3),
        "pipeline_stages_s": {"breast": round(breast_s + clean_s, 3),
                              "tumour": round(tumour_s + lesions_s + grow_s, 3)},
        "windows": windows,
        "prediction_info": {  # the model summaries are in env.models
            name: {k: v for k, v in info.to_dict().items() if k != "model"}
            for name, info in (("breast", breast_info), ("tumour", tumour_info))
        },
        "lesions_found": int(sitk.GetArrayViewFromImage(labels).max()),
        "peak_rss_gib": round(peak / GIB, 3),
        "rss_peak_sampled_gib": round(sampler.peak / GIB, 3),
    }  # fmt: skip
    planned = tumour_predictor.plan
    evaluated = None if planned is None else WindowPlan(
        starts=tumour_predictor.evaluated, total=planned.total, roi=planned.roi,
        lattice=planned.lattice)  # fmt: skip
    report["windows"]["tumour"]["planned"] = len(planned.starts) if planned is not None else 0
    return {
        "report": report,
        "breast_mask": breast_mask,
        "tumour_prob": tumour_prob,
        "threshold": threshold,
        "plan": evaluated,
        "device": tumour_info.device,
        "tumour_s": tumour_s,
        "tumour_inference_s": tumour_info.timings_s.get("inference", float("nan")),
    }


# --- the peer -----------------------------------------------------------------------------------


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice of two boolean masks (1.0 when both are empty)."""
    total = int(a.sum()) + int(b.sum())
    return 1.0 if total == 0 else 2.0 * int((a & b).sum()) / total


def run_peer(
    study: DCEStudy,
    bundle: ModelBundle,
    breast_mask: sitk.Image,
    device: torch.device,
    ours_binary: np.ndarray,
    threshold: float,
) -> dict[str, Any]:
    """MONAI's whole-volume sliding window with the same network, input, gate and threshold."""
    try:
        import monai
        from monai.inferers import sliding_window_inference
    except ImportError:
        return {"skipped": "monai not installed: pip install monai"}

    helper = TumourPredictor(bundle, device="cpu")  # manifest settings only; never run
    manifest = bundle.manifest
    clock = time.perf_counter()
    grid = model_grid(study.reference, manifest.spacing_mm)
    phases = [sitk.GetArrayFromImage(resample(p, grid)) for p in study.phases]
    inputs = normalise_phases(phases, manifest.normalisation)
    del phases
    n_phases = inputs.shape[0]
    volume = torch.from_numpy(inputs).reshape(1, 2 * n_phases, *inputs.shape[-3:]).to(device)
    times_s = (
        np.asarray(study.times_s, np.float32)
        if study.times_s is not None
        else np.arange(n_phases, dtype=np.float32) * NOMINAL_INTERVAL_S
    )
    times = torch.from_numpy(times_s).to(device)[None]
    present = torch.ones((1, n_phases), dtype=torch.bool, device=device)
    prep_s = time.perf_counter() - clock

    clock = time.perf_counter()
    module = bundle.load("cpu").to(device)
    windows = 0

    def predictor(batch: torch.Tensor) -> torch.Tensor:
        nonlocal windows
        n = batch.shape[0]
        windows += n
        folded = batch.reshape(n, n_phases, 2, *batch.shape[-3:])
        logits = module(folded, times.expand(n, -1), present.expand(n, -1))
        return torch.sigmoid(logits.float())

    with precision(device):
        out = sliding_window_inference(
            volume, manifest.patch_size_zyx, BATCH_SIZE, predictor, overlap=OVERLAP,
            mode="gaussian", sw_device=device, device=device,
        )  # fmt: skip
    prob = torch.as_tensor(out)[0, 0].float().cpu().numpy()
    infer_s = time.perf_counter() - clock
    del volume, out

    clock = time.perf_counter()
    prob = prob * breast_gate(breast_mask, grid, helper)
    image = sitk.GetImageFromArray(prob.astype(np.float32))
    image.CopyInformation(grid)
    peer_prob = sitk.GetArrayFromImage(to_study_grid(image, study.reference))
    gate_s = time.perf_counter() - clock
    peer_binary = peer_prob >= threshold
    stage_s = prep_s + infer_s + gate_s
    return {
        "method": "monai.inferers.sliding_window_inference, whole model-grid volume, "
        f"overlap {OVERLAP}, gaussian, sw_batch_size {BATCH_SIZE}, same scripted network",
        "monai": monai.__version__,
        "stages_s": {"preprocess": round(prep_s, 3), "load_and_inference": round(infer_s, 3),
                     "gate_and_study_grid": round(gate_s, 3)},
        "tumour_stage_s": round(stage_s, 3),
        "windows": windows,
        "dice_vs_ours": round(dice(ours_binary, peer_binary), 5),
        "foreground_voxels": {"ours": int(ours_binary.sum()), "peer": int(peer_binary.sum())},
        "_stage_s": stage_s,
        "_inference_s": infer_s,
    }  # fmt: skip


# --- main ---------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seed", type=int, default=8100,
                        help="phantom seed (8100: three enhancing masses)")  # fmt: skip
    parser.add_argument("--size", choices=("clinical", "small"), default="clinical")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--models", action="append", default=[], metavar="DIR",
                        help="extra bundle search folder (repeatable)")  # fmt: skip
    parser.add_argument("--breast-model", default=BREAST_MODEL, help="bundle id or folder")
    parser.add_argument("--tumour-model", default=TUMOUR_MODEL, help="bundle id or folder")
    parser.add_argument("--no-peer", action="store_true", help="skip the MONAI peer")
    parser.add_argument("--check-cases", type=int, default=0, metavar="N",
                        help="also check the window rule on N more phantom cases")  # fmt: skip
    parser.add_argument("--dice-cases", type=int, default=0, metavar="N",
                        help="also run the tumour stage and the peer on N more phantom cases "
                             "(after the check cases): windows, seconds, Dice")  # fmt: skip
    return parser.parse_args(argv)


def goals(
    size: str, device: torch.device, ours: dict[str, Any], peer: dict[str, Any], lost: int
) -> dict[str, Any]:
    """Each goal with its value and whether it is met (speed goals apply to clinical size)."""
    limit = GOALS["segmentation_s_cuda" if device.type == "cuda" else "segmentation_s_cpu"]
    report: dict[str, Any] = {
        "applies": size == "clinical",
        "segmentation_s": {"goal": f"< {limit}", "value": ours["segmentation_s"],
                           "met": ours["segmentation_s"] < limit},
        "peak_rss_gib": {"goal": f"< {GOALS['peak_rss_gib']}", "value": ours["peak_rss_gib"],
                         "met": ours["peak_rss_gib"] < GOALS["peak_rss_gib"]},
        "tumour_voxels_outside_windows": {"goal": "0", "value": lost, "met": lost == 0},
    }  # fmt: skip
    if "ratio_peer_over_ours" in peer:
        ratio, score = peer["ratio_peer_over_ours"], peer["dice_vs_ours"]
        report["speedup_vs_peer"] = {
            "goal": f">= {GOALS['speedup_vs_peer']}",
            "value": ratio,
            "met": ratio >= GOALS["speedup_vs_peer"],
        }
        report["dice_vs_peer"] = {"goal": f">= {GOALS['dice_vs_peer']}", "value": score,
                                  "met": score >= GOALS["dice_vs_peer"]}  # fmt: skip
    report["all_met"] = all(v["met"] for v in report.values() if isinstance(v, dict))
    return report


def main(argv: Sequence[str] | None = None) -> None:
    """Run the benchmark and print the JSON report."""
    args = parse_args(argv)
    device = resolve_device(args.device)
    bundles = {
        "breast": find_bundle(args.breast_model, args.models),
        "tumour": find_bundle(args.tumour_model, args.models),
    }
    with tempfile.TemporaryDirectory(prefix="bench-segment-") as tmp:
        case = load_case(args.seed, args.size, 6, Path(tmp))
        study = case.study
        early = select_phases(study.times_s, study.n_phases).early
        gc.collect()
        rss_before = rss_bytes()
        ours = run_ours(study, bundles, str(device), early)
        ours_report = ours["report"]
        ours_report["rss_before_stages_gib"] = round(rss_before / GIB, 3)
        breast_mask = ours["breast_mask"]

        rules = {f"seed {args.seed}": rule_check(
            case, bundles["tumour"], {"predicted_breast": breast_mask,
                                      "true_breast": case.breast_truth},
            early, plans={"predicted_breast": ours["plan"]},
        )}  # fmt: skip

        peer: dict[str, Any] = {"skipped": "--no-peer"}
        if not args.no_peer:
            ours_binary = sitk.GetArrayViewFromImage(ours["tumour_prob"]) >= ours["threshold"]
            peer = run_peer(study, bundles["tumour"], breast_mask, device, ours_binary,
                            ours["threshold"])  # fmt: skip
            if "_stage_s" in peer:
                peer["ratio_peer_over_ours"] = round(peer.pop("_stage_s") / ours["tumour_s"], 2)
                peer["inference_ratio_peer_over_ours"] = round(
                    peer.pop("_inference_s") / ours["tumour_inference_s"], 2
                )
        case_info = {
            "seed": args.seed, "size": args.size, "n_phases": study.n_phases,
            "grid_xyz": list(study.size_xyz),
            "spacing_mm": [round(s, 3) for s in study.spacing_mm],
            "times_s": list(study.times_s or ()), "early_phase": early,
            "lesions": [(r.get("class"), r.get("kind"), r.get("voxel_count"))
                        for r in case.lesions],
            "generate_s": round(case.generate_s, 2), "load_s": round(case.load_s, 2),
        }  # fmt: skip
        ours_threshold = ours["threshold"]
        del ours, case, study, breast_mask
        gc.collect()
        dice_cases: dict[str, Any] = {}

        for seed in range(args.seed + 1, args.seed + 1 + max(0, args.check_cases)):
            extra = load_case(seed, args.size, None, Path(tmp))
            extra_early = select_phases(extra.study.times_s, extra.study.n_phases).early
            prob, _ = BreastPredictor(bundles["breast"], device=str(device)).predict(extra.study)
            rules[f"seed {seed}"] = rule_check(
                extra, bundles["tumour"],
                {"predicted_breast": clean_breast_mask(prob), "true_breast": extra.breast_truth},
                extra_early,
            )  # fmt: skip
            rules[f"seed {seed}"]["n_phases"] = extra.study.n_phases
            del extra, prob

        first = args.seed + 1 + max(0, args.check_cases)
        for seed in range(first, first + max(0, args.dice_cases)):
            extra = load_case(seed, args.size, None, Path(tmp))
            extra_early = select_phases(extra.study.times_s, extra.study.n_phases).early
            prob, _ = BreastPredictor(bundles["breast"], device=str(device)).predict(extra.study)
            mask = clean_breast_mask(prob)
            recorder = PlanRecorder(bundles["tumour"], device=str(device), batch_size=BATCH_SIZE)
            clock = time.perf_counter()
            tumour_prob, info = recorder.predict(extra.study, mask, extra_early)
            seconds = time.perf_counter() - clock
            binary = sitk.GetArrayViewFromImage(tumour_prob) >= ours_threshold
            entry = {"n_phases": extra.study.n_phases, "tumour_s": round(seconds, 2),
                     "windows_evaluated": info.windows_evaluated,
                     "windows_planned": len(recorder.plan.starts) if recorder.plan else 0,
                     "foreground_voxels": int(binary.sum())}  # fmt: skip
            if not args.no_peer:
                other = run_peer(extra.study, bundles["tumour"], mask, device, binary,
                                 ours_threshold)  # fmt: skip
                if "_stage_s" in other:
                    entry["peer_tumour_s"] = round(other["_stage_s"], 2)
                    entry["peer_windows"] = other["windows"]
                    entry["ratio_peer_over_ours"] = round(other["_stage_s"] / seconds, 2)
                    entry["dice_vs_peer"] = other["dice_vs_ours"]
            dice_cases[f"seed {seed}"] = entry
            del extra, prob, mask, tumour_prob

    lost = sum(r["predicted_breast"]["tumour_voxels_outside_windows"] for r in rules.values())
    lost_true = sum(r["true_breast"]["tumour_voxels_outside_windows"] for r in rules.values())
    total = sum(r["predicted_breast"]["tumour_voxels"] for r in rules.values())
    report = {
        "bench": "segmentation (breast + tumour stages) vs MONAI sliding_window_inference",
        "case": case_info,
        "device": describe_device(device),
        "ours": ours_report,
        "peer": peer,
        "window_rule": {
            "tumour_voxels_outside_windows": lost,
            "tumour_voxels_outside_windows_true_breast": lost_true,
            "tumour_voxels": total,
            "cases": rules,
        },
        "more_cases": dice_cases,
        "goals": goals(args.size, device, ours_report, peer, lost),
        "peak_rss_gib_whole_run": round(max_rss_bytes() / GIB, 3),
        "env": {
            "torch_threads": torch.get_num_threads(),
            "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
            "cpu_count": os.cpu_count(),
            "affinity": len(os.sched_getaffinity(0)),
            "machine": platform.machine(),
            "processor": platform.processor() or platform.platform(),
            "models": {
                k: {
                    "id": b.manifest.id,
                    "version": b.manifest.version,
                    "folder": str(b.folder),
                    "sha256": b.manifest.sha256,
                }
                for k, b in bundles.items()
            },
        },
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    try:
        main()
    except BreastAIError as error:  # a missing bundle, an unavailable device: one line
        raise SystemExit(f"bench/segment.py: {error}") from None
