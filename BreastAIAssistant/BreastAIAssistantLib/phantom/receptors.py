"""Synthetic per-lesion labels: malignancy, receptors, Ki-67, molecular subtype and imaging traits.

**These labels are synthetic.** They come from the generative model below, whose rules point in
the directions the radiogenomics literature reports, with strengths chosen by hand so that a
model can learn them but not perfectly. They carry no clinical information.

Generative order for a malignant lesion:

1. ``ER+`` with P = 0.75; ``PR+`` with P = 0.80 if ER+ else 0.08; ``HER2+`` with P = 0.13 if
   ER+ else 0.35 (about 75 % ER+, 18 % HER2+ and 15 % triple negative overall, close to
   population frequencies).
2. Ki-67 index (%) log-normal, median 12 (ER+ PR+ HER2-), 25 (ER+ PR- HER2-), 30 (HER2+) or
   50 (triple negative), log-sd 0.5, clipped to 1-95.
3. Molecular subtype, St Gallen 2013 surrogate definitions (Goldhirsch A, et al. Ann Oncol
   2013;24:2206-2223): triple negative (ER-, PR-, HER2-); HER2-enriched (ER-, PR-, HER2+);
   luminal B HER2+ (HR+, HER2+); luminal A (HR+, HER2-, PR+, Ki-67 < 20 %); luminal B HER2-
   (the other HR+ HER2- tumours); HR+ = ER+ or PR+.
4. Imaging traits given the subtype (and Ki-67), table :data:`TRAITS`:

   ========================  ==========  ======  =====  =======  ==============  ===========
   subtype                   spiculated  round*  rim    washout  larger sizes**  non-mass
   ========================  ==========  ======  =====  =======  ==============  ===========
   luminal A                 0.55        0.10    0.10   0.45     0.6             0.06
   luminal B HER2-           0.35        0.12    0.25   0.70     1.0             0.08
   luminal B HER2+           0.25        0.12    0.30   0.80     1.3             0.20
   HER2-enriched             0.20        0.15    0.30   0.80     1.5             0.25
   triple negative           0.08        0.45    0.60   0.55     1.6             0.04
   ========================  ==========  ======  =====  =======  ==============  ===========

   \\* round or oval shape (else irregular); triple-negative round/oval masses have
   circumscribed margins in 50 % of cases. \\** multiplier of the T2/T3 weights (T1a/b weights are
   divided by it). Non-spiculated masses have irregular margins. The remaining internal
   enhancement is heterogeneous (85 %) or homogeneous; a curve that is not washout is plateau.
   Ki-67 >= 30 % adds 0.1 to the washout probability.

   Directions: spiculation with ER+/luminal A, low-grade tumours; round shape, circumscribed
   margins and rim enhancement with triple-negative cancer (Uematsu T, et al. Radiology
   2009;250:638-647; Dogan BE, et al. AJR 2010;194:1160-1166); fast washout with HER2+ and
   luminal B tumours (Mazurowski MA, et al. Radiology 2014;273:365-372; Blaschke E, Abe H.
   JMRI 2015;42:920-924); larger size with triple-negative and HER2-enriched tumours; non-mass
   enhancement with HER2+ tumours (reviewed by Grimm LJ. JMRI 2016;43:1269-1278).

Benign masses (fibroadenoma-like): oval (70 %) or round, circumscribed, homogeneous (75 %) or
heterogeneous, persistent curve. Cysts: round/oval, circumscribed, not enhancing. Benign lesions
have no receptors (``null`` in case.json).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from BreastAIAssistantLib.classify.subtype import molecular_subtype


@dataclass(frozen=True)
class Receptors:
    """Receptor status and proliferation index of a malignant lesion (synthetic)."""

    er: bool
    pr: bool
    her2: bool
    ki67_percent: float

    @property
    def subtype(self) -> str:
        """St Gallen 2013 surrogate molecular subtype."""
        return molecular_subtype(self.er, self.pr, self.her2, self.ki67_percent)

    def to_dict(self) -> dict[str, object]:
        """case.json fields."""
        sign = {True: "positive", False: "negative"}
        return {
            "er": sign[self.er],
            "pr": sign[self.pr],
            "her2": sign[self.her2],
            "ki67_percent": round(self.ki67_percent, 1),
            "molecular_subtype": self.subtype,
        }


def sample_receptors(rng: np.random.Generator) -> Receptors:
    """Draw ER, PR, HER2 and Ki-67 of a malignant lesion."""
    er = bool(rng.random() < 0.75)
    pr = bool(rng.random() < (0.80 if er else 0.08))
    her2 = bool(rng.random() < (0.13 if er else 0.35))
    if her2:
        median = 30.0
    elif er or pr:
        median = 12.0 if pr else 25.0
    else:
        median = 50.0
    ki67 = float(np.clip(math.exp(math.log(median) + 0.5 * rng.standard_normal()), 1.0, 95.0))
    return Receptors(er, pr, her2, ki67)


@dataclass(frozen=True)
class TraitRule:
    """Probabilities of imaging traits for one subtype (see the module table)."""

    spiculated: float
    round_shape: float
    rim: float
    washout: float
    size_shift: float
    non_mass: float


#: Subtype -> trait probabilities.
TRAITS: dict[str, TraitRule] = {
    "luminal_a": TraitRule(0.55, 0.10, 0.10, 0.45, 0.6, 0.06),
    "luminal_b_her2_negative": TraitRule(0.35, 0.12, 0.25, 0.70, 1.0, 0.08),
    "luminal_b_her2_positive": TraitRule(0.25, 0.12, 0.30, 0.80, 1.3, 0.20),
    "her2_enriched": TraitRule(0.20, 0.15, 0.30, 0.80, 1.5, 0.25),
    "triple_negative": TraitRule(0.08, 0.45, 0.60, 0.55, 1.6, 0.04),
}

#: AJCC T categories used for sizing, with the diameter range (mm) drawn within each.
T_SIZE_RANGES: dict[str, tuple[float, float]] = {
    "T1a": (2.0, 5.0),
    "T1b": (5.0, 10.0),
    "T1c": (10.0, 20.0),
    "T2": (20.0, 50.0),
    "T3": (50.0, 70.0),
}
#: Base weights of the T categories of malignant masses.
MALIGNANT_T_WEIGHTS = {"T1a": 0.06, "T1b": 0.15, "T1c": 0.40, "T2": 0.32, "T3": 0.07}


@dataclass(frozen=True)
class LesionTraits:
    """Everything the geometry and kinetics need to know about a lesion to be drawn."""

    malignant: bool
    kind: str  # "mass", "non_mass" or "cyst"
    shape: str | None  # "round", "oval", "irregular" (masses and cysts)
    margin: str | None  # "circumscribed", "irregular", "spiculated"
    enhancement: str  # "homogeneous", "heterogeneous", "rim", "clumped", "none"
    pattern: str  # intended curve: "washout", "plateau", "persistent", "none"
    target_diameter_mm: float
    receptors: Receptors | None
    distribution: str | None = None  # non-mass: "focal" or "segmental"


def _t_weights(shift: float) -> tuple[list[str], np.ndarray]:
    names = list(MALIGNANT_T_WEIGHTS)
    w = np.array([MALIGNANT_T_WEIGHTS[n] for n in names])
    for i, n in enumerate(names):
        if n in ("T2", "T3"):
            w[i] *= shift
        elif n in ("T1a", "T1b"):
            w[i] /= shift
    return names, w / w.sum()


def sample_traits(
    rng: np.random.Generator, lesion_class: str, kind: str | None = None
) -> LesionTraits:
    """Draw the traits of one lesion.

    Args:
        rng: Random generator.
        lesion_class: ``"malignant"``, ``"benign"`` or ``"cyst"``.
        kind: Force ``"mass"`` or ``"non_mass"`` (malignant or benign), or ``None`` to draw it.

    Raises:
        ValueError: unknown class or kind.
    """
    if lesion_class == "cyst":
        return LesionTraits(
            False,
            "cyst",
            str(rng.choice(["round", "oval"])),
            "circumscribed",
            "none",
            "none",
            float(rng.uniform(4.0, 25.0)),
            None,
        )
    if lesion_class == "benign":
        if kind == "non_mass":
            size = float(rng.uniform(10.0, 35.0))
            return LesionTraits(
                False,
                "non_mass",
                None,
                None,
                "heterogeneous",
                "persistent",
                size,
                None,
                str(rng.choice(["focal", "segmental"])),
            )
        if kind not in (None, "mass"):
            raise ValueError(f"kind must be 'mass' or 'non_mass', got {kind!r}")
        shape = "oval" if rng.random() < 0.7 else "round"
        enh = "homogeneous" if rng.random() < 0.75 else "heterogeneous"
        size = float(math.exp(rng.uniform(math.log(5.0), math.log(35.0))))
        return LesionTraits(False, "mass", shape, "circumscribed", enh, "persistent", size, None)
    if lesion_class != "malignant":
        raise ValueError(f"lesion class must be malignant, benign or cyst; got {lesion_class!r}")
    receptors = sample_receptors(rng)
    rule = TRAITS[receptors.subtype]
    washout = rule.washout + (0.1 if receptors.ki67_percent >= 30 else 0.0)
    pattern = "washout" if rng.random() < washout else "plateau"
    if kind is None:
        kind = "non_mass" if rng.random() < rule.non_mass else "mass"
    if kind == "non_mass":
        size = float(rng.uniform(15.0, 60.0))
        return LesionTraits(
            True,
            "non_mass",
            None,
            None,
            "clumped",
            pattern,
            size,
            receptors,
            str(rng.choice(["focal", "segmental"], p=[0.4, 0.6])),
        )
    if kind != "mass":
        raise ValueError(f"kind must be 'mass' or 'non_mass', got {kind!r}")
    if rng.random() < rule.round_shape:
        shape = str(rng.choice(["round", "oval"]))
        circumscribed = receptors.subtype == "triple_negative" and rng.random() < 0.5
        margin = "circumscribed" if circumscribed else "irregular"
    else:
        shape = "irregular"
        margin = "spiculated" if rng.random() < rule.spiculated else "irregular"
    if rng.random() < rule.rim:
        enhancement = "rim"
    else:
        enhancement = "heterogeneous" if rng.random() < 0.85 else "homogeneous"
    names, weights = _t_weights(rule.size_shift)
    category = names[int(rng.choice(len(names), p=weights))]
    size = float(rng.uniform(*T_SIZE_RANGES[category]))
    return LesionTraits(True, "mass", shape, margin, enhancement, pattern, size, receptors)
