"""NIfTI and NRRD label maps: types, compression, oblique geometry, grid check, bad input."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from BreastAIAssistantLib.errors import OutputError
from BreastAIAssistantLib.export import write_label_map

from conftest import OBLIQUE

ORIGIN = (-31.5, 12.25, 40.0)
SPACING = (0.8, 0.7, 2.5)


def labels(max_value: int = 2, pixel_id: int = sitk.sitkInt32) -> sitk.Image:
    array = np.zeros((4, 6, 7), np.int32)
    array[1:3, 2:4, 1:5] = 1
    array[3, 5, 6] = max_value
    image = sitk.Cast(sitk.GetImageFromArray(array), pixel_id)
    image.SetOrigin(ORIGIN)
    image.SetSpacing(SPACING)
    image.SetDirection(OBLIQUE)
    return image


@pytest.mark.parametrize(
    ("suffix", "max_value", "pixel_id", "atol"),
    [
        (".nii.gz", 2, sitk.sitkUInt8, 1e-5),  # NIfTI's sform is float32
        (".nii", 300, sitk.sitkUInt16, 1e-5),
        (".nrrd", 2, sitk.sitkUInt8, 1e-12),
        (".nrrd", 300, sitk.sitkUInt16, 1e-12),
    ],
)
def test_round_trip(
    tmp_path: Path, suffix: str, max_value: int, pixel_id: int, atol: float
) -> None:
    image = labels(max_value)
    path = write_label_map(image, tmp_path / f"labels{suffix}", reference=image)
    back = sitk.ReadImage(str(path))
    assert back.GetPixelID() == pixel_id
    np.testing.assert_array_equal(sitk.GetArrayFromImage(back), sitk.GetArrayFromImage(image))
    np.testing.assert_allclose(back.GetOrigin(), ORIGIN, rtol=0, atol=atol)
    np.testing.assert_allclose(back.GetSpacing(), SPACING, rtol=0, atol=atol)
    np.testing.assert_allclose(back.GetDirection(), OBLIQUE, rtol=0, atol=atol)
    raw = path.read_bytes()
    if suffix == ".nii.gz":
        assert raw[:2] == b"\x1f\x8b"
        assert len(gzip.decompress(raw)) > 348
    if suffix == ".nrrd":
        assert b"encoding: gzip" in raw[:1000]


def test_bad_inputs(tmp_path: Path) -> None:
    image = labels()
    with pytest.raises(OutputError, match=r"use one of \.nii\.gz, \.nii, \.nrrd"):
        write_label_map(image, tmp_path / "labels.mha")
    with pytest.raises(OutputError, match="must be integer images"):
        write_label_map(sitk.Cast(image, sitk.sitkFloat32), tmp_path / "labels.nii.gz")
    with pytest.raises(OutputError, match=r"values outside 0\.\.65535"):
        write_label_map(labels(70000), tmp_path / "labels.nii.gz")
    other = sitk.Image(image)
    other.SetSpacing((1.0, 1.0, 1.0))
    with pytest.raises(OutputError, match="not on the study's pre-contrast grid"):
        write_label_map(image, tmp_path / "labels.nii.gz", reference=other)
    assert list(tmp_path.iterdir()) == []
