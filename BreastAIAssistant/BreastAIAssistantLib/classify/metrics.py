"""Classification metrics: ROC AUC with a bootstrap confidence interval, threshold metrics,
DeLong's test between two correlated AUCs, and a ROC plot.

* **AUC** is the Mann-Whitney statistic: the probability that a random positive scores above a
  random negative, ties counting one half (computed from mid-ranks, O(n log n)).
* **95 % CI**: percentile bootstrap over cases (``n_boot`` resamples, fixed seed; resamples with
  one class only are redrawn), as most radiology papers report it.
* **DeLong's test** (DeLong ER, DeLong DM, Clarke-Pearson DL. Biometrics 1988;44:837-845) for two
  scores on the same cases, with the structural components computed from mid-ranks as in
  Sun X, Xu W. IEEE Signal Process Lett 2014;21:1389-1393. For score ``r`` the placement values
  are ``V10_i = mean_j psi(X_i, Y_j)`` over negatives ``Y`` for each positive ``X_i``, and
  ``V01_j = mean_i psi(X_i, Y_j)``; ``S10, S01`` are their sample covariance matrices across the two
  scores; ``var(AUC_1 - AUC_2) = c' (S10 / m + S01 / n) c`` with ``c = (1, -1)``; ``z`` is the AUC
  difference over its standard error and the p-value two-sided normal.
* Threshold metrics (accuracy, sensitivity, specificity, precision) at a stated threshold.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from scipy import stats


def _check(labels: Sequence[int], scores: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(labels).astype(int).ravel()
    s = np.asarray(scores, dtype=float).ravel()
    if y.shape != s.shape:
        raise ValueError(f"{y.size} labels but {s.size} scores")
    if not np.isin(y, (0, 1)).all():
        raise ValueError("labels must be 0 or 1")
    if not np.isfinite(s).all():
        raise ValueError("scores must be finite")
    return y, s


def roc_auc(labels: Sequence[int], scores: Sequence[float]) -> float:
    """Area under the ROC curve (NaN when only one class is present)."""
    y, s = _check(labels, scores)
    m, n = int(y.sum()), int((1 - y).sum())
    if m == 0 or n == 0:
        return float("nan")
    ranks = stats.rankdata(s)
    return float((ranks[y == 1].sum() - m * (m + 1) / 2) / (m * n))


def bootstrap_auc_ci(labels: Sequence[int], scores: Sequence[float], n_boot: int = 2000,
                     level: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of the AUC (NaN, NaN with one class)."""
    y, s = _check(labels, scores)
    if y.min() == y.max():
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    values = []
    while len(values) < n_boot:
        pick = rng.integers(0, y.size, y.size)
        if y[pick].min() == y[pick].max():
            continue
        values.append(roc_auc(y[pick], s[pick]))
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def threshold_metrics(labels: Sequence[int], scores: Sequence[float],
                      threshold: float = 0.5) -> dict[str, float]:
    """Accuracy, sensitivity, specificity and precision of ``score >= threshold``."""
    y, s = _check(labels, scores)
    pred = s >= threshold
    tp = int(np.sum(pred & (y == 1)))
    tn = int(np.sum(~pred & (y == 0)))
    fp = int(np.sum(pred & (y == 0)))
    fn = int(np.sum(~pred & (y == 1)))

    def ratio(a: int, b: int) -> float:
        return a / b if b else float("nan")

    return {
        "threshold": float(threshold),
        "accuracy": ratio(tp + tn, y.size),
        "sensitivity": ratio(tp, tp + fn),
        "specificity": ratio(tn, tn + fp),
        "precision": ratio(tp, tp + fp),
    }


def _placements(y: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """DeLong placement values (V10 per positive, V01 per negative) from mid-ranks."""
    pos, neg = s[y == 1], s[y == 0]
    m, n = pos.size, neg.size
    both = stats.rankdata(np.concatenate([pos, neg]))
    v10 = (both[:m] - stats.rankdata(pos)) / n
    v01 = 1.0 - (both[m:] - stats.rankdata(neg)) / m
    return v10, v01


def delong_test(labels: Sequence[int], scores_a: Sequence[float],
                scores_b: Sequence[float]) -> dict[str, float]:
    """DeLong's test of AUC(a) = AUC(b) for two scores on the same cases.

    Returns:
        ``auc_a``, ``auc_b``, ``difference`` (a - b), ``se``, ``z`` and the two-sided ``p``.

    Raises:
        ValueError: Mismatched lengths or a single class.
    """
    y, a = _check(labels, scores_a)
    _, b = _check(labels, scores_b)
    m, n = int(y.sum()), int((1 - y).sum())
    if m < 2 or n < 2:
        raise ValueError("DeLong's test needs at least two positive and two negative cases")
    v10 = np.stack([_placements(y, a)[0], _placements(y, b)[0]])
    v01 = np.stack([_placements(y, a)[1], _placements(y, b)[1]])
    aucs = v10.mean(axis=1)
    cov = np.cov(v10) / m + np.cov(v01) / n
    var = float(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
    diff = float(aucs[0] - aucs[1])
    if var <= 0:
        z = 0.0 if diff == 0 else math.copysign(math.inf, diff)
        se = 0.0
    else:
        se = math.sqrt(var)
        z = diff / se
    p = float(2 * stats.norm.sf(abs(z)))
    return {"auc_a": float(aucs[0]), "auc_b": float(aucs[1]), "difference": diff, "se": se,
            "z": float(z), "p": p}


def roc_curve(labels: Sequence[int], scores: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """False- and true-positive rates at every distinct threshold (from (0, 0) to (1, 1))."""
    y, s = _check(labels, scores)
    order = np.argsort(-s, kind="mergesort")
    y, s = y[order], s[order]
    last = np.r_[np.nonzero(np.diff(s))[0], y.size - 1]
    tps = np.cumsum(y)[last]
    fps = (last + 1) - tps
    tpr = np.r_[0, tps / max(int(y.sum()), 1)]
    fpr = np.r_[0, fps / max(int((1 - y).sum()), 1)]
    return fpr, tpr


def plot_roc(curves: dict[str, tuple[Sequence[int], Sequence[float]]], path: Path,
             title: str = "ROC") -> Path:
    """Write ROC curves (``name -> (labels, scores)``) with their AUCs to a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    from BreastAIAssistantLib.io.volumes import atomic_path

    fig, ax = plt.subplots(figsize=(4.6, 4.4), dpi=110)
    for name, (labels, scores) in curves.items():
        fpr, tpr = roc_curve(labels, scores)
        ax.plot(fpr, tpr, lw=1.6, label=f"{name} (AUC {roc_auc(labels, scores):.3f})")
    ax.plot([0, 1], [0, 1], color="0.7", lw=0.8, ls="--")
    ax.set(xlabel="1 - specificity", ylabel="sensitivity", title=title, xlim=(0, 1), ylim=(0, 1.01))
    ax.legend(loc="lower right", fontsize=7)
    fig.tight_layout()
    with atomic_path(Path(path)) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return Path(path)
