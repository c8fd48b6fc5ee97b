"""nets.spatiotemporal: shapes for 2-9 phases and several patches, absent phases ignored, time
encoding, validation, configs and TorchScript."""

from __future__ import annotations

import io

import pytest
import torch

from BreastAIAssistantLib.nets import SpatioTemporalSegmenter, phase_pairs

pytestmark = pytest.mark.filterwarnings(
    r"ignore:`torch\.jit\.\w+` is deprecated:DeprecationWarning"
)

# tiny models: depth = len(widths) - 1; patch axes divisible by 2**depth
DEPTH2 = {"widths": (2, 4, 6), "num_heads": 2, "spatial_layers": 1, "temporal_layers": 1}
DEPTH3 = {"widths": (2, 4, 4, 6), "num_heads": 2, "spatial_layers": 1, "temporal_layers": 1}
DEPTH4 = {"widths": (2, 2, 4, 4, 6), "num_heads": 2, "spatial_layers": 1, "temporal_layers": 1}


def make_inputs(n_phases, patch_zyx, batch=1, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn((batch, n_phases, 2, *patch_zyx), generator=gen)
    times_s = torch.arange(n_phases, dtype=torch.float32).repeat(batch, 1) * 75.0
    mask = torch.ones(batch, n_phases, dtype=torch.bool)
    return x, times_s, mask


def build(config, seed=0, **overrides):
    torch.manual_seed(seed)
    return SpatioTemporalSegmenter(**{**config, **overrides}).eval()


@pytest.fixture(scope="module")
def model():
    return build(DEPTH2)


@pytest.mark.parametrize(
    ("config", "n_phases", "patch_zyx", "batch"),
    [
        (DEPTH4, 2, (16, 32, 32), 1),
        (DEPTH3, 3, (24, 48, 40), 2),
        (DEPTH4, 4, (32, 64, 64), 1),
        (DEPTH2, 5, (8, 16, 24), 3),
        (DEPTH4, 6, (32, 96, 96), 1),  # the paper's patch: 72 tokens
        (DEPTH3, 7, (16, 16, 32), 1),
        (DEPTH2, 8, (4, 8, 12), 2),
        (DEPTH3, 9, (8, 24, 16), 1),
    ],
)
def test_output_shape(config, n_phases, patch_zyx, batch):
    x, times_s, mask = make_inputs(n_phases, patch_zyx, batch)
    with torch.no_grad():
        out = build(config)(x, times_s, mask)
    assert out.shape == (batch, 1, *patch_zyx)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("garbage", [1e6, float("nan"), float("inf")])
@pytest.mark.parametrize("slot", [1, 2, 4])  # an absent post phase in front, middle or end
def test_absent_phase_changes_nothing(model, garbage, slot):
    x, times_s, mask = make_inputs(4, (8, 16, 12), batch=2)
    with torch.no_grad():
        expected = model(x, times_s, mask)
        padded_x = torch.cat([x[:, :slot], torch.full_like(x[:, :1], garbage), x[:, slot:]], 1)
        padded_t = torch.cat([times_s[:, :slot], torch.full((2, 1), garbage), times_s[:, slot:]], 1)
        padded_mask = torch.cat([mask[:, :slot], torch.zeros(2, 1, dtype=torch.bool)], 1)
        padded_mask = torch.cat([padded_mask, mask[:, slot:]], 1)
        out = model(padded_x, padded_t, padded_mask)
    assert torch.allclose(out, expected, atol=1e-5)


def test_padded_batch_equals_samples_alone(model):
    """A batch of a 5-phase and a 3-phase study (padded) gives each study's own output."""
    x, times_s, mask = make_inputs(5, (8, 16, 12), batch=2)
    x[1, 3:] = torch.randn_like(x[1, 3:]) * 1e3
    mask[1, 3:] = False
    times_s[1] = torch.tensor([0.0, 45.0, 90.0, -7.0, 1e9])
    with torch.no_grad():
        both = model(x, times_s, mask)
        first = model(x[:1], times_s[:1], mask[:1])
        second = model(x[1:, :3], times_s[1:, :3], mask[1:, :3])
    assert torch.allclose(both[:1], first, atol=1e-5)
    assert torch.allclose(both[1:], second, atol=1e-5)


def test_present_phase_matters(model):
    x, times_s, mask = make_inputs(4, (8, 16, 12))
    dropped = mask.clone()
    dropped[0, 2] = False
    with torch.no_grad():
        assert not torch.allclose(model(x, times_s, mask), model(x, times_s, dropped), atol=1e-5)


def test_output_depends_on_times_not_on_their_origin(model):
    x, times_s, mask = make_inputs(4, (8, 16, 12))
    with torch.no_grad():
        base = model(x, times_s, mask)
        slower = model(x, times_s * 2.0, mask)
        shifted = model(x, times_s + 1234.5, mask)  # absolute clock times: only t - t0 is used
    assert (base - slower).abs().max() > 1e-5
    assert torch.allclose(base, shifted, atol=1e-5)


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"spatial_layers": 0},
        {"temporal_layers": 0},
        {"spatial_layers": 0, "temporal_layers": 0},
        {"embed_dim": 12, "num_heads": 3, "residual": False},
    ],
)
def test_script_matches_eager(overrides):
    model = build(DEPTH2, **overrides)
    scripted = torch.jit.script(model)
    x, times_s, mask = make_inputs(4, (8, 16, 12), batch=2)
    mask[1, 2] = False
    x[1, 2] = float("nan")
    with torch.no_grad():
        assert torch.allclose(scripted(x, times_s, mask), model(x, times_s, mask), atol=1e-5)


def test_script_round_trip_and_errors(model):
    buffer = io.BytesIO()
    torch.jit.save(torch.jit.script(model), buffer)
    buffer.seek(0)
    loaded = torch.jit.load(buffer)
    x, times_s, mask = make_inputs(3, (8, 16, 12))
    with torch.no_grad():
        assert torch.allclose(loaded(x, times_s, mask), model(x, times_s, mask), atol=1e-5)
    mask[0, 0] = False
    with pytest.raises(torch.jit.Error, match="phase 0"):
        loaded(x, times_s, mask)


def test_training_step_gives_finite_gradients():
    model = build(DEPTH2, dropout=0.1).train()
    x, times_s, mask = make_inputs(4, (8, 16, 12), batch=2)
    mask[0, 3] = False
    x[0, 3] = float("nan")
    model(x, times_s, mask).mean().backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"widths": (4,)}, "at least 2 levels"),
        ({"widths": (4, -8)}, "positive integers"),
        ({"num_heads": 0}, "num_heads"),
        ({"widths": (4, 8), "num_heads": 3}, "divisible by num_heads"),
        ({"widths": (2, 4), "num_heads": 1}, "embed_dim must be >= 6"),
        ({"embed_dim": 10, "num_heads": 4}, "divisible by num_heads"),
        ({"spatial_layers": -1}, "spatial_layers"),
        ({"temporal_layers": -1}, "temporal_layers"),
        ({"mlp_ratio": 0.0}, "mlp_ratio"),
        ({"dropout": 1.0}, "dropout"),
        ({"phase_channels": 0}, "phase_channels"),
        ({"negative_slope": -1.0}, "negative_slope"),
    ],
)
def test_constructor_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SpatioTemporalSegmenter(**kwargs)


def _bad(kind):
    x, times_s, mask = make_inputs(3, (8, 16, 12))
    if kind == "patch":
        x = x[..., :10]
    elif kind == "single_voxel":
        x = x[..., :4, :4, :4]
    elif kind == "channels":
        x = x[:, :, :1]
    elif kind == "times":
        times_s = times_s[:, :2]
    elif kind == "mask_dtype":
        mask = mask.float()
    elif kind == "pre_absent":
        mask[0, 0] = False
    return x, times_s, mask


@pytest.mark.parametrize(
    ("kind", "match"),
    [
        ("patch", r"not divisible by 2\*\*depth = 4"),
        ("single_voxel", "single voxel"),
        ("channels", r"expected x of shape \(B, T, 2, Z, Y, X\)"),
        ("times", r"times_s and phase_mask must be \(B, T\)"),
        ("mask_dtype", "bool"),
        ("pre_absent", "phase 0"),
    ],
)
def test_forward_validation(model, kind, match):
    with pytest.raises(ValueError, match=match):
        model(*_bad(kind))


def test_configs_parameter_counts():
    small = SpatioTemporalSegmenter(**SpatioTemporalSegmenter.small_config())
    n_small = sum(p.numel() for p in small.parameters())
    assert 300_000 < n_small < 2_500_000
    state_bytes = sum(t.numel() * t.element_size() for t in small.state_dict().values())
    assert state_bytes < 10 * 2**20
    with torch.device("meta"):
        paper = SpatioTemporalSegmenter(**SpatioTemporalSegmenter.paper_config())
    assert sum(p.numel() for p in paper.parameters()) > 50 * n_small


def test_phase_pairs():
    phases = torch.tensor([1.0, 3.0, 2.5]).reshape(1, 3, 1, 1, 1)
    pairs = phase_pairs(phases)
    assert pairs.shape == (1, 3, 2, 1, 1, 1)
    assert pairs[0, :, 0].flatten().tolist() == [1.0, 3.0, 2.5]
    assert pairs[0, :, 1].flatten().tolist() == [0.0, 2.0, 1.5]
