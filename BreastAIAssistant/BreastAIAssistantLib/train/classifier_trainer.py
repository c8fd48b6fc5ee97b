"""Training of the three classifiers on :class:`~.lesion_data.LesionSample` slices.

Shared with the segmentation models: the loop of :mod:`.trainer` (Adam, cosine schedule, time
budget, checkpoints). Per task:

* **MRSM**: slice-time samples, batches drawn from one phase count at a time (the network takes
  any count, a batch needs one); class-weighted cross-entropy with ``w_c = 1 - n_c / N`` over the
  training slices, as the MRSM paper's eq. 2.
* **Receptors**: slices of malignant lesions (benign ones have no receptors); binary
  cross-entropy for ER, PR and HER2 plus ``L1(Ki-67) / 10`` (percentage points).
* **DMIF**: box slices; cross-entropy, as the paper (its classes were balanced; ours are not,
  so the same class weights as MRSM are used).

Augmentation (all tasks, per sample): in-plane flips and 90-degree rotations, and an intensity
gain in [0.9, 1.1] on the image channels (region maps untouched).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from BreastAIAssistantLib.train.lesion_data import LesionSample
from BreastAIAssistantLib.train.trainer import (
    Progress,
    TrainResult,
    TrainSettings,
    _fit,
    _initial_model,
)

NETWORKS = {"mrsm": "MRSMNet", "receptors": "ReceptorNet", "dmif": "DMIFNet"}
IMAGE_CHANNELS = {"mrsm": 2, "receptors": 1, "dmif": None}  # None: every channel


def _augment(x: np.ndarray, rng: np.random.Generator, image_channels: int | None) -> np.ndarray:
    """Flip/rotate the last two axes and scale the image channels of one sample."""
    x = x.astype(np.float32)
    if rng.random() < 0.5:
        x = x[..., ::-1]
    if rng.random() < 0.5:
        x = x[..., ::-1, :]
    x = np.rot90(x, int(rng.integers(4)), axes=(-2, -1))
    x = np.ascontiguousarray(x)
    gain = np.float32(rng.uniform(0.9, 1.1))
    if image_channels is None:
        x *= gain
    else:
        x[:image_channels] *= gain
    return x


def slice_index(samples: Sequence[LesionSample], task: str,
                keep: Any = None) -> list[tuple[int, int]]:
    """(lesion, slice) pairs of the samples ``keep`` accepts (all by default)."""
    pairs = []
    for i, sample in enumerate(samples):
        if keep is not None and not keep(sample):
            continue
        pairs.extend((i, z) for z in range(sample.inputs[task].shape[0]))
    return pairs


def class_weights(labels: Sequence[int]) -> torch.Tensor:
    """``w_c = 1 - n_c / N`` (MRSM eq. 2) for classes 0 and 1."""
    labels = np.asarray(labels)
    n = max(labels.size, 1)
    return torch.tensor([1 - np.sum(labels == 0) / n, 1 - np.sum(labels == 1) / n],
                        dtype=torch.float32)


def train_classifier(task: str, samples: Sequence[LesionSample], network_args: dict[str, Any],
                     settings: TrainSettings, checkpoint: Path | None = None,
                     progress: Progress | None = None,
                     init: dict[str, torch.Tensor] | None = None
                     ) -> tuple[torch.nn.Module, TrainResult]:
    """Train the ``task`` classifier (``mrsm``, ``receptors`` or ``dmif``).

    Raises:
        ValueError: Unknown task, or no usable training slices.
    """
    if task not in NETWORKS:
        raise ValueError(f"unknown classifier task {task!r}; choose {', '.join(NETWORKS)}")
    keep = (lambda s: s.malignant == 1 and s.receptors_known) if task == "receptors" else None
    pairs = slice_index(samples, task, keep)
    if not pairs:
        raise ValueError(f"no training slices for {task}")
    model = _initial_model(NETWORKS[task], network_args, settings.seed, init)
    channels = IMAGE_CHANNELS[task]

    if task == "mrsm":  # one phase count per batch
        buckets: dict[int, list[tuple[int, int]]] = {}
        for i, z in pairs:
            buckets.setdefault(samples[i].n_phases, []).append((i, z))
        keys = sorted(buckets)
        share = np.array([len(buckets[k]) for k in keys], float)
        share /= share.sum()

    def pick(rng: np.random.Generator) -> list[tuple[int, int]]:
        if task == "mrsm":
            pool = buckets[keys[int(rng.choice(len(keys), p=share))]]
        else:
            pool = pairs
        return [pool[int(j)] for j in rng.integers(0, len(pool), settings.batch_size)]

    def next_batch(rng: np.random.Generator):
        chosen = pick(rng)
        x = np.stack([_augment(samples[i].inputs[task][z], rng, channels) for i, z in chosen])
        if task == "receptors":
            target = torch.tensor([[samples[i].er, samples[i].pr, samples[i].her2,
                                    samples[i].ki67] for i, _ in chosen], dtype=torch.float32)
        else:
            target = torch.tensor([samples[i].malignant for i, _ in chosen])
        return (torch.from_numpy(x),), target

    if task == "receptors":
        def loss_fn(output, target):
            out = output[0]
            bce = F.binary_cross_entropy_with_logits(out[:, :3], target[:, :3])
            return bce + F.l1_loss(out[:, 3], target[:, 3]) / 10.0
    else:
        weights = class_weights([samples[i].malignant for i, _ in pairs])

        def loss_fn(output, target):
            return F.cross_entropy(output[0], target, weight=weights.to(target.device))

    result = _fit(model, next_batch, settings, checkpoint, progress, loss_fn)
    return model, result
