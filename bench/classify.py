"""Benchmark of the lesion classifiers with Grad-CAM (issue 6), against hook-based Grad-CAM.

What it measures, on a seeded clinical-size phantom study (448 x 448 x 160; 2-4 lesions, drawn
as the classifiers' training cases are) with its ground-truth lesion masks:

* **ours**, as ``breast-ai run`` does it (:func:`BreastAIAssistantLib.classify.lesions.
  classify_lesions` with the bundled ``mrsm-demo``, ``receptors-demo`` and ``dmif-demo``, Grad-CAM
  on): seconds per lesion for all three classifiers plus their heat maps (crops, forward passes,
  Grad-CAM, maps resampled onto the study lattice), model loading timed separately, and per
  model. Goal: under 3 s per lesion on 2 CPU cores.
* **the peer**, in the same run: Grad-CAM the way the usual hook-based libraries compute it
  (a forward hook on the last stage of the *eager* network, a backward pass from the logit, the
  same channel weighting), for MRSM on the same inputs. Reported: its seconds per lesion for the
  MRSM forward + Grad-CAM, ours for the same step on the TorchScript bundle, and the largest
  difference between the two heat maps (they must agree).

Run::

    OMP_NUM_THREADS=2 .venv/bin/python bench/classify.py

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from typing import Any

import numpy as np
import SimpleITK as sitk
import torch


def hook_gradcam(net: torch.nn.Module, layer: torch.nn.Module, x: torch.Tensor,
                 target: int) -> torch.Tensor:
    """Grad-CAM with forward/backward hooks on an eager module (the usual approach)."""
    store: dict[str, torch.Tensor] = {}

    def forward_hook(_module, _inputs, output):
        store["a"] = output
        output.register_hook(lambda grad: store.__setitem__("g", grad))

    handle = layer.register_forward_hook(forward_hook)
    try:
        logits, _ = net(x)
        net.zero_grad(set_to_none=True)
        logits[:, target].sum().backward()
    finally:
        handle.remove()
    a, g = store["a"].detach(), store["g"]
    weights = g.mean(dim=tuple(range(2, g.dim())), keepdim=True)
    cam = torch.relu((weights * a).sum(dim=1, keepdim=True))
    cam = torch.nn.functional.interpolate(cam, size=list(x.shape[-3:]), mode="trilinear",
                                          align_corners=False)[:, 0]
    return cam / cam.flatten(1).amax(1).clamp_min(1e-12).view(-1, 1, 1, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=9701)
    parser.add_argument("--size", default="clinical", choices=["clinical", "small"])
    args = parser.parse_args()

    from BreastAIAssistantLib.classify.crops import intensity_scale
    from BreastAIAssistantLib.classify.inputs import mrsm_input
    from BreastAIAssistantLib.classify.lesions import classify_lesions
    from BreastAIAssistantLib.classify.predictor import load_classifier
    from BreastAIAssistantLib.explain import class_activation_map
    from BreastAIAssistantLib.nets import build_network
    from BreastAIAssistantLib.phantom.generator import generate_case
    from BreastAIAssistantLib.pipeline import CLASSIFIER_MODELS
    from BreastAIAssistantLib.train.data import enhancing_lesions
    from BreastAIAssistantLib.train.lesion_data import classification_spec

    case = generate_case(args.seed, size=args.size, **classification_spec(args.seed))
    labels = enhancing_lesions(case.tumour_labels, case.truth)
    n_lesions = len([v for v in np.unique(sitk.GetArrayViewFromImage(labels)) if v])

    clock = time.perf_counter()
    classifiers = [load_classifier(name, device="cpu") for name in CLASSIFIER_MODELS]
    load_s = time.perf_counter() - clock

    clock = time.perf_counter()
    results = classify_lesions(case.study, labels, classifiers)
    total_s = time.perf_counter() - clock

    per_model: dict[str, float] = {}
    array = sitk.GetArrayFromImage(labels)
    scale = intensity_scale(case.study)
    masks = []
    for lesion_id in results:
        mask = sitk.GetImageFromArray((array == lesion_id).astype(np.uint8))
        mask.CopyInformation(labels)
        masks.append(mask)
    for classifier in classifiers:
        clock = time.perf_counter()
        for mask in masks:
            classifier.predict(case.study, mask, scale)
        per_model[classifier.id] = (time.perf_counter() - clock) / max(len(masks), 1)

    # peer: hook-based Grad-CAM on the eager MRSM with the bundle's weights, same inputs
    mrsm = classifiers[0]
    eager = build_network(mrsm.bundle.manifest.network_name, mrsm.bundle.manifest.network_args)
    eager.load_state_dict(mrsm.module.state_dict())
    eager.eval()
    ours_s = peer_s = 0.0
    max_diff = 0.0
    for mask in masks:
        x = torch.from_numpy(mrsm_input(mrsm.crop(case.study, mask, scale)))
        clock = time.perf_counter()
        _, cam = class_activation_map(mrsm.module, x, 1)
        ours_s += time.perf_counter() - clock
        clock = time.perf_counter()
        reference = hook_gradcam(eager, eager.stages, x, 1)
        peer_s += time.perf_counter() - clock
        max_diff = max(max_diff, float((cam - reference).abs().max()))

    report: dict[str, Any] = {
        "benchmark": "classify",
        "machine": {"platform": platform.platform(), "torch_threads": torch.get_num_threads(),
                    "torch": torch.__version__},
        "case": {"seed": args.seed, "size_xyz": list(case.study.size_xyz),
                 "phases": case.study.n_phases, "lesions": n_lesions},
        "ours": {
            "models": [c.id for c in classifiers],
            "load_s": round(load_s, 3),
            "all_classifiers_with_gradcam_s_per_lesion": round(total_s / max(n_lesions, 1), 3),
            "per_model_s_per_lesion": {k: round(v, 3) for k, v in per_model.items()},
            "goal_s_per_lesion": 3.0,
        },
        "peer_hook_gradcam_mrsm": {
            "ours_scripted_s_per_lesion": round(ours_s / max(len(masks), 1), 3),
            "peer_eager_hooks_s_per_lesion": round(peer_s / max(len(masks), 1), 3),
            "max_abs_difference_of_maps": max_diff,
        },
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
