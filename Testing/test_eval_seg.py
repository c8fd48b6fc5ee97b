"""``breast-ai eval seg`` end to end on small phantom cases with the bundled demo models,
including a lesion-threshold sweep scored on the same probability maps and a paired comparison
with a second model."""

from __future__ import annotations

import json

import click
import pytest

from BreastAIAssistantLib.bundles import find_bundle
from BreastAIAssistantLib.cli.main import main
from BreastAIAssistantLib.cli.train import _threshold_sweep
from BreastAIAssistantLib.inference.postprocess import lesion_thresholds
from BreastAIAssistantLib.inference.refine import GrowthSettings, growth_settings
from BreastAIAssistantLib.train.evaluate import paired_dice

pytestmark = pytest.mark.slow


def test_eval_seg_scores_a_threshold_sweep_and_a_comparison(tmp_path, capsys):
    out = tmp_path / "eval.json"
    code = main(["eval", "seg", "--model", "tumour-st-demo", "--breast-model", "breast-unet-demo",
                 "--phantom-seeds", "3-4", "--phantom-size", "small", "--device", "cpu",
                 "--thresholds", "0.3,0.3:0.5,0.5,0.5~0.5/2/10", "--compare", "tumour-st-demo",
                 "--out", str(out)])  # fmt: skip
    assert code == 0
    saved = json.loads(out.read_text())

    def key(entry):
        return entry["threshold"], entry["seed_threshold"], entry["grow"]

    outputs = find_bundle("tumour-st-demo").manifest.outputs
    growth = growth_settings(outputs)  # 0.3.1: 0.5:0.9 and growth 0.5/2/10
    shipped = (*lesion_thresholds(outputs), None if growth is None else growth.spec())
    asked = [(0.3, None, None), (0.3, 0.5, None), (0.5, None, None), (0.5, None, "0.5/2/10")]
    entries = saved["threshold_sweep"]
    assert [key(s) for s in entries] == [shipped, *(k for k in asked if k != shipped)]  # once
    sweep = {key(s): s for s in entries}
    assert sweep[shipped]["cases_with_tumour"] == saved["cases_with_tumour"]
    assert saved["truth_lesions"] > 0 and len(saved["per_case"]) == 2
    # every component at 0.5 lies inside a 0.3-component that reaches 0.5, and a seeded
    # 0.3-component is a 0.3-component: detection is ordered.
    detected = {k[:2]: s["lesions_detected"] for k, s in sweep.items() if k[2] is None}
    assert detected[(0.5, None)] <= detected[(0.3, 0.5)] <= detected[(0.3, None)]
    sens = {k[:2]: s["cases_with_tumour"]["mean_sensitivity"] for k, s in sweep.items()
            if k[2] is None}  # fmt: skip
    assert sens[(0.5, None)] <= sens[(0.3, 0.5)] <= sens[(0.3, None)]
    # small-lesion growth adds voxels to lesions, never lesions: at least the same detections
    # and sensitivity, and no more false positives, than the plain 0.5 threshold
    grown = sweep[(0.5, None, "0.5/2/10")]
    assert grown["lesions_detected"] >= detected[(0.5, None)]
    assert grown["cases_with_tumour"]["mean_sensitivity"] >= sens[(0.5, None)]
    assert grown["false_positive_lesions"] <= sweep[(0.5, None, None)]["false_positive_lesions"]
    # the same model as its own comparison: the same scores, a zero paired difference
    compared = saved["compare"]
    assert compared["model"] == "tumour-st-demo"
    assert compared["cases_with_tumour"] == saved["cases_with_tumour"]
    assert compared["paired"] == {"n_cases": saved["cases_with_tumour"]["n_cases"],
                                  "mean_dice_difference": 0.0, "wilcoxon_p": 1.0}  # fmt: skip
    assert '"threshold_sweep"' in capsys.readouterr().out


def test_paired_dice_difference_and_wilcoxon():
    first = [{"dice": d, "truth_voxels": 10} for d in (0.5, 0.6, 0.7, 0.4, 0.55, 0.65)]
    second = [{"dice": r["dice"] + 0.2, "truth_voxels": 10} for r in first]
    first.append({"dice": 1.0, "truth_voxels": 0})  # a tumour-free case does not count
    second.append({"dice": 0.0, "truth_voxels": 0})
    paired = paired_dice(first, second)
    assert paired["n_cases"] == 6 and paired["mean_dice_difference"] == pytest.approx(0.2)
    assert paired["wilcoxon_p"] == pytest.approx(2 / 2**6)  # exact two-sided, all 6 ranks positive


@pytest.mark.parametrize(
    "text",
    ["0.5:0.3", "1.2", "0.3:", "a", "0.3:0.4:0.5", "0.5@-1", "0.5@x", "0.5@nan", "0.5@5:0",
     "0.5@5:x", "0.5@5:inf", "0.5@:0.5", "0.5~0.5/2", "0.5~1.5/2/10", "0.5~0.5/0/10",
     "0.5~0.5/2/x"],
)
def test_threshold_sweep_rejects_bad_items(text):
    with pytest.raises(click.BadParameter):
        _threshold_sweep(text)


def test_threshold_sweep_parses_plain_and_seeded_items():
    grow = GrowthSettings(0.5, 2.0, 10.0)
    assert _threshold_sweep("0.3, 0.2:0.6, 0.5@0, 0.4:0.5@7.5, 0.3:0.9@5:0.524, "
                            "0.5:0.9~0.5/2/10, 0.3@5~0.5/2/10") == [
        (0.3, None, 0.0, None, None), (0.2, 0.6, 0.0, None, None), (0.5, None, 0.0, None, None),
        (0.4, 0.5, 7.5, None, None), (0.3, 0.9, 5.0, 0.524, None), (0.5, 0.9, 0.0, None, grow),
        (0.3, None, 5.0, None, grow)]  # fmt: skip


def test_thresholds_refused_with_update_manifest(capsys):
    code = main(["eval", "seg", "--model", "tumour-st-demo", "--phantom-seeds", "3",
                 "--thresholds", "0.3", "--update-manifest"])  # fmt: skip
    assert code != 0
    assert "validation" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["eval", "cls", "--model", "mrsm-demo", "--phantom-seeds", "3", "--thresholds", "0.3"],
         "--thresholds"),
        (["train", "breast", "--phantom-seeds", "3", "--out", "x", "--lesion-dice-weight", "1"],
         "--lesion-dice-weight"),
        (["train", "breast", "--phantom-seeds", "3", "--out", "x", "--phase-truncation", "0.5"],
         "--phase-truncation"),
        (["train", "breast", "--phantom-seeds", "3", "--out", "x", "--enhancement-scale", "0.5,1"],
         "--enhancement-scale"),
        (["train", "seg", "--phantom-seeds", "3", "--out", "x", "--enhancement-scale", "1.2,0.5"],
         "--enhancement-scale"),
        (["train", "seg", "--phantom-seeds", "3", "--out", "x", "--enhancement-scale", "half"],
         "--enhancement-scale"),
        (["train", "breast", "--phantom-seeds", "3", "--out", "x", "--foreground-fraction", "0.4"],
         "--foreground-fraction"),
        (["eval", "breast", "--model", "breast-unet-demo", "--phantom-seeds", "3", "--compare",
          "breast-unet-demo"], "--compare"),
        (["train", "cls", "--task", "mrsm", "--phantom-seeds", "3", "--out", "x", "--spacing",
          "1,1,1"], "--spacing"),
        (["train", "seg", "--phantom-seeds", "3", "--out", "x", "--spacing", "1,1"], "--spacing"),
        (["eval", "cls", "--model", "mrsm-demo", "--phantom-seeds", "3", "--tumour-scales", "1"],
         "--tumour-scales"),
        (["eval", "seg", "--model", "tumour-st-demo", "--phantom-seeds", "3", "--tumour-scales",
          "1,0"], "--tumour-scales"),
        (["run", "nowhere", "--out", "x", "--tumour-scales", "1,x"], "--tumour-scales"),
        (["eval", "seg", "--model", "tumour-st-demo", "--phantom-seeds", "3", "--tumour-scales",
          "1,1.25", "--update-manifest"], "--tumour-scales"),
        (["train", "seg", "--phantom-seeds", "3", "--out", "x", "--spacing", "1,0,1"], "--spacing"),
        (["train", "seg", "--phantom-seeds", "3", "--out", "x", "--enhancement-scale", "0.5,inf"],
         "--enhancement-scale"),
        (["train", "seg", "--phantom-seeds", "3", "--out", "x", "--spacing", "1,1,nan"],
         "--spacing"),
        (["train", "seg", "--phantom-seeds", "3", "--out", "x", "--model-id", "My Model"],
         "--model-id"),
        (["train", "cls", "--task", "mrsm", "--phantom-seeds", "3", "--out", "x",
          "--model-version", "0.4"], "--model-version"),
    ],
)  # fmt: skip
def test_seg_only_options_are_refused_elsewhere(args, option, capsys):
    assert main(args) != 0
    assert option in capsys.readouterr().err


def test_train_seg_on_another_grid_writes_a_bundle_that_runs_there(tmp_path, capsys):
    """``--spacing``: the samples, the manifest and hence inference all use the new grid."""
    from BreastAIAssistantLib.bundles import read_bundle
    from BreastAIAssistantLib.inference.predictor import TumourPredictor
    from BreastAIAssistantLib.inference.preprocess import model_grid
    from BreastAIAssistantLib.phantom import generate_case

    out = tmp_path / "bundle"
    code = main(["train", "seg", "--phantom-seeds", "3", "--phantom-size", "small", "--steps",
                 "2", "--device", "cpu", "--spacing", "2,2,2.5", "--out", str(out)])  # fmt: skip
    assert code == 0
    bundle = read_bundle(out)
    assert bundle.manifest.spacing_mm == (2.0, 2.0, 2.5)
    assert bundle.manifest.data["training"]["settings"]["spacing_mm"] == [2.0, 2.0, 2.5]
    assert bundle.manifest.data["training"]["device"] == "cpu"
    case = generate_case(4, size="small", n_phases=3)
    prob, info = TumourPredictor(bundle, device="cpu").predict(case.study, case.breast_mask)
    assert prob.GetSize() == case.study.reference.GetSize()
    grid = model_grid(case.study.reference, (2.0, 2.0, 2.5))
    assert info.model_grid_size_xyz == grid.GetSize()

    # --init without --spacing continues on the --init bundle's grid, and the new manifest
    # names the bundle it continued (id, version, weights sha256) above that bundle's record.
    more = tmp_path / "continued"
    code = main(["train", "seg", "--phantom-seeds", "5", "--phantom-size", "small", "--steps",
                 "1", "--device", "cpu", "--init", str(out), "--out", str(more),
                 "--model-id", "tumour-st-mine", "--model-version", "0.3.1-rc.1"])  # fmt: skip
    assert code == 0
    continued = read_bundle(more).manifest
    assert (continued.id, continued.version) == ("tumour-st-mine", "0.3.1-rc.1")
    assert bundle.manifest.id == "tumour-st-demo"  # without --model-id: the recipe's
    assert continued.spacing_mm == (2.0, 2.0, 2.5)
    previous = continued.data["training"]["continued_from"]
    assert previous["bundle"] == {"id": "tumour-st-demo", "version": bundle.manifest.version,
                                  "sha256": bundle.manifest.sha256}  # fmt: skip
    assert previous["data"] == bundle.manifest.data["training"]["data"]
