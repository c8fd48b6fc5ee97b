"""``breast-ai measure``: table, JSON, --out, grouping options, instance labels, one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import SimpleITK as sitk

from BreastAIAssistantLib.cli.main import cli, main
from BreastAIAssistantLib.cli.measure import (
    HELP_DEFAULT_GAP_MM,
    HELP_DEFAULT_MIN_VOLUME_ML,
    measure,
)
from BreastAIAssistantLib.measure import GroupingSettings

from conftest import make_image

LESION_KEYS = {
    "id",
    "volume_ml",
    "max_diameter_mm",
    "endpoints_lps_mm",
    "axial_diameter_mm",
    "perpendicular_diameters_mm",
    "centroid_lps_mm",
    "distance_to_skin_mm",
    "distance_to_chest_wall_mm",
    "t_category",
    "t_category_range",
    "flags",
}


@pytest.fixture(autouse=True, scope="module")
def measure_registered():
    """Register the command when cli/main.py does not (yet); remove it again afterwards."""
    added = "measure" not in cli.commands
    if added:
        cli.add_command(measure)
    yield
    if added:
        del cli.commands["measure"]


def run(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def masks(tmp_path):
    """Two 6 mm cubes with 2 mm between them (1 mm voxels), and a breast slab around them."""
    lesion = np.zeros((16, 30, 30), dtype=np.uint8)
    lesion[5:11, 8:14, 4:10] = 1
    lesion[5:11, 8:14, 12:18] = 1
    breast = np.zeros_like(lesion)
    breast[1:15, 4:26, 1:29] = 1
    paths = {}
    for name, array in (("lesion", lesion), ("breast", breast)):
        paths[name] = tmp_path / f"{name}.nii.gz"
        sitk.WriteImage(make_image(array, spacing=(1.0, 1.0, 1.0)), str(paths[name]))
    return paths


def test_help_shows_the_real_defaults(capsys):
    defaults = GroupingSettings()
    assert (HELP_DEFAULT_GAP_MM, HELP_DEFAULT_MIN_VOLUME_ML) == (
        defaults.gap_mm,
        defaults.min_volume_ml,
    )
    code, out, _ = run(capsys, "measure", "--help")
    assert code == 0 and "--gap-mm" in out and "--breast" in out


def test_table(capsys, masks):
    code, out, _ = run(capsys, "measure", masks["lesion"], "--breast", masks["breast"])
    assert code == 0
    assert "max mm" in out and "T stage (AJCC 8th, imaging size only): T1c" in out
    assert "2 components -> 1 lesion(s)" in out


def test_json_and_out_file(capsys, masks, tmp_path):
    out_file = tmp_path / "report.json"
    code, out, _ = run(
        capsys, "measure", masks["lesion"], "--breast", masks["breast"], "--json", "--out", out_file
    )
    assert code == 0
    data = json.loads(out)
    assert json.loads(out_file.read_text()) == data
    assert data["t_stage"] == "T1c" and data["n_lesions"] == 1
    lesion = data["lesions"][0]
    assert LESION_KEYS <= set(lesion)
    assert lesion["max_diameter_mm"] == pytest.approx(np.linalg.norm([13, 5, 5]))
    assert lesion["distance_to_skin_mm"] == pytest.approx(4.0)
    assert np.asarray(lesion["endpoints_lps_mm"]).shape == (2, 3)
    assert data["grouping"]["components"] == 2 and data["grouping"]["fragments_ignored"] == 0


@pytest.mark.parametrize(("gap", "lesions", "stage"), [("3", 1, "T1c"), ("1", 2, "T1b(m)")])
def test_gap_option(capsys, masks, gap, lesions, stage):
    code, out, _ = run(capsys, "measure", masks["lesion"], "--json", "--gap-mm", gap)
    data = json.loads(out)
    assert code == 0 and data["n_lesions"] == lesions and data["t_stage"] == stage


def test_min_volume_option_drops_everything(capsys, masks):
    code, out, _ = run(capsys, "measure", masks["lesion"], "--json", "--min-volume-ml", "1")
    data = json.loads(out)
    assert code == 0 and data["n_lesions"] == 0 and data["t_stage"] is None
    assert data["grouping"]["fragments_ignored"] == 2


def test_instance_labels(capsys, tmp_path):
    labels = np.zeros((8, 12, 30), dtype=np.uint8)
    labels[2:5, 2:6, 2:6] = 1
    labels[2:5, 2:6, 6:9] = 2  # touches label 1 but stays a lesion of its own
    path = tmp_path / "labels.nrrd"
    sitk.WriteImage(make_image(labels, spacing=(1.0, 1.0, 1.0)), str(path))
    code, out, err = run(capsys, "measure", path, "--json", "--gap-mm", "5")
    data = json.loads(out)
    assert code == 0 and data["mode"] == "labels" and [x["id"] for x in data["lesions"]] == [1, 2]
    assert "ignored for an instance label map" in err
    code, out, _ = run(capsys, "measure", path, "--json", "--lesions", "binary")
    assert json.loads(out)["n_lesions"] == 1


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (np.full((4, 5, 6), 0.4, dtype=np.float32), "not a mask"),
        (np.zeros((4, 5, 6), dtype=np.uint8), "empty"),
    ],
)
def test_bad_masks_are_one_line_errors(capsys, tmp_path, array, message):
    path = tmp_path / "bad.nii.gz"
    sitk.WriteImage(sitk.GetImageFromArray(array), str(path))
    code, out, err = run(capsys, "measure", path)
    assert code == 2 and out == ""
    assert err.startswith("breast-ai: error:") and message in err and err.count("\n") == 1


def test_breast_mask_on_another_grid(capsys, masks, tmp_path):
    other = tmp_path / "other.nii.gz"
    sitk.WriteImage(make_image(np.ones((5, 5, 5), dtype=np.uint8)), str(other))
    code, _, err = run(capsys, "measure", masks["lesion"], "--breast", other)
    assert code == 2 and "another grid" in err and err.count("\n") == 1


def test_unreadable_file_and_overwrite(capsys, masks, tmp_path):
    junk = tmp_path / "junk.nii.gz"
    junk.write_text("not an image")
    code, _, err = run(capsys, "measure", junk)
    assert code == 2 and "cannot read" in err and err.count("\n") == 1
    code, _, err = run(capsys, "measure", masks["lesion"], "--out", masks["lesion"])
    assert code == 2 and "refusing to overwrite" in err
