"""Writing phantom cases and reading them back through the study readers."""

from __future__ import annotations

import json

import numpy as np
import pytest
import SimpleITK as sitk

from BreastAIAssistantLib.io import folder
from BreastAIAssistantLib.phantom.generator import generate_case
from BreastAIAssistantLib.phantom.writer import write_case


@pytest.mark.parametrize("n_phases", range(2, 10))
def test_every_phase_count_reads_back(tmp_path, n_phases):
    case = generate_case(40 + n_phases, size="small", n_phases=n_phases, lesions=("malignant",))
    files = write_case(case, tmp_path / "case")
    study = folder.read(tmp_path / "case")
    assert study.n_phases == n_phases
    assert study.times_s == pytest.approx(case.study.times_s)
    assert study.size_xyz == case.study.size_xyz
    assert np.allclose(study.reference.GetDirection(), case.study.reference.GetDirection())
    for k in range(n_phases):
        original = sitk.GetArrayViewFromImage(case.study.phases[k])
        assert np.max(np.abs(study.phase_zyx(k) - original)) <= 0.5 + 1e-3  # int16 rounding
    truth = json.loads((tmp_path / "case" / "case.json").read_text())
    assert truth["files"] == files and truth["lesions"] == case.truth["lesions"]
    mask = sitk.ReadImage(str(tmp_path / "case" / files["tumour_mask"]))
    assert mask.GetPixelID() == sitk.sitkUInt16
    assert np.array_equal(
        sitk.GetArrayViewFromImage(mask), sitk.GetArrayViewFromImage(case.tumour_labels)
    )


def test_float32_phases_and_no_tissue_map(tmp_path):
    case = generate_case(1, size="small", n_phases=3, lesions=(), oblique=True)
    files = write_case(case, tmp_path, phase_dtype="float32", tissue_labels=False)
    assert "tissue_labels" not in files and not (tmp_path / "tissue_labels.nii.gz").exists()
    study = folder.read(tmp_path)
    assert np.array_equal(study.phase_zyx(2), sitk.GetArrayViewFromImage(case.study.phases[2]))
    assert case.truth["acquisition"]["oblique"] is True
    assert not np.allclose(study.reference.GetDirection(), np.eye(3).ravel())
    with pytest.raises(ValueError, match="phase_dtype"):
        write_case(case, tmp_path / "x", phase_dtype="uint8")
