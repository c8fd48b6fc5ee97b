"""AUC, bootstrap CI, threshold metrics and DeLong's test against slow independent references."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from BreastAIAssistantLib.classify.metrics import (
    bootstrap_auc_ci,
    delong_test,
    plot_roc,
    roc_auc,
    roc_curve,
    threshold_metrics,
)


def psi(x: float, y: float) -> float:
    return 1.0 if x > y else 0.5 if x == y else 0.0


def slow_auc(labels, scores) -> float:
    pos = [s for s, y in zip(scores, labels, strict=True) if y == 1]
    neg = [s for s, y in zip(scores, labels, strict=True) if y == 0]
    return sum(psi(p, n) for p in pos for n in neg) / (len(pos) * len(neg))


def slow_delong(labels, a, b) -> tuple[float, float]:
    """DeLong et al. 1988 written out with explicit structural components (O(m n) loops)."""
    pos = [i for i, y in enumerate(labels) if y == 1]
    neg = [i for i, y in enumerate(labels) if y == 0]
    m, n = len(pos), len(neg)
    v10 = np.array([[np.mean([psi(s[i], s[j]) for j in neg]) for i in pos] for s in (a, b)])
    v01 = np.array([[np.mean([psi(s[i], s[j]) for i in pos]) for j in neg] for s in (a, b)])
    s10 = np.array([[np.sum((v10[r] - v10[r].mean()) * (v10[c] - v10[c].mean())) / (m - 1)
                     for c in range(2)] for r in range(2)])
    s01 = np.array([[np.sum((v01[r] - v01[r].mean()) * (v01[c] - v01[c].mean())) / (n - 1)
                     for c in range(2)] for r in range(2)])
    s = s10 / m + s01 / n
    var = s[0, 0] + s[1, 1] - 2 * s[0, 1]
    z = (v10[0].mean() - v10[1].mean()) / math.sqrt(var)
    return z, 2 * (1 - stats.norm.cdf(abs(z)))


@pytest.fixture
def scored():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 2, 60)
    a = labels * 1.2 + rng.normal(0, 1, 60)
    b = labels * 0.5 + rng.normal(0, 1, 60)
    a[:5] = np.round(a[:5])  # some ties
    b[10:20] = 0.0
    return labels, a, b


def test_auc_matches_pairwise_count(scored):
    labels, a, b = scored
    assert roc_auc(labels, a) == pytest.approx(slow_auc(labels, a))
    assert roc_auc(labels, b) == pytest.approx(slow_auc(labels, b))
    assert roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)
    assert math.isnan(roc_auc([1, 1], [0.2, 0.3]))


def test_delong_matches_slow_reference(scored):
    labels, a, b = scored
    result = delong_test(labels, a, b)
    z, p = slow_delong(list(labels), list(a), list(b))
    assert result["z"] == pytest.approx(z, rel=1e-9)
    assert result["p"] == pytest.approx(p, rel=1e-6)
    assert result["auc_a"] == pytest.approx(slow_auc(labels, a))
    assert result["difference"] == pytest.approx(slow_auc(labels, a) - slow_auc(labels, b))


def test_delong_identical_and_symmetric(scored):
    labels, a, b = scored
    same = delong_test(labels, a, a)
    assert same["z"] == 0 and same["p"] == pytest.approx(1.0)
    forward, backward = delong_test(labels, a, b), delong_test(labels, b, a)
    assert forward["z"] == pytest.approx(-backward["z"])
    assert forward["p"] == pytest.approx(backward["p"])
    with pytest.raises(ValueError, match="two positive"):
        delong_test([1, 0, 0], [0.5, 0.2, 0.1], [0.3, 0.2, 0.1])


def test_bootstrap_ci_is_deterministic_and_brackets_auc(scored):
    labels, a, _ = scored
    low, high = bootstrap_auc_ci(labels, a, n_boot=500, seed=1)
    assert (low, high) == bootstrap_auc_ci(labels, a, n_boot=500, seed=1)
    assert low < roc_auc(labels, a) < high
    assert 0.0 <= low and high <= 1.0


def test_threshold_metrics_by_hand():
    m = threshold_metrics([1, 1, 1, 0, 0], [0.9, 0.6, 0.2, 0.7, 0.1], threshold=0.5)
    assert m["accuracy"] == pytest.approx(3 / 5)
    assert m["sensitivity"] == pytest.approx(2 / 3)
    assert m["specificity"] == pytest.approx(1 / 2)
    assert m["precision"] == pytest.approx(2 / 3)
    assert math.isnan(threshold_metrics([0, 0], [0.1, 0.2])["sensitivity"])


def test_roc_curve_and_plot(tmp_path, scored):
    labels, a, b = scored
    fpr, tpr = roc_curve(labels, a)
    assert (fpr[0], tpr[0], fpr[-1], tpr[-1]) == (0, 0, 1, 1)
    assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(tpr) >= 0)
    area = float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))  # trapezoids
    assert area == pytest.approx(roc_auc(labels, a))
    path = plot_roc({"a": (labels, a), "b": (labels, b)}, tmp_path / "roc.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bad_inputs():
    with pytest.raises(ValueError, match="labels"):
        roc_auc([0, 2], [0.1, 0.2])
    with pytest.raises(ValueError, match="finite"):
        roc_auc([0, 1], [0.1, float("nan")])
    with pytest.raises(ValueError, match="2 labels but 3 scores"):
        roc_auc([0, 1], [0.1, 0.2, 0.3])
