"""Benchmark of the exact maximum diameter against SimpleITK's Feret diameter, in the same run.

Cases:

- ``synthetic_100ml``: a fixed, lobulated, rotated ellipsoid of about 100 ml on a 0.7 x 0.7 x
  1.5 mm oblique grid;
- the main lesion (after the default grouping) of each real I-SPY 2 mask in
  ``../shared/data/ispy2-real-masks`` (skipped when the folder is absent).

For each case: our maximum diameter (voxel-centre convention: line extremes -> convex hull ->
farthest pair; timed from the SimpleITK image, array access and cropping included) and SimpleITK's
``LabelShapeStatisticsImageFilter`` with ``ComputeFeretDiameterOn()`` on the same lesion image
(timed ``Execute``; also without the Feret diameter, to show what the Feret part costs). ITK's
Feret diameter is the largest distance between the centres of the object's border voxels (index
difference x spacing), which is the same quantity as ours, so the two values should agree to
rounding. Times are the best of ``REPEATS`` runs (one run when it takes over 2 s). Also:
``measure_lesions`` end to end (grouping and every registry measurement) per real mask.

Run: ``PYTHONPATH=BreastAIAssistant .venv/bin/python bench/measure.py``; prints one JSON object.
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from BreastAIAssistantLib.measure import Grid, LesionGeometry, group_lesions, measure_lesions

REAL_MASKS = Path(__file__).resolve().parents[2] / "shared" / "data" / "ispy2-real-masks"
REPEATS = 3
SPACING = (0.7, 0.7, 1.5)


def _rotation(ax: float, ay: float, az: float) -> np.ndarray:
    a, b, c = np.radians([ax, ay, az])
    rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    ry = np.array([[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]])
    rz = np.array([[np.cos(c), -np.sin(c), 0], [np.sin(c), np.cos(c), 0], [0, 0, 1]])
    return rz @ ry @ rx


def synthetic_lesion() -> sitk.Image:
    """A lobulated ellipsoid (semi-axes 38, 26, 24 mm, rotated) of about 100 ml, oblique grid."""
    direction = _rotation(12.0, -7.0, 20.0)
    shape_rotation = _rotation(35.0, 20.0, -50.0)
    size = np.array([150, 150, 70])
    spacing = np.asarray(SPACING)
    origin = -direction @ ((size - 1) / 2 * spacing)
    k, j, i = np.indices(size[::-1], dtype=np.float32)
    grid_mm = np.stack([i, j, k], axis=-1).reshape(-1, 3) * spacing.astype(np.float32)
    q = (grid_mm @ direction.T.astype(np.float32) + origin.astype(np.float32)) @ shape_rotation
    radius = ((q / np.array([38.0, 26.0, 24.0], dtype=np.float32)) ** 2).sum(axis=1)
    lobes = 0.12 * np.sin(q[:, 0] / 6.0) * np.cos(q[:, 1] / 5.0) + 0.08 * np.sin(q[:, 2] / 4.0)
    mask = (radius <= 1.0 + lobes).reshape(size[::-1]).astype(np.uint8)
    image = sitk.GetImageFromArray(mask)
    image.SetSpacing(SPACING)
    image.SetOrigin(tuple(origin))
    image.SetDirection(tuple(direction.ravel()))
    return image


def best_time(function: Callable[[], Any]) -> tuple[float, Any]:
    """Best wall time of ``REPEATS`` calls (one call when it takes over 2 s), and the result."""
    best, result = float("inf"), None
    for _ in range(REPEATS):
        start = time.perf_counter()
        result = function()
        best = min(best, time.perf_counter() - start)
        if best > 2.0:
            break
    return best, result


def our_diameter(image: sitk.Image) -> tuple[float, int]:
    """Maximum diameter of the non-zero voxels of ``image`` (and the hull vertex count)."""
    mask = sitk.GetArrayViewFromImage(image) != 0
    box = ndimage.find_objects(mask.astype(np.uint8, copy=False))[0]
    lesion = LesionGeometry(mask[box], tuple(s.start for s in box), Grid.from_image(image))
    return lesion.diameter.length_mm, len(lesion.hull_mm)


def simpleitk_feret(image: sitk.Image, feret: bool = True) -> float:
    stats = sitk.LabelShapeStatisticsImageFilter()
    stats.SetComputeFeretDiameter(feret)
    stats.Execute(sitk.Cast(image != 0, sitk.sitkUInt8))
    return stats.GetFeretDiameter(1) if feret else float("nan")


def compare(name: str, image: sitk.Image) -> dict[str, Any]:
    ours_s, (ours_mm, hull_n) = best_time(lambda: our_diameter(image))
    sitk_s, sitk_mm = best_time(lambda: simpleitk_feret(image))
    plain_s, _ = best_time(lambda: simpleitk_feret(image, feret=False))
    voxels = int(np.count_nonzero(sitk.GetArrayViewFromImage(image)))
    return {
        "case": name,
        "voxels": voxels,
        "volume_ml": round(voxels * float(np.prod(image.GetSpacing())) / 1000.0, 3),
        "spacing_mm": list(image.GetSpacing()),
        "ours_max_diameter_mm": round(ours_mm, 6),
        "simpleitk_feret_diameter_mm": round(sitk_mm, 6),
        "difference_mm": abs(ours_mm - sitk_mm),
        "ours_s": round(ours_s, 4),
        "simpleitk_s": round(sitk_s, 4),
        "simpleitk_without_feret_s": round(plain_s, 4),
        "speedup_vs_simpleitk": round(sitk_s / ours_s, 1),
        "speedup_vs_simpleitk_feret_part": round(max(sitk_s - plain_s, 0.0) / ours_s, 1),
        "hull_vertices": hull_n,
    }


def main() -> None:
    cases = [compare("synthetic_100ml_0.7x0.7x1.5_oblique", synthetic_lesion())]
    end_to_end = []
    if REAL_MASKS.is_dir():
        for path in sorted(REAL_MASKS.glob("*.nii.gz")):
            image = sitk.ReadImage(str(path))
            seconds, report = best_time(lambda image=image: measure_lesions(image))
            end_to_end.append(
                {
                    "mask": path.name,
                    "measure_lesions_s": round(seconds, 3),
                    "t_stage": report.t_stage,
                    "lesions": len(report.lesions),
                }
            )
            spacing_zyx = np.asarray(image.GetSpacing())[::-1]
            grouping = group_lesions(sitk.GetArrayViewFromImage(image), spacing_zyx)
            main_lesion = sitk.GetImageFromArray((grouping.labels_zyx == 1).astype(np.uint8))
            main_lesion.CopyInformation(image)
            cases.append(compare(f"{path.name} (main lesion)", main_lesion))
    result = {
        "benchmark": "maximum diameter (voxel centres) vs SimpleITK Feret diameter",
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(),
            "simpleitk_threads": sitk.ProcessObject.GetGlobalDefaultNumberOfThreads(),
        },
        "versions": {"numpy": np.__version__, "simpleitk": sitk.Version.VersionString()},
        "repeats": REPEATS,
        "cases": cases,
        "measure_lesions_end_to_end": end_to_end,
        "max_difference_mm": max(c["difference_mm"] for c in cases),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
