"""Phantom kinetics: Parker AIF, extended Tofts convolution, SPGR signal, tissue curves."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from BreastAIAssistantLib.phantom import tissues as T
from BreastAIAssistantLib.phantom.kinetics import (
    FINE_DT_S,
    Protocol,
    parker_aif,
    plasma_curve,
    signal_curves,
    spgr_signal,
    tofts_concentration,
)


def test_parker_aif_shape():
    t = np.linspace(-1.0, 10.0, 2201)
    cb = parker_aif(t)
    assert np.all(cb[t <= 0] == 0)
    peak = t[int(np.argmax(cb))]
    assert 0.15 < peak < 0.2  # first-pass peak near T1 = 0.17 min
    assert 5.0 < cb.max() < 7.0  # mM, whole blood
    late = cb[t > 2.0]
    assert np.all(np.diff(late) < 0)  # washout after recirculation


def _brute_force_tofts(cp, dt, ktrans, ve, vp, step=0.01):
    t = np.arange(cp.size) * dt
    fine = np.arange(0.0, t[-1] + 1e-9, step)
    cpf = np.interp(fine, t, cp)
    k = ktrans / ve / 60.0
    out = []
    for ti in t[::50]:
        m = fine <= ti
        integral = np.trapezoid(cpf[m] * np.exp(-k * (ti - fine[m])), fine[m])
        out.append(vp * np.interp(ti, fine, cpf) + ktrans / 60.0 * integral)
    return np.array(out)


@pytest.mark.parametrize(
    ("ktrans", "ve", "vp"), [(0.8, 0.3, 0.05), (0.1, 0.5, 0.0), (2.0, 0.2, 0.1)]
)
def test_tofts_matches_brute_force_convolution(ktrans, ve, vp):
    cp = plasma_curve(Protocol(injection_s=30.0), 400.0)
    fast = tofts_concentration(cp, FINE_DT_S, [ktrans], [ve], [vp])[0]
    slow = _brute_force_tofts(cp, FINE_DT_S, ktrans, ve, vp)
    assert np.max(np.abs(fast[::50] - slow)) < 1e-5 * max(1.0, fast.max())


def test_tofts_steady_state_is_ve_times_cp():
    cp = np.full(4000, 2.0)
    ct = tofts_concentration(cp, 0.5, [0.6, 0.0], [0.4, 0.3], [0.0, 0.1])
    assert ct[0, -1] == pytest.approx(0.4 * 2.0, rel=1e-6)  # ve * Cp at equilibrium
    assert np.allclose(ct[1], 0.1 * 2.0)  # vp only


def test_tofts_rejects_bad_parameters():
    with pytest.raises(ValueError, match="ve must be > 0"):
        tofts_concentration(np.ones(10), 1.0, [0.5], [0.0], [0.0])
    with pytest.raises(ValueError, match="Ktrans must be >= 0"):
        tofts_concentration(np.ones(10), 1.0, [-0.5], [0.2], [0.0])
    with pytest.raises(ValueError, match="same length"):
        tofts_concentration(np.ones(10), 1.0, [0.5, 0.1], [0.2], [0.0])


def test_spgr_limits_and_monotonicity():
    flip = 12.0
    assert spgr_signal(np.array([1e6]), 4.5, flip)[0] == pytest.approx(math.sin(math.radians(flip)))
    assert spgr_signal(np.array([0.0]), 4.5, flip)[0] == 0.0
    r1 = np.linspace(0.1, 50.0, 200)
    assert np.all(np.diff(spgr_signal(r1, 4.5, flip)) > 0)  # brighter with more contrast


def test_tissue_curves_have_the_expected_shapes():
    times = [0, 60, 120, 180, 240, 300, 360]
    protocol = Protocol(injection_s=40.0)
    fgt = replace(T.TISSUES[T.FIBROGLANDULAR], ktrans_per_min=T.BPE_KTRANS["moderate"])
    sig = signal_curves([T.TISSUES[T.FAT], fgt, T.TISSUES[T.BLOOD], T.CYST_TISSUE], times, protocol)
    fat, gland, blood, cyst = sig
    assert abs(fat[-1] - fat[0]) / fat[0] < 0.05  # fat barely enhances
    assert np.all(np.diff(gland) > 0)  # background enhancement is persistent
    assert blood[1] > 3 * blood[0] and blood[-1] < blood[1]  # early, strong, washout
    assert np.allclose(cyst, cyst[0])  # non-enhancing
    suppressed = signal_curves([T.TISSUES[T.FAT]], times, replace(protocol, fat_residual=0.1))
    assert suppressed[0, 0] == pytest.approx(0.1 * fat[0])
