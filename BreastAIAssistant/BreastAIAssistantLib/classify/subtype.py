"""Surrogate molecular subtype from ER, PR, HER2 and Ki-67 (St Gallen 2013 style).

Goldhirsch A, et al., "Personalizing the treatment of women with early breast cancer: highlights
of the St Gallen International Expert Consensus on the Primary Therapy of Early Breast Cancer
2013", Ann Oncol 2013;24:2206-2223:

* triple negative: ER-, PR-, HER2-;
* HER2-enriched (non-luminal): ER-, PR-, HER2+;
* luminal B, HER2-positive: hormone receptor positive (ER+ or PR+), HER2+;
* luminal A-like: HR+, HER2-, PR+ and Ki-67 below the cut-off (20 % by the 2013 panel's
  majority; 14 % in the 2011 consensus — a parameter here, because laboratories differ);
* luminal B-like, HER2-negative: the other HR+, HER2- tumours (PR- or Ki-67 high).

Applied to predictions, a receptor is called positive when its probability is at least
``threshold`` (0.5 by default).
"""

from __future__ import annotations

SUBTYPES = (
    "luminal_a",
    "luminal_b_her2_negative",
    "luminal_b_her2_positive",
    "her2_enriched",
    "triple_negative",
)


def molecular_subtype(er: bool, pr: bool, her2: bool, ki67_percent: float,
                      ki67_cutoff_percent: float = 20.0) -> str:
    """Surrogate subtype (one of :data:`SUBTYPES`) from receptor status and Ki-67 (%)."""
    if not (er or pr):
        return "her2_enriched" if her2 else "triple_negative"
    if her2:
        return "luminal_b_her2_positive"
    if pr and ki67_percent < ki67_cutoff_percent:
        return "luminal_a"
    return "luminal_b_her2_negative"


def predicted_subtype(er: float, pr: float, her2: float, ki67_percent: float,
                      ki67_cutoff_percent: float = 20.0, threshold: float = 0.5) -> str:
    """Subtype from predicted probabilities (positive at ``>= threshold``) and Ki-67."""
    return molecular_subtype(er >= threshold, pr >= threshold, her2 >= threshold, ki67_percent,
                             ki67_cutoff_percent)
