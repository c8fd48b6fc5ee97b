"""Grad-CAM and Grad-CAM++ on TorchScript classifiers, checked against hook-based references on
the eager modules."""

from __future__ import annotations

import pytest
import torch

from BreastAIAssistantLib.explain import class_activation_map
from BreastAIAssistantLib.nets import DMIFNet, MRSMNet


def reference_cam(net, stage, x, target, plus=False):
    """Grad-CAM(++) from a forward hook on ``stage`` of the eager network (the classic way)."""
    store = {}

    def hook(_module, _inputs, output):
        store["a"] = output
        output.register_hook(lambda g: store.__setitem__("g", g))

    handle = stage.register_forward_hook(hook)
    logits, _ = net(x)
    logits[:, target].sum().backward()
    handle.remove()
    a, g = store["a"].detach(), store["g"]
    axes = tuple(range(2, a.dim()))
    if plus:
        g2, g3 = g**2, g**3
        denom = 2 * g2 + a.sum(dim=axes, keepdim=True) * g3
        alpha = torch.where(denom != 0, g2 / torch.where(denom != 0, denom, 1.0), 0.0)
        w = (alpha * torch.relu(g)).sum(dim=axes, keepdim=True)
    else:
        w = g.mean(dim=axes, keepdim=True)
    return torch.relu((w * a).sum(dim=1))


@pytest.mark.parametrize("method", ["gradcam", "gradcam++"])
def test_mrsm_cam_matches_hook_reference(method):
    torch.manual_seed(0)
    net = MRSMNet(stem_width=8, widths=[8, 16]).eval()
    x = torch.randn(2, 2, 4, 32, 32)
    reference = reference_cam(net, net.stages, x, 1, plus=method == "gradcam++")  # (N, T, h, w)
    ref_up = torch.nn.functional.interpolate(reference[:, None], size=[4, 32, 32],
                                             mode="trilinear", align_corners=False)[:, 0]
    ref_up = ref_up / ref_up.flatten(1).amax(1).clamp_min(1e-12).view(-1, 1, 1, 1)
    scripted = torch.jit.script(net)
    logits, cam = class_activation_map(scripted, x, 1, method)
    assert cam.shape == (2, 4, 32, 32)  # one map per phase
    torch.testing.assert_close(cam, ref_up, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(logits, net(x)[0])


def test_dmif_cam_in_unit_range_and_not_constant():
    torch.manual_seed(1)
    net = torch.jit.script(DMIFNet(widths=[8, 16], cardinality=4, fused=8, orientations=4).eval())
    x = torch.randn(3, 2, 64, 64)
    _, cam = class_activation_map(net, x, 1)
    assert cam.shape == (3, 64, 64)
    assert float(cam.min()) >= 0 and float(cam.amax(dim=(1, 2)).min()) == pytest.approx(1.0)
    assert float(cam.std()) > 0


def test_cam_follows_the_evidence():
    """A model whose malignant logit is the mean of its input's positive part: the heat map
    must sit on the bright blob and nowhere else."""

    class Toy(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            features = torch.relu(x * 1.0)
            score = features.mean(dim=(1, 2, 3))
            return torch.stack([-score, score], dim=1), features

    x = torch.zeros(1, 1, 16, 16, requires_grad=False)
    x[0, 0, 3:6, 9:12] = 1.0
    _, cam = class_activation_map(torch.jit.script(Toy()), x, 1)
    inside = cam[0, 3:6, 9:12].sum()
    assert float(inside / cam.sum()) > 0.99


def test_errors():
    net = MRSMNet(stem_width=8, widths=[8]).eval()
    with pytest.raises(ValueError, match="unknown method"):
        class_activation_map(net, torch.randn(1, 2, 2, 16, 16), 1, "scorecam")
    with torch.inference_mode(), pytest.raises(RuntimeError, match="gradients"):
        class_activation_map(net, torch.randn(1, 2, 2, 16, 16), 1)


def test_repeated_calls_on_a_scripted_model():
    """TorchScript's profiling executor optimises after the first calls; Grad-CAM must keep
    working (it splits the network with the exported features/head methods)."""
    torch.manual_seed(2)
    net = MRSMNet(stem_width=8, widths=[8, 16]).eval()
    scripted = torch.jit.script(net)
    x = torch.randn(2, 2, 3, 32, 32)
    first = class_activation_map(scripted, x, 1)[1]
    for _ in range(4):
        torch.testing.assert_close(class_activation_map(scripted, x, 1)[1], first)
