"""Network inputs built from a :class:`~BreastAIAssistantLib.classify.crops.Crop`.

The same functions feed training and inference, so the two cannot drift apart. One sample per
crop slice; a lesion's score pools its slices' scores with the crop's slice weights.

* MRSM: ``(Z, 2, T, S, S)`` — for each slice, every phase and ``phase − pre`` (the paper's
  ``(t, h, w)`` image time series, with the subtraction as a second channel).
* Receptors: ``(Z, 4, S, S)`` — one post-contrast phase (``phase`` index, 1 = first
  post-contrast) and the core, rim and shell maps (:func:`~.crops.regions`).
* DMIF: ``(Z, n, S, S)`` — one channel per sequence, named ``phase:<k>`` (phase ``k``) or
  ``subtraction:<k>`` (phase ``k`` minus pre-contrast); ``k = -1`` is the last phase.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from BreastAIAssistantLib.classify.crops import Crop, CropError, regions


def phase_index(k: int, n_phases: int) -> int:
    """Resolve a phase number (negative counts from the end) and check it is post-contrast."""
    index = k if k >= 0 else n_phases + k
    if not 1 <= index < n_phases:
        raise CropError(f"phase {k} is not a post-contrast phase of a {n_phases}-phase study")
    return index


def mrsm_input(crop: Crop) -> np.ndarray:
    """``(Z, 2, T, S, S)`` float32 slice-time samples."""
    phases = crop.phases  # (T, Z, S, S)
    out = np.empty((phases.shape[1], 2, *phases.shape[:1], *phases.shape[2:]), np.float32)
    out[:, 0] = phases.transpose(1, 0, 2, 3)
    out[:, 1] = out[:, 0] - out[:, 0, :1]
    return out


def receptor_input(crop: Crop, phase: int, rim_mm: float, shell_mm: float) -> np.ndarray:
    """``(Z, 4, S, S)`` float32: the chosen post-contrast phase and the region maps."""
    image = crop.phases[phase_index(phase, crop.phases.shape[0])]
    maps = regions(crop.mask, crop.spacing_zyx, rim_mm, shell_mm)  # (3, Z, S, S)
    return np.concatenate([image[None], maps]).transpose(1, 0, 2, 3).astype(np.float32)


def dmif_input(crop: Crop, sequences: Sequence[str]) -> np.ndarray:
    """``(Z, len(sequences), S, S)`` float32 box images."""
    channels = []
    n = crop.phases.shape[0]
    for name in sequences:
        kind, _, number = name.rpartition(":")
        try:
            k = phase_index(int(number), n)
        except ValueError:
            message = f"unknown sequence {name!r}; use phase:<k> or subtraction:<k>"
            raise CropError(message) from None
        if kind == "phase":
            channels.append(crop.phases[k])
        elif kind == "subtraction":
            channels.append(crop.phases[k] - crop.phases[0])
        else:
            raise CropError(f"unknown sequence {name!r}; use phase:<k> or subtraction:<k>")
    return np.stack(channels, axis=1).astype(np.float32)
