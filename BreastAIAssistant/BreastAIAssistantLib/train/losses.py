"""Training loss: soft Dice plus binary cross-entropy, as in the Patterns 2023 paper.

``loss = BCEWithLogits(logits, target) + (1 − soft Dice)``, the Dice computed over the whole
batch (``batch_dice``) so that patches without tumour do not produce a 0/0 Dice.

Optional lesion-wise term (``lesion_weight > 0``), after the idea of "blob loss" (Kofler F. et
al., blob loss: instance imbalance aware loss functions for semantic segmentation, IPMI 2023):
a batch Dice is dominated by the largest lesion in the batch -- a 6 mm T1b lesion of ~100
voxels next to a 30,000-voxel T2 lesion contributes almost nothing to it, nor to a voxel-mean
BCE -- so a model trained on it can learn to ignore small lesions. The term adds
``lesion_weight × mean over lesions k of (1 − Dice_k)``, where the lesions are the
26-connected components of each patch's target and ``Dice_k`` compares lesion ``k`` with the
prediction everywhere in its patch except on the other lesions. Every lesion then weighs the
same, and false positives anywhere in a patch still lower every lesion's Dice.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage
from torch import nn


def target_lesions(target: torch.Tensor) -> list[tuple[int, torch.Tensor]]:
    """``(sample index, boolean mask)`` of every 26-connected target component in a batch."""
    out = []
    arrays = (target[:, 0] > 0.5).cpu().numpy()
    for b, array in enumerate(arrays):
        labels, n = ndimage.label(array, structure=np.ones((3, 3, 3), bool))
        if n:
            labels_t = torch.from_numpy(labels).to(target.device)
            out.extend((b, labels_t == k) for k in range(1, n + 1))
    return out


class DiceBCELoss(nn.Module):
    """Soft Dice + BCE on logits ``(B, 1, Z, Y, X)`` and binary targets of the same shape.

    Args:
        smooth: Added to numerator and denominator of the Dice.
        bce_weight: Weight of the BCE term.
        lesion_weight: Weight of the lesion-wise Dice term (see the module docstring; 0 leaves
            it out).
    """

    def __init__(
        self, smooth: float = 1.0, bce_weight: float = 1.0, lesion_weight: float = 0.0
    ) -> None:
        super().__init__()
        if smooth <= 0:
            raise ValueError(f"smooth must be > 0, got {smooth}")
        if lesion_weight < 0:
            raise ValueError(f"lesion_weight must be >= 0, got {lesion_weight}")
        self.smooth = smooth
        self.bce_weight = bce_weight
        self.lesion_weight = lesion_weight
        self.bce = nn.BCEWithLogitsLoss()

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        prob = torch.sigmoid(logits)
        intersection = (prob * target).sum()
        dice = (2 * intersection + self.smooth) / (prob.sum() + target.sum() + self.smooth)
        loss = self.bce_weight * self.bce(logits, target) + (1.0 - dice)
        if self.lesion_weight > 0:
            loss = loss + self.lesion_weight * self.lesion_term(prob, target)
        return loss

    def lesion_term(self, prob: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Mean over target lesions of ``1 − Dice_k`` (0 when the batch holds no lesion)."""
        lesions = target_lesions(target)
        if not lesions:
            return prob.sum() * 0.0
        terms = []
        for b, mask in lesions:
            p, t = prob[b, 0], target[b, 0]
            own = mask.to(p.dtype)
            elsewhere = p * (1.0 - t)  # the prediction outside every lesion of this patch
            hit = (p * own).sum()
            dice_k = (2 * hit + self.smooth) / (hit + elsewhere.sum() + own.sum() + self.smooth)
            terms.append(1.0 - dice_k)
        return torch.stack(terms).mean()
