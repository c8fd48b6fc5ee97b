"""A radiomics model from a phantom cohort, applied to a new study: settings recovered from
the model's columns, ``run --radiomics-model`` puts the probability into report.json."""

from __future__ import annotations

import json

import numpy as np
import pytest
import SimpleITK as sitk

from BreastAIAssistantLib.cli.main import main
from BreastAIAssistantLib.phantom.generator import generate_case
from BreastAIAssistantLib.radiomics.apply import (
    LESION_FEATURES_CSV,
    RadiomicsApplier,
    read_lesion_features,
    settings_for,
)
from BreastAIAssistantLib.radiomics.settings import RadiomicsSettings

pytestmark = pytest.mark.slow


def test_settings_for_columns():
    columns = ["dce:sub1_lesion_glcm_Contrast", "dce:pe_shell_firstorder_Mean",
               "dce:mask_lesion_shape_Sphericity", "dce:sub2_lesion_log-sigma-2-0-mm-3D-gldm_X",
               "mip:image_lesion_firstorder_Mean", "dce:sub1_lesion_wavelet-LLH-glrlm_Y"]
    settings, prefix = settings_for(columns, RadiomicsSettings())
    assert prefix == "dce"
    assert settings.images == ["sub1", "pe", "sub2"]
    assert settings.regions == ["lesion", "shell"]
    assert settings.families == ["firstorder", "shape", "glcm", "glrlm", "gldm"]
    assert settings.log_sigma_mm == [2.0] and settings.wavelet is True


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    from BreastAIAssistantLib.radiomics.phantom_cohort import write_phantom_cohort

    root = tmp_path_factory.mktemp("radiomics")
    cohort = write_phantom_cohort(range(60, 72), root / "data", size="small")
    params = root / "params.json"
    params.write_text(json.dumps({"images": ["sub1", "pe"],
                                  "families": ["firstorder", "shape", "glcm"]}))
    features = root / "features.csv"
    assert main(["features", "--cohort", str(cohort), "--out", str(features), "--params",
                 str(params), "--no-progress", "--jobs", "2"]) == 0
    assert (root / "features.csv.settings.json").is_file()
    out = root / "model"
    # all modalities: fusion strategies are compared
    assert main(["radiomics-model", "--features", str(features), "--label", "malignant",
                 "--out", str(out), "--folds", "3", "--classifier", "logistic_regression",
                 "--classifier", "random_forest", "--n-boot", "50"]) == 0
    # the DCE modality only: what a study can provide to 'run --radiomics-model'
    dce = root / "model-dce"
    assert main(["radiomics-model", "--features", str(features), "--label", "malignant",
                 "--out", str(dce), "--folds", "3", "--classifier", "logistic_regression",
                 "--n-boot", "0", "--modality", "dce"]) == 0
    assert main(["radiomics-model", "--features", str(features), "--label", "malignant",
                 "--out", str(root / "bad"), "--modality", "us"]) == 2
    return out


def test_cohort_model_outputs(model_dir):
    results = (model_dir / "results.csv").read_text()
    for strategy in ("single_modality", "early_fusion", "late_ensemble", "late_stacking"):
        assert strategy in results
    assert (model_dir / "best_model" / "radiomics_settings.json").is_file()
    assert list(model_dir.glob("roc_*.png"))


def test_apply_to_a_new_study_and_run(model_dir, tmp_path):
    model_dir = model_dir.parent / "model-dce"
    case = generate_case(99, size="small", n_phases=4, lesions=("malignant",))
    applier = RadiomicsApplier(model_dir)
    assert all(c.startswith("dce:") for c in applier.model.info["feature_columns"])
    labels = sitk.GetArrayFromImage(case.tumour_labels)
    lesion = sitk.GetImageFromArray((labels == 1).astype(np.uint8))
    lesion.CopyInformation(case.tumour_labels)
    result = applier.predict(case.study, lesion, case.breast_mask)
    assert 0.0 <= result["radiomics_probability"] <= 1.0
    assert result["radiomics_model"]["label"] == "malignant"
    selected = applier.model.info.get("selected_features") or applier.model.info["feature_columns"]
    computable = [c for c in selected if c.startswith("dce:")]
    assert computable and set(computable) <= set(result["features"])

    from BreastAIAssistantLib.pipeline import AnalysisSettings, run_analysis

    out = tmp_path / "run"
    analysis = run_analysis(case.study, out, AnalysisSettings(
        device="cpu", classifiers=(), radiomics_model=str(model_dir), report=False))
    report = json.loads((out / "report.json").read_text())
    assert analysis.report["lesions"]
    for record in report["lesions"]:
        if record["radiomics_probability"] is None:  # a lesion too small for its features
            assert "missing" in record["radiomics_error"]
        else:
            assert 0.0 <= record["radiomics_probability"] <= 1.0
            assert record["radiomics_model"]["strategy"]
            assert "features" not in record  # they go to their own table, not report.json
    scored = [r["id"] for r in report["lesions"] if r["radiomics_probability"] is not None]
    if scored:
        table = read_lesion_features(out / LESION_FEATURES_CSV)
        assert sorted(table) == sorted(scored)
        assert set(computable) <= set(table[scored[0]])
