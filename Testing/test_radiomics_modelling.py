"""Radiomics model selection: feature table, leakage-free selection, fusion, saved models, CLI."""

from __future__ import annotations

import csv
import json
import math
import sys

import numpy as np
import pytest
from click.testing import CliRunner
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict

from BreastAIAssistantLib.classify.metrics import roc_auc
from BreastAIAssistantLib.cli.radiomics_model import radiomics_model
from BreastAIAssistantLib.errors import BreastAIError
from BreastAIAssistantLib.radiomics import modelling, selection
from BreastAIAssistantLib.radiomics.classifiers import CLASSIFIERS, make_classifier
from BreastAIAssistantLib.radiomics.modelling import (
    LateEnsemble,
    LateStacking,
    load_model,
    predict,
    save_model,
    select_models,
)
from BreastAIAssistantLib.radiomics.selection import FeatureSelector
from BreastAIAssistantLib.radiomics.table import (
    FeatureTable,
    labels,
    modality_of,
    read_features_csv,
    write_features_csv,
)

FAST = ("logistic_regression", "random_forest")


def signal_table(n: int = 60, noise: int = 20, seed: int = 0) -> tuple[FeatureTable, int]:
    """One feature shifted by 3 SD between the classes, ``noise`` pure-noise features."""
    rng = np.random.default_rng(seed)
    y = np.tile([0, 1], n // 2)
    values = rng.normal(size=(n, noise + 1))
    values[:, 3] += 3.0 * y
    columns = [f"sub1_lesion_glcm_F{j}" for j in range(noise + 1)]
    extra = {"malignant": ["malignant" if v else "benign" for v in y]}
    return FeatureTable([f"case{i:03d}" for i in range(n)], columns, values, extra), 3


def two_modality_table(n: int = 60, seed: int = 1) -> FeatureTable:
    """US and MRI features, each carrying half of the signal (complementary modalities)."""
    rng = np.random.default_rng(seed)
    y = np.tile([0, 1], n // 2)
    half = rng.integers(0, 2, n)  # which modality shows the lesion's malignancy
    us, mri = rng.normal(size=(n, 6)), rng.normal(size=(n, 6))
    us[:, 0] += 1.5 * y + 1.5 * y * half
    mri[:, 0] += 1.5 * y + 1.5 * y * (1 - half)
    columns = [f"us:image_lesion_firstorder_F{j}" for j in range(6)]
    columns += [f"mri:sub1_lesion_glcm_F{j}" for j in range(6)]
    return FeatureTable([f"c{i}" for i in range(n)], columns, np.hstack([us, mri]),
                        {"label": [str(v) for v in y]})


# --- (a) signal is found ---------------------------------------------------------------------

def test_signal_feature_gives_high_cv_auc_and_is_selected():
    table, signal = signal_table()
    result = select_models(table, "malignant", classifiers=FAST, n_boot=100)
    aucs = {row.classifier: row for row in result.rows}
    for name in FAST:
        assert aucs[name].auc > 0.9
        assert aucs[name].auc_low <= aucs[name].auc <= aucs[name].auc_high
    assert [r.strategy for r in result.rows] == ["single_modality"] * 2
    assert result.rows[0].modality == "all"
    assert table.columns[signal] in result.best_model.selected_columns
    y = labels(table, "malignant")
    assert signal in FeatureSelector().fit(table.values, y).selected_


def test_selector_handles_tiny_and_messy_inputs():
    rng = np.random.default_rng(3)
    y = np.array([0, 1] * 5)
    X = rng.normal(size=(10, 8))
    X[:, 1] = 7.0  # constant
    X[:4, 2] = np.nan  # 40 % missing
    X[0, 4] = np.inf  # treated as missing, imputed
    selector = FeatureSelector().fit(X, y)
    assert selector.selected_.size >= 1
    assert not {1, 2} & set(selector.selected_.tolist())
    assert np.isfinite(selector.transform(X)).all()
    one_each = FeatureSelector().fit(X[:2], y[:2])  # LASSO skipped, still a selection
    assert one_each.selected_.size >= 1
    with pytest.raises(BreastAIError, match="both classes"):
        FeatureSelector().fit(X, np.zeros(10))
    with pytest.raises(BreastAIError, match="no usable feature"):
        FeatureSelector().fit(np.full((10, 3), np.nan), y)
    with pytest.raises(ValueError, match="max_correlation"):
        FeatureSelector(max_correlation=0)


def test_spearman_filter_drops_a_near_copy():
    rng = np.random.default_rng(4)
    y = np.array([0, 1] * 20)
    base = rng.normal(size=40) + 2 * y
    X = np.column_stack([base, base * 3 + 0.01 * rng.normal(size=40), rng.normal(size=40)])
    selector = FeatureSelector(lasso=False).fit(X, y)
    assert selector.steps_["spearman"] == selector.steps_["mann_whitney"] - 1
    assert len({0, 1} & set(selector.selected_.tolist())) == 1


# --- (b) no leakage --------------------------------------------------------------------------

def noise_table() -> FeatureTable:
    rng = np.random.default_rng(7)
    values = rng.normal(size=(60, 2000))
    y = rng.permutation(np.repeat([0, 1], 30))
    columns = [f"pre_lesion_glszm_N{j}" for j in range(2000)]
    return FeatureTable([f"n{i}" for i in range(60)], columns, values,
                        {"label": [str(v) for v in y]})


def test_per_fold_selection_keeps_noise_at_chance_unlike_whole_data_selection():
    table = noise_table()
    y = labels(table, "label")
    result = select_models(table, "label", classifiers=tuple(CLASSIFIERS), n_boot=0,
                           refit=False)
    assert len(result.rows) == 7
    for row in result.rows:
        assert row.auc < 0.7, row
    # The paper's order: select on all cases, then cross-validate -> optimistic on pure noise.
    leaky = FeatureSelector().fit(table.values, y).selected_
    folds = StratifiedKFold(5, shuffle=True, random_state=0)
    proba = cross_val_predict(LogisticRegression(max_iter=1000), table.values[:, leaky], y,
                              cv=folds, method="predict_proba")[:, 1]
    assert roc_auc(y, proba) > 0.75


def test_selector_only_ever_sees_training_fold_rows(monkeypatch):
    table = two_modality_table()
    seen: list[np.ndarray] = []
    original = FeatureSelector.fit
    first_column = {}  # identify rows of any column subset by their (unique) values
    for j in range(len(table.columns)):
        for i, value in enumerate(table.values[:, j]):
            first_column[value] = i

    def spy(self, X, y):
        seen.append(np.array([first_column[v] for v in np.asarray(X)[:, 0]]))
        return original(self, X, y)

    monkeypatch.setattr(selection.FeatureSelector, "fit", spy)
    result = select_models(table, "label", classifiers=("logistic_regression",), n_boot=0,
                           refit=False)
    assert {r.strategy for r in result.rows} >= {"early_fusion", "late_ensemble"}
    assert len(seen) > len(result.folds)
    for rows in seen:
        assert any(set(rows) <= set(train) and not set(rows) & set(test)
                   for train, test in result.folds), "a selector saw held-out cases"


# --- (c) fusion --------------------------------------------------------------------------------

def test_two_modalities_give_fusion_rows():
    table = two_modality_table()
    result = select_models(table, "label", classifiers=("logistic_regression",), n_boot=50)
    rows = {(r.strategy, r.modality): r for r in result.rows}
    assert set(rows) == {("single_modality", "us"), ("single_modality", "mri"),
                         ("early_fusion", "us+mri"), ("late_ensemble", "us+mri"),
                         ("late_stacking", "us+mri")}
    weights = rows["late_ensemble", "us+mri"].weights
    assert set(weights) == {"us", "mri"} and math.isclose(sum(weights.values()), 1.0)
    for key in (("early_fusion", "us+mri"), ("late_stacking", "us+mri")):
        assert rows[key].auc > max(rows["single_modality", "us"].auc,
                                   rows["single_modality", "mri"].auc) - 0.05
    assert result.best.auc == max(r.auc for r in result.rows)


def test_late_fusion_models_directly():
    table = two_modality_table(n=40)
    y = labels(table, "label")
    modalities = {m: [c for c in table.columns if modality_of(c) == m] for m in ("us", "mri")}
    ensemble = LateEnsemble(modalities, "logistic_regression").fit(table.values, y)
    assert ensemble.weights_.shape == (2,) and math.isclose(ensemble.weights_.sum(), 1.0)
    assert np.all((ensemble.accuracies_ >= 0) & (ensemble.accuracies_ <= 1))
    stacking = LateStacking(modalities, "knn").fit(table.values, y)
    p = stacking.predict_proba(table.values)
    assert p.shape == (40,) and np.all((p >= 0) & (p <= 1))
    assert roc_auc(y, p) > 0.8


@pytest.mark.parametrize("name", list(CLASSIFIERS))
def test_every_classifier_gives_probabilities_on_tiny_data(name):
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(8, 3)), np.array([0, 1] * 4)
    model = make_classifier(name, seed=0, n_train=3).fit(X[:3], np.array([0, 1, 0]))
    p = model.predict_proba(X)
    assert p.shape == (8, 2) and np.allclose(p.sum(axis=1), 1)
    assert make_classifier(name, 0).fit(X, y).predict_proba(X).shape == (8, 2)


def test_missing_package_is_named(monkeypatch):
    monkeypatch.setitem(sys.modules, "lightgbm", None)  # makes `import lightgbm` fail
    with pytest.raises(BreastAIError, match="pip install lightgbm"):
        make_classifier("lightgbm", 0)
    with pytest.raises(BreastAIError, match="unknown classifier"):
        make_classifier("boosted_magic", 0)


# --- (d) saved model ---------------------------------------------------------------------------

def test_save_load_predict_round_trip(tmp_path):
    table = two_modality_table()
    result = select_models(table, "label", classifiers=("logistic_regression",), n_boot=50)
    best_dir = save_model(result, tmp_path / "out")
    for name in ("results.csv", "results.json", "predictions.csv",
                 "roc_single_modality.png", "roc_late_stacking.png"):
        assert (tmp_path / "out" / name).is_file()
    info = json.loads((best_dir / "model.json").read_text())
    assert info["strategy"] == result.best.strategy
    assert info["training_cases"] == 60 and "Research use only" in info["note"]
    assert set(info["selected_features"]) <= set(info["feature_columns"])
    assert "scikit-learn" in info["versions"]
    loaded = load_model(tmp_path / "out")  # the folder above best_model works too
    row = dict(zip(table.columns, table.values[5], strict=True))
    p = predict(loaded, row)
    assert 0 <= p <= 1
    assert math.isclose(p, float(result.best_model.predict_proba(table.values[5:6])[0]))
    used = info["selected_features"]
    fewer = {k: v for k, v in row.items() if k != used[0]}
    if len(used) >= 3:  # one missing of three or more: imputed
        assert 0 <= predict(loaded, fewer) <= 1
    with pytest.raises(BreastAIError, match="missing"):
        predict(loaded, {})
    with pytest.raises(BreastAIError, match="not a number"):
        predict(loaded, {**row, used[0]: "large"})
    (best_dir / "model.pkl").write_bytes(b"tampered")
    with pytest.raises(BreastAIError, match="checksum"):
        load_model(best_dir)


# --- (e) command line --------------------------------------------------------------------------

def test_cli_end_to_end(tmp_path):
    table = two_modality_table(n=40)
    features = write_features_csv(table, tmp_path / "features.csv")
    out = tmp_path / "model"
    args = ["--features", str(features), "--label", "label", "--out", str(out), "--folds", "3",
            "--classifier", "logistic_regression", "--classifier", "knn", "--n-boot", "50"]
    result = CliRunner().invoke(radiomics_model, args)
    assert result.exit_code == 0, result.output
    assert "best:" in result.output and str(out / "best_model") in result.output
    for name in ("results.csv", "roc_single_modality.png", "roc_early_fusion.png",
                 "best_model/model.json", "best_model/model.pkl"):
        assert (out / name).is_file(), name
    with (out / "results.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 2 * 5
    aucs = [float(r["auc"]) for r in rows]
    assert aucs == sorted(aucs, reverse=True)

    bad = CliRunner().invoke(radiomics_model, [*args[:2], "--label", "nope", *args[4:6]])
    assert bad.exit_code != 0
    assert isinstance(bad.exception, BreastAIError)
    assert "nope" in str(bad.exception) and "\n" not in str(bad.exception)


def test_cli_split_mode(tmp_path):
    table, _ = signal_table(n=40, noise=5)
    features = write_features_csv(table, tmp_path / "f.csv")
    result = CliRunner().invoke(radiomics_model, [
        "--features", str(features), "--label", "malignant", "--out", str(tmp_path / "o"),
        "--test-size", "0.3", "--classifier", "logistic_regression", "--n-boot", "20"])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "o" / "results.json").read_text())
    assert summary["settings"]["test_size"] == 0.3
    assert summary["rows"][0]["n_cases"] == 12


# --- (f) table and labels ----------------------------------------------------------------------

def test_read_write_table_and_modalities(tmp_path):
    path = tmp_path / "f.csv"
    path.write_text(
        "case_id,mri:sub1_lesion_glcm_Contrast,us:image_shell_wavelet-LLH-glszm_Zone,"
        "pre_lesion_firstorder_Mean,diagnostics_Versions_PyRadiomics,outcome,note\n"
        "a,1.5,,3,3.1.0,Malignant,x\n"
        "b,NaN,2,inf,3.1.0,benign,y\n")
    table = read_features_csv(path, label="outcome")
    assert table.columns == ["mri:sub1_lesion_glcm_Contrast",
                             "us:image_shell_wavelet-LLH-glszm_Zone",
                             "pre_lesion_firstorder_Mean"]
    assert set(table.extra) == {"diagnostics_Versions_PyRadiomics", "outcome", "note"}
    assert np.isnan(table.values[1, 0]) and np.isnan(table.values[0, 1])
    assert np.isnan(table.values[1, 2])  # inf is not a usable value
    assert [modality_of(c) for c in table.columns] == ["mri", "us", "all"]
    again = read_features_csv(write_features_csv(table, tmp_path / "g.csv"))
    assert again.columns == table.columns and again.case_ids == ["a", "b"]
    np.testing.assert_array_equal(again.values, table.values)
    with pytest.raises(BreastAIError, match="no column"):
        read_features_csv(path, label="missing")
    (tmp_path / "bad.csv").write_text("id,x\n1,2\n")
    with pytest.raises(BreastAIError, match="case_id"):
        read_features_csv(tmp_path / "bad.csv")


@pytest.mark.parametrize(("cells", "expected"), [
    (["0", "1", "1.0"], [0, 1, 1]),
    (["True", "false", "TRUE"], [1, 0, 1]),
    (["benign", "Malignant", " malignant "], [0, 1, 1]),
    (["negative", "positive", "Positive"], [0, 1, 1]),
])
def test_labels_mapping(cells, expected):
    table = FeatureTable(["a", "b", "c"], [], np.zeros((3, 0)), {"y": cells})
    np.testing.assert_array_equal(labels(table, "y"), expected)


@pytest.mark.parametrize("bad", ["2", "", "maybe"])
def test_labels_errors(bad):
    table = FeatureTable(["a", "b"], [], np.zeros((2, 0)), {"y": ["0", bad]})
    with pytest.raises(BreastAIError, match="not binary"):
        labels(table, "y")
    with pytest.raises(BreastAIError, match="no label column"):
        labels(table, "z")


def test_select_models_user_errors():
    table, _ = signal_table(n=12, noise=3)
    with pytest.raises(BreastAIError, match="unknown classifier"):
        select_models(table, "malignant", classifiers=("nope",))
    with pytest.raises(BreastAIError, match="--folds"):
        select_models(table, "malignant", cv_folds=7, classifiers=("knn",))
    one_class = FeatureTable(table.case_ids, table.columns, table.values,
                             {"malignant": ["benign"] * 12})
    with pytest.raises(BreastAIError, match="one class"):
        select_models(one_class, "malignant", classifiers=("knn",))
    assert modelling.STRATEGIES[0] == "single_modality"
