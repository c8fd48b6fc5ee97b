"""nets.unet: whole-breast 3-D U-Net shapes, validation, configs and TorchScript."""

from __future__ import annotations

import io

import pytest
import torch

from BreastAIAssistantLib.nets import UNet3d

pytestmark = pytest.mark.filterwarnings(
    r"ignore:`torch\.jit\.\w+` is deprecated:DeprecationWarning"
)

TINY = (2, 4, 8)  # depth 2: axes divisible by 4


@pytest.mark.parametrize(
    ("kwargs", "input_shape", "output_shape"),
    [
        ({"widths": TINY}, (1, 1, 8, 16, 12), (1, 1, 8, 16, 12)),
        ({"widths": TINY, "out_channels": 2}, (2, 1, 4, 8, 8), (2, 2, 4, 8, 8)),
        ({"widths": (2, 2, 4, 4, 4)}, (1, 1, 16, 32, 32), (1, 1, 16, 32, 32)),
        ({"widths": (2, 2, 4, 4, 4), "residual": False}, (1, 1, 32, 32, 48), (1, 1, 32, 32, 48)),
        ({"widths": (2, 4, 4, 8), "in_channels": 2}, (1, 2, 24, 48, 40), (1, 1, 24, 48, 40)),
    ],
)
def test_output_shape(kwargs, input_shape, output_shape):
    model = UNet3d(**kwargs).eval()
    with torch.no_grad():
        assert model(torch.randn(input_shape)).shape == output_shape


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"widths": (8,)}, "at least 2 levels"),
        ({"widths": (8, 0)}, "positive integers"),
        ({"widths": (8, 16.0)}, "positive integers"),
        ({"in_channels": 0}, "in_channels"),
        ({"out_channels": 0}, "out_channels"),
        ({"negative_slope": -0.1}, "negative_slope"),
    ],
)
def test_constructor_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        UNet3d(**kwargs)


@pytest.mark.parametrize(
    ("input_shape", "match"),
    [
        ((1, 1, 8, 16, 10), "not divisible by 2\\*\\*depth = 4"),
        ((1, 1, 4, 4, 4), "single voxel"),
        ((1, 2, 8, 8, 8), "expected input"),
        ((1, 8, 8, 8), "expected input"),
    ],
)
def test_forward_validation(input_shape, match):
    with pytest.raises(ValueError, match=match):
        UNet3d(widths=TINY)(torch.randn(input_shape))


def test_script_matches_eager_and_round_trips():
    torch.manual_seed(0)
    model = UNet3d(widths=TINY, out_channels=2).eval()
    scripted = torch.jit.script(model)
    buffer = io.BytesIO()
    torch.jit.save(scripted, buffer)
    buffer.seek(0)
    loaded = torch.jit.load(buffer)
    x = torch.randn(2, 1, 8, 16, 12)
    with torch.no_grad():
        expected = model(x)
        assert torch.allclose(scripted(x), expected, atol=1e-6)
        assert torch.allclose(loaded(x), expected, atol=1e-6)
    with pytest.raises(torch.jit.Error, match="not divisible"):
        scripted(torch.randn(1, 1, 8, 16, 10))


def test_configs():
    small = UNet3d(**UNet3d.small_config())
    n_small = sum(p.numel() for p in small.parameters())
    assert 300_000 < n_small < 2_000_000
    with torch.device("meta"):
        paper = UNet3d(**UNet3d.paper_config())
    assert sum(p.numel() for p in paper.parameters()) > 10 * n_small
