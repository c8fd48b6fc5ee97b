"""nets.blocks, nets.transformer and the network registry."""

from __future__ import annotations

import pytest
import torch

from BreastAIAssistantLib.nets import NETWORKS, SpatioTemporalSegmenter, UNet3d, build_network
from BreastAIAssistantLib.nets.blocks import ConvBlock3d, check_patch_size
from BreastAIAssistantLib.nets.transformer import (
    MaskedSelfAttention,
    PhaseAttentionPool,
    TimeEncoding,
    sincos_position_3d,
)


@pytest.mark.parametrize(
    ("in_channels", "out_channels", "stride", "residual", "out_shape"),
    [
        (2, 4, 1, True, (1, 4, 4, 8, 6)),
        (4, 4, 1, True, (1, 4, 4, 8, 6)),
        (2, 6, 2, True, (1, 6, 2, 4, 3)),
        (2, 6, 2, False, (1, 6, 2, 4, 3)),
    ],
)
def test_conv_block_shape(in_channels, out_channels, stride, residual, out_shape):
    block = ConvBlock3d(in_channels, out_channels, stride, residual)
    assert block(torch.randn(1, in_channels, 4, 8, 6)).shape == out_shape


def test_conv_block_norm_is_per_sample():
    block = ConvBlock3d(2, 4).eval()
    x = torch.randn(3, 2, 4, 4, 4)
    with torch.no_grad():
        assert torch.allclose(block(x)[1:2], block(x[1:2]), atol=1e-6)


@pytest.mark.parametrize(
    ("shape", "depth", "match"),
    [
        ([16, 32, 30], 4, r"not divisible by 2\*\*depth = 16"),
        ([16, 16, 16], 4, "single voxel"),
        ([16, 16], 2, "3 spatial axes"),
    ],
)
def test_check_patch_size_errors(shape, depth, match):
    with pytest.raises(ValueError, match=match):
        check_patch_size(shape, depth)


@pytest.mark.parametrize(
    ("grid", "dim"),
    [([2, 6, 6], 64), ([1, 3, 5], 12), ([3, 4, 2], 16), ([2, 2, 2], 6)],
)
def test_position_encoding_any_grid(grid, dim):
    pos = sincos_position_3d(grid, dim, torch.device("cpu"))
    n_tokens = grid[0] * grid[1] * grid[2]
    assert pos.shape == (n_tokens, dim)
    assert torch.unique(pos, dim=0).shape[0] == n_tokens  # every token distinguishable
    assert (pos[:, 6 * (dim // 6) :] == 0).all()


def test_attention_ignores_masked_keys_and_never_gives_nan():
    torch.manual_seed(0)
    attn = MaskedSelfAttention(8, 2).eval()
    x = torch.randn(2, 5, 8)
    key_mask = torch.tensor([[True, True, False, True, False], [False] * 5])
    changed = x.clone()
    changed[0, 2] = 1e4
    with torch.no_grad():
        out, out_changed = attn(x, key_mask), attn(changed, key_mask)
    keep = [0, 1, 3, 4]
    assert torch.allclose(out[0, keep], out_changed[0, keep], atol=1e-6)
    assert torch.isfinite(out).all()  # the all-masked row attends everywhere instead of NaN


def test_time_encoding_relative_and_masked():
    enc = TimeEncoding(16)
    times = torch.tensor([[0.0, 60.0, 120.0], [100.0, 160.0, float("nan")]])
    mask = torch.tensor([[True, True, True], [True, True, False]])
    out = enc(times, mask)
    assert out.shape == (2, 3, 16)
    assert torch.isfinite(out).all()
    assert torch.allclose(out[0, :2], out[1, :2], atol=1e-6)  # 100 s + (0, 60) == (0, 60)
    assert torch.allclose(out[1, 2], out[1, 0], atol=1e-6)  # absent -> time 0


def test_phase_pool_starts_as_masked_mean():
    pool = PhaseAttentionPool(3)
    mask = torch.tensor([[True, False, True], [True, True, False]])
    present = torch.nonzero(mask.reshape(-1)).squeeze(1)
    features = torch.randn(4, 3, 2, 2, 2)
    fused = pool(features, mask, present)
    assert fused.shape == (2, 3, 2, 2, 2)
    assert torch.allclose(fused[0], features[0:2].mean(0), atol=1e-6)
    assert torch.allclose(fused[1], features[2:4].mean(0), atol=1e-6)


@pytest.mark.parametrize(
    ("name", "cls", "args"),
    [
        ("UNet3d", UNet3d, UNet3d.small_config()),
        ("SpatioTemporalSegmenter", SpatioTemporalSegmenter, {"widths": [2, 4, 6], "num_heads": 2}),
    ],
)
def test_registry_builds(name, cls, args):
    assert NETWORKS[name] is cls
    assert isinstance(build_network(name, args), cls)


@pytest.mark.parametrize(
    ("name", "args", "match"),
    [
        ("VNet", {}, "unknown network 'VNet'"),
        ("UNet3d", {"width": [8, 16]}, "bad arguments for network 'UNet3d'"),
        ("UNet3d", {"widths": [8]}, "at least 2 levels"),
    ],
)
def test_registry_errors(name, args, match):
    with pytest.raises(ValueError, match=match):
        build_network(name, args)
