"""DICOM and BreastDM readers on tiny synthetic series written with pydicom."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.pixels import get_decoder
from pydicom.uid import (
    EnhancedMRImageStorage,
    HTJ2KLossless,
    JPEG2000Lossless,
    JPEGLSLossless,
)

from BreastAIAssistantLib.errors import ReaderError, StudyError, UnsupportedTransferSyntaxError
from BreastAIAssistantLib.io import breastdm, dicom
from BreastAIAssistantLib.io.dicom_files import parse_time_of_day, unwrap_midnight

from dicom_fixtures import Geometry, StudyIds, oblique_direction, write_dce, write_series

SHAPE_ZYX = (6, 8, 10)
SLOPE, INTERCEPT = 2.0, -10.0
TIMES = (0.0, 60.5, 121.0)
OBLIQUE = oblique_direction(20.0)
GEOMETRY = Geometry(origin=(-50.5, 20.25, 30.0), spacing=(0.8, 0.9, 2.5), direction=OBLIQUE)
LEFT_HANDED = tuple((np.asarray(OBLIQUE).reshape(3, 3) @ np.diag([1.0, 1.0, -1.0])).ravel())


def stored_phases(n: int = 3, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 1000, SHAPE_ZYX).astype(np.uint16) for _ in range(n)]


def modality_values(stored: np.ndarray) -> np.ndarray:
    return stored.astype(np.float32) * SLOPE + INTERCEPT


def write_default(folder: Path, multi_temporal: bool = False, **options) -> list[Path]:
    options.setdefault("rescale", (SLOPE, INTERCEPT))
    return write_dce(
        folder,
        stored_phases(),
        options.pop("geometry", GEOMETRY),
        options.pop("times", TIMES),
        ids=StudyIds(),
        multi_temporal=multi_temporal,
        **options,
    )


def assert_matches_files(study, paths: list[Path]) -> None:
    """Every file's pixels sit where its ImagePositionPatient/Orientation say, with its value."""
    for path in paths:
        ds = pydicom.dcmread(path)
        image = study.phases[int(ds.TemporalPositionIdentifier) - 1]
        ipp = np.array(ds.ImagePositionPatient, dtype=float)
        row_cos = np.array(ds.ImageOrientationPatient[:3], dtype=float)
        col_cos = np.array(ds.ImageOrientationPatient[3:], dtype=float)
        dy, dx = (float(v) for v in ds.PixelSpacing)
        pixels = ds.pixel_array
        for r, c in ((0, 0), (ds.Rows - 1, ds.Columns - 1), (3, 5)):
            point = ipp + c * dx * row_cos + r * dy * col_cos
            index = np.array(image.TransformPhysicalPointToContinuousIndex(point.tolist()))
            np.testing.assert_allclose(index, np.round(index), atol=1e-4)
            i, j, k = (int(v) for v in np.round(index))
            assert (i, j) == (c, r)
            physical = image.TransformIndexToPhysicalPoint((i, j, k))
            np.testing.assert_allclose(physical, point, atol=1e-4)
            assert image[i, j, k] == pytest.approx(pixels[r, c] * SLOPE + INTERCEPT)


@pytest.mark.parametrize("direction", [OBLIQUE, LEFT_HANDED], ids=["oblique", "left-handed"])
def test_one_series_per_phase(tmp_path: Path, direction: tuple) -> None:
    geometry = Geometry(GEOMETRY.origin, GEOMETRY.spacing, direction)
    paths = write_default(tmp_path, geometry=geometry)
    study = dicom.read(tmp_path)
    assert study.n_phases == 3
    assert study.times_s == pytest.approx(TIMES)
    assert study.spacing_mm == pytest.approx(GEOMETRY.spacing)
    assert_matches_files(study, paths)
    expected = [modality_values(p) for p in stored_phases()]
    if direction == OBLIQUE:
        assert study.reference.GetOrigin() == pytest.approx(GEOMETRY.origin, abs=1e-5)
        assert study.reference.GetDirection() == pytest.approx(OBLIQUE, abs=1e-6)
    else:  # DICOM's normal points the other way: the last written slice comes first
        expected = [e[::-1] for e in expected]
        top = geometry.slice_position(SHAPE_ZYX[0] - 1)
        assert study.reference.GetOrigin() == pytest.approx(tuple(top), abs=1e-5)
    for k in range(3):
        np.testing.assert_array_equal(study.phase_zyx(k), expected[k])
    assert study.phase_zyx(0).dtype == np.float32
    meta = study.metadata
    assert meta["PatientID"] == "BAA-TEST-001"
    assert meta["Modality"] == "MR"
    assert len(set(meta["SeriesInstanceUID"])) == 3
    assert meta["SeriesDescription"] == ["Ax VIBRANT DCE"] * 3


def test_multi_temporal_series_gives_same_study(tmp_path: Path) -> None:
    write_default(tmp_path / "per_phase")
    write_default(tmp_path / "multi", multi_temporal=True)
    a, b = dicom.read(tmp_path / "per_phase"), dicom.read(tmp_path / "multi")
    assert b.n_phases == 3
    assert b.times_s == pytest.approx(a.times_s)
    assert b.metadata["time_source"] == "TriggerTime"
    assert len(set(b.metadata["SeriesInstanceUID"])) == 1
    for k in range(3):
        np.testing.assert_array_equal(a.phase_zyx(k), b.phase_zyx(k))
    for getter in ("GetOrigin", "GetSpacing", "GetDirection"):
        assert getattr(b.reference, getter)() == pytest.approx(getattr(a.reference, getter)())


def test_multi_temporal_split_by_acquisition_time(tmp_path: Path) -> None:
    write_default(tmp_path, multi_temporal=True, temporal_positions=[], trigger_times=False)
    study = dicom.read(tmp_path)
    assert study.metadata["time_source"] == "AcquisitionTime"
    assert study.times_s == pytest.approx(TIMES)
    np.testing.assert_array_equal(study.phase_zyx(2), modality_values(stored_phases()[2]))


@pytest.mark.parametrize("multi_temporal", [False, True])
def test_shuffled_file_order(tmp_path: Path, multi_temporal: bool) -> None:
    paths = write_default(tmp_path, multi_temporal=multi_temporal, shuffle_seed=7)
    assert sorted(paths) != paths
    study = dicom.read(tmp_path)
    for k, stored in enumerate(stored_phases()):
        np.testing.assert_array_equal(study.phase_zyx(k), modality_values(stored))
    assert_matches_files(study, paths)


def test_non_dce_series_are_skipped(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    ids = StudyIds()
    stored = stored_phases()
    write_dce(tmp_path / "dce", stored, GEOMETRY, TIMES, ids=ids, rescale=(SLOPE, INTERCEPT))
    difference = [np.clip(stored[1].astype(int) - stored[0], 0, None).astype(np.uint16)]
    write_series(
        tmp_path / "sub_a",
        difference,
        GEOMETRY,
        ids=ids,
        series_number=20,
        description="Ph1 minus Ph0",
        image_type=("DERIVED", "PRIMARY", "SUB"),
    )
    write_series(
        tmp_path / "sub_b",
        difference,
        GEOMETRY,
        ids=ids,
        series_number=21,
        description="VIBRANT SUB2",
    )
    t2 = [np.full((4, 12, 12), 300, dtype=np.uint16)]
    write_series(
        tmp_path / "t2",
        t2,
        Geometry(spacing=(0.5, 0.5, 4.0)),
        ids=ids,
        series_number=5,
        description="Ax T2 FSE",
        sequence=(4000.0, 90.0, 90.0),
    )
    sagittal = (0.0, 0.0, -1.0, 1.0, 0.0, 0.0, 0.0, -1.0, 0.0)
    write_series(
        tmp_path / "loc",
        [np.ones((3, 16, 16), dtype=np.uint16)],
        Geometry(direction=sagittal),
        ids=ids,
        series_number=1,
        description="Survey",
        image_type=("ORIGINAL", "PRIMARY", "LOCALIZER"),
    )
    write_series(
        tmp_path / "t1",
        [stored[0][:5]],
        GEOMETRY,
        ids=ids,
        series_number=3,
        description="Ax T1 non-fat-sat",
        sequence=(6.0, 2.4, 15.0),
    )
    with caplog.at_level(logging.INFO, logger="BreastAIAssistantLib.io"):
        study = dicom.read(tmp_path)
    assert study.n_phases == 3
    for k in range(3):
        np.testing.assert_array_equal(study.phase_zyx(k), modality_values(stored[k]))
    text = caplog.text
    assert "'Ph1 minus Ph0'" in text and "'VIBRANT SUB2'" in text
    assert text.count("subtraction images") == 2
    assert "'Ax T2 FSE'" in text and "T2/STIR/diffusion" in text
    assert "'Survey'" in text and "localizer" in text
    assert "'Ax T1 non-fat-sat'" in text and "not part of the DCE" in text
    assert len(study.metadata["skipped_series"]) == 4


def test_pre_contrast_series_then_multi_temporal_series(tmp_path: Path) -> None:
    ids, stored = StudyIds(), stored_phases()
    options = {"ids": ids, "rescale": (SLOPE, INTERCEPT)}
    write_series(tmp_path / "pre", stored[:1], GEOMETRY, series_number=10, **options)
    write_series(
        tmp_path / "dyn", stored[1:], GEOMETRY, series_number=11, times_s=TIMES[1:], **options
    )
    study = dicom.read(tmp_path)
    assert study.times_s == pytest.approx(TIMES)
    for k in range(3):
        np.testing.assert_array_equal(study.phase_zyx(k), modality_values(stored[k]))


def test_derived_series(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    derived = ("DERIVED", "PRIMARY", "M", "MOCO")
    write_default(tmp_path / "only_derived", image_type=derived)
    with caplog.at_level(logging.INFO, logger="BreastAIAssistantLib.io.dicom"):
        assert dicom.read(tmp_path / "only_derived").n_phases == 3
    assert "using derived/secondary series" in caplog.text
    caplog.clear()
    write_default(tmp_path / "both" / "original")
    write_default(tmp_path / "both" / "moco", image_type=derived, first_series_number=30)
    with caplog.at_level(logging.INFO, logger="BreastAIAssistantLib.io.dicom"):
        study = dicom.read(tmp_path / "both")
    assert study.metadata["SeriesNumber"] == [10, 11, 12]
    assert "skipping series 30 'Ax VIBRANT DCE': derived/secondary images" in caplog.text


#: Compressed syntaxes to try, in order; the test uses the first one no installed package decodes.
COMPRESSED = (HTJ2KLossless, JPEG2000Lossless, JPEGLSLossless)
UNDECODABLE = next((uid for uid in COMPRESSED if not get_decoder(uid).is_available), None)


@pytest.mark.skipif(UNDECODABLE is None, reason="every candidate compressed syntax is decodable")
def test_compressed_syntax_without_decoder(tmp_path: Path) -> None:
    write_default(tmp_path, transfer_syntaxes={1: UNDECODABLE})
    with pytest.raises(UnsupportedTransferSyntaxError) as info:
        dicom.read(tmp_path)
    assert UNDECODABLE.name in str(info.value) and str(UNDECODABLE) in str(info.value)
    assert "pylibjpeg" in str(info.value) and "gdcmconv" in str(info.value)


def test_empty_and_non_dicom_folders(tmp_path: Path) -> None:
    with pytest.raises(ReaderError, match=r"no readable DICOM images.*empty"):
        dicom.read(tmp_path)
    (tmp_path / "notes.txt").write_text("not an image")
    with pytest.raises(ReaderError, match=r"no readable DICOM images.*looked at 1 file"):
        dicom.read(tmp_path)
    with pytest.raises(ReaderError, match="not a folder"):
        dicom.read(tmp_path / "notes.txt")
    assert not dicom.detect(tmp_path)
    assert not dicom.detect(tmp_path / "notes.txt")


def test_one_phase_is_an_error(tmp_path: Path) -> None:
    write_series(tmp_path, stored_phases(1), GEOMETRY, ids=StudyIds())
    assert dicom.detect(tmp_path)
    with pytest.raises(StudyError, match="only one DCE phase"):
        dicom.read(tmp_path)


def test_only_skipped_series_is_an_error(tmp_path: Path) -> None:
    write_series(tmp_path, stored_phases(1), GEOMETRY, ids=StudyIds(), description="3-plane loc")
    with pytest.raises(ReaderError, match=r"no DCE series.*localizer"):
        dicom.read(tmp_path)


def test_enhanced_multiframe_is_refused(tmp_path: Path) -> None:
    extra = {"NumberOfFrames": 2, "SOPClassUID": EnhancedMRImageStorage}
    write_series(tmp_path, stored_phases(1), GEOMETRY, ids=StudyIds(), extra=extra)
    with pytest.raises(ReaderError, match="multi-frame"):
        dicom.read(tmp_path)


def test_unexplained_duplicate_positions(tmp_path: Path) -> None:
    write_series(
        tmp_path,
        stored_phases(2),
        GEOMETRY,
        ids=StudyIds(),
        temporal_positions=[],
        trigger_times=False,
    )
    with pytest.raises(ReaderError, match="tells the repeated positions apart"):
        dicom.read(tmp_path)


def test_times_unknown_when_not_increasing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write_default(tmp_path, times=(0.0, 0.0, 0.0))
    with caplog.at_level(logging.INFO, logger="BreastAIAssistantLib.io.dicom"):
        study = dicom.read(tmp_path)
    assert study.times_s is None
    assert "acquisition times unknown" in caplog.text and "not increasing" in caplog.text
    np.testing.assert_array_equal(study.phase_zyx(2), modality_values(stored_phases()[2]))


def test_non_uniform_spacing_warns(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    paths = write_default(tmp_path)
    normal = np.asarray(OBLIQUE).reshape(3, 3)[:, 2]
    for path in paths:
        ds = pydicom.dcmread(path)
        if int(ds.InstanceNumber) == SHAPE_ZYX[0]:
            moved = np.array(ds.ImagePositionPatient, dtype=float) + 0.5 * normal
            ds.ImagePositionPatient = [f"{v:.6f}" for v in moved]
            ds.save_as(path)
    with caplog.at_level(logging.WARNING):
        study = dicom.read(tmp_path)
    assert study.spacing_mm[2] == pytest.approx(2.5)
    assert "not uniform" in caplog.text


@pytest.mark.parametrize("multi_temporal", [False, True])
def test_midnight_wrap(tmp_path: Path, multi_temporal: bool) -> None:
    write_default(
        tmp_path,
        multi_temporal=multi_temporal,
        times=(0.0, 45.0, 90.0),
        start_time_s=23 * 3600 + 59 * 60 + 30.0,
        trigger_times=False,
        temporal_positions=[] if multi_temporal else None,
    )
    study = dicom.read(tmp_path)
    assert study.metadata["time_source"] == "AcquisitionTime"
    assert study.times_s == pytest.approx((0.0, 45.0, 90.0))
    np.testing.assert_array_equal(study.phase_zyx(2), modality_values(stored_phases()[2]))


def test_time_helpers() -> None:
    assert parse_time_of_day("235930.250000") == pytest.approx(86370.25)
    assert parse_time_of_day("10:01:02") == pytest.approx(36062.0)
    assert parse_time_of_day("0930") == pytest.approx(34200.0)
    assert parse_time_of_day("") is None and parse_time_of_day("25xx") is None
    assert unwrap_midnight([86370.0, 15.0, 60.0]) == [86370.0, 86415.0, 86460.0]
    assert unwrap_midnight([100.0, 160.0]) == [100.0, 160.0]


def write_breastdm(case: Path, subs: int = 3) -> list[np.ndarray]:
    ids = StudyIds()
    stored = stored_phases(4, seed=1)
    names = ["VIBRANT", "VIBRANT+C1", "VIBRANT+C2", "VIBRANT+C3"]
    for k in (2, 0, 3, 1):  # creation order must not matter
        write_series(
            case / names[k],
            [stored[k]],
            GEOMETRY,
            ids=ids,
            series_number=1,
            times_s=[70.0 * k],
            temporal_positions=[k + 1],
            rescale=(SLOPE, INTERCEPT),
        )
    for k in range(1, subs + 1):
        difference = np.clip(stored[k].astype(int) - stored[0], 0, None).astype(np.uint16)
        write_series(case / f"SUB{k}", [difference], GEOMETRY, ids=ids, times_s=[70.0 * k])
    return stored


def test_breastdm_case(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    stored = write_breastdm(tmp_path / "case")
    assert breastdm.detect(tmp_path / "case")
    assert dicom.detect(tmp_path / "case")
    with caplog.at_level(logging.INFO, logger="BreastAIAssistantLib.io.breastdm"):
        study = breastdm.read(tmp_path / "case")
    assert study.n_phases == 4
    assert study.times_s == pytest.approx((0.0, 70.0, 140.0, 210.0))
    for k in range(4):
        np.testing.assert_array_equal(study.phase_zyx(k), modality_values(stored[k]))
    assert study.metadata["phase_folders"] == ["VIBRANT", "VIBRANT+C1", "VIBRANT+C2", "VIBRANT+C3"]
    for k in range(1, 4):
        assert f"skipping SUB{k}: subtraction images" in caplog.text
    assert study.reference.GetOrigin() == pytest.approx(GEOMETRY.origin, abs=1e-5)


def test_breastdm_folder_names(tmp_path: Path) -> None:
    for name in ("vibrant", "Vibrant+C10", "VIBRANT + C2", "VIBRANT+C1", "SUB1", "notes"):
        (tmp_path / name).mkdir()
    assert breastdm.detect(tmp_path)
    order = [p.name for p in breastdm.phase_folders(tmp_path)]
    assert order == ["vibrant", "VIBRANT+C1", "VIBRANT + C2", "Vibrant+C10"]
    assert not breastdm.detect(tmp_path / "vibrant")
    write_default(tmp_path / "plain")
    assert not breastdm.detect(tmp_path / "plain")
    (tmp_path / "only_pre" / "VIBRANT").mkdir(parents=True)
    assert not breastdm.detect(tmp_path / "only_pre")
    with pytest.raises(ReaderError, match="not a BreastDM case"):
        breastdm.read(tmp_path / "only_pre")


def test_breastdm_empty_phase_folder(tmp_path: Path) -> None:
    write_breastdm(tmp_path, subs=0)
    (tmp_path / "VIBRANT+C4").mkdir()
    with pytest.raises(ReaderError, match=r"no readable DICOM images.*VIBRANT\+C4"):
        breastdm.read(tmp_path)
