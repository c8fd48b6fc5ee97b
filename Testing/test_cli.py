"""The `breast-ai` command line: info, maps, demo, and one-line user errors with exit status 2."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import SimpleITK as sitk

from BreastAIAssistantLib.cli.common import parse_floats
from BreastAIAssistantLib.cli.main import main

from conftest import enhancing_phases, make_image

HOT_ZYX = (2, 3, 4)


@pytest.fixture
def folder_study(tmp_path):
    folder = tmp_path / "study"
    folder.mkdir()
    names = []
    for k, arr in enumerate(enhancing_phases(n_phases=4, hot_zyx=HOT_ZYX)):
        names.append(f"p{k}.nii.gz")
        sitk.WriteImage(make_image(arr), str(folder / names[-1]))
    (folder / "study.json").write_text(json.dumps({"phases": names, "times_s": [0, 90, 180, 270]}))
    return folder


@pytest.fixture
def nifti4d_study(tmp_path):
    images = [make_image(a) for a in enhancing_phases(n_phases=4, hot_zyx=HOT_ZYX)]
    path = tmp_path / "dce.nii.gz"
    sitk.WriteImage(sitk.JoinSeries(images, 0.0, 90.0), str(path))
    return path


def run_cli(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_info_table_and_json(capsys, folder_study):
    code, out, _ = run_cli(capsys, "info", folder_study)
    assert code == 0
    assert "4 (0 = pre-contrast)" in out and "0, 90, 180, 270 s" in out
    assert "7 x 6 x 5 voxels" in out and "(oblique)" in out
    code, out, _ = run_cli(capsys, "info", folder_study, "--json", "--times", "0,60,120,180")
    summary = json.loads(out)
    assert code == 0 and summary["times_s"] == [0, 60, 120, 180]


@pytest.mark.parametrize("study_fixture", ["folder_study", "nifti4d_study"])
def test_maps_keep_physical_positions(capsys, tmp_path, request, study_fixture):
    """The enhancing voxel must sit at the same LPS point in every written map."""
    study = request.getfixturevalue(study_fixture)
    out = tmp_path / "maps"
    code, stdout, _ = run_cli(capsys, "maps", study, "--out", out, "--no-progress")
    assert code == 0, stdout
    ref = make_image(enhancing_phases()[0])
    expected_lps = np.asarray(ref.TransformIndexToPhysicalPoint(HOT_ZYX[::-1]))
    for name in ("sub_1", "pe", "ser", "peak_enhancement", "curve_type"):
        image = sitk.ReadImage(str(out / f"{name}.nii.gz"))
        np.testing.assert_allclose(image.GetOrigin(), ref.GetOrigin(), atol=1e-4)
        np.testing.assert_allclose(image.GetDirection(), ref.GetDirection(), atol=1e-5)
        np.testing.assert_allclose(image.GetSpacing(), ref.GetSpacing(), atol=1e-5)
        array = sitk.GetArrayFromImage(image)
        hot = np.unravel_index(np.argmax(array), array.shape)
        lps = np.asarray(image.TransformIndexToPhysicalPoint(tuple(int(i) for i in hot[::-1])))
        np.testing.assert_allclose(lps, expected_lps, atol=1e-3)
    # by hand: S0 = 100, early = 400 (90 s), late = 350 -> PE 300 %, SER 300/250 = 1.2, washout
    pe = sitk.GetArrayFromImage(sitk.ReadImage(str(out / "pe.nii.gz")))
    ser = sitk.GetArrayFromImage(sitk.ReadImage(str(out / "ser.nii.gz")))
    curve = sitk.GetArrayFromImage(sitk.ReadImage(str(out / "curve_type.nii.gz")))
    assert pe[HOT_ZYX] == pytest.approx(300.0) and ser[HOT_ZYX] == pytest.approx(1.2)
    assert curve[HOT_ZYX] == 3
    record = json.loads((out / "run.json").read_text())
    assert record["command"] == "maps" and record["study"]["n_phases"] == 4
    assert record["dce"]["phases"]["early"] == 1 and record["outputs"]["pe"] == "pe.nii.gz"
    assert "numpy" in record["environment"]["packages"]


def test_maps_nrrd_and_explicit_phases(capsys, tmp_path, folder_study):
    out = tmp_path / "m"
    code, stdout, _ = run_cli(
        capsys,
        "maps",
        folder_study,
        "--out",
        out,
        "--format",
        "nrrd",
        "--early",
        "2",
        "--late",
        "3",
        "--no-progress",
    )
    assert code == 0
    assert (out / "ser.nrrd").is_file() and "early phase 2, late phase 3" in stdout


def test_demo_runs_the_main_job_on_a_phantom_case(capsys, tmp_path):
    code, stdout_demo, _ = run_cli(capsys, "demo", "--out", tmp_path / "d", "--size", "small",
                                   "--no-progress")  # fmt: skip
    assert code == 0, stdout_demo
    assert "truth:" in stdout_demo and "research demo" in stdout_demo
    code, stdout, _ = run_cli(capsys, "info", tmp_path / "d" / "example_case", "--json")
    assert json.loads(stdout)["n_phases"] == 6
    results = tmp_path / "d" / "results"
    for name in ("tumor_mask.nii.gz", "breast_mask.nii.gz", "tumor_probability.nii.gz",
                 "segmentation.seg.nrrd", "report.json", "report.html", "run.json",
                 "maps/pe.nii.gz"):  # fmt: skip
        assert (results / name).is_file(), name
    report = json.loads((results / "report.json").read_text())
    assert {m["id"] for m in report["models"]} == {"breast-unet-demo", "tumour-st-demo",
                                                   "mrsm-demo", "receptors-demo", "dmif-demo"}
    assert all(m["research_demo"] for m in report["models"])
    # the small phantom's voxels (about 4 mm in-plane) are far coarser than the tumour model's grid
    assert [(c["code"], c["model"]) for c in report["cautions"]] == [
        ("coarse-voxels", "tumour-st-demo")]
    assert "caution: the study's voxels" in stdout_demo
    assert 'id="cautions"' in (results / "report.html").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["info", "{tmp}"], "cannot recognise"),
        (["info", "{study}", "--times", "0,90"], "got 2 acquisition time(s) for 4 phases"),
        (["info", "{study}", "--input-format", "dicom"], "DICOM"),
        (["maps", "{study}", "--out", "{study}/maps"], "inside the input study"),
        (["maps", "{study}", "--out", "{tmp}/o", "--early", "9"], "early"),
        (["run", "{study}", "--out", "{tmp}/r", "--tumour-model", "nope"], "unknown model 'nope'"),
        (["run", "{study}", "--out", "{tmp}/r", "--device", "cuda"], "CUDA"),
        # refused before any data is read (an empty --data folder would be an error too)
        (["train", "seg", "--data", "{tmp}", "--out", "{tmp}/b", "--device", "cuda"], "CUDA"),
        # bundles named on the command line: before the data (the empty folder) are read
        (["train", "seg", "--data", "{tmp}", "--out", "{tmp}/b", "--init", "nope"],
         "unknown model 'nope'"),
        (["train", "seg", "--data", "{tmp}", "--out", "{tmp}/b", "--breast-model", "nope"],
         "unknown model 'nope'"),
        (["train", "cls", "--task", "mrsm", "--data", "{tmp}", "--out", "{tmp}/b",
          "--init", "nope"], "unknown model 'nope'"),
        # a bundle of another network: refused now, not as a shape mismatch after the data
        (["train", "seg", "--data", "{tmp}", "--out", "{tmp}/b", "--init", "breast-unet-demo"],
         "cannot continue training from 'breast-unet-demo' (UNet3d): it is not the"),
        (["train", "cls", "--task", "dmif", "--data", "{tmp}", "--out", "{tmp}/b",
          "--init", "mrsm-demo"], "cannot continue training from 'mrsm-demo'"),
    ],
)
def test_user_errors_are_one_line_with_status_2(capsys, tmp_path, folder_study, args, message):
    (tmp_path / "empty").mkdir()
    args = [a.format(tmp=tmp_path / "empty", study=folder_study) for a in args]
    code, _, err = run_cli(capsys, *args)
    assert code == 2
    assert err.startswith("breast-ai: error: ") and err.count("\n") == 1
    assert message in err
    assert not (folder_study / "maps").exists()


@pytest.mark.parametrize(
    "args", [["info", "/no/such/path"], ["maps", "."], ["info", ".", "--times", "a,b"]]
)
def test_usage_errors_exit_2(capsys, args):
    code, _, err = run_cli(capsys, *args)
    assert code == 2 and "Error" in err


def test_installed_entry_point_has_no_traceback_for_user_errors(tmp_path):
    exe = [sys.executable, "-m", "BreastAIAssistantLib.cli.main"]
    result = subprocess.run([*exe, "info", str(tmp_path)], capture_output=True, text=True)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and "cannot recognise" in result.stderr
    help_text = subprocess.run([*exe, "maps", "--help"], capture_output=True, text=True)
    assert help_text.returncode == 0 and "--preset" in help_text.stdout


@pytest.mark.parametrize("multi_temporal", [False, True])
def test_dicom_study_keeps_physical_positions_through_maps(capsys, tmp_path, multi_temporal):
    """DICOM (oblique, off-origin) -> maps -> NIfTI: the enhancing voxel stays at its LPS point."""
    from dicom_fixtures import Geometry, StudyIds, oblique_direction, write_dce

    geometry = Geometry(
        origin=(-40.5, 17.0, 63.25), spacing=(0.7, 0.8, 2.0), direction=oblique_direction(25.0)
    )
    phases = [a.astype(np.uint16) for a in enhancing_phases(n_phases=4, hot_zyx=HOT_ZYX)]
    write_dce(
        tmp_path / "dicom",
        phases,
        geometry,
        [0, 90, 180, 270],
        ids=StudyIds(),
        multi_temporal=multi_temporal,
    )
    code, stdout, _ = run_cli(capsys, "info", tmp_path / "dicom", "--json")
    assert code == 0 and json.loads(stdout)["times_s"] == [0, 90, 180, 270]
    code, _, _ = run_cli(
        capsys, "maps", tmp_path / "dicom", "--out", tmp_path / "m", "--no-progress"
    )
    assert code == 0
    pe = sitk.ReadImage(str(tmp_path / "m" / "pe.nii.gz"))
    array = sitk.GetArrayFromImage(pe)
    hot = np.unravel_index(np.argmax(array), array.shape)
    lps = pe.TransformIndexToPhysicalPoint(tuple(int(i) for i in hot[::-1]))
    expected = np.asarray(geometry.origin) + geometry.axes @ (
        np.asarray(HOT_ZYX[::-1]) * np.asarray(geometry.spacing)
    )
    np.testing.assert_allclose(lps, expected, atol=1e-3)
    assert array[hot] == pytest.approx(300.0)


@pytest.mark.parametrize(
    ("text", "skip_empty", "expected"),
    [("1, 1.25", False, (1.0, 1.25)), ("0,90,", True, (0.0, 90.0)), ("0,90,", False, None),
     ("1,nan", False, None), ("inf", False, None), ("a,b", False, None), ("-2.5", False, (-2.5,))],
)  # fmt: skip
def test_comma_separated_numbers(text, skip_empty, expected):
    assert parse_floats(text, skip_empty=skip_empty) == expected
