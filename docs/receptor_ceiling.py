"""How well can ER, PR, HER2 and Ki-67 be predicted on the phantom at all? A trait oracle.

The phantom draws receptor status first and then the lesion's imaging traits from it
(:mod:`BreastAIAssistantLib.phantom.receptors`): margin, shape, rim enhancement, non-mass
enhancement, size and the kinetic curve. No image model can know more about the receptors than
those traits carry. This script samples many malignant lesions from the phantom's own label
model, fits gradient boosting on the *true* traits of 6000 of them and scores the other 2000: an
estimate of the best achievable held-out AUC (and Ki-67 error) for an image model — once without
the kinetic curve (a single post-contrast phase, the receptor model's input) and once with it.

Run: ``.venv/bin/python docs/receptor_ceiling.py`` (about a minute; needs scikit-learn). Prints
JSON.
"""

from __future__ import annotations

import json

import numpy as np
from sklearn.ensemble import GradientBoostingClassifier, GradientBoostingRegressor

from BreastAIAssistantLib.classify.metrics import roc_auc
from BreastAIAssistantLib.phantom.receptors import sample_traits


def trait_vector(traits, kinetics: bool) -> list[float]:
    x = [traits.kind == "non_mass", traits.shape == "round", traits.shape == "oval",
         traits.margin == "spiculated", traits.margin == "circumscribed",
         traits.enhancement == "rim", traits.enhancement == "homogeneous",
         traits.enhancement == "clumped", np.log(traits.target_diameter_mm)]
    if kinetics:
        x.append(traits.pattern == "washout")
    return [float(v) for v in x]


def main(n_train: int = 6000, n_test: int = 2000, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    lesions = [sample_traits(rng, "malignant") for _ in range(n_train + n_test)]
    train, test = slice(0, n_train), slice(n_train, None)
    report = {}
    for kinetics in (False, True):
        x = np.array([trait_vector(t, kinetics) for t in lesions])
        scores = {}
        for name in ("er", "pr", "her2"):
            y = np.array([getattr(t.receptors, name) for t in lesions], int)
            model = GradientBoostingClassifier(random_state=seed).fit(x[train], y[train])
            scores[f"{name}_auc"] = round(roc_auc(y[test], model.predict_proba(x[test])[:, 1]), 3)
        ki67 = np.array([t.receptors.ki67_percent for t in lesions])
        model = GradientBoostingRegressor(loss="absolute_error", random_state=seed)
        model.fit(x[train], ki67[train])
        scores["ki67_mae_points"] = round(float(np.abs(model.predict(x[test]) - ki67[test])
                                                .mean()), 1)
        report["with_kinetic_curve" if kinetics else "single_phase"] = scores
    return report


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
