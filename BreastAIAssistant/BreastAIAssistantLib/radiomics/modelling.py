"""Radiomics model selection: per-modality models, early and late fusion, seven classifiers.

After the Front. Med. 2024 multimodal radiomics study (benign vs malignant breast tumours from US,
mammography and MRI features): every *strategy* is evaluated with every classifier of
:data:`~BreastAIAssistantLib.radiomics.classifiers.CLASSIFIERS`:

* ``single_modality``: one model per modality (columns grouped by
  :func:`~BreastAIAssistantLib.radiomics.table.modality_of`);
* ``early_fusion`` (two or more modalities): all columns concatenated, selection on the
  concatenation;
* ``late_ensemble``: one model per modality; weights = softmax of each modality model's accuracy
  in an inner cross-validation on the training data; fused probability = weighted average
  (the paper's "accuracy-weighted average integration based on softmax normalisation");
* ``late_stacking``: the per-modality models' out-of-fold probabilities on the training data feed
  a logistic-regression meta-learner; at prediction time the per-modality models refitted on all
  the training data feed it.

A model is a :class:`~BreastAIAssistantLib.radiomics.selection.FeatureSelector` plus a
classifier, fitted together on training cases only. Evaluation is a stratified k-fold
cross-validation with a fixed seed (out-of-fold probabilities pooled over the folds) or one
stratified train/test split; all strategies and classifiers see the same folds, so their rows are
paired. Each row reports the AUC with a percentile-bootstrap 95 % CI, accuracy, sensitivity and
specificity at 0.5 (:mod:`BreastAIAssistantLib.classify.metrics`) and the median number of
selected features. The best row (highest AUC) is refitted on all cases for :func:`save_model`;
its AUC is the maximum over many rows and therefore optimistic (winner's curse): confirm the chosen
model on independent cases.

Improvement over the paper: the paper selected its LASSO signature on the whole dataset before
evaluating; here every selection step runs inside each training fold (and inside each inner fold
of the late fusions), so the reported AUCs are not inflated by feature-selection leakage. On pure
noise the cross-validated AUC stays near 0.5 (see ``Testing/test_radiomics_modelling.py``).
"""

from __future__ import annotations

import contextvars
import hashlib
import itertools
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from BreastAIAssistantLib.classify.metrics import bootstrap_auc_ci, roc_auc, threshold_metrics
from BreastAIAssistantLib.errors import BreastAIError
from BreastAIAssistantLib.radiomics.classifiers import CLASSIFIERS, make_classifier
from BreastAIAssistantLib.radiomics.selection import FeatureSelector
from BreastAIAssistantLib.radiomics.table import FeatureTable, labels, modality_of

logger = logging.getLogger(__name__)

STRATEGIES = ("single_modality", "early_fusion", "late_ensemble", "late_stacking")

#: Fitted selectors by input content, shared by the classifiers of one :func:`select_models`
#: run: selection does not depend on the classifier, so each training set is selected once.
_SELECTORS: contextvars.ContextVar[dict[tuple[Any, ...], FeatureSelector] | None] = \
    contextvars.ContextVar("radiomics_selectors", default=None)


def _fit_selector(X: np.ndarray, y: np.ndarray, params: dict[str, Any]) -> FeatureSelector:
    """``FeatureSelector(**params).fit(X, y)``, reused from the run's cache when the same rows,
    labels and parameters were seen before (the selector is deterministic)."""
    cache = _SELECTORS.get()
    if cache is None:
        return FeatureSelector(**params).fit(X, y)
    digest = hashlib.sha1(np.ascontiguousarray(X, dtype=np.float64).tobytes())
    digest.update(np.ascontiguousarray(y, dtype=np.int64).tobytes())
    key = (digest.hexdigest(), X.shape, repr(sorted(params.items())))
    if key not in cache:
        cache[key] = FeatureSelector(**params).fit(X, y)
    return cache[key]


@dataclass
class RadiomicsPipeline:
    """Feature selection and one classifier on a fixed list of columns.

    Args:
        columns: The feature columns the model reads, in the order of its input matrix.
        classifier: A :data:`CLASSIFIERS` name.
        seed: Seed of the selector's inner folds and of the classifier.
        selector_params: Extra :class:`FeatureSelector` arguments.
    """

    columns: list[str]
    classifier: str
    seed: int = 0
    selector_params: dict[str, Any] = field(default_factory=dict)

    def fit(self, X: np.ndarray, y: np.ndarray) -> RadiomicsPipeline:
        """Fit selector and classifier on training cases ``X`` (n x len(columns))."""
        params = {"random_state": self.seed, **self.selector_params}
        self.selector_ = _fit_selector(X, np.asarray(y).astype(int), params)
        self.estimator_ = make_classifier(self.classifier, self.seed, n_train=len(y))
        self.estimator_.fit(self.selector_.transform(X), np.asarray(y).astype(int))
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Probability of class 1 per case."""
        proba = self.estimator_.predict_proba(self.selector_.transform(X))
        return np.asarray(proba)[:, list(self.estimator_.classes_).index(1)]

    @property
    def selected_columns(self) -> list[str]:
        """Names of the features the fitted selector kept."""
        return [self.columns[i] for i in self.selector_.selected_]

    def describe(self) -> dict[str, Any]:
        """Fitted settings for ``model.json``."""
        return {"selection_steps": self.selector_.steps_}


@dataclass
class _LateFusion:
    """Shared parts of the late fusions: one :class:`RadiomicsPipeline` per modality.

    Args:
        modalities: Modality -> its columns; the input matrix holds them in this order.
        classifier: Classifier name used for every modality.
        seed: Seed of the inner folds, selectors and classifiers.
        selector_params: Extra :class:`FeatureSelector` arguments.
        inner_folds: Inner stratified folds on the training data (3; fewer for a small class).
    """

    modalities: dict[str, list[str]]
    classifier: str
    seed: int = 0
    selector_params: dict[str, Any] = field(default_factory=dict)
    inner_folds: int = 3

    @property
    def columns(self) -> list[str]:
        return [c for cols in self.modalities.values() for c in cols]

    @property
    def selected_columns(self) -> list[str]:
        return [c for member in self.members_ for c in member.selected_columns]

    def _parts(self, X: np.ndarray) -> list[np.ndarray]:
        edges = np.cumsum([0, *(len(c) for c in self.modalities.values())])
        return [X[:, a:b] for a, b in itertools.pairwise(edges)]

    def _member(self, modality: str) -> RadiomicsPipeline:
        return RadiomicsPipeline(self.modalities[modality], self.classifier, self.seed,
                                 self.selector_params)

    def _fit_members(self, X: np.ndarray, y: np.ndarray) -> np.ndarray | None:
        """Fit every member on all of ``X``; return their inner out-of-fold probabilities
        (n x modalities), or None when the smaller class has fewer than 2 cases."""
        from sklearn.model_selection import StratifiedKFold

        parts = self._parts(X)
        smaller = int(min(np.sum(y == 0), np.sum(y == 1)))
        oof = None
        if smaller >= 2:
            oof = np.zeros((len(y), len(parts)))
            folds = StratifiedKFold(min(self.inner_folds, smaller), shuffle=True,
                                    random_state=self.seed)
            for train, test in folds.split(parts[0], y):
                for k, (name, part) in enumerate(zip(self.modalities, parts, strict=True)):
                    member = self._member(name).fit(part[train], y[train])
                    oof[test, k] = member.predict_proba(part[test])
        else:
            logger.warning("late fusion: too few cases for an inner cross-validation")
        self.members_ = [self._member(name).fit(part, y)
                         for name, part in zip(self.modalities, parts, strict=True)]
        return oof

    def _member_proba(self, X: np.ndarray) -> np.ndarray:
        return np.column_stack([m.predict_proba(p)
                                for m, p in zip(self.members_, self._parts(X), strict=True)])


@dataclass
class LateEnsemble(_LateFusion):
    """Softmax-of-accuracy weighted average of per-modality probabilities (see module doc).

    Attributes (after ``fit``): ``accuracies_`` (inner-CV accuracy per modality at 0.5),
    ``weights_`` (softmax of the accuracies; they sum to 1), ``members_``.
    """

    def fit(self, X: np.ndarray, y: np.ndarray) -> LateEnsemble:
        """Fit the members and their weights on training cases ``X``."""
        y = np.asarray(y).astype(int)
        oof = self._fit_members(X, y)
        if oof is None:
            self.accuracies_ = np.full(len(self.modalities), np.nan)
            self.weights_ = np.full(len(self.modalities), 1.0 / len(self.modalities))
        else:
            self.accuracies_ = ((oof >= 0.5) == y[:, None]).mean(axis=0)
            e = np.exp(self.accuracies_ - self.accuracies_.max())
            self.weights_ = e / e.sum()
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Weighted average of the members' probabilities of class 1."""
        return self._member_proba(X) @ self.weights_

    def describe(self) -> dict[str, Any]:
        return {"weights": dict(zip(self.modalities, self.weights_.tolist(), strict=True)),
                "inner_cv_accuracy": dict(zip(self.modalities, self.accuracies_.tolist(),
                                              strict=True))}


@dataclass
class LateStacking(_LateFusion):
    """Logistic-regression meta-learner on per-modality probabilities (see module doc).

    Attributes (after ``fit``): ``meta_`` (the fitted meta-learner), ``members_``.
    """

    def fit(self, X: np.ndarray, y: np.ndarray) -> LateStacking:
        """Fit the members, then the meta-learner on their inner out-of-fold probabilities."""
        from sklearn.linear_model import LogisticRegression

        y = np.asarray(y).astype(int)
        oof = self._fit_members(X, y)
        if oof is None:  # no inner CV possible: fall back to the members' training probabilities
            oof = self._member_proba(X)
        self.meta_ = LogisticRegression(C=1.0, max_iter=1000, random_state=self.seed).fit(oof, y)
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """The meta-learner's probability of class 1."""
        return self.meta_.predict_proba(self._member_proba(X))[:, 1]

    def describe(self) -> dict[str, Any]:
        return {"meta_coefficients": dict(zip(self.modalities, self.meta_.coef_[0].tolist(),
                                              strict=True)),
                "meta_intercept": float(self.meta_.intercept_[0])}


@dataclass
class ResultRow:
    """One evaluated (strategy, modality, classifier) combination."""

    strategy: str
    modality: str
    classifier: str
    auc: float
    auc_low: float
    auc_high: float
    accuracy: float
    sensitivity: float
    specificity: float
    n_features: float
    n_cases: int
    weights: dict[str, float] | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        return self.strategy, self.modality, self.classifier

    def to_dict(self) -> dict[str, Any]:
        """The row as JSON-ready values (NaN becomes None)."""
        return {k: None if isinstance(v, float) and not math.isfinite(v) else v
                for k, v in asdict(self).items()}


@dataclass
class ModelSelectionResult:
    """Everything :func:`select_models` found; :func:`save_model` writes it.

    Attributes:
        rows: One row per evaluated combination, in evaluation order.
        best: The row with the highest AUC.
        best_model: ``best`` refitted on all cases (None when ``refit=False``).
        label_column, case_ids, y: The cohort.
        folds: ``(train, test)`` case indices of the evaluation.
        predictions: Row key -> probability of class 1 per case (NaN where not evaluated).
        modalities: Modality -> feature columns.
        settings: The evaluation settings.
    """

    rows: list[ResultRow]
    best: ResultRow
    best_model: Any
    label_column: str
    case_ids: list[str]
    y: np.ndarray
    folds: list[tuple[np.ndarray, np.ndarray]]
    predictions: dict[tuple[str, str, str], np.ndarray]
    modalities: dict[str, list[str]]
    settings: dict[str, Any]

    def sorted_rows(self) -> list[ResultRow]:
        """Rows by decreasing AUC (NaN last), ties in evaluation order."""
        return sorted(self.rows, key=lambda r: -r.auc if math.isfinite(r.auc) else math.inf)

    @property
    def evaluated(self) -> np.ndarray:
        """Indices of the cases with a held-out prediction."""
        return np.unique(np.concatenate([test for _, test in self.folds]))


def make_model(strategy: str, modality: str, modalities: Mapping[str, list[str]],
               classifier: str, seed: int = 0, selector_params: Mapping[str, Any] | None = None,
               inner_folds: int = 3) -> Any:
    """A new, unfitted model of a strategy (``modality`` names the group for single_modality)."""
    params = dict(selector_params or {})
    if strategy == "single_modality":
        return RadiomicsPipeline(list(modalities[modality]), classifier, seed, params)
    if strategy == "early_fusion":
        columns = [c for cols in modalities.values() for c in cols]
        return RadiomicsPipeline(columns, classifier, seed, params)
    kind = {"late_ensemble": LateEnsemble, "late_stacking": LateStacking}.get(strategy)
    if kind is None:
        raise ValueError(f"unknown strategy {strategy!r}; one of {STRATEGIES}")
    return kind(dict(modalities), classifier, seed, params, inner_folds)


def _splits(y: np.ndarray, cv_folds: int, test_size: float | None,
            seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified folds, or one stratified train/test split; checked for both classes."""
    from sklearn.model_selection import StratifiedKFold, train_test_split

    counts = np.bincount(y, minlength=2)
    if test_size is None:
        if cv_folds < 2:
            raise BreastAIError(f"--folds must be at least 2; got {cv_folds}")
        if counts.min() < cv_folds:
            raise BreastAIError(f"class {int(counts.argmin())} has only {counts.min()} cases, "
                                f"fewer than the {cv_folds} folds; use --folds "
                                f"{max(2, int(counts.min()))} or fewer")
        folds = StratifiedKFold(cv_folds, shuffle=True, random_state=seed)
        return list(folds.split(np.zeros(y.size), y))
    if not 0 < test_size < 1:
        raise BreastAIError(f"--test-size must be between 0 and 1; got {test_size}")
    index = np.arange(y.size)
    try:
        train, test = train_test_split(index, test_size=test_size, stratify=y,
                                       random_state=seed)
    except ValueError as exc:
        raise BreastAIError(f"cannot split {y.size} cases with --test-size {test_size}: {exc}; "
                            "use a larger test size or cross-validation") from None
    if np.unique(y[test]).size < 2 or np.bincount(y[train], minlength=2).min() < 2:
        raise BreastAIError("the train/test split leaves a class with too few cases; use a "
                            "larger --test-size or cross-validation (--folds)")
    return [(np.sort(train), np.sort(test))]


def _plan(modalities: Mapping[str, list[str]]) -> list[tuple[str, str]]:
    """(strategy, modality label) pairs to evaluate."""
    plan = [("single_modality", name) for name in modalities]
    if len(modalities) >= 2:
        fused = "+".join(modalities)
        plan += [(s, fused) for s in STRATEGIES[1:]]
    return plan


def select_models(table: FeatureTable, label_column: str, *, cv_folds: int = 5,
                  test_size: float | None = None, seed: int = 0,
                  classifiers: Sequence[str] = tuple(CLASSIFIERS), n_boot: int = 1000,
                  selector_params: Mapping[str, Any] | None = None, inner_folds: int = 3,
                  refit: bool = True) -> ModelSelectionResult:
    """Evaluate every strategy with every classifier and refit the best on all cases.

    Args:
        table: The cohort's features; ``label_column`` is read with :func:`labels`.
        label_column: Binary label column (e.g. ``malignant``).
        cv_folds: Stratified folds of the cross-validation (5); ignored with ``test_size``.
        test_size: Fraction of cases held out in one stratified split instead of the CV.
        seed: Seed of the folds, the selectors and the classifiers.
        classifiers: Names from :data:`CLASSIFIERS` (default all seven).
        n_boot: Bootstrap resamples of the AUC confidence interval (0: no interval).
        selector_params: Extra :class:`FeatureSelector` arguments.
        inner_folds: Inner folds of the late fusions on each training set (3).
        refit: Refit the best row on all cases (needed by :func:`save_model`).

    Returns:
        The rows, the held-out predictions and the refitted best model.

    Raises:
        BreastAIError: Bad label column, unknown classifier, no feature columns, too few cases.
    """
    unknown = [c for c in classifiers if c not in CLASSIFIERS]
    if unknown or not classifiers:
        raise BreastAIError(f"unknown classifier(s) {', '.join(unknown) or '(none given)'}; "
                            f"choose from {', '.join(CLASSIFIERS)}")
    y = labels(table, label_column)
    if np.unique(y).size < 2:
        raise BreastAIError(f"column {label_column!r} has one class only; both are needed")
    columns = [c for c in table.columns if c != label_column]
    if not columns:
        raise BreastAIError("the table has no feature columns (names like "
                            "'<image>_<region>_<family>_<feature>', numeric values)")
    modalities: dict[str, list[str]] = {}
    for column in columns:
        modalities.setdefault(modality_of(column), []).append(column)
    if "all" in modalities and len(modalities) > 1:
        logger.warning("%d feature columns have no 'modality:' prefix; they form the modality "
                       "'all'", len(modalities["all"]))
    folds = _splits(y, cv_folds, test_size, seed)
    token = _SELECTORS.set({})
    try:
        rows, predictions = _evaluate(table, y, modalities, folds, classifiers, n_boot, seed,
                                      dict(selector_params or {}), inner_folds)
    finally:
        _SELECTORS.reset(token)
    best = max(rows, key=lambda r: r.auc if math.isfinite(r.auc) else -math.inf)
    best_model = None
    if refit:
        best_model = make_model(best.strategy, best.modality, modalities, best.classifier, seed,
                                selector_params, inner_folds)
        best_model.fit(table.column_values(best_model.columns), y)
    settings = {"cv_folds": None if test_size is not None else cv_folds,
                "test_size": test_size, "seed": seed, "classifiers": list(classifiers),
                "n_boot": n_boot, "inner_folds": inner_folds,
                "selector": {**FeatureSelector().get_params(), "random_state": seed,
                             **dict(selector_params or {})}}
    return ModelSelectionResult(rows, best, best_model, label_column, list(table.case_ids), y,
                                folds, predictions, modalities, settings)


def _evaluate(table: FeatureTable, y: np.ndarray, modalities: dict[str, list[str]],
              folds: list[tuple[np.ndarray, np.ndarray]], classifiers: Sequence[str],
              n_boot: int, seed: int, selector_params: dict[str, Any], inner_folds: int
              ) -> tuple[list[ResultRow], dict[tuple[str, str, str], np.ndarray]]:
    """Held-out predictions and metrics of every planned (strategy, modality, classifier)."""
    evaluated = np.unique(np.concatenate([test for _, test in folds]))
    rows: list[ResultRow] = []
    predictions: dict[tuple[str, str, str], np.ndarray] = {}
    for strategy, modality in _plan(modalities):
        wanted = modalities if strategy != "single_modality" else {modality: modalities[modality]}
        X = table.column_values([c for cols in wanted.values() for c in cols])
        for name in classifiers:
            proba = np.full(y.size, np.nan)
            n_selected, weights = [], []
            for train, test in folds:
                model = make_model(strategy, modality, modalities, name, seed, selector_params,
                                   inner_folds)
                model.fit(X[train], y[train])
                proba[test] = model.predict_proba(X[test])
                n_selected.append(len(model.selected_columns))
                if isinstance(model, LateEnsemble):
                    weights.append(model.weights_)
            row = _row(strategy, modality, name, y[evaluated], proba[evaluated], n_selected,
                       n_boot, seed)
            if weights:
                row.weights = dict(zip(modalities, np.mean(weights, axis=0).tolist(),
                                       strict=True))
            logger.info("%s %s %s: AUC %.3f", strategy, modality, name, row.auc)
            rows.append(row)
            predictions[row.key] = proba
    return rows, predictions


def _row(strategy: str, modality: str, classifier: str, y: np.ndarray, proba: np.ndarray,
         n_selected: list[int], n_boot: int, seed: int) -> ResultRow:
    auc = roc_auc(y, proba)
    low, high = (bootstrap_auc_ci(y, proba, n_boot=n_boot, seed=seed) if n_boot > 0
                 else (math.nan, math.nan))
    at_half = threshold_metrics(y, proba, 0.5)
    return ResultRow(strategy, modality, classifier, auc, low, high, at_half["accuracy"],
                     at_half["sensitivity"], at_half["specificity"],
                     float(np.median(n_selected)), int(y.size))


# saving and loading live in .saved_model; these names stay importable from here (and pickles of
# the pipeline classes above keep their module path)
from BreastAIAssistantLib.radiomics.saved_model import (  # noqa: E402
    MODEL_PACKAGES,
    RESEARCH_NOTE,
    SavedModel,
    load_model,
    predict,
    save_model,
)

__all__ = ["MODEL_PACKAGES", "RESEARCH_NOTE", "STRATEGIES", "LateEnsemble", "LateStacking",
           "ModelSelectionResult", "RadiomicsPipeline", "ResultRow", "SavedModel", "load_model",
           "make_model", "predict", "save_model", "select_models"]
