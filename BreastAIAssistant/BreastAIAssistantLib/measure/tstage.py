"""AJCC 8th edition T category of breast cancer from an imaging maximum diameter.

Categories by the greatest dimension of the invasive tumour (AJCC Cancer Staging Manual, 8th ed.,
breast chapter): T1mi <= 1 mm; T1a > 1-5 mm; T1b > 5-10 mm; T1c > 10-20 mm; T2 > 20-50 mm;
T3 > 50 mm. Each upper bound belongs to the lower category: 20.0 mm is T1c and 20.01 mm is T2.
The measured value is compared as it is (pathology rounds to the nearest millimetre; an imaging
mask gives a continuous value, and its uncertainty is reported instead); only floating-point
noise (``1e-6`` mm) is absorbed, so that a 20 mm distance computed as ``sqrt(400.00000000000006)``
stays T1c.

- The largest lesion (by maximum diameter) sets the T category; with more than one lesion the
  AJCC "(m)" suffix is added (``"T2(m)"``).
- T4 (chest-wall invasion, skin ulceration or nodules, inflammatory carcinoma) is **never**
  assigned from a mask: a lesion touching the skin or the chest wall is flagged "possible T4,
  confirm clinically". (Invasion of the pectoralis muscle alone is not T4 either.)
- Uncertainty: the diameter of a voxelised lesion is uncertain by about one voxel along the
  measured axis (the voxel-centre and voxel-box conventions differ by up to that much). The
  *range* of categories is that of ``diameter ± uncertainty``, where the uncertainty is the voxel's
  caliper width along the diameter axis (the spacing along an index axis, up to the voxel
  diagonal); when the two ends differ, the lesion is flagged "near a T boundary".
"""

from __future__ import annotations

import math
from collections.abc import Sequence

#: Upper bounds (mm, inclusive) of the size categories, smallest first; above the last is T3.
T_UPPER_BOUNDS_MM: tuple[tuple[str, float], ...] = (
    ("T1mi", 1.0),
    ("T1a", 5.0),
    ("T1b", 10.0),
    ("T1c", 20.0),
    ("T2", 50.0),
)
LARGEST_CATEGORY = "T3"
#: Every size category, smallest first.
T_CATEGORIES: tuple[str, ...] = (*(name for name, _ in T_UPPER_BOUNDS_MM), LARGEST_CATEGORY)
#: Floating-point noise absorbed at a boundary (mm).
BOUNDARY_EPSILON_MM = 1e-6


def t_category(diameter_mm: float) -> str | None:
    """AJCC 8th edition T size category of a maximum diameter.

    Args:
        diameter_mm: Greatest dimension in mm (>= 0); NaN gives ``None``.

    Returns:
        ``"T1mi"``, ``"T1a"``, ``"T1b"``, ``"T1c"``, ``"T2"`` or ``"T3"``; ``None`` for NaN.

    Raises:
        ValueError: a negative diameter.
    """
    if diameter_mm is None or math.isnan(diameter_mm):
        return None
    if diameter_mm < 0:
        raise ValueError(f"a diameter cannot be negative: {diameter_mm}")
    for name, upper in T_UPPER_BOUNDS_MM:
        if diameter_mm <= upper + BOUNDARY_EPSILON_MM:
            return name
    return LARGEST_CATEGORY


def t_category_range(diameter_mm: float, uncertainty_mm: float) -> tuple[str, str] | None:
    """Categories of ``diameter - uncertainty`` and ``diameter + uncertainty`` (floored at 0).

    Returns:
        ``(lowest, highest)``, equal when the whole interval lies in one category; ``None`` when
        either input is NaN.
    """
    if any(v is None or math.isnan(v) for v in (diameter_mm, uncertainty_mm)):
        return None
    low = t_category(max(0.0, diameter_mm - uncertainty_mm))
    high = t_category(diameter_mm + uncertainty_mm)
    return (low, high) if low and high else None


def overall_t_stage(diameters_mm: Sequence[float]) -> str | None:
    """The T category of the largest lesion, with "(m)" when there are several lesions.

    Args:
        diameters_mm: Maximum diameter of every lesion (NaNs are skipped for the maximum but still
            count as lesions).

    Returns:
        For example ``"T2"`` or ``"T2(m)"``; ``None`` without any measurable lesion.
    """
    finite = [d for d in diameters_mm if d is not None and not math.isnan(d)]
    if not finite:
        return None
    category = t_category(max(finite))
    return f"{category}(m)" if len(diameters_mm) > 1 else category
