"""Training loss: soft Dice plus binary cross-entropy, as in the Patterns 2023 paper.

``loss = BCEWithLogits(logits, target) + (1 − soft Dice)``, the Dice computed over the whole
batch (``batch_dice``) so that patches without tumour do not produce a 0/0 Dice.
"""

from __future__ import annotations

import torch
from torch import nn


class DiceBCELoss(nn.Module):
    """Soft Dice + BCE on logits ``(B, 1, Z, Y, X)`` and binary targets of the same shape.

    Args:
        smooth: Added to numerator and denominator of the Dice.
        bce_weight: Weight of the BCE term.
    """

    def __init__(self, smooth: float = 1.0, bce_weight: float = 1.0) -> None:
        super().__init__()
        if smooth <= 0:
            raise ValueError(f"smooth must be > 0, got {smooth}")
        self.smooth = smooth
        self.bce_weight = bce_weight
        self.bce = nn.BCEWithLogitsLoss()

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        prob = torch.sigmoid(logits)
        intersection = (prob * target).sum()
        dice = (2 * intersection + self.smooth) / (prob.sum() + target.sum() + self.smooth)
        return self.bce_weight * self.bce(logits, target) + (1.0 - dice)
