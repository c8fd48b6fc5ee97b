"""The three classifier networks and the scattering transform: shapes, phase counts, scripting,
and the filter bank's defining properties."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from BreastAIAssistantLib.nets import DMIFNet, MRSMNet, ReceptorNet, build_network
from BreastAIAssistantLib.nets.dmif import pyramid_pool
from BreastAIAssistantLib.nets.scattering import (
    Scattering2d,
    gaussian_2d,
    morlet_2d,
    scattering_channels,
)

SMALL_MRSM = {"stem_width": 8, "widths": [8, 16]}
SMALL_DMIF = {"widths": [8, 16], "cardinality": 4, "fused": 8, "scales": [2, 3], "orientations": 4}


@pytest.mark.parametrize("n_phases", [2, 3, 5, 9])
@pytest.mark.parametrize("size", [32, 48])
def test_mrsm_shapes_any_phase_count(n_phases, size):
    net = MRSMNet(**SMALL_MRSM).eval()
    logits, features = net(torch.randn(3, 2, n_phases, size, size))
    assert logits.shape == (3, 2)
    # time is never downsampled: one feature slice (and Grad-CAM map) per phase
    assert features.shape == (3, 16, n_phases, size // 4, size // 4)


def test_mrsm_time_kept_and_scripted():
    net = MRSMNet(**SMALL_MRSM).eval()
    x = torch.randn(2, 2, 4, 32, 32)
    scripted = torch.jit.script(net)
    for a, b in zip(net(x), scripted(x), strict=True):
        torch.testing.assert_close(a, b)


def test_mrsm_rejects_bad_arguments():
    with pytest.raises(ValueError, match="dropout"):
        MRSMNet(dropout=1.0)
    with pytest.raises(ValueError, match="num_classes"):
        MRSMNet(num_classes=1)
    with pytest.raises(ValueError, match="dimensions"):
        MRSMNet(**SMALL_MRSM)(torch.randn(2, 2, 32, 32))


def test_mrsm_multiscale_module_sums_dilated_paths():
    """Model A: spatial dilations 1/3/5 and temporal dilations 1/3, sizes kept."""
    net = MRSMNet(**SMALL_MRSM)
    rates = [conv.dilation for conv in net.multiscale.spatial]
    assert rates == [(1, 1, 1), (1, 3, 3), (1, 5, 5)]
    assert [conv.dilation for conv in net.multiscale.temporal] == [(1, 1, 1), (3, 1, 1)]
    x = torch.randn(1, 8, 3, 12, 12)
    assert net.multiscale(x).shape == x.shape
    assert net.dropout.p == pytest.approx(0.15)


def test_receptor_net_outputs():
    net = ReceptorNet(widths=[8, 16, 32], hidden=16).eval()
    x = torch.randn(5, 4, 48, 48)
    out, features = net(x)
    assert out.shape == (5, 4)
    assert features.shape == (5, 32, 12, 12)
    assert torch.all((out[:, 3] >= 0) & (out[:, 3] <= 100))  # Ki-67 in percent
    torch.testing.assert_close(torch.jit.script(net)(x)[0], out)


def test_receptor_region_weighting_starts_neutral():
    net = ReceptorNet(widths=[8, 16])
    weighting = net.weighting[0]
    x = torch.randn(2, 8, 16, 16)
    regions = torch.zeros(2, 3, 16, 16)
    regions[:, 0, 4:8, 4:8] = 1
    torch.testing.assert_close(weighting(x, regions), x)  # softplus(w) = 1 everywhere at start
    with torch.no_grad():
        weighting.weights[0] = 5.0  # emphasise the core
    out = weighting(x, regions)
    assert torch.allclose(out[:, :, 0, 0], x[:, :, 0, 0])
    assert torch.all(out[:, :, 5, 5].abs() > x[:, :, 5, 5].abs() * 4.9)


@pytest.mark.parametrize("sequences", [1, 2, 3])
def test_dmif_shapes_and_script(sequences):
    net = DMIFNet(sequences=sequences, **SMALL_DMIF).eval()
    x = torch.randn(2, sequences, 64, 64)
    logits, features = net(x)
    assert logits.shape == (2, 2)
    assert features.shape == (2, 8 * sequences, 16, 16)  # stem and one stage halve 64 twice
    torch.testing.assert_close(torch.jit.script(net)(x)[0], logits)
    with pytest.raises(ValueError, match="expected"):
        net(torch.randn(2, sequences + 1, 64, 64))


def test_dmif_each_sequence_has_its_own_branches():
    net = DMIFNet(sequences=2, **SMALL_DMIF)
    first, second = net.deep[0], net.deep[1]
    assert first is not second
    assert first.stem[0].weight.data_ptr() != second.stem[0].weight.data_ptr()


def test_pyramid_pool_cells():
    x = torch.arange(16.0).view(1, 1, 4, 4)
    pooled = pyramid_pool(x, [1, 2, 4])
    assert pooled.shape == (1, 21)  # 1 + 4 + 16 values per channel
    assert pooled[0, 0] == 15  # global max
    assert pooled[0, 1:5].tolist() == [5, 7, 13, 15]


def test_registry_knows_classifiers():
    assert isinstance(build_network("MRSMNet", SMALL_MRSM), MRSMNet)
    assert isinstance(build_network("DMIFNet", SMALL_DMIF), DMIFNet)
    assert isinstance(build_network("ReceptorNet", {"widths": [8, 16]}), ReceptorNet)


# --- scattering ------------------------------------------------------------------------------

def test_morlet_zero_mean_and_lowpass_unit_sum():
    psi = morlet_2d(33, 1.6, 0.3, 3 * math.pi / 8, 0.5)
    assert abs(complex(psi.sum())) < 1e-10
    assert float(gaussian_2d(25, 3.2).sum()) == pytest.approx(1.0)


@pytest.mark.parametrize(("J", "L", "order"), [(1, 4, 1), (2, 8, 2), (3, 6, 2)])
def test_scattering_channel_count(J, L, order):
    out = Scattering2d(J, L, order)(torch.randn(2, 3, 32, 32))
    assert len(out) == 1
    assert out[0].shape == (2, 3 * scattering_channels(J, L, order), 32 >> J, 32 >> J)
    assert scattering_channels(2, 8, 2) == 81 and scattering_channels(3, 8, 2) == 217


def test_multiscale_scattering_equals_separate_transforms():
    x = torch.randn(2, 1, 32, 32)
    joint = Scattering2d([2, 3], 4, 2)(x)
    torch.testing.assert_close(joint[0], Scattering2d(2, 4, 2)(x)[0])
    torch.testing.assert_close(joint[1], Scattering2d(3, 4, 2)(x)[0])


def test_fft_wavelet_modulus_equals_direct_convolution():
    bank = Scattering2d(3, 4, 1).banks[2]
    x = torch.randn(3, 1, 40, 40)
    pad = bank.kernels.shape[-1] // 2
    direct = F.conv2d(F.pad(x, (pad,) * 4, mode="reflect"), bank.kernels).view(3, 4, 2, 40, 40)
    direct = torch.sqrt(direct[:, :, 0] ** 2 + direct[:, :, 1] ** 2 + 1e-12)
    torch.testing.assert_close(bank(x), direct, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("orientation", range(4))
def test_first_order_picks_the_grating_orientation(orientation):
    """A grating along orientation l at the finest scale's frequency excites wavelet (0, l) most."""
    L = 4
    theta = math.pi * orientation / L
    r = torch.arange(64, dtype=torch.float64)
    yy, xx = torch.meshgrid(r, r, indexing="ij")
    grating = torch.cos(3 * math.pi / 4 * (math.cos(theta) * xx + math.sin(theta) * yy))
    out = Scattering2d(1, L, 1)(grating[None, None].float())[0]
    energy = out[0, 1:1 + L, 4:-4, 4:-4].mean(dim=(1, 2))  # order 1, scale 0, away from borders
    assert int(torch.argmax(energy)) == orientation


def test_scattering_is_scriptable_and_rejects_odd_sizes():
    s = Scattering2d([2, 3], 4, 2)
    x = torch.randn(1, 2, 32, 32)
    for a, b in zip(s(x), torch.jit.script(s)(x), strict=True):
        torch.testing.assert_close(a, b)
    with pytest.raises(ValueError, match="divisible"):
        s(torch.randn(1, 1, 36, 36))
