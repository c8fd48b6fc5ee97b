"""DICOM MR writer: round trips through the reader, dciodvfy, overwriting, handedness."""

from __future__ import annotations

import datetime
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from BreastAIAssistantLib.errors import OutputError
from BreastAIAssistantLib.io import detect_format, load_study
from BreastAIAssistantLib.io.dicom_build import Rescale, StackGeometry, choose_rescale
from BreastAIAssistantLib.io.dicom_write import LAYOUTS, make_right_handed, write_dicom_study
from BreastAIAssistantLib.study import DCEStudy

from conftest import OBLIQUE

SHAPE_ZYX = (6, 10, 8)
ORIGIN = (-31.5, 12.25, 40.0)
SPACING = (0.8, 0.7, 2.5)
LEFT_HANDED = tuple((np.asarray(OBLIQUE).reshape(3, 3) @ np.diag([1.0, 1.0, -1.0])).ravel())
START = datetime.datetime(2024, 1, 31, 10, 15, 0)


def make_study(
    n_phases: int = 3,
    direction: tuple[float, ...] = OBLIQUE,
    times: tuple[float, ...] | None = (),
    integers: bool = False,
) -> DCEStudy:
    rng = np.random.default_rng(n_phases)
    images = []
    for k in range(n_phases):
        values = rng.normal(300.0 + 40.0 * k, 90.0, SHAPE_ZYX)  # some phases dip below zero
        values = np.rint(np.abs(values)) if integers else values
        image = sitk.GetImageFromArray(values.astype(np.float32))
        image.SetOrigin(ORIGIN)
        image.SetSpacing(SPACING)
        image.SetDirection(direction)
        images.append(image)
    if times == ():
        times = tuple(0.0 if k == 0 else 30.0 + 61.25 * k for k in range(n_phases))
    return DCEStudy.from_images(images, times_s=times)


def series_slopes(paths: list[Path]) -> dict[str, float]:
    """RescaleSlope of each series folder (1 when absent)."""
    slopes = {}
    for path in paths:
        if path.parent.name not in slopes:
            slopes[path.parent.name] = float(pydicom.dcmread(path).get("RescaleSlope", 1.0))
    return slopes


def assert_same_study(read: DCEStudy, written: DCEStudy, step: float) -> None:
    assert read.n_phases == written.n_phases
    reference = written.reference
    assert read.reference.GetSize() == reference.GetSize()
    assert read.reference.GetOrigin() == pytest.approx(reference.GetOrigin(), abs=1e-5)
    assert read.reference.GetSpacing() == pytest.approx(reference.GetSpacing(), rel=1e-9)
    assert read.reference.GetDirection() == pytest.approx(reference.GetDirection(), abs=1e-9)
    for k in range(written.n_phases):
        expected = written.phase_zyx(k).astype(np.float64)
        error = np.abs(read.phase_zyx(k) - expected)
        assert error.max() <= 0.5 * step * (1 + 1e-6) + 1e-6 * np.abs(expected).max()


@pytest.mark.parametrize("n_phases", [2, 9])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_round_trip(tmp_path: Path, layout: str, n_phases: int) -> None:
    study = make_study(n_phases)
    paths = write_dicom_study(study, tmp_path, layout=layout, acquired=START)
    slopes = series_slopes(paths)
    assert len(slopes) == (1 if layout == "multi-temporal" else n_phases)
    assert len(paths) == n_phases * SHAPE_ZYX[0]
    assert detect_format(tmp_path) == "dicom"
    read = load_study(tmp_path)
    assert_same_study(read, study, max(slopes.values()))
    assert read.times_s == pytest.approx(study.times_s, abs=1e-5)
    assert read.metadata["time_source"] == "AcquisitionTime"
    assert read.metadata["PatientID"] == "BAA-SYNTHETIC"
    assert read.metadata["StudyDate"] == "20240131"
    assert len(set(read.metadata["SeriesInstanceUID"])) == len(slopes)


def test_layout_names_and_tags(tmp_path: Path) -> None:
    study = make_study(3)
    per_phase = write_dicom_study(study, tmp_path / "a", acquired=START, first_series_number=7)
    assert [p.relative_to(tmp_path / "a").as_posix() for p in per_phase[::6]] == [
        "007_BAA_synthetic_DCE_phase_0/IM_00001.dcm",
        "008_BAA_synthetic_DCE_phase_1/IM_00001.dcm",
        "009_BAA_synthetic_DCE_phase_2/IM_00001.dcm",
    ]
    multi = write_dicom_study(study, tmp_path / "b", "multi-temporal", description="Ax DCE")
    assert [p.name for p in multi[:2]] == ["IM_00001.dcm", "IM_00002.dcm"]
    assert multi[-1].relative_to(tmp_path / "b").as_posix() == "001_Ax_DCE/IM_00018.dcm"
    ds = pydicom.dcmread(multi[8])  # phase 1, slice 2
    assert (ds.InstanceNumber, ds.TemporalPositionIdentifier, ds.NumberOfTemporalPositions) == (
        9,
        2,
        3,
    )
    assert ds.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
    assert ds.SOPClassUID == pydicom.uid.MRImageStorage
    assert ds.ContrastBolusAgent and "TriggerTime" not in ds
    geometry = StackGeometry.from_image(study.reference)
    assert [float(v) for v in ds.ImagePositionPatient] == pytest.approx(
        geometry.slice_position(2).tolist(), abs=1e-9
    )
    assert [float(v) for v in ds.PixelSpacing] == pytest.approx([SPACING[1], SPACING[0]])
    assert float(ds.SpacingBetweenSlices) == pytest.approx(SPACING[2])
    assert (ds.PatientName, ds.ImageLaterality, ds.PatientPosition) == (
        "SYNTHETIC^PHANTOM",
        "B",
        "FFP",
    )
    assert "ContrastBolusAgent" not in pydicom.dcmread(multi[0])


def test_trigger_time_and_midnight(tmp_path: Path) -> None:
    study = make_study(3, times=(0.0, 45.5, 91.0))
    late = datetime.datetime(2024, 1, 31, 23, 59, 30)
    paths = write_dicom_study(study, tmp_path, "multi-temporal", acquired=late, trigger_time=True)
    last = pydicom.dcmread(paths[-1])
    assert (last.AcquisitionDate, last.AcquisitionTime) == ("20240201", "000101.000000")
    assert float(last.TriggerTime) == pytest.approx(91000.0)
    read = load_study(tmp_path)
    assert read.metadata["time_source"] == "TriggerTime"
    assert read.times_s == pytest.approx((0.0, 45.5, 91.0))


@pytest.mark.parametrize("layout", LAYOUTS)
def test_study_without_times(tmp_path: Path, layout: str) -> None:
    study = make_study(3, times=None)
    write_dicom_study(study, tmp_path, layout)
    read = load_study(tmp_path)
    assert read.times_s is None
    assert_same_study(read, study, max(series_slopes(sorted(tmp_path.rglob("*.dcm"))).values()))


def test_whole_numbers_are_lossless(tmp_path: Path) -> None:
    study = make_study(2, direction=(1, 0, 0, 0, 1, 0, 0, 0, 1), integers=True)
    paths = write_dicom_study(study, tmp_path)
    assert "RescaleSlope" not in pydicom.dcmread(paths[0])
    read = load_study(tmp_path)
    for k in range(2):
        np.testing.assert_array_equal(read.phase_zyx(k), study.phase_zyx(k))


def test_choose_rescale() -> None:
    rescale = choose_rescale([np.array([-2.0, 0.5]), np.array([100.25])])
    assert rescale.intercept == -2.0 and rescale.slope >= 102.25 / 65534
    low, high = rescale.to_stored(np.array([-2.0, 100.25])).tolist()
    assert low == 0 and 65534 * 0.999 < high <= 65534  # slope rounded up to 4 digits
    assert choose_rescale([np.array([1.0, 4.5])]).slope == pytest.approx(4.5 / 65534, rel=1e-3)
    assert choose_rescale([np.full(3, 7.25)]) == choose_rescale([np.array([0.0, 7.25])])
    assert choose_rescale([np.array([-3.0, 70.0])]) == Rescale(1.0, -3.0)
    assert choose_rescale([np.array([3.0, 70.0])]) == Rescale(1.0, 0.0)


def test_deterministic_uids(tmp_path: Path) -> None:
    study = make_study(2)
    a = write_dicom_study(study, tmp_path / "a", uid_seed="phantom-7")
    b = write_dicom_study(study, tmp_path / "b", uid_seed="phantom-7")
    c = write_dicom_study(study, tmp_path / "c", "multi-temporal", uid_seed="phantom-7")
    d = write_dicom_study(study, tmp_path / "d")
    first = [pydicom.dcmread(p[0]) for p in (a, b, c, d)]
    assert first[0].SOPInstanceUID == first[1].SOPInstanceUID
    assert first[0].SeriesInstanceUID == first[1].SeriesInstanceUID
    assert first[0].StudyInstanceUID == first[2].StudyInstanceUID
    assert first[0].SeriesInstanceUID != first[2].SeriesInstanceUID
    assert first[0].StudyInstanceUID != first[3].StudyInstanceUID
    uids = {pydicom.dcmread(p).SOPInstanceUID for p in a + c}
    assert len(uids) == len(a) + len(c)


@pytest.mark.skipif(shutil.which("dciodvfy") is None, reason="dciodvfy (dicom3tools) not found")
@pytest.mark.parametrize("layout", LAYOUTS)
def test_dciodvfy_reports_no_errors(tmp_path: Path, layout: str) -> None:
    paths = write_dicom_study(make_study(3), tmp_path, layout)
    for path in (paths[0], paths[-1]):  # pre-contrast and post-contrast images
        result = subprocess.run(
            ["dciodvfy", str(path)], capture_output=True, text=True, timeout=60, check=False
        )
        lines = (result.stdout + result.stderr).splitlines()
        errors = [line for line in lines if line.startswith("Error")]
        assert not errors, "\n".join(lines)
        assert "MRImage" in lines


def test_refuses_to_overwrite(tmp_path: Path) -> None:
    study = make_study(2)
    paths = write_dicom_study(study, tmp_path, uid_seed="one")
    before = {p: p.read_bytes() for p in paths}
    with pytest.raises(OutputError, match=r"IM_00001\.dcm already exists \(12 of the 12"):
        write_dicom_study(study, tmp_path, uid_seed="two")
    assert {p: p.read_bytes() for p in paths} == before
    again = write_dicom_study(study, tmp_path, uid_seed="two", overwrite=True)
    assert again == paths
    assert paths[0].read_bytes() != before[paths[0]]  # other UIDs
    assert sorted(p.name for p in tmp_path.rglob("*") if p.name.startswith(".")) == []


def test_left_handed_direction(tmp_path: Path) -> None:
    study = make_study(2, direction=LEFT_HANDED)
    with pytest.raises(ValueError, match=r"left-handed.*make_right_handed"):
        write_dicom_study(study, tmp_path)
    assert not any(tmp_path.iterdir())
    flipped = make_right_handed(study)
    assert make_right_handed(flipped) is flipped
    assert flipped.reference.GetDirection() == pytest.approx(OBLIQUE, abs=1e-12)
    last = study.reference.TransformIndexToPhysicalPoint((0, 0, SHAPE_ZYX[0] - 1))
    assert flipped.reference.GetOrigin() == pytest.approx(last, abs=1e-9)
    paths = write_dicom_study(flipped, tmp_path)
    read = load_study(tmp_path)
    assert_same_study(read, flipped, max(series_slopes(paths).values()))
    np.testing.assert_array_equal(flipped.phase_zyx(1), study.phase_zyx(1)[::-1])


def test_bad_arguments(tmp_path: Path) -> None:
    study = make_study(2)
    with pytest.raises(ValueError, match="unknown DICOM layout 'nifti'"):
        write_dicom_study(study, tmp_path, layout="nifti")
    with pytest.raises(ValueError, match=r"unknown patient/study keyword.*PatientNmae"):
        write_dicom_study(study, tmp_path, patient={"PatientNmae": "X^Y"})
    with pytest.raises(ValueError, match="at most 64 characters"):
        write_dicom_study(study, tmp_path, description="x" * 60)
    sheared = make_study(2, direction=(1, 0, 0, 0.2, 1, 0, 0, 0, 1))
    with pytest.raises(ValueError, match="not orthonormal"):
        write_dicom_study(sheared, tmp_path)
    assert not any(tmp_path.iterdir())


def test_patient_attributes(tmp_path: Path) -> None:
    patient = {"PatientName": "DOE^JANE", "PatientID": "P42", "AccessionNumber": "A1"}
    paths = write_dicom_study(make_study(2), tmp_path, patient=patient)
    ds = pydicom.dcmread(paths[0])
    assert (ds.PatientName, ds.PatientID, ds.AccessionNumber) == ("DOE^JANE", "P42", "A1")
    assert ds.PatientSex == "F" and ds.PatientBirthDate == ""
