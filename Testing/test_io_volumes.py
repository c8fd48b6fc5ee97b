"""Volume-file readers (folder, MAMA-MIA, 4-D NIfTI), the format registry and atomic writes."""

from __future__ import annotations

import json

import numpy as np
import pytest
import SimpleITK as sitk

from BreastAIAssistantLib import OutputError, ReaderError, StudyError
from BreastAIAssistantLib.io import detect_format, load_study
from BreastAIAssistantLib.io.folder import natural_key
from BreastAIAssistantLib.io.volumes import atomic_path, write_json, write_volume

from conftest import OBLIQUE, enhancing_phases, make_image


def write_phases(folder, names, arrays=None):
    folder.mkdir(parents=True, exist_ok=True)
    arrays = arrays or enhancing_phases(n_phases=len(names))
    for name, arr in zip(names, arrays, strict=False):
        sitk.WriteImage(make_image(arr), str(folder / name))
    return arrays


def phase_means(study):
    return [float(study.phase_zyx(k).mean()) for k in range(study.n_phases)]


def test_natural_order():
    names = ["p10.nii", "p2.nii", "p1.nii", "P3.nii"]
    assert sorted(names, key=natural_key) == ["p1.nii", "p2.nii", "P3.nii", "p10.nii"]


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz", ".nrrd", ".mha"])
def test_folder_in_natural_order(tmp_path, suffix):
    names = [f"phase{k}{suffix}" for k in (0, 1, 2, 10)]
    arrays = enhancing_phases(n_phases=4)
    arrays[3] = arrays[3] + 7.0  # "phase10" must come last
    write_phases(tmp_path / "s", names, arrays)
    assert detect_format(tmp_path / "s") == "folder"
    study = load_study(tmp_path / "s")
    assert study.n_phases == 4 and study.times_s is None
    assert phase_means(study) == pytest.approx([a.mean() for a in arrays], rel=1e-6)
    assert study.metadata["phase_files"][-1] == f"phase10{suffix}"


def test_folder_study_json_sets_order_and_times(tmp_path):
    folder = tmp_path / "s"
    arrays = write_phases(folder, ["c.nii.gz", "a.nii.gz", "b.nii.gz"])
    (folder / "study.json").write_text(
        json.dumps({"phases": ["c.nii.gz", "a.nii.gz", "b.nii.gz"], "times_s": [10, 100, 190]})
    )
    study = load_study(folder)
    assert study.times_s == (0.0, 90.0, 180.0)
    assert phase_means(study) == pytest.approx([a.mean() for a in arrays], rel=1e-6)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "cannot parse"),
        (json.dumps({"phases": "a.nii"}), "must be a list of file names"),
        (json.dumps({"phases": ["a.nii", "zz.nii"]}), "do not exist: zz.nii"),
        (json.dumps({"times_s": ["0", "90"]}), "list of numbers"),
    ],
)
def test_folder_bad_study_json(tmp_path, content, message):
    write_phases(tmp_path / "s", ["a.nii", "b.nii"])
    (tmp_path / "s" / "study.json").write_text(content)
    with pytest.raises(ReaderError, match=message):
        load_study(tmp_path / "s")


def test_folder_with_one_phase(tmp_path):
    write_phases(tmp_path / "s", ["only.nii"])
    (tmp_path / "s" / "study.json").write_text("{}")
    with pytest.raises(StudyError, match="at least 2 phases"):
        load_study(tmp_path / "s")


def test_unreadable_volume_file(tmp_path):
    folder = tmp_path / "s"
    write_phases(folder, ["a.nii"])
    (folder / "b.nii").write_bytes(b"this is not a nifti file")
    with pytest.raises(ReaderError, match=r"cannot read .*b\.nii"):
        load_study(folder)


@pytest.mark.parametrize("n_phases", [2, 3, 6])
def test_mama_mia_case(tmp_path, n_phases):
    case = tmp_path / "duke_001"
    arrays = write_phases(case, [f"DUKE_001_{k:04d}.nii.gz" for k in range(n_phases)])
    assert detect_format(case) == "mama-mia"
    study = load_study(case)
    assert study.metadata["case_id"] == "DUKE_001"
    assert phase_means(study) == pytest.approx([a.mean() for a in arrays], rel=1e-6)
    # pointing at one phase file reads the whole case
    assert load_study(case / "DUKE_001_0001.nii.gz", "mama-mia").n_phases == n_phases


def test_mama_mia_gap_and_several_cases(tmp_path):
    gap = tmp_path / "gap"
    write_phases(gap, ["X_0000.nii.gz", "X_0002.nii.gz"])
    with pytest.raises(ReaderError, match=r"phase numbers \[0, 2\]"):
        load_study(gap)
    two = tmp_path / "two"
    write_phases(two, ["A_0000.nii.gz", "A_0001.nii.gz", "B_0000.nii.gz"])
    with pytest.raises(ReaderError, match="holds 2 MAMA-MIA cases"):
        load_study(two)


def write_4d(path, arrays, interval, units_code=None):
    image = sitk.JoinSeries([make_image(a) for a in arrays], 0.0, interval)
    sitk.WriteImage(image, str(path))
    return image


def test_nifti_4d_geometry_and_times(tmp_path):
    arrays = enhancing_phases(n_phases=5)
    path = tmp_path / "dce.nii.gz"
    write_4d(path, arrays, 90.0)
    assert detect_format(path) == "nifti4d"
    study = load_study(path)
    assert study.n_phases == 5
    assert study.times_s == pytest.approx((0, 90, 180, 270, 360))
    ref = make_image(arrays[0])
    np.testing.assert_allclose(study.reference.GetDirection(), OBLIQUE, atol=1e-5)
    np.testing.assert_allclose(study.reference.GetOrigin(), ref.GetOrigin(), atol=1e-4)
    np.testing.assert_allclose(study.reference.GetSpacing(), ref.GetSpacing(), atol=1e-5)
    assert phase_means(study) == pytest.approx([a.mean() for a in arrays], rel=1e-6)


def test_nifti_4d_repetition_time_is_not_a_phase_interval(tmp_path):
    path = tmp_path / "dce.nii"
    write_4d(path, enhancing_phases(n_phases=3), 0.0045)
    assert load_study(path).times_s is None
    assert load_study(path, times_s=[0, 60, 120]).times_s == (0.0, 60.0, 120.0)


def test_3d_file_is_not_a_study(tmp_path):
    path = tmp_path / "one.nii.gz"
    sitk.WriteImage(make_image(np.zeros((3, 3, 3))), str(path))
    with pytest.raises(ReaderError, match="cannot recognise"):
        load_study(path)
    with pytest.raises(ReaderError, match="is 3-D"):
        load_study(path, "nifti4d")


@pytest.mark.parametrize(
    ("path", "fmt", "message"),
    [
        ("missing", "auto", "no such file or folder"),
        ("missing", "folder", "no such file or folder"),
        (".", "jpeg", "unknown study format 'jpeg'"),
    ],
)
def test_load_study_errors(tmp_path, path, fmt, message):
    with pytest.raises(ReaderError, match=message):
        load_study(tmp_path / path, fmt)


def test_empty_folder(tmp_path):
    with pytest.raises(ReaderError, match="cannot recognise"):
        load_study(tmp_path)


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.nii.gz"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_bytes(b"partial")
        raise RuntimeError("interrupted")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.nii.gz"]


def test_write_volume_refuses_inputs_and_unknown_formats(tmp_path):
    image = make_image(np.zeros((2, 2, 2)))
    src = write_volume(image, tmp_path / "in.nrrd")
    with pytest.raises(OutputError, match="refusing to overwrite the input"):
        write_volume(image, src, protect=(src,))
    with pytest.raises(OutputError, match=r"cannot write x\.png"):
        write_volume(image, tmp_path / "x.png")
    write_json({"a": np.arange(2)}, tmp_path / "r.json")
    assert json.loads((tmp_path / "r.json").read_text()) == {"a": [0, 1]}
