"""Synthetic label model: subtype rules, population frequencies, directions of the associations."""

from __future__ import annotations

import numpy as np
import pytest

from BreastAIAssistantLib.phantom.receptors import (
    molecular_subtype,
    sample_receptors,
    sample_traits,
)


@pytest.mark.parametrize(
    ("er", "pr", "her2", "ki67", "subtype"),
    [
        (True, True, False, 10.0, "luminal_a"),
        (True, True, False, 25.0, "luminal_b_her2_negative"),
        (True, False, False, 10.0, "luminal_b_her2_negative"),
        (True, True, True, 10.0, "luminal_b_her2_positive"),
        (False, True, True, 40.0, "luminal_b_her2_positive"),
        (False, False, True, 40.0, "her2_enriched"),
        (False, False, False, 60.0, "triple_negative"),
    ],
)
def test_st_gallen_surrogate_subtypes(er, pr, her2, ki67, subtype):
    assert molecular_subtype(er, pr, her2, ki67) == subtype


def test_receptor_frequencies_are_population_like():
    rng = np.random.default_rng(0)
    draws = [sample_receptors(rng) for _ in range(4000)]
    er = np.mean([d.er for d in draws])
    her2 = np.mean([d.her2 for d in draws])
    tn = np.mean([d.subtype == "triple_negative" for d in draws])
    assert 0.71 < er < 0.79 and 0.14 < her2 < 0.23 and 0.11 < tn < 0.19
    ki67 = np.array([d.ki67_percent for d in draws])
    assert ki67.min() >= 1.0 and ki67.max() <= 95.0


def test_imaging_traits_follow_the_documented_directions():
    rng = np.random.default_rng(1)
    traits = [sample_traits(rng, "malignant", "mass") for _ in range(6000)]

    def rate(subtype: str, test) -> float:
        group = [t for t in traits if t.receptors.subtype == subtype]
        return float(np.mean([test(t) for t in group]))

    def spiculated(t):
        return t.margin == "spiculated"

    def rim(t):
        return t.enhancement == "rim"

    def washout(t):
        return t.pattern == "washout"

    assert rate("luminal_a", spiculated) > 2 * rate("triple_negative", spiculated)
    assert rate("triple_negative", rim) > 2 * rate("luminal_a", rim)
    assert rate("luminal_b_her2_positive", washout) > rate("luminal_a", washout) + 0.2
    size = {
        s: np.mean([t.target_diameter_mm for t in traits if t.receptors.subtype == s])
        for s in ("luminal_a", "triple_negative")
    }
    assert size["triple_negative"] > size["luminal_a"]


def test_benign_lesions_and_cysts_have_no_receptors():
    rng = np.random.default_rng(2)
    benign = sample_traits(rng, "benign")
    cyst = sample_traits(rng, "cyst")
    assert benign.receptors is None and benign.pattern == "persistent" and not benign.malignant
    assert cyst.receptors is None and cyst.pattern == "none" and cyst.enhancement == "none"
    with pytest.raises(ValueError, match="lesion class"):
        sample_traits(rng, "borderline")
