"""Benchmark of radiomics extraction (issue 8), against plain PyRadiomics on the same inputs.

(Not named ``radiomics.py``: run as a script, that name would shadow PyRadiomics.)

What it measures, on a seeded clinical-size phantom study (448 x 448 x 160; 2-4 lesions, as the
classifiers' cases) with its ground-truth lesion masks and the default settings (images pre,
post1, sub1, PE, SER; lesion and 5 mm shell; first order, shape, shape2D and five texture
families; 32 bins):

* **ours**: :func:`BreastAIAssistantLib.radiomics.features.lesion_features` per lesion (images
  computed once per study, each region cropped with a margin before PyRadiomics runs, shape once
  per lesion), seconds per lesion in one process;
* **the peer**, in the same run: PyRadiomics called the usual way — one
  ``RadiomicsFeatureExtractor.execute(image, mask)`` per image and region on the whole study
  volume, with the same feature classes and settings (shape is then computed on every call, as
  it is by default; not for the shell, whose shape ours skips too) — seconds per lesion, and
  the largest relative difference between the two on the features both produce (the
  unfiltered features must agree);
* **cohort scaling**: ``breast-ai features`` on a small written cohort (``--cohort-cases`` phantom
  cases at half resolution) with ``--jobs N`` (N = CPU count), against ``--jobs 1`` as a user
  runs it (libraries free to start threads) and ``--jobs 1`` held to one thread (one core):
  rows/s and both speed-ups (goal: near-linear in the cores, i.e. the one-core speed-up near N).
  ``--skip-peer`` measures only the cohort scaling.

Run::

    .venv/bin/python bench/radiomics_features.py

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk


def plain(image: sitk.Image, mask: sitk.Image, classes: list[str]) -> dict[str, float]:
    from radiomics import featureextractor

    extractor = featureextractor.RadiomicsFeatureExtractor(binCount=32)
    extractor.disableAllFeatures()
    for name in classes:
        extractor.enableFeatureClassByName(name)
    return {k: float(v) for k, v in extractor.execute(image, mask, label=1).items()
            if not k.startswith("diagnostics_")}


@contextlib.contextmanager
def one_thread():
    """Hold this process to one thread (as the cohort's workers are), then restore."""
    import torch
    from threadpoolctl import threadpool_limits

    itk, tor = sitk.ProcessObject.GetGlobalDefaultNumberOfThreads(), torch.get_num_threads()
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)
    torch.set_num_threads(1)
    try:
        with threadpool_limits(1):
            yield
    finally:
        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(itk)
        torch.set_num_threads(tor)


def per_lesion(seed: int) -> dict:
    """Ours against plain PyRadiomics on every lesion of one clinical-size study."""
    from BreastAIAssistantLib.phantom.generator import generate_case
    from BreastAIAssistantLib.radiomics.features import dce_images, lesion_features, shell_mask
    from BreastAIAssistantLib.radiomics.settings import RadiomicsSettings
    from BreastAIAssistantLib.train.data import enhancing_lesions
    from BreastAIAssistantLib.train.lesion_data import classification_spec

    case = generate_case(seed, size="clinical", **classification_spec(seed))
    labels = enhancing_lesions(case.tumour_labels, case.truth)
    array = sitk.GetArrayFromImage(labels)
    settings = RadiomicsSettings()
    clock = time.perf_counter()
    images = dce_images(case.study, settings.images)
    images_s = time.perf_counter() - clock

    ours_s, peer_s, worst = 0.0, 0.0, 0.0
    lesions = [int(v) for v in np.unique(array) if v]
    compared = 0
    for lesion_id in lesions:
        mask = sitk.GetImageFromArray((array == lesion_id).astype(np.uint8))
        mask.CopyInformation(labels)
        clock = time.perf_counter()
        ours = lesion_features(images, mask, settings)
        ours_s += time.perf_counter() - clock

        clock = time.perf_counter()
        shell = shell_mask(mask, settings.shell_mm)
        reference: dict[str, float] = {}
        for region, region_mask in (("lesion", mask), ("shell", shell)):
            classes = ["firstorder", "glcm", "glrlm", "glszm", "ngtdm", "gldm"]
            if region == "lesion":  # as ours: no shape for the shell
                classes.append("shape")
            for name, image in images.items():
                for key, value in plain(image, region_mask, classes).items():
                    _, family, feature = key.split("_", 2)
                    image_name = "mask" if family == "shape" else name
                    reference[f"{image_name}_{region}_{family}_{feature}"] = value
        peer_s += time.perf_counter() - clock
        for key, value in reference.items():
            if key in ours and np.isfinite(value) and np.isfinite(ours[key]):
                scale = max(abs(value), 1e-9)
                worst = max(worst, abs(ours[key] - value) / scale)
                compared += 1
    n = max(len(lesions), 1)
    return {
        "case": {"seed": seed, "size_xyz": list(case.study.size_xyz), "lesions": n},
        "images_s": round(images_s, 2),
        "ours_s_per_lesion": round(ours_s / n, 2),
        "peer_plain_pyradiomics_s_per_lesion": round(peer_s / n, 2),
        "speedup_vs_peer": round(peer_s / max(ours_s, 1e-9), 2),
        "features_compared": compared,
        "max_relative_difference": worst,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=9702)
    parser.add_argument("--cohort-cases", type=int, default=12)
    parser.add_argument("--skip-peer", action="store_true",
                        help="only the cohort scaling (no per-lesion comparison)")
    args = parser.parse_args()

    import logging

    logging.getLogger("radiomics").setLevel(logging.ERROR)
    from BreastAIAssistantLib.radiomics.cohort import extract_cohort
    from BreastAIAssistantLib.radiomics.phantom_cohort import write_phantom_cohort
    from BreastAIAssistantLib.radiomics.settings import RadiomicsSettings

    report: dict = {
        "benchmark": "radiomics",
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
    }
    if not args.skip_peer:
        report.update(per_lesion(args.seed))

    jobs = os.cpu_count() or 1
    settings = RadiomicsSettings()
    with tempfile.TemporaryDirectory() as tmp:
        cohort = write_phantom_cohort(range(args.seed, args.seed + args.cohort_cases),
                                      Path(tmp) / "data", size_xyz=(224, 224, 80))
        # one warm-up case first (imports, page cache), so that no run pays what the next saves
        extract_cohort(cohort, Path(tmp) / "warm_up.csv", settings, jobs=1)
        runs = {"jobs_1_one_thread": (1, one_thread), "jobs_1": (1, contextlib.nullcontext),
                f"jobs_{jobs}": (jobs, contextlib.nullcontext)}
        timings = {}
        for name, (n, context) in runs.items():
            out = Path(tmp) / f"features_{name}.csv"
            with context():
                clock = time.perf_counter()
                counts = extract_cohort(cohort, out, settings, jobs=n)
                timings[name] = (time.perf_counter() - clock, counts["extracted"])
    parallel = timings[f"jobs_{jobs}"][0]
    report["cohort"] = {k: {"seconds": round(v[0], 1), "rows": v[1],
                            "rows_per_s": round(v[1] / v[0], 3)} for k, v in timings.items()}
    report["cohort_speedup_vs_jobs_1"] = round(timings["jobs_1"][0] / parallel, 2)
    report["cohort_speedup_vs_one_core"] = round(timings["jobs_1_one_thread"][0] / parallel, 2)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
