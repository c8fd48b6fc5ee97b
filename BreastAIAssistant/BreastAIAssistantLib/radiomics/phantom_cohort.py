"""A synthetic radiomics cohort from the phantom: studies, lesion masks, a 2-D modality and the
cohort CSV that ``breast-ai features`` reads.

Each case is a phantom study with 2-4 lesions (malignant with probability 0.6, otherwise benign
masses or non-mass; cysts are left out, as for the classifiers), written as a study folder. One
cohort row per lesion: ``dce_image`` = the study folder, ``dce_mask`` = its lesion label map,
``dce_label`` = the lesion's label, ``malignant`` = 0/1 from case.json. A second, 2-D modality
``mip`` (the maximum-intensity projection of the early subtraction along the slice axis, cropped
around the lesion, with the projected lesion mask) stands in for a projection image such as a
mammogram, so that per-modality models and fusion can be exercised end to end. All labels are
synthetic.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import SimpleITK as sitk

logger = logging.getLogger(__name__)


def _mip_pair(case, label: int, margin_vox: int = 12) -> tuple[sitk.Image, sitk.Image]:
    labels = sitk.GetArrayFromImage(case.tumour_labels)
    early = sitk.GetArrayFromImage(case.study.phases[1] - case.study.phases[0])
    lesion = labels == label
    zs, ys, xs = np.nonzero(lesion)
    y0, y1 = max(ys.min() - margin_vox, 0), min(ys.max() + margin_vox + 1, lesion.shape[1])
    x0, x1 = max(xs.min() - margin_vox, 0), min(xs.max() + margin_vox + 1, lesion.shape[2])
    # project only the slab that holds the lesion (a projection through both breasts and the
    # heart would be dominated by them)
    slab = slice(max(zs.min() - 2, 0), zs.max() + 3)
    mip = early[slab, y0:y1, x0:x1].max(axis=0).astype(np.float32)
    mask = lesion[slab, y0:y1, x0:x1].any(axis=0).astype(np.uint8)
    sx, sy, _ = case.study.reference.GetSpacing()
    images = []
    for array in (mip, mask):
        image = sitk.GetImageFromArray(array)
        image.SetSpacing((sx, sy))
        images.append(image)
    return images[0], images[1]


def write_phantom_cohort(seeds: Sequence[int], out: str | Path,
                         size_xyz: Sequence[int] | None = None, size: str = "clinical") -> Path:
    """Write the cases and ``cohort.csv`` under ``out``; returns the CSV path."""
    from BreastAIAssistantLib.phantom import write_case
    from BreastAIAssistantLib.phantom.generator import generate_case
    from BreastAIAssistantLib.train.lesion_data import classification_spec

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for seed in seeds:
        spec = classification_spec(int(seed))
        if size_xyz is not None:
            spec["size_xyz"] = tuple(int(v) for v in size_xyz)
        case = generate_case(int(seed), size=size, **spec)
        folder = out / f"case{seed}"
        write_case(case, folder, tissue_labels=False)
        present = set(np.unique(sitk.GetArrayViewFromImage(case.tumour_labels)).tolist())
        for lesion in case.truth["lesions"]:
            if lesion["kind"] == "cyst" or lesion["label"] not in present:
                continue
            mip, mask = _mip_pair(case, lesion["label"])
            name = f"case{seed}_lesion{lesion['label']}"
            sitk.WriteImage(mip, str(out / f"{name}_mip.nii.gz"))
            sitk.WriteImage(mask, str(out / f"{name}_mip_mask.nii.gz"))
            rows.append({"case_id": name, "malignant": int(bool(lesion["malignant"])),
                         "t_category": lesion["t_category"],
                         "dce_image": folder.name, "dce_mask": f"{folder.name}/tumour_mask.nii.gz",
                         "dce_label": lesion["label"],
                         "mip_image": f"{name}_mip.nii.gz", "mip_mask": f"{name}_mip_mask.nii.gz"})
        logger.info("cohort case %s: %d rows so far", seed, len(rows))
    path = out / "cohort.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, list(rows[0]) if rows else ["case_id"])
        writer.writeheader()
        writer.writerows(rows)
    return path
