"""DICOM SEG export: DICOM and NIfTI input, oblique and left-handed grids, dciodvfy, read-back."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from BreastAIAssistantLib import __version__
from BreastAIAssistantLib.errors import OutputError
from BreastAIAssistantLib.export import (
    BREAST,
    BREAST_MASS,
    Code,
    SegmentInfo,
    Terminology,
    breast_lesion_segments,
    export_all,
    write_dicom_seg,
)
from BreastAIAssistantLib.io import load_study
from BreastAIAssistantLib.io.dicom_write import write_dicom_study
from BreastAIAssistantLib.measure import measure_lesions
from BreastAIAssistantLib.study import DCEStudy

from conftest import OBLIQUE, make_image

SHAPE_ZYX = (5, 9, 11)
LEFT_HANDED = tuple((np.asarray(OBLIQUE).reshape(3, 3) @ np.diag([1.0, 1.0, -1.0])).ravel())
needs_dciodvfy = pytest.mark.skipif(
    shutil.which("dciodvfy") is None, reason="dciodvfy (dicom3tools) not found"
)


def nifti_like_study(direction: tuple[float, ...] = OBLIQUE) -> DCEStudy:
    rng = np.random.default_rng(5)
    phases = [
        make_image(rng.uniform(50, 400, SHAPE_ZYX).astype(np.float32), direction=direction)
        for _ in range(3)
    ]
    return DCEStudy.from_images(phases, times_s=[0, 70, 140], source="test arrays")


def masks_zyx() -> tuple[np.ndarray, np.ndarray]:
    breast = np.zeros(SHAPE_ZYX, np.uint8)
    breast[1:4, 2:8, 1:10] = 1
    lesions = np.zeros(SHAPE_ZYX, np.uint8)
    lesions[1:3, 3:5, 2:4] = 1  # inside the breast
    lesions[3, 6, 7:9] = 2
    return breast, lesions


def expected_masks(breast: np.ndarray, lesions: np.ndarray) -> np.ndarray:
    return np.stack([breast == 1, lesions == 1, lesions == 2], axis=-1)


def in_k_order(datasets: Sequence[pydicom.Dataset], image: sitk.Image) -> list[str]:
    """SOPInstanceUIDs of the images at the positions of slices 0, 1, ... of ``image``."""
    axes = np.asarray(image.GetDirection()).reshape(3, 3)
    origin = np.asarray(image.GetOrigin())
    k_of = {}
    for ds in datasets:
        offset = np.asarray([float(v) for v in ds.ImagePositionPatient]) - origin
        k_of[ds.SOPInstanceUID] = float(offset @ axes[:, 2]) / image.GetSpacing()[2]
    uids = sorted(k_of, key=k_of.get)
    assert np.allclose(sorted(k_of.values()), np.arange(len(uids)), atol=1e-3)
    return uids


def read_back(path: Path, uids: list[str], n_segments: int) -> np.ndarray:
    seg = hd.seg.segread(path)
    return seg.get_pixels_by_source_instance(
        source_sop_instance_uids=uids,
        segment_numbers=list(range(1, n_segments + 1)),
        assert_missing_frames_are_empty=True,
    ).astype(bool)


def dciodvfy_errors(path: Path) -> list[str]:
    result = subprocess.run(
        ["dciodvfy", str(path)], capture_output=True, text=True, timeout=60, check=False
    )
    lines = (result.stdout + result.stderr).splitlines()
    assert "Segmentation" in lines
    return [line for line in lines if line.startswith("Error")]


@pytest.mark.parametrize("direction", [OBLIQUE, LEFT_HANDED], ids=["oblique", "left-handed"])
def test_nifti_input_writes_a_source_series(tmp_path: Path, direction: tuple[float, ...]) -> None:
    study = nifti_like_study(direction)
    breast, lesions = masks_zyx()
    layers, segments = breast_lesion_segments(study.image_like(breast), study.image_like(lesions))
    result = write_dicom_seg(layers, segments, study, tmp_path / "seg.dcm", uid_seed="case-1")
    assert result.path == tmp_path / "seg.dcm"
    assert len(result.source_files) == SHAPE_ZYX[0]
    assert all(p.is_relative_to(tmp_path / "seg_source") for p in result.source_files)
    sources = [pydicom.dcmread(p, stop_before_pixels=True) for p in result.source_files]
    seg = pydicom.dcmread(result.path)
    assert seg.StudyInstanceUID == sources[0].StudyInstanceUID
    assert seg.FrameOfReferenceUID == sources[0].FrameOfReferenceUID
    assert "placeholders" in sources[0].ImageComments
    expected = expected_masks(breast, lesions)
    assert result.n_frames == int(expected.any(axis=(1, 2)).sum())  # empty frames omitted
    uids = in_k_order(sources, study.reference)
    np.testing.assert_array_equal(read_back(result.path, uids, 3), expected)

    again = write_dicom_seg(
        layers,
        segments,
        study,
        tmp_path / "again.dcm",
        uid_seed="case-1",
        source_folder=tmp_path / "seg_source",
        overwrite=True,
    )
    assert pydicom.dcmread(again.path).SOPInstanceUID == seg.SOPInstanceUID


@pytest.mark.parametrize("layout", ["series-per-phase", "multi-temporal"])
def test_dicom_input_refers_to_the_pre_contrast_images(tmp_path: Path, layout: str) -> None:
    folder = tmp_path / "dicom"
    write_dicom_study(nifti_like_study(), folder, layout, uid_seed="input")
    study = load_study(folder)
    breast, lesions = masks_zyx()
    layers, segments = breast_lesion_segments(study.image_like(breast), study.image_like(lesions))
    result = write_dicom_seg(layers, segments, study, tmp_path / "out" / "seg.dcm", source=folder)
    assert result.source_files == ()
    assert not (tmp_path / "out" / "seg_source").exists()
    seg = pydicom.dcmread(result.path)
    assert seg.StudyInstanceUID == study.metadata["StudyInstanceUID"]
    assert seg.PatientID == study.metadata["PatientID"]
    assert seg.FrameOfReferenceUID == study.metadata["FrameOfReferenceUID"]
    referenced = seg.ReferencedSeriesSequence[0]
    assert referenced.SeriesInstanceUID == study.metadata["SeriesInstanceUID"][0]
    pre = [
        ds
        for ds in (pydicom.dcmread(p, stop_before_pixels=True) for p in folder.rglob("*.dcm"))
        if ds.SeriesInstanceUID == referenced.SeriesInstanceUID
        and int(ds.TemporalPositionIdentifier) == 1
    ]
    assert {i.ReferencedSOPInstanceUID for i in referenced.ReferencedInstanceSequence} == {
        ds.SOPInstanceUID for ds in pre
    }
    uids = in_k_order(pre, study.reference)
    np.testing.assert_array_equal(read_back(result.path, uids, 3), expected_masks(breast, lesions))

    datasets = [pydicom.dcmread(p) for p in folder.rglob("*.dcm")]
    from_datasets = write_dicom_seg(layers, segments, study, tmp_path / "b.dcm", source=datasets)
    assert pydicom.dcmread(from_datasets.path).ReferencedSeriesSequence[0] == referenced


def test_dicom_source_for_a_study_without_series(tmp_path: Path) -> None:
    """A non-DICOM study may name DICOM sources: the one series covering the grid is used."""
    study = nifti_like_study()
    breast, lesions = masks_zyx()
    layers, segments = breast_lesion_segments(study.image_like(breast), study.image_like(lesions))
    several = tmp_path / "several"
    write_dicom_study(study, several, "series-per-phase")
    with pytest.raises(OutputError, match="3 DICOM series cover the label grid"):
        write_dicom_seg(layers, segments, study, tmp_path / "a.dcm", source=several)
    one = tmp_path / "one"
    write_dicom_study(study, one, "multi-temporal")
    result = write_dicom_seg(layers, segments, study, tmp_path / "b.dcm", source=one)
    referenced = pydicom.dcmread(result.path).ReferencedSeriesSequence[0]
    temporal = {
        ds.SOPInstanceUID: int(ds.TemporalPositionIdentifier)
        for ds in (pydicom.dcmread(p, stop_before_pixels=True) for p in one.rglob("*.dcm"))
    }
    used = [temporal[i.ReferencedSOPInstanceUID] for i in referenced.ReferencedInstanceSequence]
    assert used == [1] * SHAPE_ZYX[0]


def test_segment_descriptions(tmp_path: Path) -> None:
    study = nifti_like_study()
    breast, lesions = masks_zyx()
    layers, segments = breast_lesion_segments(study.image_like(breast), study.image_like(lesions))
    seg = pydicom.dcmread(write_dicom_seg(layers, segments, study, tmp_path / "s.dcm").path)
    assert seg.SegmentationType == "BINARY"
    items = seg.SegmentSequence
    assert [i.SegmentLabel for i in items] == ["Breast", "Lesion 1", "Lesion 2"]
    breast_item, lesion_item = items[0], items[1]
    assert breast_item.SegmentedPropertyCategoryCodeSequence[0].CodeValue == "123037004"
    assert breast_item.SegmentedPropertyTypeCodeSequence[0].CodeValue == "76752008"
    assert lesion_item.SegmentedPropertyCategoryCodeSequence[0].CodeValue == "49755003"
    assert lesion_item.SegmentedPropertyTypeCodeSequence[0].CodeValue == "4147007"
    assert lesion_item.AnatomicRegionSequence[0].CodeMeaning == "Breast"
    for item in items:
        assert item.SegmentAlgorithmType == "AUTOMATIC"
        algorithm = item.SegmentationAlgorithmIdentificationSequence[0]
        assert algorithm.AlgorithmName == "BreastAIAssistant"
        assert algorithm.AlgorithmVersion == __version__
        assert algorithm.AlgorithmFamilyCodeSequence[0].CodeMeaning == "Artificial Intelligence"
    assert items[1].RecommendedDisplayCIELabValue != items[2].RecommendedDisplayCIELabValue

    right = Code("SCT", "24028007", "Right")
    terms = Terminology(BREAST.category, BREAST.type, type_modifier=right)
    lesion = Terminology(BREAST_MASS.category, BREAST_MASS.type, None, BREAST.type, right)
    labels = study.image_like(breast + lesions)
    sided = [
        SegmentInfo(1, "Right breast", (1, 0, 0), terms),
        SegmentInfo(2, "M", (0, 1, 0), lesion),
    ]
    path = write_dicom_seg(labels, sided, study, tmp_path / "sided.dcm").path
    first, second = pydicom.dcmread(path).SegmentSequence
    type_item = first.SegmentedPropertyTypeCodeSequence[0]
    assert type_item.SegmentedPropertyTypeModifierCodeSequence[0].CodeMeaning == "Right"
    region = second.AnatomicRegionSequence[0]
    assert region.AnatomicRegionModifierSequence[0].CodeValue == "24028007"
    if shutil.which("dciodvfy"):
        assert dciodvfy_errors(path) == []


@needs_dciodvfy
def test_dciodvfy_reports_no_errors(tmp_path: Path) -> None:
    folder = tmp_path / "dicom"
    write_dicom_study(nifti_like_study(), folder, uid_seed="input")
    study = load_study(folder)
    breast, lesions = masks_zyx()
    layers, segments = breast_lesion_segments(study.image_like(breast), study.image_like(lesions))
    from_dicom = write_dicom_seg(layers, segments, study, tmp_path / "a.dcm", source=folder)
    assert dciodvfy_errors(from_dicom.path) == []
    nifti = nifti_like_study()
    layers, segments = breast_lesion_segments(nifti.image_like(breast), nifti.image_like(lesions))
    from_nifti = write_dicom_seg(layers, segments, nifti, tmp_path / "b.dcm")
    assert dciodvfy_errors(from_nifti.path) == []


def test_errors(tmp_path: Path) -> None:
    folder = tmp_path / "dicom"
    write_dicom_study(nifti_like_study(), folder, uid_seed="input")
    study = load_study(folder)
    breast, lesions = masks_zyx()
    layers, segments = breast_lesion_segments(study.image_like(breast), study.image_like(lesions))
    out = tmp_path / "out.dcm"
    with pytest.raises(OutputError, match="give its folder"):
        write_dicom_seg(layers, segments, study, out)
    other = tmp_path / "other"
    write_dicom_study(nifti_like_study(), other, uid_seed="another study")
    with pytest.raises(OutputError, match="pre-contrast series"):
        write_dicom_seg(layers, segments, study, out, source=other)
    some = [p for p in folder.rglob("*.dcm") if not p.name.endswith("00003.dcm")]
    partial = [pydicom.dcmread(p) for p in some]
    with pytest.raises(OutputError, match=r"1 of the 5 slices .* \(first: slice 2\)"):
        write_dicom_seg(layers, segments, study, out, source=partial)
    with pytest.raises(OutputError, match="not on the study's pre-contrast grid"):
        write_dicom_seg(layers, segments, nifti_like_study(LEFT_HANDED), out)
    nifti = nifti_like_study()
    bare = [SegmentInfo(1, "No codes", (1.0, 0.0, 0.0))]
    with pytest.raises(OutputError, match="no terminology"):
        write_dicom_seg(nifti.image_like(breast), bare, nifti, out)
    empty = breast_lesion_segments(nifti.image_like(np.zeros_like(breast)), None)
    with pytest.raises(OutputError, match="every segment is empty"):
        write_dicom_seg(*empty, nifti, out)
    assert not out.exists()


def test_export_all(tmp_path: Path) -> None:
    study = nifti_like_study()
    breast, lesions = masks_zyx()
    lesion_image = study.image_like(lesions)
    report = measure_lesions(lesion_image, mode="labels")
    written = export_all(
        study,
        tmp_path / "out",
        study.image_like(breast),
        lesion_image,
        report,
        formats=("nifti", "nrrd", "seg.nrrd", "dicom-seg", "csv"),
        uid_seed="all",
    )
    names = {p.name for paths in written.values() for p in paths if p.parent == tmp_path / "out"}
    assert names == {
        "breast_mask.nii.gz",
        "lesion_labels.nii.gz",
        "breast_mask.nrrd",
        "lesion_labels.nrrd",
        "segmentation.seg.nrrd",
        "segmentation.dcm",
        "measurements.csv",
    }
    assert len(written["dicom-seg"]) == 1 + SHAPE_ZYX[0]
    with pytest.raises(OutputError, match="unknown export format"):
        export_all(study, tmp_path / "x", formats=("png",))
