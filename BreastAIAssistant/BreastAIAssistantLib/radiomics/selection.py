"""Radiomics feature selection as one estimator that is fitted on training cases only.

The steps follow the Front. Med. 2024 multimodal radiomics study (Mann-Whitney U test, Spearman
rank correlation, then LASSO), with the usual hygiene steps in front:

1. drop features missing in more than ``max_missing`` of the cases (NaN or non-finite);
2. impute the remaining missing values with the training median and drop constant features;
3. standardise (training mean and standard deviation);
4. Mann-Whitney U test between the classes (two-sided): keep ``p < alpha``; when no feature
   passes, keep the ``min_features`` with the smallest p;
5. Spearman redundancy filter: walk the kept features by ascending p and drop one whose
   ``|rho|`` with an already kept feature exceeds ``max_correlation``;
6. LASSO: L1-penalised logistic regression (``LogisticRegressionCV``, liblinear solver) with its
   penalty chosen by a stratified cross-validation *inside the training data*; keep the features
   with non-zero coefficients (the single best by p when LASSO keeps none).

Improvement over the paper: the paper built its LASSO signature on the entire dataset before
evaluating the classifiers, which lets the test cases choose the features (optimistic AUCs; with
many noise features and few cases it "finds" signal in pure noise). Here every step, including the
imputation medians and the standardisation, is fitted by :meth:`FeatureSelector.fit` on the
training cases of each fold only, and applied unchanged to the test cases by
:meth:`FeatureSelector.transform`.

References:
    Mann HB, Whitney DR. Ann Math Stat 1947;18:50-60. Tibshirani R. J R Stat Soc B
    1996;58:267-288 (LASSO). Ambroise C, McLachlan GJ. PNAS 2002;99:6562-6566 (selection bias
    when features are selected before cross-validation).
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

import numpy as np
from scipy import stats
from sklearn.base import BaseEstimator, TransformerMixin

from BreastAIAssistantLib.errors import BreastAIError

logger = logging.getLogger(__name__)


class FeatureSelector(TransformerMixin, BaseEstimator):
    """Missing/variance filter, imputation, scaling, Mann-Whitney, Spearman and LASSO selection.

    Args:
        max_missing: Largest fraction of missing values a kept feature may have (0.2).
        alpha: Mann-Whitney significance level (0.05).
        min_features: Features kept by smallest p when none reaches ``alpha`` (5).
        max_correlation: Largest ``|Spearman rho|`` between two kept features (0.9).
        lasso: Run the LASSO step (True).
        lasso_folds: Inner cross-validation folds for the LASSO penalty (5; fewer when the
            smaller class has fewer cases; LASSO is skipped with fewer than 2 per class).
        lasso_cs: Number of penalty values tried, log-spaced from 1e-4 to 1e4 (10).
        random_state: Seed of the inner folds and of the solver (0).

    Attributes (after ``fit``):
        selected_: Indices of the kept input columns, ascending.
        p_values_: Mann-Whitney p per input column (NaN for columns dropped before the test).
        medians_: Training medians per input column (NaN for all-missing columns).
        mean_, scale_: Standardisation of the selected columns.
        n_features_in_: Number of input columns.
        steps_: Number of features left after each step (for logs and reports).

    Raises:
        ValueError: A parameter out of range.
    """

    def __init__(self, max_missing: float = 0.2, alpha: float = 0.05, min_features: int = 5,
                 max_correlation: float = 0.9, lasso: bool = True, lasso_folds: int = 5,
                 lasso_cs: int = 10, random_state: int = 0) -> None:
        if not 0 <= max_missing < 1:
            raise ValueError(f"max_missing must be in [0, 1); got {max_missing}")
        if not 0 < alpha <= 1:
            raise ValueError(f"alpha must be in (0, 1]; got {alpha}")
        if min_features < 1:
            raise ValueError(f"min_features must be >= 1; got {min_features}")
        if not 0 < max_correlation <= 1:
            raise ValueError(f"max_correlation must be in (0, 1]; got {max_correlation}")
        if lasso_folds < 2 or lasso_cs < 1:
            raise ValueError("lasso_folds must be >= 2 and lasso_cs >= 1")
        self.max_missing = max_missing
        self.alpha = alpha
        self.min_features = min_features
        self.max_correlation = max_correlation
        self.lasso = lasso
        self.lasso_folds = lasso_folds
        self.lasso_cs = lasso_cs
        self.random_state = random_state

    def fit(self, X: np.ndarray, y: np.ndarray) -> FeatureSelector:
        """Choose the features on training cases ``X`` (n x p, NaN allowed) with labels ``y``.

        Raises:
            BreastAIError: ``y`` has one class only, or no feature survives the missing-value
                and variance filter.
        """
        X = _as_float(X)
        y = np.asarray(y).astype(int).ravel()
        if X.shape[0] != y.size:
            raise ValueError(f"{X.shape[0]} rows but {y.size} labels")
        if np.unique(y).size != 2:
            raise BreastAIError("feature selection needs cases of both classes in every training "
                                "set; use fewer folds or a larger cohort")
        self.n_features_in_ = X.shape[1]
        missing = np.isnan(X).mean(axis=0) if X.shape[0] else np.ones(X.shape[1])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns
            self.medians_ = np.nanmedian(X, axis=0) if X.size else np.full(X.shape[1], np.nan)
        candidates = np.flatnonzero(missing <= self.max_missing)
        Z = np.where(np.isnan(X[:, candidates]), self.medians_[candidates], X[:, candidates])
        std = Z.std(axis=0)
        varying = std > 1e-12 * np.maximum(1.0, np.abs(Z).max(axis=0, initial=0.0))
        candidates, Z = candidates[varying], Z[:, varying]
        steps = {"input": int(X.shape[1]), "missing_and_variance": int(candidates.size)}
        if candidates.size == 0:
            raise BreastAIError(
                f"no usable feature among {X.shape[1]}: every one is missing in more than "
                f"{self.max_missing:.0%} of the training cases or constant; check the table")
        mean, scale = Z.mean(axis=0), Z.std(axis=0)
        Z = (Z - mean) / scale

        p = _mann_whitney(Z, y)
        self.p_values_ = np.full(X.shape[1], np.nan)
        self.p_values_[candidates] = p
        order = np.argsort(p, kind="stable")
        passed = order[p[order] < self.alpha]
        if passed.size == 0:
            passed = order[: self.min_features]
            logger.debug("no feature with p < %g; keeping the %d smallest p", self.alpha,
                         passed.size)
        steps["mann_whitney"] = int(passed.size)

        kept = _spearman_filter(Z[:, passed], self.max_correlation)
        chosen = passed[kept]  # local indices in ascending p
        steps["spearman"] = int(chosen.size)

        if self.lasso:
            chosen = chosen[self._lasso(Z[:, chosen], y)]
        steps["lasso"] = int(chosen.size)

        self.selected_ = np.sort(candidates[chosen])
        local = np.searchsorted(candidates, self.selected_)
        self.mean_, self.scale_ = mean[local], scale[local]
        self.steps_ = steps
        logger.debug("feature selection: %s", steps)
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Selected columns of ``X``, missing values imputed by the training medians, scaled."""
        if not hasattr(self, "selected_"):
            raise RuntimeError("FeatureSelector.transform called before fit")
        X = _as_float(X)
        if X.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {X.shape[1]} columns; the selector was fitted on "
                             f"{self.n_features_in_}")
        Z = X[:, self.selected_]
        Z = np.where(np.isnan(Z), self.medians_[self.selected_], Z)
        return (Z - self.mean_) / self.scale_

    def _lasso(self, Z: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Positions (into ``Z``'s columns, ordered by p) of the features LASSO keeps."""
        smaller = int(min(np.sum(y == 0), np.sum(y == 1)))
        if smaller < 2 or Z.shape[1] == 1:
            logger.debug("LASSO skipped (%d columns, %d cases in the smaller class)",
                         Z.shape[1], smaller)
            return np.arange(Z.shape[1])
        model = _lasso_cv(min(self.lasso_folds, smaller), self.lasso_cs, self.random_state)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # convergence notes at extreme penalties
            model.fit(Z, y)
        nonzero = np.flatnonzero(np.abs(np.ravel(model.coef_)) > 0)
        return nonzero if nonzero.size else np.arange(1)


def _as_float(X: Any) -> np.ndarray:
    X = np.array(X, dtype=np.float64, copy=True)
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (cases x features); got shape {X.shape}")
    X[~np.isfinite(X)] = np.nan
    return X


def _mann_whitney(Z: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Two-sided Mann-Whitney U p-value per column (1 where the test is undefined)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        p = stats.mannwhitneyu(Z[y == 1], Z[y == 0], alternative="two-sided", axis=0).pvalue
    p = np.atleast_1d(np.asarray(p, dtype=float))
    return np.where(np.isfinite(p), p, 1.0)


def _spearman_filter(Z: np.ndarray, max_correlation: float) -> np.ndarray:
    """Greedy redundancy filter over columns already ordered by priority; kept positions."""
    if Z.shape[1] <= 1:
        return np.arange(Z.shape[1])
    ranks = stats.rankdata(Z, axis=0)
    ranks = (ranks - ranks.mean(axis=0)) / ranks.std(axis=0)
    rho = np.abs(ranks.T @ ranks) / Z.shape[0]
    kept: list[int] = []
    for j in range(Z.shape[1]):
        if not kept or rho[j, kept].max() <= max_correlation:
            kept.append(j)
    return np.asarray(kept, dtype=int)


def _lasso_cv(folds: int, cs: int, seed: int) -> Any:
    """``LogisticRegressionCV`` with an L1 penalty, written for old and new scikit-learn."""
    import inspect

    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.model_selection import StratifiedKFold

    options: dict[str, Any] = {
        "Cs": cs, "cv": StratifiedKFold(folds, shuffle=True, random_state=seed),
        "solver": "liblinear", "scoring": "neg_log_loss", "max_iter": 1000,
        "random_state": seed,
    }
    parameters = inspect.signature(LogisticRegressionCV).parameters
    if "use_legacy_attributes" in parameters:  # scikit-learn >= 1.9
        options["use_legacy_attributes"] = False
    if parameters["penalty"].default == "deprecated":  # scikit-learn >= 1.8: L1 = l1_ratio 1
        options["l1_ratios"] = (1.0,)
    else:
        options["penalty"] = "l1"
    return LogisticRegressionCV(**options)
