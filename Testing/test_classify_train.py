"""Classifier training and evaluation end to end on tiny phantom cases, through the CLI:
train cls (all three tasks), eval cls with ROC and DeLong, and classify --box."""

from __future__ import annotations

import json

import numpy as np
import pytest
import SimpleITK as sitk

from BreastAIAssistantLib.bundles import read_bundle
from BreastAIAssistantLib.cli.main import main
from BreastAIAssistantLib.phantom import write_case
from BreastAIAssistantLib.phantom.generator import generate_case
from BreastAIAssistantLib.train.classifier_trainer import class_weights
from BreastAIAssistantLib.train.lesion_data import (
    classification_spec,
    lesion_samples,
    phantom_classification_cases,
)

pytestmark = pytest.mark.slow


def test_classification_spec_draws_several_lesions():
    kinds = [classification_spec(s)["lesions"] for s in range(200)]
    assert all(2 <= len(k) <= 4 for k in kinds)
    share = np.mean([kind == "malignant" for k in kinds for kind in k])
    assert 0.5 < share < 0.7
    assert classification_spec(5) == classification_spec(5)


def test_lesion_samples_carry_truth_and_inputs():
    case = next(phantom_classification_cases([11], size="small"))
    samples = list(lesion_samples(case))
    truth = {les["label"]: les for les in case.truth["lesions"] if les["kind"] != "cyst"}
    assert samples and {s.label for s in samples} <= set(truth)
    for s in samples:
        record = truth[s.label]
        assert s.malignant == int(record["malignant"])
        assert s.receptors_known == bool(record["malignant"])
        z = s.inputs["mrsm"].shape[0]
        assert s.inputs["mrsm"].shape[1:3] == (2, case.study.n_phases)
        assert s.inputs["receptors"].shape[:2] == (z, 4)
        assert s.weights["mrsm"].sum() == pytest.approx(1.0)


def test_class_weights_follow_mrsm_eq2():
    w = class_weights([0, 0, 0, 1])
    assert w.tolist() == pytest.approx([0.25, 0.75])


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("cls")
    bundles = {}
    for task in ("mrsm", "receptors", "dmif"):
        out = root / task
        # receptors: its own id and version (both manifests written, before and after held out)
        identity = ["--model-id", "receptors-mine", "--model-version", "1.0.0"] * (
            task == "receptors")
        code = main(["train", "cls", "--task", task, "--phantom-seeds", "1-4", "--phantom-size",
                     "small", "--out", str(out), "--steps", "3", "--batch-size", "4",
                     "--val-seeds", "21-22", *identity])
        assert code == 0
        bundles[task] = out
    return bundles


def test_train_cls_writes_valid_bundles_with_held_out_metrics(trained):
    for task, folder in trained.items():
        bundle = read_bundle(folder)
        data = bundle.manifest.data
        assert data["research_demo"] is True
        assert data["metrics"]["dataset"].startswith("held out: synthetic phantom")
        assert "explain" in data and data["training"]["steps"] == 3
        assert not (folder / "checkpoint.pt").exists()
        records = json.loads((folder / "evaluation.json").read_text())
        assert records and all("predicted" in r for r in records)
        if task == "receptors":
            assert "ki67_mae_points" in data["metrics"]
            assert (data["id"], data["version"]) == ("receptors-mine", "1.0.0")
        else:
            assert data["metrics"]["n"] == len(records)


def test_eval_cls_roc_and_delong(trained, tmp_path, capsys):
    out = tmp_path / "eval"
    code = main(["eval", "cls", "--model", str(trained["mrsm"]), "--compare",
                 str(trained["dmif"]), "--phantom-seeds", "21-27", "--phantom-size", "small",
                 "--out", str(out), "--device", "cpu"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert {"auc", "auc_95ci", "accuracy", "sensitivity", "specificity", "precision"} <= set(report)
    assert {"z", "p", "auc_a", "auc_b"} <= set(report["compare"]["delong"])
    assert (out / "roc.png").read_bytes()[:4] == b"\x89PNG"
    saved = json.loads((out / "evaluation.json").read_text())
    assert len(saved["per_lesion"]) == report["n"]


def test_eval_receptors_reports_each_receptor(trained, capsys):
    code = main(["eval", "cls", "--model", str(trained["receptors"]), "--phantom-seeds", "21-22",
                 "--phantom-size", "small"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert {"er", "pr", "her2", "ki67_mae_points", "subtype_agreement"} <= set(report)


def test_classify_box_cli(trained, tmp_path, capsys):
    case = generate_case(31, size="small", lesions=("malignant",))
    folder = tmp_path / "case"
    write_case(case, folder)
    labels = sitk.GetArrayFromImage(case.tumour_labels)
    ref = case.study.reference
    idx = np.argwhere(labels == 1)
    corners = np.array([ref.TransformIndexToPhysicalPoint([int(v) for v in p[::-1]])
                        for p in (idx.min(0), idx.max(0))])
    box = ",".join(f"{v:.2f}" for v in [*corners.min(0), *corners.max(0)])
    out = tmp_path / "out"
    code = main(["classify", str(folder), "--box", box, "--model", str(trained["dmif"]),
                 "--out", str(out), "--device", "cpu"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert 0.0 <= report["dmif_malignancy_probability"] <= 1.0
    heat = sitk.ReadImage(str(out / report["gradcam"].split("/")[-1]))
    assert heat.GetSpacing() == pytest.approx(ref.GetSpacing())
    assert np.allclose(heat.GetDirection(), ref.GetDirection())
    assert json.loads((out / "classify.json").read_text())["model"] == "dmif-demo"
    # bad boxes are one-line user errors
    assert main(["classify", str(folder), "--box", "1,2,3", "--model",
                 str(trained["dmif"])]) == 2
    assert "six numbers" in capsys.readouterr().err
    assert main(["classify", str(folder), "--box", "1,2,3,4,5,nan", "--model",
                 str(trained["dmif"])]) == 2
    assert "six comma-separated numbers" in capsys.readouterr().err
