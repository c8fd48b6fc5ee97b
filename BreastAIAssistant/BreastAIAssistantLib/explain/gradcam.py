"""Grad-CAM and Grad-CAM++ for the classifiers, eager or TorchScript.

Hooks do not survive TorchScript, so every classifier in this project returns the feature map
that its manifest names (``explain.feature_map``) beside its outputs, and exports two methods
that split the network there: ``features(x)`` and ``head(features, x)``. Grad-CAM runs
``head`` on a detached copy of the map that requires gradients and differentiates the chosen
output with respect to it. The split is needed: after its first calls, TorchScript's profiling
executor fuses the forward pass into differentiable subgraphs whose *intermediate* outputs no
longer lie on the autograd path from the logits, so ``autograd.grad(logit, returned_map)`` fails
from the second call on (checked in the tests). Models without the two methods fall back to the
map that ``forward`` returns (fine for eager modules).

* **Grad-CAM** (Selvaraju RR, et al., ICCV 2017): channel weights ``a_k = mean(dy/dA_k)`` over all
  positions of the map; ``cam = ReLU(sum_k a_k A_k)``.
* **Grad-CAM++** (Chattopadhay A, et al., WACV 2018), with ``Y = exp(y)`` so that higher
  derivatives are powers of the first: ``alpha = g^2 / (2 g^2 + sum(A) g^3)`` per position,
  ``w_k = sum(alpha * ReLU(g))`` (the ``exp(y)`` factor of ``dY/dA`` is one positive number per
  sample and cancels in the scaling below); ``cam = ReLU(sum_k w_k A_k)``.

The map keeps every axis of the feature map (for MRSM, time: one map per phase), is upsampled
to the input's size (linear interpolation) and scaled to [0, 1] per sample (all zero when the
map is zero everywhere, which is reported rather than hidden).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

METHODS = ("gradcam", "gradcam++")


def _weights(features: Tensor, grads: Tensor, method: str) -> Tensor:
    axes = tuple(range(2, features.dim()))
    if method == "gradcam":
        return grads.mean(dim=axes, keepdim=True)
    g2 = grads**2
    g3 = g2 * grads
    total = features.sum(dim=axes, keepdim=True)
    denominator = 2 * g2 + total * g3
    safe = torch.where(denominator != 0, denominator, torch.ones_like(denominator))
    alpha = torch.where(denominator != 0, g2 / safe, torch.zeros_like(g2))
    return (alpha * torch.relu(grads)).sum(dim=axes, keepdim=True)


def class_activation_map(model: nn.Module | torch.jit.ScriptModule, inputs: Tensor,
                         target: int, method: str = "gradcam",
                         size: list[int] | None = None) -> tuple[Tensor, Tensor]:
    """Class activation maps of output column ``target`` for a batch.

    Args:
        model: Returns ``(outputs (N, K), features (N, C, *spatial))``; preferably with
            ``features(x)`` and ``head(features, x)`` methods (see the module docstring).
        inputs: The model input.
        target: Column of ``outputs`` to explain (e.g. 1 = malignant logit; 0 = ER logit).
        method: ``"gradcam"`` or ``"gradcam++"``.
        size: Spatial size to upsample to (default: the input's trailing axes matching the
            feature map's rank).

    Returns:
        ``(outputs (N, K) detached, cams (N, *size))`` with each sample's map scaled to [0, 1].
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose from {', '.join(METHODS)}")
    if torch.is_inference_mode_enabled():
        raise RuntimeError("Grad-CAM needs gradients: call it outside torch.inference_mode()")
    with torch.enable_grad():
        if hasattr(model, "features") and hasattr(model, "head"):
            with torch.no_grad():
                features = model.features(inputs)
            features = features.detach().requires_grad_(True)
            outputs = model.head(features, inputs)
        else:
            # the input takes part in the graph, so that frozen weights still give gradients
            outputs, features = model(inputs.detach().requires_grad_(True))
        score = outputs[:, target].sum()
        (grads,) = torch.autograd.grad(score, features)
    features = features.detach()
    cam = torch.relu((_weights(features, grads, method) * features).sum(dim=1, keepdim=True))
    spatial = list(features.shape[2:])
    if size is None:
        size = list(inputs.shape[-len(spatial):])
    mode = {1: "linear", 2: "bilinear", 3: "trilinear"}[len(spatial)]
    cam = F.interpolate(cam, size=size, mode=mode, align_corners=False)[:, 0]
    flat = cam.reshape(cam.shape[0], -1)
    peak = flat.amax(dim=1).clamp_min(1e-12).view(-1, *([1] * (cam.dim() - 1)))
    return outputs.detach(), cam / peak
