"""The main job end to end on a clinical-size phantom case, with the bundled demo models."""

from __future__ import annotations

import json

import numpy as np
import pytest
import SimpleITK as sitk

from BreastAIAssistantLib.inference import Cancelled
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
    assert (out / "segmentation.seg.nrrd").is_file() and (out / "report.html").is_file()
    breast = sitk.ReadImage(str(out / "breast_mask.nii.gz"))
    assert breast.GetSize() == result.maps["pe"].GetSize()


def test_cancel_stops_the_job(tmp_path):
    case = generate_case(3, size="small", n_phases=3)
    with pytest.raises(Cancelled):
        run_analysis(case.study, tmp_path, AnalysisSettings(device="cpu"), cancel=lambda: True)
    assert not (tmp_path / "run.json").exists()
