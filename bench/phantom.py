"""Benchmark of the synthetic DCE phantom: seconds per case at small and at clinical size.

Times ``generate_case`` for several seeds at ``size="small"`` (96 x 96 x 32, random phase count
and lesions) and at ``size="clinical"`` (448 x 448 x 160, 6 phases, random lesions), with the
per-stage split the generator reports (anatomy, lesions, phases, truth). A first, untimed small
case warms up imports and caches. Optionally (``--write``) it also times ``write_case`` of one
clinical case (int16 gzip NIfTI, atomic) into a temporary folder. As a reference in the same
run, it times the project's toy generator (:mod:`BreastAIAssistantLib.phantom.simple`, plain
whole-volume NumPy expressions, no anatomy or kinetics model) on the same clinical grid and phase
count, so the result is also a ratio. Goals: clinical 6-phase case < 5 s on 2 cores, small case
well under 1 s.

Run: ``PYTHONPATH=BreastAIAssistant .venv/bin/python bench/phantom.py [--write]``; prints one
JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import tempfile
import time

from BreastAIAssistantLib.phantom.generator import generate_case
from BreastAIAssistantLib.phantom.simple import SimpleStudySpec, make_simple_study

CLINICAL_TIMES_S = (0.0, 90.0, 180.0, 270.0, 360.0, 450.0)


def _summary(values: list[float]) -> dict[str, float]:
    return {
        "mean": round(statistics.fmean(values), 4),
        "median": round(statistics.median(values), 4),
        "max": round(max(values), 4),
        "n": len(values),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small-cases", type=int, default=10)
    parser.add_argument("--clinical-cases", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="default: CPU count (max 8)")
    parser.add_argument("--write", action="store_true", help="also time write_case")
    parser.add_argument("--no-peer", action="store_true", help="skip the toy-generator reference")
    args = parser.parse_args()

    generate_case(999, size="small", n_threads=args.threads)  # warm-up, not timed
    small, small_phases = [], []
    for seed in range(args.small_cases):
        clock = time.perf_counter()
        case = generate_case(seed, size="small", n_threads=args.threads)
        small.append(time.perf_counter() - clock)
        small_phases.append(case.study.n_phases)

    clinical, stages, last = [], [], None
    for seed in range(args.clinical_cases):
        last = None  # free the previous case before timing the next one
        clock = time.perf_counter()
        last = generate_case(seed, size="clinical", n_phases=6, n_threads=args.threads)
        clinical.append(time.perf_counter() - clock)
        stages.append({k: round(v, 4) for k, v in last.timings_s.items()})

    result: dict[str, object] = {
        "benchmark": "phantom.generate_case",
        "small": {
            "size_xyz": [96, 96, 32],
            "seconds_per_case": _summary(small),
            "phase_counts": small_phases,
        },
        "clinical": {
            "size_xyz": list(last.study.size_xyz) if last else [448, 448, 160],
            "n_phases": 6,
            "seconds_per_case": _summary(clinical) if clinical else None,
            "stages_s": stages,
            "lesions_per_case": None,
        },
    }
    if last is not None:
        result["clinical"]["lesions_per_case"] = len(last.truth["lesions"])  # type: ignore[index]
    if args.write and last is not None:
        with tempfile.TemporaryDirectory() as tmp:
            from BreastAIAssistantLib.phantom.writer import write_case

            clock = time.perf_counter()
            write_case(last, tmp)
            result["clinical_write_s"] = round(time.perf_counter() - clock, 3)
            result["clinical_case_mb_on_disk"] = round(
                sum(f.stat().st_size for f in os.scandir(tmp)) / 2**20, 1
            )
    last = None
    if not args.no_peer:
        spec = SimpleStudySpec(size_xyz=(448, 448, 160), spacing_mm=(0.75, 0.75, 1.2),
                               times_s=CLINICAL_TIMES_S)  # fmt: skip
        clock = time.perf_counter()
        make_simple_study(spec, seed=0)
        peer = time.perf_counter() - clock
        result["peer"] = {
            "name": "phantom.simple.make_simple_study (toy, whole-volume NumPy)",
            "clinical_seconds": round(peer, 3),
            "ratio_phantom_over_peer": round(statistics.fmean(clinical) / peer, 3)
            if clinical
            else None,
        }
    result["peak_rss_gib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3)
    result["machine"] = {
        "cpus": os.cpu_count(),
        "threads": args.threads or min(os.cpu_count() or 1, 8),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
