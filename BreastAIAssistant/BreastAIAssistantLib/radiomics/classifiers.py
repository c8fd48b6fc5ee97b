"""The seven classifiers of the Front. Med. 2024 multimodal radiomics study, as a registry.

``CLASSIFIERS[name](seed)`` returns a new, unfitted scikit-learn style estimator with
``fit(X, y)`` and ``predict_proba(X)``: ``svm``, ``knn``, ``random_forest``, ``extra_trees``,
``xgboost``, ``lightgbm`` and ``logistic_regression``. Settings are modest and fixed (no
hyper-parameter search): radiomics cohorts are small, and a search inside every fold would cost
more than it brings. Every model is seeded and single-threaded (reproducible, and it leaves the
machine to the cross-validation loop). Packages are imported when an estimator is built, so
importing this module is cheap; a missing ``xgboost`` or ``lightgbm`` raises a
:class:`~BreastAIAssistantLib.errors.BreastAIError` that names the package to install.

The SVM's probabilities come from Platt scaling. ``SVC(probability=True)`` is deprecated from
scikit-learn 1.9, so :class:`PlattSVC` does the same thing with ``CalibratedClassifierCV(SVC(),
ensemble=False, method="sigmoid")``, with as many calibration folds as the smaller class allows.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from BreastAIAssistantLib.errors import BreastAIError

#: Number of trees / boosting rounds of the ensembles.
N_TREES = 200
N_ROUNDS = 100


def _require(module: str, package: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise BreastAIError(f"the {module} classifier needs the '{package}' package: "
                            f"pip install {package}, or leave that classifier out") from exc


class PlattSVC:
    """RBF support-vector machine with Platt-scaled probabilities and balanced class weights.

    Args:
        C: SVM regularisation (1.0).
        folds: Calibration folds (5; fewer when the smaller class has fewer cases).
        random_state: Seed of the calibration folds.

    With fewer than two cases in a class, the sigmoid of the decision function is used.
    """

    def __init__(self, C: float = 1.0, folds: int = 5, random_state: int = 0) -> None:
        self.C = C
        self.folds = folds
        self.random_state = random_state

    def fit(self, X: np.ndarray, y: np.ndarray) -> PlattSVC:
        """Fit the SVM and its calibration on ``X`` (n x p) and labels ``y`` (0/1)."""
        from sklearn.calibration import CalibratedClassifierCV
        from sklearn.model_selection import StratifiedKFold
        from sklearn.svm import SVC

        y = np.asarray(y).astype(int)
        svc = SVC(C=self.C, kernel="rbf", gamma="scale", class_weight="balanced",
                  random_state=self.random_state)
        smaller = int(min(np.sum(y == 0), np.sum(y == 1)))
        if smaller >= 2:
            folds = StratifiedKFold(min(self.folds, smaller), shuffle=True,
                                    random_state=self.random_state)
            self.model_: Any = CalibratedClassifierCV(svc, method="sigmoid", cv=folds,
                                                      ensemble=False).fit(X, y)
        else:
            self.model_ = svc.fit(X, y)
        self.classes_ = np.array([0, 1])
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Probabilities of classes 0 and 1, shape (n, 2)."""
        if hasattr(self.model_, "predict_proba"):
            return self.model_.predict_proba(X)
        p1 = 1.0 / (1.0 + np.exp(-self.model_.decision_function(X)))
        return np.column_stack([1.0 - p1, p1])


def svm(seed: int) -> Any:
    """RBF SVM, balanced class weights, Platt-scaled probabilities (:class:`PlattSVC`)."""
    return PlattSVC(random_state=seed)


def knn(seed: int) -> Any:
    """5 nearest neighbours, distance-weighted (deterministic; ``seed`` is unused)."""
    from sklearn.neighbors import KNeighborsClassifier

    return KNeighborsClassifier(n_neighbors=5, weights="distance")


def random_forest(seed: int) -> Any:
    """Random forest of :data:`N_TREES` trees, balanced class weights."""
    from sklearn.ensemble import RandomForestClassifier

    return RandomForestClassifier(n_estimators=N_TREES, class_weight="balanced", n_jobs=1,
                                  random_state=seed)


def extra_trees(seed: int) -> Any:
    """Extremely randomised trees (Geurts P, et al. Mach Learn 2006;63:3-42), balanced."""
    from sklearn.ensemble import ExtraTreesClassifier

    return ExtraTreesClassifier(n_estimators=N_TREES, class_weight="balanced", n_jobs=1,
                                random_state=seed)


def xgboost(seed: int) -> Any:
    """XGBoost (Chen T, Guestrin C. KDD 2016): :data:`N_ROUNDS` rounds of depth-3 trees."""
    module = _require("xgboost", "xgboost")
    return module.XGBClassifier(n_estimators=N_ROUNDS, max_depth=3, learning_rate=0.1,
                                subsample=0.9, colsample_bytree=0.9, eval_metric="logloss",
                                n_jobs=1, random_state=seed, verbosity=0)


def lightgbm(seed: int) -> Any:
    """LightGBM (Ke G, et al. NeurIPS 2017): small leaves for small cohorts, balanced."""
    module = _require("lightgbm", "lightgbm")
    return module.LGBMClassifier(n_estimators=N_ROUNDS, learning_rate=0.05, num_leaves=15,
                                 min_child_samples=5, subsample=0.9, subsample_freq=1,
                                 colsample_bytree=0.9, class_weight="balanced", n_jobs=1,
                                 random_state=seed, verbose=-1)


def logistic_regression(seed: int) -> Any:
    """L2-penalised logistic regression (C = 1), balanced class weights."""
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=1.0, class_weight="balanced", max_iter=1000, random_state=seed)


#: Classifier name -> factory ``seed -> unfitted estimator``, in the paper's order.
CLASSIFIERS: dict[str, Callable[[int], Any]] = {
    "svm": svm,
    "knn": knn,
    "random_forest": random_forest,
    "extra_trees": extra_trees,
    "xgboost": xgboost,
    "lightgbm": lightgbm,
    "logistic_regression": logistic_regression,
}


def make_classifier(name: str, seed: int, n_train: int | None = None) -> Any:
    """A new estimator by registry name; with ``n_train``, KNN's k is capped at ``n_train``.

    Raises:
        BreastAIError: An unknown name.
    """
    if name not in CLASSIFIERS:
        raise BreastAIError(f"unknown classifier {name!r}; choose from {', '.join(CLASSIFIERS)}")
    model = CLASSIFIERS[name](seed)
    if n_train is not None and hasattr(model, "n_neighbors"):
        model.set_params(n_neighbors=max(1, min(model.n_neighbors, n_train)))
    return model
