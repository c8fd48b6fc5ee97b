"""From a tumour probability map to lesion instances.

Threshold the probability (the manifest's ``outputs.threshold``, default 0.5), label connected
components with 26-connectivity, drop components smaller than ``min_volume_ml`` (default
0.02 ml, about a 3.4 mm sphere: below what a T1a lesion can be and within noise of a
probability map) and number the rest 1..n by decreasing volume.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk
from scipy import ndimage


def lesion_instances(
    probability: sitk.Image, threshold: float = 0.5, min_volume_ml: float = 0.02
) -> sitk.Image:
    """uint16 instance labels (1 = largest) on the probability's grid."""
    prob = sitk.GetArrayViewFromImage(probability)
    labels, n = ndimage.label(prob >= threshold, structure=np.ones((3, 3, 3), bool))
    out = np.zeros(labels.shape, np.uint16)
    if n:
        voxel_ml = float(np.prod(probability.GetSpacing())) / 1000.0
        sizes = np.bincount(labels.ravel())[1:] * voxel_ml
        keep = [i + 1 for i in np.argsort(-sizes, kind="stable") if sizes[i] >= min_volume_ml]
        lut = np.zeros(n + 1, np.uint16)
        lut[keep] = np.arange(1, len(keep) + 1, dtype=np.uint16)
        out = lut[labels]
    image = sitk.GetImageFromArray(out)
    image.CopyInformation(probability)
    return image
