"""Deep features: pooled activations of this project's own MRSM encoder for a lesion.

The Front. Med. 2024 paper takes deep features from ImageNet-pretrained CNNs; pretrained weights
cannot be downloaded here, so the encoder is the bundled (or a user's) MRSM classifier: its
Grad-CAM feature map (``features(x)``, last residual stage) is averaged over time and space for
every lesion slice, and the slices are pooled with the lesion-area weights the classifier uses.
Names: ``deep_lesion_<bundle id>_f<k>``. Reduce them with PCA over a cohort
(:func:`BreastAIAssistantLib.radiomics.cohort.reduce_deep`), as the paper does.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk
import torch

from BreastAIAssistantLib.study import DCEStudy

_CACHE: dict[str, object] = {}


def deep_features(study: DCEStudy, lesion: sitk.Image, model: str = "mrsm-demo"
                  ) -> dict[str, float]:
    """Pooled encoder activations of one lesion (see the module docstring)."""
    from BreastAIAssistantLib.classify.inputs import mrsm_input
    from BreastAIAssistantLib.classify.predictor import MRSMClassifier

    classifier = _CACHE.get(model)
    if classifier is None:
        classifier = MRSMClassifier(model, device="cpu", explain=False)
        _CACHE[model] = classifier
    crop = classifier.crop(study, lesion)  # type: ignore[attr-defined]
    x = torch.from_numpy(mrsm_input(crop))
    with torch.inference_mode():
        maps = classifier.module.features(x)  # type: ignore[attr-defined]
    pooled = maps.mean(dim=(2, 3, 4)).numpy()  # (Z, C)
    vector = (pooled * crop.weights[:, None]).sum(axis=0) / crop.weights.sum()
    name = classifier.id  # type: ignore[attr-defined]
    return {f"deep_lesion_{name}_f{k:03d}": float(v) for k, v in enumerate(np.asarray(vector))}
