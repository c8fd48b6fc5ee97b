"""Held-out evaluation of the segmentation models through the real inference chain.

Each case goes through the same predictors ``breast-ai run`` uses (model grid, sliding window,
window skipping, breast gating, back to the study grid), and is scored on the study grid against
its ground truth: Dice, sensitivity and HD95 (mm) per case, and their means. For the tumour model
the breast mask comes from the breast model when one is given, cleaned as ``run`` cleans it (two
largest components, holes filled: the raw threshold's small islands near the heart would open the
gate there), else from the ground truth. With a tissue
map (phantom cases) it also counts predicted lesions lying mostly in the heart or great vessels,
the false positives the breast gate must remove.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import SimpleITK as sitk

from BreastAIAssistantLib.bundles import ModelBundle
from BreastAIAssistantLib.inference.postprocess import (
    LESION_GAP_MM,
    clean_breast_mask,
    lesion_grouping,
    lesion_instances,
    lesion_thresholds,
)
from BreastAIAssistantLib.inference.predictor import BreastPredictor, TumourPredictor
from BreastAIAssistantLib.inference.refine import (
    GrowthSettings,
    grow_small_lesions,
    growth_settings,
)
from BreastAIAssistantLib.measure import measure_lesions
from BreastAIAssistantLib.measure.tstage import T_CATEGORIES
from BreastAIAssistantLib.train.data import LabelledStudy
from BreastAIAssistantLib.train.metrics import dice, hausdorff95, sensitivity

logger = logging.getLogger(__name__)

#: Phantom tissue codes of the heart muscle and the blood pool (heart, great vessels).
HEART_CODES = (8, 9)

#: A lesion setting: ``(threshold, seed_threshold, gap_mm, merge_below_ml, growth)``.
Setting = tuple[float, float | None, float, float | None, GrowthSettings | None]


def manifest_setting(outputs: Mapping[str, Any]) -> Setting:
    """The lesion setting a tumour manifest's ``outputs`` declares (what ``run`` applies)."""
    return (*lesion_thresholds(outputs), *lesion_grouping(outputs), growth_settings(outputs))


def _scores(pred: np.ndarray, truth: np.ndarray, spacing_zyx: tuple[float, ...]) -> dict:
    return {
        "dice": dice(pred, truth),
        "sensitivity": sensitivity(pred, truth),
        "hd95_mm": hausdorff95(pred, truth, spacing_zyx),
    }


def summarise(per_case: list[dict[str, Any]], keys: Iterable[str]) -> dict[str, Any]:
    """Means (NaN-aware) of ``keys`` over cases, and the case count."""
    out: dict[str, Any] = {"n_cases": len(per_case)}
    for key in keys:
        values = np.array([c[key] for c in per_case if c.get(key) is not None], float)
        finite = values[np.isfinite(values)]
        out[f"mean_{key}"] = round(float(finite.mean()), 4) if finite.size else None
    return out


def evaluate_breast(
    bundle: ModelBundle,
    cases: Iterable[LabelledStudy],
    device: str = "cpu",
    progress: Callable[[str, float], None] | None = None,
) -> dict[str, Any]:
    """Whole-breast Dice/HD95 per case and on average, of the mask ``breast-ai run`` writes
    (:func:`clean_breast_mask`: threshold 0.5, the two largest components, holes filled)."""
    predictor = BreastPredictor(bundle, device=device)
    per_case = []
    for case in cases:
        if case.breast is None:
            logger.warning("case %s has no breast mask; skipped", case.case_id)
            continue
        prob, _ = predictor.predict(case.study)
        pred = sitk.GetArrayFromImage(clean_breast_mask(prob)) > 0
        truth = sitk.GetArrayViewFromImage(case.breast) > 0
        scores = _scores(pred, truth, case.study.spacing_mm[::-1])
        per_case.append({"case": case.case_id, **scores})
        logger.info("breast %s: Dice %.4f", case.case_id, scores["dice"])
        if progress is not None:
            progress(case.case_id, len(per_case))
    return {"per_case": per_case, **summarise(per_case, ("dice", "hd95_mm"))}


def evaluate_tumour(
    bundle: ModelBundle,
    cases: Iterable[LabelledStudy],
    breast_bundle: ModelBundle | None = None,
    device: str = "cpu",
    progress: Callable[[str, float], None] | None = None,
    sweep: Sequence[Setting] = (),
    compare: ModelBundle | None = None,
    scales: Sequence[float] | None = None,
) -> dict[str, Any]:
    """Tumour Dice/sensitivity/HD95 per case, by phase count, and lesions in the heart.

    Scored at the manifest's lesion thresholds, grouping and small-lesion growth, as ``breast-ai
    run`` does; ``sweep`` adds ``(threshold, seed_threshold, gap_mm, merge_below_ml, growth)``
    settings (see :func:`lesion_instances` and
    :func:`~BreastAIAssistantLib.inference.refine.grow_small_lesions`; ``growth`` a
    :class:`GrowthSettings` or ``None``) scored
    on the same probability maps, summarised under ``threshold_sweep`` -- to choose a bundle's
    thresholds on validation cases (never on the held-out ones whose numbers the manifest
    reports).

    ``compare``: a second tumour bundle scored on the same cases with the same breast masks, under
    ``compare`` in the result, with the paired per-case Dice difference (second minus first) over
    the cases with tumour and its Wilcoxon signed-rank p-value.

    ``scales``: test-time scales of ``bundle`` (:class:`TumourPredictor`; default the
    manifest's); the ``compare`` bundle runs at its own manifest's.
    """
    tumour = TumourPredictor(bundle, device=device, scales=scales)
    breast = BreastPredictor(breast_bundle, device=device) if breast_bundle else None
    settings = [manifest_setting(bundle.manifest.outputs)]
    settings += [s for s in dict.fromkeys(sweep) if s not in settings]
    scored: dict[Setting, list[dict[str, Any]]] = {s: [] for s in settings}
    other = TumourPredictor(compare, device=device) if compare is not None else None
    other_settings = manifest_setting(compare.manifest.outputs) if compare is not None else None
    other_records: list[dict[str, Any]] = []
    for case in cases:
        if case.tumour is None:
            continue
        if breast is not None:
            breast_prob, _ = breast.predict(case.study)
            breast_mask = clean_breast_mask(breast_prob)  # as ``breast-ai run`` does
        elif case.breast is not None:
            breast_mask = sitk.Cast(case.breast > 0, sitk.sitkUInt8)
        else:
            breast_mask = sitk.Cast(case.study.reference * 0 + 1, sitk.sitkUInt8)
        prob, info = tumour.predict(case.study, breast_mask)
        for setting, records in scored.items():
            record = _score_tumour_case(case, prob, *setting, breast=breast_mask)
            record["windows"] = [info.windows_evaluated, info.windows_total]
            records.append(record)
        if other is not None:
            other_prob, _ = other.predict(case.study, breast_mask)
            other_records.append(_score_tumour_case(case, other_prob, *other_settings,
                                                    breast=breast_mask))  # fmt: skip
        record = scored[settings[0]][-1]
        logger.info("tumour %s (%d phases): Dice %.4f", case.case_id, case.study.n_phases,
                    record["dice"])  # fmt: skip
        if progress is not None:
            progress(case.case_id, len(scored[settings[0]]))
    per_case = scored[settings[0]]
    result = {"per_case": per_case, **tumour_summary(per_case)}
    if sweep:
        result["threshold_sweep"] = [
            {"threshold": t, "seed_threshold": seed, "gap_mm": gap, "merge_below_ml": below,
             "grow": None if grow is None else grow.spec(),
             **tumour_summary(scored[(t, seed, gap, below, grow)])}
            for t, seed, gap, below, grow in settings
        ]
    if compare is not None:
        result["compare"] = {"model": compare.manifest.id, "per_case": other_records,
                             **tumour_summary(other_records),
                             "paired": paired_dice(per_case, other_records)}  # fmt: skip
    return result


def paired_dice(first: list[dict[str, Any]], second: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean per-case Dice difference (second − first) over cases with tumour, Wilcoxon p."""
    from scipy.stats import wilcoxon

    pairs = [(a["dice"], b["dice"]) for a, b in zip(first, second, strict=True)
             if a["truth_voxels"] > 0]  # fmt: skip
    diff = np.array([b - a for a, b in pairs], float)
    out: dict[str, Any] = {"n_cases": int(diff.size), "mean_dice_difference": None,
                           "wilcoxon_p": None}  # fmt: skip
    if diff.size:
        out["mean_dice_difference"] = round(float(diff.mean()), 4)
        nonzero = diff[diff != 0]
        out["wilcoxon_p"] = float(wilcoxon(nonzero).pvalue) if nonzero.size else 1.0
    return out


def _score_tumour_case(
    case: LabelledStudy,
    prob: sitk.Image,
    threshold: float,
    seed_threshold: float | None,
    gap_mm: float = LESION_GAP_MM,
    merge_below_ml: float | None = None,
    growth: GrowthSettings | None = None,
    breast: sitk.Image | None = None,
) -> dict[str, Any]:
    labels = lesion_instances(prob, threshold, seed_threshold=seed_threshold, gap_mm=gap_mm,
                              merge_below_ml=merge_below_ml)  # fmt: skip
    if growth is not None:
        if breast is None:
            raise ValueError("small-lesion growth needs the breast mask")
        labels = grow_small_lesions(labels, case.study, breast, growth)
    pred = sitk.GetArrayViewFromImage(labels) > 0
    truth = sitk.GetArrayViewFromImage(case.tumour) > 0
    record = {"case": case.case_id, "n_phases": case.study.n_phases,
              "truth_voxels": int(truth.sum()),
              **_scores(pred, truth, case.study.spacing_mm[::-1])}  # fmt: skip
    lab_all = sitk.GetArrayViewFromImage(labels)
    found = np.unique(lab_all[truth])
    record["predicted_lesions"] = int(lab_all.max())
    record["false_positive_lesions"] = int(lab_all.max()) - int((found > 0).sum())
    if case.tissues is not None:
        tissues = sitk.GetArrayViewFromImage(case.tissues)
        lab = sitk.GetArrayViewFromImage(labels)
        in_heart = 0
        for k in range(1, int(lab.max()) + 1):
            voxels = tissues[lab == k]
            if voxels.size and np.isin(voxels, HEART_CODES).mean() > 0.5:
                in_heart += 1
        record["lesions_in_heart"] = in_heart
    if case.truth is not None:
        record["lesions"] = _t_agreement(case, labels)
    return record


def tumour_summary(per_case: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean scores of per-case tumour records (also to merge evaluations run in shards)."""
    truth_lesions = [les for c in per_case for les in c.get("lesions", [])]
    with_tumour = [c for c in per_case if c["truth_voxels"] > 0]
    two_phase = [c for c in with_tumour if c["n_phases"] == 2]
    agreement = (
        round(sum(les["t_agree"] for les in truth_lesions) / len(truth_lesions), 4)
        if truth_lesions
        else None
    )
    return {
        "cases_with_tumour": summarise(with_tumour, ("dice", "sensitivity", "hd95_mm")),
        "two_phase_cases_with_tumour": summarise(two_phase, ("dice",)),
        "cases_without_tumour": len(per_case) - len(with_tumour),
        # Older per-case records (before these counts) have no false-positive field.
        "tumour_free_cases_with_a_lesion": sum(
            c.get("predicted_lesions", 0) > 0 for c in per_case if c["truth_voxels"] == 0),
        "false_positive_lesions": int(sum(c.get("false_positive_lesions", 0) for c in per_case)),
        "lesions_in_heart": int(sum(c.get("lesions_in_heart", 0) for c in per_case)),
        "truth_lesions": len(truth_lesions),
        "lesions_detected": sum(les["detected"] for les in truth_lesions),
        "t_category_agreement": agreement,
        "by_truth_t_category": _by_t_category(truth_lesions),
        "diameter_error_mm": _diameter_error(truth_lesions),
        "t_category_uncertainty": _t_uncertainty(truth_lesions),
    }


def _diameter_error(truth_lesions: list[dict[str, Any]]) -> dict[str, float | int] | None:
    """Predicted minus true 3-D maximum diameter over the detected lesions (``None``: none).

    Tells a biased boundary (median far from 0) from scattered errors (mean absolute large,
    median near 0): the first a threshold could fix, the second not.
    """
    errors = np.array([les["predicted_diameter_mm"] - les["truth_diameter_mm"]
                       for les in truth_lesions
                       if les.get("predicted_diameter_mm") is not None
                       and les.get("truth_diameter_mm") is not None], float)  # fmt: skip
    if errors.size == 0:
        return None
    return {"lesions": int(errors.size), "median": round(float(np.median(errors)), 2),
            "mean_absolute": round(float(np.abs(errors).mean()), 2)}  # fmt: skip


def _by_t_category(truth_lesions: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Per true T category: lesions, how many were detected, how many got the right category.

    The mean Dice over cases hides where a model fails: a missed 7 mm lesion scores its case 0
    while a 40 mm one in the next case scores 0.95.
    """
    out: dict[str, dict[str, int]] = {}
    for lesion in truth_lesions:
        row = out.setdefault(lesion["truth_t"], {"lesions": 0, "detected": 0, "t_agree": 0})
        row["lesions"] += 1
        row["detected"] += int(lesion["detected"])
        row["t_agree"] += int(lesion["t_agree"])
    return dict(sorted(out.items(), key=lambda item: T_CATEGORIES.index(item[0])))


def _t_agreement(case: LabelledStudy, labels: sitk.Image) -> list[dict[str, Any]]:
    """Per enhancing truth lesion: detected (overlapping prediction) and T category agreement.

    Each truth lesion is matched to the predicted lesion it overlaps most; its T category comes
    from the exact measurement of that predicted lesion.
    """
    truth = sitk.GetArrayViewFromImage(case.tumour)
    pred = sitk.GetArrayViewFromImage(labels)
    measured: dict[int, tuple[str, float, list[str] | None]] = {}
    if pred.any():
        report = measure_lesions(labels, mode="labels").to_dict()
        measured = {int(les["id"]): (les["t_category"], les["max_diameter_mm"],
                                     les["t_category_range"])
                    for les in report["lesions"]}  # fmt: skip
    out = []
    for lesion in (case.truth or {}).get("lesions", []):
        inside = pred[truth == lesion["label"]]
        if lesion.get("kind") == "cyst" or inside.size == 0:
            continue
        hits = np.bincount(inside.astype(np.int64))
        hits[0] = 0
        match = int(hits.argmax()) if hits.max() > 0 else 0
        found, diameter, t_range = measured.get(match, (None, None, None))
        truth_diameter = lesion.get("max_diameter_mm")
        out.append({"truth_label": int(lesion["label"]), "class": lesion["class"],
                    "truth_t": lesion["t_category"], "predicted_t": found,
                    "detected": bool(match), "t_agree": found == lesion["t_category"],
                    "predicted_t_range": t_range,
                    "t_within_range": _within(lesion["t_category"], t_range),
                    "truth_diameter_mm": None if truth_diameter is None else float(truth_diameter),
                    "predicted_diameter_mm": diameter})  # fmt: skip
    return out


def _within(category: str, t_range: Sequence[str] | None) -> bool:
    """Whether ``category`` lies in the measured range of categories (lowest, highest)."""
    if not t_range:
        return False
    low, high = (T_CATEGORIES.index(name) for name in t_range)
    return low <= T_CATEGORIES.index(category) <= high


def _t_uncertainty(truth_lesions: list[dict[str, Any]]) -> dict[str, int] | None:
    """How the reported one-voxel T range relates to the errors (``None``: records before it).

    ``wrong_flagged``: detected lesions with a wrong category whose range spans more than one
    category (the report said the category was uncertain), ``wrong_within_range`` those of them
    whose true category lies in that range; ``right_flagged``: right categories reported as
    uncertain; ``truth_within_range``: lesions (missed ones count as not) whose true category lies
    in the measured range.
    """
    rows = [les for les in truth_lesions if "predicted_t_range" in les]
    if not rows:
        return None
    detected = [les for les in rows if les["detected"] and les["predicted_t_range"]]
    wrong = [les for les in detected if not les["t_agree"]]

    def flagged(les: dict[str, Any]) -> bool:
        return les["predicted_t_range"][0] != les["predicted_t_range"][1]

    return {"lesions": len(rows), "detected": len(detected),
            "wrong_detected": len(wrong),
            "wrong_flagged": sum(flagged(les) for les in wrong),
            "wrong_within_range": sum(bool(les["t_within_range"]) for les in wrong),
            "right_flagged": sum(flagged(les) for les in detected if les["t_agree"]),
            "truth_within_range": sum(bool(les["t_within_range"]) for les in rows)}  # fmt: skip
