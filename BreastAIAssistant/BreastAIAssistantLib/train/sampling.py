"""Patch sampling and augmentation for training.

Tumour model (after the Patterns 2023 paper's training): a fraction ``foreground_fraction`` of
patches is centred on a tumour voxel (jittered by up to a quarter patch), the rest are
centred anywhere in the cropped breast region, so that the network also sees vessels, background
parenchymal enhancement and the chest wall. **Phase dropout**: with probability
``phase_dropout``, a random non-empty subset of the post-contrast phases is kept (the rest are
marked absent), so one model learns studies of 2 to 9 phases. With ``phase_truncation`` > 0, that
share of the dropout draws keeps the *first* k post-contrast phases instead: a study with fewer
phases is acquired on the same schedule and stops earlier, so a 2-phase study holds only the
earliest post-contrast phase, when lesions have enhanced least. A random subset (e.g. pre-contrast
and the fourth post-contrast phase) rarely looks like that. Left-right flips and a small global
intensity scale are the only other augmentations (the phantom already varies anatomy, noise,
bias and motion), unless ``enhancement_scale`` is given: then half of the patches have their
enhancement scaled, ``pre + k·(phase − pre)`` with ``k`` uniform in that range, the same ``k``
for every voxel and phase. Lesions, vessels and background enhancement weaken together, so the
label still follows the *relative* enhancement; without it a model can learn an absolute
enhancement threshold and miss small or slowly enhancing lesions (partial volume and an early
first post-contrast phase both lower their subtraction), which is what the demo model did.

Foreground patches pick a *lesion* uniformly, then a voxel inside it. The paper (and this
project's first demo model) picked a tumour voxel uniformly, which visits a 40 mm lesion about
500 times as often as a 5 mm one: the demo model's misses on held-out phantom studies were almost
all small T1b lesions, which then set the wrong T category.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from BreastAIAssistantLib.train.data import BreastSample, TumourSample


def _crop(array: np.ndarray, centre: Sequence[int], patch: Sequence[int]) -> np.ndarray:
    """A ``patch``-sized crop of the last three axes centred at ``centre``, zero-padded."""
    spatial = array.shape[-3:]
    out = np.zeros((*array.shape[:-3], *patch), dtype=array.dtype)
    src, dst = [], []
    for c, p, s in zip(centre, patch, spatial, strict=True):
        lo = int(c) - p // 2
        a, b = max(lo, 0), min(lo + p, s)
        src.append(slice(a, b))
        dst.append(slice(a - lo, b - lo))
    out[(..., *dst)] = array[(..., *src)]
    return out


def _centre(mask: np.ndarray, patch: Sequence[int], rng: np.random.Generator,
            jitter: bool) -> tuple[int, ...]:  # fmt: skip
    voxels = np.flatnonzero(mask)
    index = np.unravel_index(voxels[rng.integers(voxels.size)], mask.shape)
    if jitter:
        index = tuple(int(i + rng.integers(-(p // 4), p // 4 + 1))
                      for i, p in zip(index, patch, strict=True))  # fmt: skip
    return tuple(int(i) for i in index)


def _lesion_centre(sample: TumourSample, patch: Sequence[int],
                   rng: np.random.Generator) -> tuple[int, ...]:  # fmt: skip
    """A jittered centre on a voxel of a uniformly chosen lesion of ``sample``."""
    if not sample.lesions:
        return _centre(sample.tumour, patch, rng, jitter=True)
    voxels = sample.lesions[int(rng.integers(len(sample.lesions)))]
    index = np.unravel_index(int(voxels[rng.integers(voxels.size)]), sample.tumour.shape)
    return tuple(int(i + rng.integers(-(p // 4), p // 4 + 1))
                 for i, p in zip(index, patch, strict=True))  # fmt: skip


def tumour_batch(
    samples: Sequence[TumourSample],
    patch: Sequence[int],
    batch_size: int,
    rng: np.random.Generator,
    foreground_fraction: float = 0.6,
    phase_dropout: float = 0.5,
    phase_truncation: float = 0.0,
    enhancement_scale: tuple[float, float] | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """A batch ``(x, times, present, target)`` for :class:`SpatioTemporalSegmenter`.

    ``x`` is ``(B, T, 2, pz, py, px)`` with channels [phase, phase − pre] and ``T`` the largest
    phase count in the batch; absent and padding slots hold zeros and ``present`` False.
    """
    items = []
    for _ in range(batch_size):
        sample = samples[int(rng.integers(len(samples)))]
        if sample.tumour.any() and rng.random() < foreground_fraction:
            centre = _lesion_centre(sample, patch, rng)
        else:
            region = sample.breast if sample.breast.any() else np.ones_like(sample.breast)
            centre = _centre(region, patch, rng, jitter=False)
        phases = _crop(sample.phases, centre, patch).astype(np.float32)
        target = _crop(sample.tumour, centre, patch).astype(np.float32)
        n = phases.shape[0]
        present = np.ones(n, bool)
        if n > 2 and rng.random() < phase_dropout:
            if phase_truncation > 0 and rng.random() < phase_truncation:
                keep = np.arange(1, 1 + int(rng.integers(1, n)))  # the first k post phases
            else:
                keep = rng.choice(np.arange(1, n), size=int(rng.integers(1, n)), replace=False)
            present[1:] = False
            present[keep] = True
        if rng.random() < 0.5:
            phases, target = phases[..., ::-1], target[..., ::-1]
        phases *= np.float32(rng.uniform(0.9, 1.1))
        if enhancement_scale is not None and rng.random() < 0.5:
            k = np.float32(rng.uniform(*enhancement_scale))
            phases[1:] = phases[0] + k * (phases[1:] - phases[0])
        items.append((phases, sample.times_s, present, target))
    t_max = max(p.shape[0] for p, *_ in items)
    x = np.zeros((batch_size, t_max, 2, *patch), np.float32)
    times = np.zeros((batch_size, t_max), np.float32)
    mask = np.zeros((batch_size, t_max), bool)
    target = np.zeros((batch_size, 1, *patch), np.float32)
    for b, (phases, t, present, tgt) in enumerate(items):
        n = phases.shape[0]
        x[b, :n, 0] = phases
        x[b, :n, 1] = phases - phases[0]
        x[b, :n][~present] = 0.0
        times[b, :n] = t
        mask[b, :n] = present
        target[b, 0] = tgt
    return (torch.from_numpy(x), torch.from_numpy(times), torch.from_numpy(mask),
            torch.from_numpy(target))  # fmt: skip


def breast_batch(
    samples: Sequence[BreastSample],
    patch: Sequence[int],
    batch_size: int,
    rng: np.random.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch ``(x, target)`` of random patches for the whole-breast U-Net (half centred on the
    breast, half anywhere)."""
    xs, ts = [], []
    for _ in range(batch_size):
        sample = samples[int(rng.integers(len(samples)))]
        if sample.breast.any() and rng.random() < 0.5:
            centre = _centre(sample.breast, patch, rng, jitter=True)
        else:
            centre = tuple(int(rng.integers(s)) for s in sample.image.shape)
        image = _crop(sample.image, centre, patch).astype(np.float32)
        target = _crop(sample.breast, centre, patch).astype(np.float32)
        if rng.random() < 0.5:
            image, target = image[..., ::-1], target[..., ::-1]
        xs.append(image * np.float32(rng.uniform(0.9, 1.1)))
        ts.append(target)
    x = torch.from_numpy(np.ascontiguousarray(np.stack(xs)[:, None]))
    t = torch.from_numpy(np.ascontiguousarray(np.stack(ts)[:, None]))
    return x, t
