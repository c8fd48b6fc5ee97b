"""Per-phase image synthesis from compartments: lookup, mixing, bias, motion, Rician noise.

For phase ``k`` and voxel ``v`` with compartment ``c(v)`` and mixing fractions ``alpha(v)``,
``beta(v)``::

    S_k(v) = B(v) [ A_k[c(v)] + alpha(v) Delta_k[c(v)] + beta(v) Delta2_k[c(v)] ]

where ``A_k`` is the signal of the compartment's base tissue, ``Delta_k`` the difference to its
second tissue (fat -> more enhancing gland in the breast mix, core -> rim in a lesion) and
``Delta2_k`` to a third (more -> less enhancing gland), all computed once per phase by
:mod:`.kinetics`; ``B`` is the bias field. Voxel signals are linear mixtures of compartment
signals, the partial-volume model of compartments without water exchange. The phase is then
translated by its motion (:func:`shift_volume`, edges replicated) and made Rician with noise read
from the case's :class:`.acquisition.NoisePool`.

The work is done in slabs of a few slices, spread over threads: every step runs on data that
fits in cache, and the result does not depend on the number of threads.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from BreastAIAssistantLib.phantom.acquisition import NoisePool

#: Slices per slab.
SLAB = 6

T = TypeVar("T")


@dataclass(frozen=True)
class SynthesisInputs:
    """Everything the synthesis reads.

    Attributes:
        comp: ``(z, y, x)`` uint8 compartment codes.
        alpha: First mixing fractions (float32) on ``mix_box``.
        beta: Second mixing fractions (float32) on ``mix_box``.
        mix_box: ``(z, y, x)`` slices of ``comp`` that ``alpha`` and ``beta`` cover.
        lut_a: ``(n_phases, 256)`` base signal per compartment.
        lut_delta: ``(n_phases, 256)`` second-minus-base signal per compartment.
        lut_delta2: ``(n_phases, 256)`` third-minus-second signal per compartment.
        bias_z: ``(z,)`` bias factor along z.
        bias_yx: ``(y, x)`` in-plane bias factor.
        shifts_zyx_vox: Motion of each phase in voxels ``(z, y, x)``.
        noise: The noise pool, or ``None`` for noise-free phases.
        noise_offsets: ``(n_phases, 2)`` pool offsets (real, imaginary channel).
    """

    comp: np.ndarray
    alpha: np.ndarray
    beta: np.ndarray
    mix_box: tuple[slice, slice, slice]
    lut_a: np.ndarray
    lut_delta: np.ndarray
    lut_delta2: np.ndarray
    bias_z: np.ndarray
    bias_yx: np.ndarray
    shifts_zyx_vox: Sequence[tuple[float, float, float]]
    noise: NoisePool | None
    noise_offsets: np.ndarray | None


class _Workspace:
    """Per-thread scratch arrays, so that no slab step allocates (fresh pages are slow)."""

    def __init__(self, shape: tuple[int, int, int], box: tuple[slice, slice, slice]) -> None:
        _, ny, nx = shape
        rows = SLAB + 2
        self.src = np.empty((rows, ny, nx), np.float32)
        self.tmp = np.empty((rows, ny, nx), np.float32)
        self.slab = np.empty((SLAB, ny, nx), np.float32)
        self.part = np.empty((SLAB, ny, nx), np.float32)
        by, bx = box[1], box[2]
        self.mix = np.empty((rows, by.stop - by.start, bx.stop - bx.start), np.float32)


def _clean_slab(inp: SynthesisInputs, k: int, z0: int, z1: int, ws: _Workspace) -> np.ndarray:
    """Noise-free, motion-free signal of slices ``z0:z1`` of phase ``k``, in ``ws.src``."""
    m = z1 - z0
    out = ws.src[:m]
    bz, by, bx = inp.mix_box
    lut_a, lut_d, lut_d2 = inp.lut_a[k], inp.lut_delta[k], inp.lut_delta2[k]
    for z in range(z0, z1):  # the z bias is folded into the per-slice lookup tables
        scale = inp.bias_z[z]
        np.take(lut_a * scale, inp.comp[z], out=out[z - z0], mode="clip")
        if bz.start <= z < bz.stop:
            comp = inp.comp[z, by, bx]
            target = out[z - z0, by, bx]
            for lut, frac in ((lut_d, inp.alpha), (lut_d2, inp.beta)):
                mix = ws.mix[0]
                np.take(lut * scale, comp, out=mix, mode="clip")
                np.multiply(mix, frac[z - bz.start], out=mix)
                np.add(target, mix, out=target)
    np.multiply(out, inp.bias_yx, out=out)
    return out


def _shift_last_axis(w: np.ndarray, tmp: np.ndarray, shift: float) -> np.ndarray:
    """:func:`_shift_inplace` along the last axis, done on the flattened (contiguous) array.

    Shifting the flat array moves values across row ends; the first columns, which are the only
    ones that read across a row end, are then rewritten with the edge-replicated values.
    """
    size = w.shape[-1]
    n = math.floor(shift)
    n = max(min(n, size - 1), -(size - 1))
    f = np.float32(shift - math.floor(shift))
    flat, tflat = w.reshape(-1), tmp.reshape(-1)
    edge = w[..., -n - 1 : -n].copy() if (n < 0 and f) else None
    if n > 0:
        tflat[n:] = flat[:-n]
        tmp[..., :n] = w[..., :1]
        w, tmp, flat, tflat = tmp, w, tflat, flat
    elif n < 0:
        tflat[:n] = flat[-n:]
        tmp[..., n:] = w[..., -1:]
        w, tmp, flat, tflat = tmp, w, tflat, flat
    if f:
        first = w[..., :1].copy()
        diff = tflat[1:]
        np.subtract(flat[:-1], flat[1:], out=diff)
        np.multiply(diff, f, out=diff)
        np.add(flat[1:], diff, out=flat[1:])
        if edge is not None:
            first += f * (edge - first)
        w[..., :1] = first
    return w


def _shift_inplace(w: np.ndarray, tmp: np.ndarray, shift: float, axis: int) -> np.ndarray:
    """Move the content of ``w`` by ``shift`` voxels along ``axis`` (linear, edges replicated).

    Uses ``tmp`` (same shape) as scratch; returns the array holding the result (``w`` or
    ``tmp``).
    """
    if axis == w.ndim - 1 and w.ndim > 1 and w.flags.c_contiguous and tmp.flags.c_contiguous:
        return _shift_last_axis(w, tmp, shift)
    size = w.shape[axis]
    n = math.floor(shift)
    n = max(min(n, size - 1), -(size - 1))
    f = np.float32(shift - math.floor(shift))

    def sl(start: int | None, stop: int | None) -> tuple[slice, ...]:
        index = [slice(None)] * w.ndim
        index[axis] = slice(start, stop)
        return tuple(index)

    # with a negative integer part, row 0 interpolates towards source row -n-1: keep it
    edge = w[sl(-n - 1, -n)].copy() if (n < 0 and f) else None
    if n > 0:
        tmp[sl(n, None)] = w[sl(None, size - n)]
        tmp[sl(None, n)] = w[sl(0, 1)]
        w, tmp = tmp, w
    elif n < 0:
        tmp[sl(None, size + n)] = w[sl(-n, None)]
        tmp[sl(size + n, None)] = w[sl(size - 1, size)]
        w, tmp = tmp, w
    if f:
        diff = tmp[sl(1, None)]
        np.subtract(w[sl(None, size - 1)], w[sl(1, None)], out=diff)
        np.multiply(diff, f, out=diff)
        head = w[sl(1, None)]
        np.add(head, diff, out=head)
        if edge is not None:
            first = w[sl(0, 1)]
            first += f * (edge - first)
    return w


def shift_volume(v: np.ndarray, shift_zyx_vox: Sequence[float]) -> np.ndarray:
    """Translate a ``(z, y, x)`` volume by (sub-)voxel amounts: the reference implementation.

    Content moves by ``+shift``: ``out(p) = v(p - shift)``, separable linear interpolation,
    edge values replicated (``scipy.ndimage.shift(order=1, mode="nearest")``). Axes whose
    shift is below 0.01 voxel are left alone. Returns a new float32 array.
    """
    out = np.array(v, dtype=np.float32)
    tmp = np.empty_like(out)
    for axis, s in enumerate(shift_zyx_vox):
        if abs(s) >= 0.01:
            result = _shift_inplace(out, tmp, float(s), axis)
            if result is not out:
                out, tmp = tmp, out
    return out


def _phase_slab(
    inp: SynthesisInputs, k: int, z0: int, z1: int, dest: np.ndarray, ws: _Workspace
) -> None:
    """Fill ``dest[z0:z1]`` with phase ``k``: signal, motion, noise."""
    nz = inp.comp.shape[0]
    sz, sy, sx = inp.shifts_zyx_vox[k]
    sz = 0.0 if abs(sz) < 0.01 else sz
    n = math.floor(sz)
    f = np.float32(sz - n)
    rows = np.arange(z0, z1)
    idx0 = np.clip(rows - n, 0, nz - 1)
    idx1 = np.clip(rows - n - 1, 0, nz - 1)
    s_lo = int(min(idx0.min(), idx1.min()) if f else idx0.min())
    s_hi = int(max(idx0.max(), idx1.max()) if f else idx0.max()) + 1
    src = _clean_slab(inp, k, s_lo, s_hi, ws)
    tmp = ws.tmp[: s_hi - s_lo]
    for axis, s in ((1, sy), (2, sx)):
        if abs(s) >= 0.01:
            result = _shift_inplace(src, tmp, float(s), axis)
            if result is not src:
                src, tmp = tmp, src
    m = z1 - z0
    slab = ws.slab[:m]
    part = ws.part[:m]
    np.take(src, idx0 - s_lo, axis=0, out=slab)
    if f:
        np.multiply(slab, np.float32(1.0) - f, out=slab)
        np.take(src, idx1 - s_lo, axis=0, out=part)
        np.multiply(part, f, out=part)
        np.add(slab, part, out=slab)
    if inp.noise is not None and inp.noise_offsets is not None:
        shape = inp.comp.shape
        real = inp.noise.view(inp.noise_offsets[k][0], shape)[z0:z1]
        imag = inp.noise.view(inp.noise_offsets[k][1], shape)[z0:z1]
        np.add(slab, real, out=slab)
        np.square(slab, out=slab)
        np.square(imag, out=part)
        np.add(slab, part, out=slab)
        np.sqrt(slab, out=dest[z0:z1])
    else:
        dest[z0:z1] = slab


def _run_slab(
    inp: SynthesisInputs, k: int, z0: int, z1: int, dest: np.ndarray, local: threading.local
) -> None:
    ws = getattr(local, "ws", None)
    if ws is None:
        ws = local.ws = _Workspace(inp.comp.shape, inp.mix_box)
    _phase_slab(inp, k, z0, z1, dest, ws)


def synthesize_phases(
    inp: SynthesisInputs,
    to_image: Callable[[np.ndarray], T],
    n_threads: int = 1,
) -> list[T]:
    """All phases, each converted by ``to_image`` (e.g. to a ``SimpleITK.Image``).

    Phases are computed one after the other, each in slabs spread over ``n_threads`` threads,
    into two reused buffers: a fresh 100 MB array costs more to fault in than to compute on
    these machines, so the only new memory per phase is what ``to_image`` allocates. The
    conversion of phase ``k`` overlaps with the computation of phase ``k + 1``.

    Args:
        inp: Compartments, lookup tables, bias, motion and noise.
        to_image: Converts a finished ``(z, y, x)`` float32 buffer; must copy it.
        n_threads: Worker threads (results do not depend on it).

    Returns:
        ``to_image`` of each phase, in phase order.
    """
    n_phases = inp.lut_a.shape[0]
    shape = inp.comp.shape
    buffers = [np.empty(shape, dtype=np.float32) for _ in range(min(2, n_phases))]
    starts = range(0, shape[0], SLAB)
    results: list[Future[T]] = []
    local = threading.local()
    with (
        ThreadPoolExecutor(max_workers=max(1, n_threads), thread_name_prefix="phantom") as pool,
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="phantom-image") as convert,
    ):
        for k in range(n_phases):
            dest = buffers[k % len(buffers)]
            if k >= len(buffers):
                results[k - len(buffers)].result()  # that buffer is copied: reuse it
            jobs = [
                pool.submit(_run_slab, inp, k, z0, min(z0 + SLAB, shape[0]), dest, local)
                for z0 in starts
            ]
            for job in jobs:
                job.result()
            results.append(convert.submit(to_image, dest))
        return [r.result() for r in results]
