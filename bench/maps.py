"""Benchmark of ``compute_maps`` on a clinical-size synthetic study, against a naive peer.

Builds a fixed (seeded) 448 x 448 x 160, 6-phase study (times 0, 90, ..., 450 s): two breast-like
half-ellipsoids of tissue with mildly enhancing parenchyma, air around them, and 24 enhancing
spheres with washout, plateau and persistent curves, plus Gaussian noise. Then it times
``compute_maps`` (study creation excluded) and, in the same run, the same maps computed the naive
way: plain NumPy on a stacked ``(t, z, y, x)`` array, whole-volume expressions without ``out=``,
then wrapped as images. Peak memory: ``ru_maxrss`` and a 2 ms sampler of the current RSS. A second
``compute_maps`` call is timed at the end, after both results are freed (memory touched before).

Run: ``PYTHONPATH=BreastAIAssistant .venv/bin/python bench/maps.py``; prints one JSON object.
"""

from __future__ import annotations

import gc
import json
import os
import platform
import resource
import sys
import threading
import time

import numpy as np
import SimpleITK as sitk

from BreastAIAssistantLib.dce import MapSettings, compute_maps
from BreastAIAssistantLib.dce.enhancement import s0_floor
from BreastAIAssistantLib.dce.kernel import default_threads
from BreastAIAssistantLib.dce.timing import select_phases
from BreastAIAssistantLib.study import DCEStudy

SHAPE_ZYX = (160, 448, 448)
TIMES_S = (0.0, 90.0, 180.0, 270.0, 360.0, 450.0)
GIB = float(1 << 30)
#: Relative enhancement per post phase of each tissue label (0 air, 1 parenchyma, 2-4 lesions).
CURVES = np.array(
    [
        [0.00, 0.00, 0.00, 0.00, 0.00],  # air
        [0.10, 0.16, 0.21, 0.25, 0.28],  # parenchyma, slow persistent
        [1.60, 1.45, 1.30, 1.20, 1.10],  # washout lesion
        [1.10, 1.15, 1.12, 1.10, 1.08],  # plateau lesion
        [0.60, 0.85, 1.05, 1.20, 1.35],  # persistent lesion
    ],
    dtype=np.float32,
)


def make_study(seed: int = 20240611) -> DCEStudy:
    """The fixed synthetic study (about 5 s to build, not timed)."""
    rng = np.random.default_rng(seed)
    nz, ny, nx = SHAPE_ZYX
    z = np.linspace(-1, 1, nz, dtype=np.float32)[:, None, None]
    y = np.linspace(-1, 1, ny, dtype=np.float32)[None, :, None]
    x = np.linspace(-1, 1, nx, dtype=np.float32)[None, None, :]
    left = ((x + 0.45) / 0.42) ** 2 + ((y - 0.25) / 0.7) ** 2 + (z / 0.9) ** 2
    right = ((x - 0.45) / 0.42) ** 2 + ((y - 0.25) / 0.7) ** 2 + (z / 0.9) ** 2
    label = ((np.minimum(left, right) <= 1) & (y >= -0.1)).astype(np.uint8)
    del left, right
    for i in range(24):
        r = int(rng.integers(4, 16))
        cz, cy, cx = (int(rng.integers(r, n - r)) for n in SHAPE_ZYX)
        box = np.ogrid[cz - r : cz + r + 1, cy - r : cy + r + 1, cx - r : cx + r + 1]
        ball = (box[0] - cz) ** 2 + (box[1] - cy) ** 2 + (box[2] - cx) ** 2 <= r * r
        view = label[cz - r : cz + r + 1, cy - r : cy + r + 1, cx - r : cx + r + 1]
        view[ball] = 2 + i % 3
    s0 = (300.0 + 80.0 * np.sin(3 * x) * np.cos(2 * y) + 40.0 * z).astype(np.float32)
    s0 *= label > 0
    s0 += 8.0
    phases = []
    for k in range(len(TIMES_S)):
        signal = s0.copy() if k == 0 else s0 * (1.0 + CURVES[:, k - 1][label])
        signal += rng.standard_normal(SHAPE_ZYX, dtype=np.float32) * 5.0
        np.abs(signal, out=signal)  # magnitude images are non-negative
        phases.append(sitk.GetImageFromArray(signal))
        del signal
    for image in phases:
        image.SetSpacing((0.75, 0.75, 1.2))
    return DCEStudy.from_images(phases, TIMES_S, source="bench synthetic 448x448x160x6")


def rss_bytes() -> int:
    """Current resident set size."""
    with open("/proc/self/statm", encoding="ascii") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class RssSampler:
    """Peak current RSS over a block, sampled every 2 ms on a thread."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_bytes())
            time.sleep(0.002)

    def __enter__(self) -> RssSampler:
        self.peak = rss_bytes()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_bytes())


def naive_maps(study: DCEStudy, early: int, late: int, floor: float) -> dict[str, sitk.Image]:
    """The peer: the same maps as plain whole-array NumPy on a stacked (t, z, y, x) array."""
    stack = np.stack([sitk.GetArrayFromImage(p) for p in study.phases])
    times = np.asarray(study.times_s, dtype=np.float32)
    s0 = stack[0]
    sub = stack[1:] - s0
    valid = (s0 >= floor) & (s0 > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        pe = np.where(valid, 100 * sub[early - 1] / s0, 0).astype(np.float32)
        ok = valid & (sub[late - 1] > 0)
        ser = np.clip(np.where(ok, sub[early - 1] / sub[late - 1], 0), 0, 3).astype(np.float32)
        peak_sub = sub.max(axis=0)
        enhancing = valid & (peak_sub > 0)
        ttp = np.where(enhancing, times[1:][sub.argmax(axis=0)], 0).astype(np.float32)
        peak = np.where(valid, 100 * peak_sub / s0, 0).astype(np.float32)
        wash_in = np.where(ttp > 0, 60 * peak / ttp, 0).astype(np.float32)
        washout = np.where(enhancing, 100 * (peak_sub - sub[-1]) / (s0 + peak_sub), 0)
        s_early = s0 + sub[early - 1]
        change = (sub[late - 1] - sub[early - 1]) / s_early
        curve = np.where(change > 0.1, 1, np.where(change < -0.1, 3, 2))
        curve = np.where(pe >= 50, curve, 0).astype(np.uint8)
    arrays = {f"sub_{k}": sub[k - 1] for k in range(1, study.n_phases)}
    arrays.update(
        pe=pe, ser=ser, peak_enhancement=peak, time_to_peak=ttp, wash_in=wash_in,
        washout=washout.astype(np.float32), curve_type=curve,
    )  # fmt: skip
    images = {}
    for name, array in arrays.items():
        images[name] = sitk.GetImageFromArray(array)
        images[name].CopyInformation(study.reference)
    images["mip"] = sitk.MaximumProjection(images[f"sub_{early}"], 2)
    return images


def main() -> None:
    """Build the study, time both implementations and print the JSON report."""
    clock = time.perf_counter()
    study = make_study()
    build_s = time.perf_counter() - clock
    gc.collect()
    maxrss_after_build = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    rss_before = rss_bytes()

    stages: list[tuple[str, float]] = []
    start = time.perf_counter()

    def progress(stage: str, fraction: float) -> None:
        if not stages or stages[-1][0] != stage:
            stages.append((stage, time.perf_counter() - start))

    with RssSampler() as sampler:
        start = time.perf_counter()
        maps = compute_maps(study, MapSettings(), progress=progress)
        ours_s = time.perf_counter() - start
    maxrss_after_ours = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    ours_peak = sampler.peak

    choice = select_phases(study.times_s, study.n_phases, "default")
    floor = s0_floor(study.phase_zyx(0))
    gc.collect()
    rss_before_peer = rss_bytes()
    with RssSampler() as peer_sampler:
        clock = time.perf_counter()
        peer = naive_maps(study, choice.early, choice.late, floor)
        peer_s = time.perf_counter() - clock

    agreement = {}
    for name in ("sub_1", "pe", "ser", "peak_enhancement", "time_to_peak", "wash_in", "washout"):
        a, b = maps.array(name), sitk.GetArrayViewFromImage(peer[name])
        agreement[name] = float(np.max(np.abs(a - b)))
    curve_a, curve_b = maps.array("curve_type"), sitk.GetArrayViewFromImage(peer["curve_type"])
    agreement["curve_type_mismatch_fraction"] = float(np.mean(curve_a != curve_b))
    counts = np.bincount(curve_a.reshape(-1), minlength=4)
    ours_stages = dict(maps.timings_s)
    n_maps = len(maps.names)
    del maps, peer, curve_a, curve_b, a, b
    gc.collect()

    # a second call once both results are freed: the process's memory has been touched before
    # (on a VM the first touch of fresh memory can cost as much as the computation itself)
    clock = time.perf_counter()
    repeat = compute_maps(study, MapSettings())
    repeat_s = time.perf_counter() - clock
    repeat_stages = dict(repeat.timings_s)
    del repeat

    report = {
        "bench": "dce.compute_maps",
        "study": {"size_xyz": list(study.size_xyz), "n_phases": study.n_phases,
                  "times_s": list(TIMES_S), "build_s": round(build_s, 2)},
        "goal": "< 3 s, < 3 GiB",
        "ours": {
            "seconds": round(ours_s, 3),
            "stages_s": {k: round(v, 3) for k, v in ours_stages.items()},
            "progress_stage_starts_s": {name: round(t, 3) for name, t in stages},
            "peak_rss_gib": round(max(ours_peak, maxrss_after_ours) / GIB, 3),
            "rss_before_gib": round(rss_before / GIB, 3),
            "rss_peak_sampled_gib": round(ours_peak / GIB, 3),
            "rss_increase_gib": round((ours_peak - rss_before) / GIB, 3),
            "ru_maxrss_after_build_gib": round(maxrss_after_build / GIB, 3),
            "ru_maxrss_after_maps_gib": round(maxrss_after_ours / GIB, 3),
            "repeat_call_seconds": round(repeat_s, 3),
            "repeat_call_stages_s": {k: round(v, 3) for k, v in repeat_stages.items()},
            "maps": n_maps,
            "curve_type_counts": counts.tolist(),
        },
        "peer_naive_numpy_stacked": {
            "seconds": round(peer_s, 3),
            "rss_increase_gib": round((peer_sampler.peak - rss_before_peer) / GIB, 3),
            "rss_peak_sampled_gib": round(peer_sampler.peak / GIB, 3),
        },
        "speedup_vs_peer": round(peer_s / ours_s, 2),
        "max_abs_difference_vs_peer": agreement,
        "meets_goal": bool(ours_s < 3.0 and max(ours_peak, maxrss_after_ours) / GIB < 3.0),
        "env": {
            "python": sys.version.split()[0],
            "numpy": np.__version__,
            "simpleitk": sitk.Version.VersionString(),
            "threads_used": default_threads(),
            "cpu_count": os.cpu_count(),
            "affinity": len(os.sched_getaffinity(0)),
            "machine": platform.machine(),
            "processor": platform.processor() or platform.platform(),
        },
    }  # fmt: skip
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
