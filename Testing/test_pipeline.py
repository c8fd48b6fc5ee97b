"""The main job end to end on a clinical-size phantom case, with the bundled demo models."""

from __future__ import annotations

import json

import numpy as np
import pytest
import SimpleITK as sitk

from BreastAIAssistantLib.bundles import find_bundle
from BreastAIAssistantLib.inference import Cancelled
from BreastAIAssistantLib.inference.postprocess import lesion_grouping, lesion_thresholds
from BreastAIAssistantLib.phantom import generate_case
from BreastAIAssistantLib.pipeline import AnalysisSettings, run_analysis

#: A fixed clinical-size case with a malignant (washout) and a benign (persistent) mass in
#: opposite breasts (the case of docs/phantom_case.png).
SEED = 27


@pytest.fixture(scope="module")
def analysed(tmp_path_factory):
    case = generate_case(SEED, size="clinical", n_phases=6)
    out = tmp_path_factory.mktemp("run")
    stages = []
    result = run_analysis(case.study, out, AnalysisSettings(device="cpu"),
                          progress=lambda stage, f: stages.append(f))  # fmt: skip
    return case, result, out, stages


@pytest.mark.slow
def test_lesions_match_the_truth(analysed):
    case, result, _, _ = analysed
    truth = sitk.GetArrayFromImage(case.tumour_labels)
    found = sitk.GetArrayFromImage(result.lesion_labels)
    by_id = {lesion["id"]: lesion for lesion in result.report["lesions"]}
    for lesion in case.truth["lesions"]:
        hits = np.bincount(found[truth == lesion["label"]], minlength=2)
        hits[0] = 0
        assert hits.max() > 0, f"truth lesion {lesion['label']} ({lesion['class']}) missed"
        match = by_id[int(hits.argmax())]
        assert match["t_category"] == lesion["t_category"]
        assert match["curve_type"] == lesion["curve_type"]
    assert result.report["t_stage"].startswith(case.truth["lesions"][0]["t_category"][:2])


@pytest.mark.slow
def test_outputs_and_progress(analysed):
    _, result, out, stages = analysed
    assert stages == sorted(stages) and stages[-1] == 1.0
    report = json.loads((out / "report.json").read_text())
    run = json.loads((out / "run.json").read_text())
    assert report["lesions"] and all("mean_curve" in les for les in report["lesions"])
    assert run["outputs"]["tumor_mask"] == "tumor_mask.nii.gz"
    grouping = report["grouping"]
    outputs = find_bundle("tumour-st-demo").manifest.outputs
    assert run["arguments"]["settings"]["lesion_gap_mm"] is None  # the manifest's grouping
    assert (grouping["gap_mm"], grouping["merge_below_ml"]) == lesion_grouping(outputs)
    assert (grouping["threshold"], grouping["seed_threshold"]) == lesion_thresholds(outputs)
    assert grouping["min_volume_ml"] == 0.02
    assert report["cautions"] == []  # clinical voxels: within what the models were built for
    assert (out / "segmentation.seg.nrrd").is_file() and (out / "report.html").is_file()
    breast = sitk.ReadImage(str(out / "breast_mask.nii.gz"))
    assert breast.GetSize() == result.maps["pe"].GetSize()


def test_cancel_stops_the_job(tmp_path):
    case = generate_case(3, size="small", n_phases=3)
    with pytest.raises(Cancelled):
        run_analysis(case.study, tmp_path, AnalysisSettings(device="cpu"), cancel=lambda: True)
    assert not (tmp_path / "run.json").exists()


@pytest.mark.slow
def test_classifier_outputs(analysed):
    case, _result, out, _ = analysed
    report = json.loads((out / "report.json").read_text())
    reference = case.study.reference
    for lesion in report["lesions"]:
        for key in ("malignancy_probability", "dmif_malignancy_probability", "er", "pr", "her2"):
            assert 0.0 <= lesion[key] <= 1.0
        assert 0.0 <= lesion["ki67"] <= 100.0
        assert lesion["subtype"] in {"luminal_a", "luminal_b_her2_negative",
                                     "luminal_b_her2_positive", "her2_enriched",
                                     "triple_negative"}
        maps = lesion["gradcam"]
        assert set(maps) == {"mrsm-demo", "receptors-demo", "dmif-demo"}
        mrsm = sitk.ReadImage(str(out / maps["mrsm-demo"]["path"]))
        assert mrsm.GetDimension() == 4 and mrsm.GetSize()[3] == case.study.n_phases
        assert maps["mrsm-demo"]["path"] == f"gradcam_mrsm-demo_lesion{lesion['id']}.nii.gz"
        dmif = sitk.ReadImage(str(out / maps["dmif-demo"]["path"]))
        assert dmif.GetSpacing() == pytest.approx(reference.GetSpacing())
        # the map's origin lies on the study's voxel lattice
        index = reference.TransformPhysicalPointToContinuousIndex(dmif.GetOrigin())
        assert np.allclose(index, np.round(index), atol=1e-4)
        heat = sitk.GetArrayFromImage(dmif)
        assert heat.max() == pytest.approx(1.0, abs=0.05) and heat.std() > 0
    html = (out / "report.html").read_text()
    assert "AI predictions" in html and "Grad-CAM — mrsm-demo" in html
    assert "Grad-CAM — dmif-demo" in html
