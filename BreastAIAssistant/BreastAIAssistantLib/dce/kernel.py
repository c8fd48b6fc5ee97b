"""The fused, slab-wise computation of all voxel-wise DCE maps.

Why slabs: every map is a short chain of element-wise operations on the same few phases. Done
map by map on whole volumes, each step streams hundreds of megabytes through memory and needs
whole-volume temporaries. Here the volume is cut into slabs of whole ``z`` slices (about a
megabyte per float32 array), and for each slab every map is computed while its inputs are still
in cache: the phases are read once, each output written once, temporaries are slab-sized.
Slabs are independent, so a small thread pool runs them in parallel (NumPy releases the GIL in
its element-wise loops). The formulas are those of :mod:`.enhancement` and :mod:`.curves`,
called on slab views, so the fast path and the reference functions cannot drift apart.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass

import numpy as np

from BreastAIAssistantLib.dce.curves import curve_type_from_subtractions
from BreastAIAssistantLib.dce.enhancement import (
    finish_time_to_peak,
    pe_from_subtraction,
    percent_scale,
    ser_from_subtractions,
    update_peak,
    wash_in_slope,
    washout_from_subtractions,
)

#: Target number of voxels per slab (about 1 MiB per float32 array).
SLAB_VOXELS = 1 << 18

#: Names of the voxel-wise float32 kinetic maps the kernel fills (besides ``sub_<k>``).
KINETIC_MAPS = ("pe", "ser", "peak_enhancement", "time_to_peak", "wash_in", "washout")


@dataclass(frozen=True)
class KernelParams:
    """Everything the per-slab computation needs besides the arrays.

    Attributes:
        early: Early phase index.
        late: Late phase index.
        at: Time of each phase (s), or its index when times are unknown (``at[0] == 0``).
        per_minute: Whether ``at`` is in seconds (wash-in in %/min) or indices (%/phase).
        floor: ``S0`` floor.
        ser_max: Upper SER clip, or ``None``.
        min_enhancement_pct: Curve-type initial-enhancement threshold (%).
        tolerance: Curve-type relative change threshold.
    """

    early: int
    late: int
    at: tuple[float, ...]
    per_minute: bool
    floor: float
    ser_max: float | None
    min_enhancement_pct: float
    tolerance: float


def default_threads() -> int:
    """Worker threads: the CPUs this process may use, at most 4 (memory-bound beyond)."""
    try:
        available = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        available = os.cpu_count() or 1
    return max(1, min(4, available))


def allocate_outputs(shape: tuple[int, ...], n_post: int) -> dict[str, np.ndarray]:
    """Uninitialised output arrays: ``sub_1..sub_N``, the kinetic maps and ``curve_type``."""
    outputs = {f"sub_{k}": np.empty(shape, np.float32) for k in range(1, n_post + 1)}
    outputs.update({name: np.empty(shape, np.float32) for name in KINETIC_MAPS})
    outputs["curve_type"] = np.empty(shape, np.uint8)
    return outputs


def compute_slab(
    phases: Sequence[np.ndarray],
    outputs: dict[str, np.ndarray],
    zs: slice,
    params: KernelParams,
) -> None:
    """Fill every output on the slab ``zs`` of the ``(z, y, x)`` arrays.

    Args:
        phases: All phases, ``phases[0]`` pre-contrast, full ``(z, y, x)`` arrays.
        outputs: Arrays from :func:`allocate_outputs`, written on ``zs`` only.
        zs: The slab.
        params: Phases, times and thresholds.
    """
    s0 = phases[0][zs]
    scale = percent_scale(s0, params.floor)
    subs = [outputs[f"sub_{k}"][zs] for k in range(1, len(phases))]
    for k, sub in enumerate(subs, start=1):
        np.subtract(phases[k][zs], s0, out=sub)

    # running peak: peak_sub lives in the peak-enhancement output, its time in time_to_peak
    peak = outputs["peak_enhancement"][zs]
    ttp = outputs["time_to_peak"][zs]
    np.copyto(peak, subs[0])
    ttp.fill(params.at[1])
    for k in range(2, len(phases)):
        update_peak(peak, ttp, subs[k - 1], params.at[k])
    washout_from_subtractions(s0, peak, subs[-1], scale, out=outputs["washout"][zs])
    finish_time_to_peak(ttp, peak, scale)
    pe_from_subtraction(peak, scale, out=peak)
    wash_in_slope(peak, ttp, per_minute=params.per_minute, out=outputs["wash_in"][zs])

    sub_early, sub_late = subs[params.early - 1], subs[params.late - 1]
    pe = pe_from_subtraction(sub_early, scale, out=outputs["pe"][zs])
    ser_from_subtractions(sub_early, sub_late, scale, params.ser_max, out=outputs["ser"][zs])
    curve_type_from_subtractions(
        s0,
        sub_early,
        sub_late,
        pe,
        params.min_enhancement_pct,
        params.tolerance,
        out=outputs["curve_type"][zs],
    )


def slabs(n_z: int, plane_voxels: int, target: int | None = None) -> list[slice]:
    """Consecutive ``z`` slabs of about ``target`` voxels (default :data:`SLAB_VOXELS`)."""
    target = SLAB_VOXELS if target is None else target
    step = max(1, target // max(1, plane_voxels))
    return [slice(z, min(z + step, n_z)) for z in range(0, n_z, step)]


def run_slabs(
    work: Callable[[slice], None],
    parts: Sequence[slice],
    n_threads: int,
    progress: Callable[[float], None] | None = None,
) -> None:
    """Run ``work`` on every slab, on ``n_threads`` threads; progress from the calling thread.

    Exceptions raised by ``work`` propagate (the remaining slabs are cancelled).
    """
    total = len(parts)
    if n_threads <= 1 or total <= 1:
        for i, part in enumerate(parts, start=1):
            work(part)
            if progress is not None:
                progress(i / total)
        return
    with ThreadPoolExecutor(max_workers=n_threads, thread_name_prefix="dce-maps") as pool:
        futures = [pool.submit(work, part) for part in parts]
        try:
            for i, future in enumerate(as_completed(futures), start=1):
                future.result()
                if progress is not None:
                    progress(i / total)
        except BaseException:
            for future in futures:
                future.cancel()
            raise
