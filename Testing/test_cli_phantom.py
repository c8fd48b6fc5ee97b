"""`breast-ai phantom`: case folders that every command reads, DICOM in both layouts."""

from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pytest

from BreastAIAssistantLib.cli.main import main
from BreastAIAssistantLib.io import load_study


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("phantom")
    assert main(["phantom", "--out", str(out), "--cases", "2", "--seed", "7", "--phases", "4",
                 "--dicom", "both"]) == 0  # fmt: skip
    return out


def test_case_folders_are_studies_with_truth(dataset):
    for seed in (7, 8):
        case = dataset / f"case_{seed:05d}"
        truth = json.loads((case / "case.json").read_text())
        study = load_study(case)
        assert study.n_phases == 4 and truth["synthetic"] is True
        assert study.times_s == pytest.approx(truth["acquisition"]["times_s"], abs=1e-3)
        for name in ("tumour_mask.nii.gz", "breast_mask.nii.gz"):
            assert (case / name).is_file()


@pytest.mark.parametrize("layout", ["dicom_series", "dicom_temporal"])
def test_dicom_round_trip_gives_the_same_voxels_and_times(dataset, layout):
    case = dataset / "case_00007"
    nifti, dicom = load_study(case), load_study(case / layout)
    assert dicom.n_phases == nifti.n_phases
    assert dicom.times_s == pytest.approx(nifti.times_s, abs=1e-3)
    for k in range(nifti.n_phases):
        # NIfTI phases are int16-rounded; DICOM keeps them within half a rescale step
        np.testing.assert_allclose(dicom.phase_zyx(k), nifti.phase_zyx(k), atol=1.0)
    np.testing.assert_allclose(dicom.reference.GetOrigin(), nifti.reference.GetOrigin(),
                               atol=1e-3)  # fmt: skip


@pytest.mark.skipif(shutil.which("dciodvfy") is None, reason="dicom3tools not installed")
@pytest.mark.parametrize("layout", ["dicom_series", "dicom_temporal"])
def test_phantom_dicom_is_valid(dataset, layout):
    files = sorted((dataset / "case_00008" / layout).rglob("*.dcm"))
    for path in (files[0], files[-1]):
        result = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True)
        errors = [line for line in result.stderr.splitlines() if line.startswith("Error")]
        assert errors == []
