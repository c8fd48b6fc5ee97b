"""Contrast kinetics of the phantom: population AIF, extended Tofts model, SPGR signal.

Chain, per tissue class (never per voxel: a class's curve is computed once and broadcast):

1. **Arterial input function** (Parker GJM, et al. Experimentally-derived functional form for a
   population-averaged high-temporal-resolution arterial input function for dynamic
   contrast-enhanced MRI. MRM 2006;56:993-1000), whole-blood concentration in mM, ``t`` in minutes
   after injection::

       Cb(t) = sum_{n=1,2} A_n / (sigma_n sqrt(2 pi)) exp(-(t - T_n)^2 / (2 sigma_n^2))
               + alpha exp(-beta t) / (1 + exp(-s (t - tau)))

   with ``A1 = 0.809, A2 = 0.330 mmol min, T1 = 0.17046, T2 = 0.365 min, sigma1 = 0.0563,
   sigma2 = 0.132 min, alpha = 1.050 mmol, beta = 0.1685 /min, s = 38.078 /min,
   tau = 0.483 min``. Plasma concentration ``Cp = Cb / (1 - Hct)``. A per-case scale (cardiac
   output, dose) multiplies it.

2. **Extended Tofts model** (Tofts PS, et al. Estimating kinetic parameters from dynamic
   contrast-enhanced T1-weighted MRI of a diffusable tracer: standardized quantities and symbols.
   JMRI 1999;10:223-232)::

       Ct(t) = vp Cp(t) + Ktrans int_0^t Cp(u) exp(-kep (t - u)) du,    kep = Ktrans / ve

   The convolution is evaluated exactly for a piecewise-linear ``Cp`` on a fine grid (``dt``
   = 0.5 s) by the recursion ``I_n = E I_{n-1} + b0 Cp_{n-1} + b1 Cp_n`` with ``E = exp(-k dt)``,
   ``q0 = (1 - E) / k``, ``b1 = q0 - (1 - E (1 + k dt)) / (k^2 dt)``, ``b0 = q0 - b1`` (a
   first-order IIR filter, run with :func:`scipy.signal.lfilter`). Each phase samples the curve
   at its acquisition time (the k-space centre; averaging over the acquisition is not modelled).

3. **Relaxation and signal**: fast water exchange, ``R1(t) = 1 / T10 + r1 Ct(t)``, and the
   steady-state spoiled gradient-echo (SPGR) equation (Ernst; e.g. Haacke et al., *Magnetic
   Resonance Imaging: Physical Principles and Sequence Design*, 1999)::

       S = g PD sin(a) (1 - E1) / (1 - cos(a) E1),      E1 = exp(-TR R1)

   T2* decay is ignored (short TE). Fat suppression multiplies the signal of fat classes by a
   residual factor. Relaxivities of common agents in plasma at 37 C: Rohrer M, et al. Comparison
   of magnetic properties of MRI contrast media solutions at different magnetic field strengths.
   Invest Radiol 2005;40:715-724.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.signal import lfilter

from BreastAIAssistantLib.phantom.tissues import HEMATOCRIT, TissueProperties

#: Parker 2006 population AIF parameters (t in minutes, concentrations in mM).
PARKER_2006: dict[str, float] = {
    "A1": 0.809,
    "A2": 0.330,
    "T1": 0.17046,
    "T2": 0.365,
    "sigma1": 0.0563,
    "sigma2": 0.132,
    "alpha": 1.050,
    "beta": 0.1685,
    "s": 38.078,
    "tau": 0.483,
}

#: Agent -> r1 relaxivity in plasma (1/(s mM)) at (1.5 T, 3 T), Rohrer et al. 2005.
RELAXIVITY: dict[str, tuple[float, float]] = {
    "gadoterate": (3.6, 3.5),
    "gadobutrol": (5.2, 5.0),
    "gadopentetate": (4.1, 3.7),
    "gadobenate": (6.3, 5.5),
}

#: Time step of the fine grid on which the convolution is evaluated (s).
FINE_DT_S = 0.5


def parker_aif(t_min: np.ndarray, params: dict[str, float] | None = None) -> np.ndarray:
    """Whole-blood concentration (mM) of the Parker 2006 population AIF.

    Args:
        t_min: Times in minutes after injection; values ``<= 0`` give 0.

    Returns:
        ``Cb(t)`` in mM, same shape as ``t_min`` (float64).
    """
    p = PARKER_2006 if params is None else params
    t = np.asarray(t_min, dtype=np.float64)
    gauss = sum(
        p[f"A{n}"]
        / (p[f"sigma{n}"] * math.sqrt(2 * math.pi))
        * np.exp(-((t - p[f"T{n}"]) ** 2) / (2 * p[f"sigma{n}"] ** 2))
        for n in (1, 2)
    )
    sigmoid = p["alpha"] * np.exp(-p["beta"] * t) / (1.0 + np.exp(-p["s"] * (t - p["tau"])))
    return np.where(t > 0, gauss + sigmoid, 0.0)


def tofts_concentration(
    cp: np.ndarray,
    dt_s: float,
    ktrans_per_min: Sequence[float] | np.ndarray,
    ve: Sequence[float] | np.ndarray,
    vp: Sequence[float] | np.ndarray,
) -> np.ndarray:
    """Extended Tofts tissue concentration for several parameter sets on one time grid.

    Args:
        cp: Plasma concentration (mM) on a uniform grid starting at ``t = 0`` (``cp[0]`` is the
            value at time 0; the integral starts there).
        dt_s: Grid step in seconds.
        ktrans_per_min: Ktrans per class (1/min), ``>= 0``.
        ve: ve per class, ``> 0`` where Ktrans ``> 0``.
        vp: vp per class.

    Returns:
        ``(n_classes, n_times)`` concentrations in mM (float64).

    Raises:
        ValueError: mismatched lengths, negative Ktrans, or ``ve <= 0`` with Ktrans ``> 0``.
    """
    ktrans = np.asarray(ktrans_per_min, dtype=np.float64) / 60.0  # 1/s
    ve = np.asarray(ve, dtype=np.float64)
    vp = np.asarray(vp, dtype=np.float64)
    if not ktrans.shape == ve.shape == vp.shape:
        raise ValueError("ktrans, ve and vp must have the same length")
    if np.any(ktrans < 0):
        raise ValueError("Ktrans must be >= 0")
    if np.any((ktrans > 0) & (ve <= 0)):
        raise ValueError("ve must be > 0 where Ktrans > 0")
    cp = np.asarray(cp, dtype=np.float64)
    out = vp[:, None] * cp[None, :]
    for i in np.flatnonzero(ktrans > 0):
        k = ktrans[i] / ve[i]
        x = k * dt_s
        e = math.exp(-x)
        q0 = -math.expm1(-x) / k
        b1 = q0 - (1.0 - e * (1.0 + x)) / (k * k * dt_s) if x > 1e-6 else dt_s / 2
        b0 = q0 - b1
        integral = lfilter([b1, b0], [1.0, -e], cp)
        out[i] += ktrans[i] * integral
    return out


def spgr_signal(r1_per_s: np.ndarray, tr_ms: float, flip_deg: float) -> np.ndarray:
    """Steady-state spoiled gradient-echo signal per unit proton density (no T2*).

    ``S = sin(a) (1 - E1) / (1 - cos(a) E1)`` with ``E1 = exp(-TR R1)``.
    """
    a = math.radians(flip_deg)
    e1 = np.exp(-np.asarray(r1_per_s, dtype=np.float64) * tr_ms * 1e-3)
    return math.sin(a) * (1.0 - e1) / (1.0 - math.cos(a) * e1)


@dataclass(frozen=True)
class Protocol:
    """Sequence and contrast settings that turn concentrations into signal.

    Attributes:
        field_t: Field strength in tesla (1.5 or 3).
        tr_ms: Repetition time in ms.
        flip_deg: Flip angle in degrees.
        agent: Contrast agent name (key of :data:`RELAXIVITY`).
        injection_s: Injection time in seconds after the pre-contrast acquisition (time 0).
        aif_scale: Multiplier of the population AIF (patient cardiac output and dose).
        gain: Receiver scale from relative signal to image units.
        fat_residual: Signal fraction left in fat after fat suppression (1 = no suppression).
        hematocrit: Blood hematocrit.
    """

    field_t: float = 3.0
    tr_ms: float = 4.5
    flip_deg: float = 12.0
    agent: str = "gadoterate"
    injection_s: float = 45.0
    aif_scale: float = 1.0
    gain: float = 12000.0
    fat_residual: float = 1.0
    hematocrit: float = HEMATOCRIT

    @property
    def relaxivity(self) -> float:
        """r1 of the agent at this field (1/(s mM)), linear between 1.5 T and 3 T."""
        lo, hi = RELAXIVITY[self.agent]
        w = min(max((self.field_t - 1.5) / 1.5, 0.0), 1.0)
        return lo + w * (hi - lo)

    def to_dict(self) -> dict[str, float | str]:
        """JSON-ready form."""
        return {
            "field_strength_t": self.field_t,
            "tr_ms": round(self.tr_ms, 3),
            "flip_angle_deg": round(self.flip_deg, 2),
            "contrast_agent": self.agent,
            "relaxivity_per_s_per_mm": round(self.relaxivity, 3),
            "injection_time_s": round(self.injection_s, 2),
            "aif_scale": round(self.aif_scale, 4),
            "receiver_gain": round(self.gain, 2),
            "fat_residual": round(self.fat_residual, 4),
            "hematocrit": self.hematocrit,
            "aif": "Parker 2006 population AIF",
            "kinetic_model": "extended Tofts",
            "signal_model": "spoiled gradient echo (SPGR), fast exchange",
        }


def plasma_curve(protocol: Protocol, t_end_s: float, dt_s: float = FINE_DT_S) -> np.ndarray:
    """Plasma concentration (mM) on the fine grid ``0, dt, ..., >= t_end_s``."""
    n = math.ceil(t_end_s / dt_s) + 2
    t_s = np.arange(n) * dt_s
    cb = protocol.aif_scale * parker_aif((t_s - protocol.injection_s) / 60.0)
    return cb / (1.0 - protocol.hematocrit)


def signal_curves(
    tissues: Sequence[TissueProperties], times_s: Sequence[float], protocol: Protocol
) -> np.ndarray:
    """Noise-free signal of each tissue class at each acquisition time.

    Args:
        tissues: Tissue classes.
        times_s: Acquisition times in seconds from the pre-contrast scan (``>= 0``).
        protocol: Sequence and contrast settings.

    Returns:
        ``(n_tissues, n_times)`` float64 signals in image units.
    """
    times = np.asarray(times_s, dtype=np.float64)
    dt = FINE_DT_S
    cp = plasma_curve(protocol, float(times.max()) + dt, dt)
    conc = tofts_concentration(
        cp,
        dt,
        [t.ktrans_per_min for t in tissues],
        [t.ve for t in tissues],
        [t.vp for t in tissues],
    )
    grid = np.arange(cp.size) * dt
    sampled = np.stack([np.interp(times, grid, c) for c in conc]) if len(tissues) else conc
    r10 = np.array([1000.0 / t.t1_at(protocol.field_t) for t in tissues])[:, None]
    r1 = r10 + protocol.relaxivity * sampled
    scale = np.array([t.pd * (protocol.fat_residual if t.fat else 1.0) for t in tissues])[:, None]
    return protocol.gain * scale * spgr_signal(r1, protocol.tr_ms, protocol.flip_deg)
