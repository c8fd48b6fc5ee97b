"""Tissue codes and the per-tissue MR and kinetic properties of the synthetic DCE phantom.

The phantom is a label volume of *compartments*, each with a signal-time curve. This module names
the codes and holds the literature-based property table; :mod:`.kinetics` turns the table into
curves. Everything here is synthetic and chosen to look like breast DCE-MRI; it is not a
validated tissue model.

Tissue codes (the ``tissue_labels`` map written beside each case):

==  ================  ===========================================================================
 0  air               outside the body
 1  skin              skin of the breasts and the chest (1-2 mm)
 2  fat               subcutaneous, breast and retromammary fat
 3  fibroglandular    glandular tissue (the fatty/glandular split of the breast mix at 50 %)
 4  pectoralis        pectoralis major, in front of the rib cage
 5  chest wall        ribs and intercostal muscles
 6  lung              lung parenchyma (very low proton density: dark)
 7  mediastinum       mediastinal fat and soft tissue
 8  myocardium        heart muscle
 9  blood             heart chambers, aorta, pulmonary trunk, vena cava, internal mammary vessels
10  breast vessel     enhancing vessels inside the breasts
11  implant           non-enhancing implant-like region (silicone-like T1)
12  lesion            any lesion of the tumour mask (malignant, benign, cyst, non-mass)
13  nipple            nipple-areolar complex
==  ================  ===========================================================================

Compartment codes add the breast mix and the lesions: ``BREAST`` voxels are fat plus a
fibroglandular fraction ``alpha``, of which the part ``beta`` belongs to a less enhancing
glandular class (smoothly patchy background parenchymal enhancement), and ``LESION_BASE + i`` is
lesion ``i`` (core plus rim fraction ``alpha``).

Property sources (pre-contrast T1 at 1.5 T / 3 T):

- fat and fibroglandular tissue: Rakow-Penner R, et al. Relaxation times of breast tissue at 1.5T
  and 3T measured using IDEAL. JMRI 2006;23:87-91 (fat 296/367 ms, glandular 1266/1445 ms);
- muscle and blood: Stanisz GJ, et al. T1, T2 relaxation and magnetization transfer in tissue at
  3T. MRM 2005;54:507-512 (muscle 1008/1412 ms, blood 1441/1932 ms);
- myocardium about 1000/1400 ms (native T1 mapping literature); cyst fluid, implant, skin and lung
  values are rounded assumptions.

Kinetic values (Ktrans in 1/min, ve, vp, extended Tofts model) are typical magnitudes of the
breast DCE literature (normal tissue Ktrans below ~0.1/min, malignant lesions ~0.5-1.5/min; Tofts
et al., JMRI 1999;10:223-232), chosen so that each tissue gives the expected curve shape. Proton
densities are relative. Blood is modelled as ``vp = 1 - Hct``, ``Ktrans = 0``: its concentration
is the whole-blood AIF itself.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

AIR = 0
SKIN = 1
FAT = 2
FIBROGLANDULAR = 3
PECTORALIS = 4
CHEST_WALL = 5
LUNG = 6
MEDIASTINUM = 7
MYOCARDIUM = 8
BLOOD = 9
BREAST_VESSEL = 10
IMPLANT = 11
LESION = 12
NIPPLE = 13

#: Compartment code of the fat + fibroglandular mix.
BREAST = 20
#: Compartment code of lesion ``i`` is ``LESION_BASE + i``.
LESION_BASE = 32
#: Most lesions one case can hold (compartment codes are uint8).
MAX_LESIONS = 255 - LESION_BASE

#: Tissue code -> name, for the ``tissue_labels`` map and case.json.
TISSUE_NAMES: dict[int, str] = {
    AIR: "air",
    SKIN: "skin",
    FAT: "fat",
    FIBROGLANDULAR: "fibroglandular",
    PECTORALIS: "pectoralis",
    CHEST_WALL: "chest_wall",
    LUNG: "lung",
    MEDIASTINUM: "mediastinum",
    MYOCARDIUM: "myocardium",
    BLOOD: "blood",
    BREAST_VESSEL: "breast_vessel",
    IMPLANT: "implant",
    LESION: "lesion",
    NIPPLE: "nipple",
}

#: Codes a lesion may replace (breast parenchyma and its small vessels).
BREAST_TISSUE_CODES = (BREAST, BREAST_VESSEL)


@dataclass(frozen=True)
class TissueProperties:
    """MR and kinetic properties of one tissue class.

    Attributes:
        name: Class name.
        t1_ms: Pre-contrast T1 in ms at (1.5 T, 3 T).
        pd: Relative proton density (signal scale), 0-1.
        ktrans_per_min: Volume transfer constant Ktrans (1/min).
        ve: Extravascular extracellular volume fraction (0-1).
        vp: Plasma volume fraction (0-1).
        fat: Whether fat suppression reduces its signal.
    """

    name: str
    t1_ms: tuple[float, float]
    pd: float
    ktrans_per_min: float = 0.0
    ve: float = 0.2
    vp: float = 0.0
    fat: bool = False

    def t1_at(self, field_t: float) -> float:
        """T1 in ms at the field strength (linear in field between 1.5 T and 3 T)."""
        lo, hi = self.t1_ms
        w = min(max((field_t - 1.5) / 1.5, 0.0), 1.0)
        return lo + w * (hi - lo)

    def scaled(self, factor: float, name: str | None = None) -> TissueProperties:
        """Same tissue with Ktrans and vp times ``factor`` and ve so that kep is unchanged."""
        return replace(
            self,
            name=name or self.name,
            ktrans_per_min=self.ktrans_per_min * factor,
            ve=self.ve * factor if self.ktrans_per_min > 0 else self.ve,
            vp=self.vp * factor,
        )


#: Hematocrit used to turn the whole-blood AIF into plasma concentration.
HEMATOCRIT = 0.42

#: Properties of the anatomical tissues (the breast mix uses FAT and a FIBROGLANDULAR class
#: whose Ktrans is set by the BPE level, see :data:`BPE_KTRANS`).
TISSUES: dict[int, TissueProperties] = {
    AIR: TissueProperties("air", (1000.0, 1000.0), 0.0),
    SKIN: TissueProperties("skin", (1000.0, 1200.0), 0.7, 0.04, 0.35, 0.02),
    FAT: TissueProperties("fat", (296.0, 367.0), 0.9, 0.005, 0.1, 0.003, fat=True),
    FIBROGLANDULAR: TissueProperties("fibroglandular", (1266.0, 1445.0), 0.8, 0.015, 0.5, 0.005),
    PECTORALIS: TissueProperties("pectoralis", (1008.0, 1412.0), 0.75, 0.035, 0.2, 0.01),
    CHEST_WALL: TissueProperties("chest_wall", (1008.0, 1412.0), 0.6, 0.03, 0.2, 0.01),
    LUNG: TissueProperties("lung", (1200.0, 1300.0), 0.1, 0.2, 0.2, 0.15),
    MEDIASTINUM: TissueProperties("mediastinum", (296.0, 367.0), 0.8, 0.02, 0.1, 0.01, fat=True),
    MYOCARDIUM: TissueProperties("myocardium", (1000.0, 1400.0), 0.75, 0.6, 0.25, 0.1),
    BLOOD: TissueProperties("blood", (1441.0, 1932.0), 0.85, 0.0, 0.2, 1.0 - HEMATOCRIT),
    BREAST_VESSEL: TissueProperties(
        "breast_vessel", (1441.0, 1932.0), 0.85, 0.0, 0.2, 1.0 - HEMATOCRIT
    ),
    IMPLANT: TissueProperties("implant", (900.0, 1000.0), 0.6),
    NIPPLE: TissueProperties("nipple", (1000.0, 1200.0), 0.75, 0.15, 0.3, 0.04),
}

#: Fibroglandular Ktrans (1/min) for the four BI-RADS background parenchymal enhancement levels
#: (ACR BI-RADS Atlas 5th ed. 2013): persistent curves whose early enhancement ranges from a few
#: percent (minimal) to roughly the 50 % assessment threshold of the curve-type map (marked).
BPE_KTRANS: dict[str, float] = {
    "minimal": 0.006,
    "mild": 0.015,
    "moderate": 0.035,
    "marked": 0.07,
}

#: Pre-contrast properties of lesion tissue (kinetics are sampled per lesion).
LESION_TISSUE = TissueProperties("lesion", (1150.0, 1400.0), 0.8)
#: Cyst fluid: long T1, no enhancement.
CYST_TISSUE = TissueProperties("cyst", (2500.0, 3000.0), 0.95)
