"""dce.ftv: functional tumour volume thresholds, neighbour rule and volume."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import SimpleITK as sitk

from BreastAIAssistantLib import DCEStudy, StudyError
from BreastAIAssistantLib.dce.ftv import FTVSettings, ftv_mask, functional_tumour_volume
from BreastAIAssistantLib.dce.timing import PhaseSelectionError

from conftest import make_image

NO_NEIGHBOURS = FTVSettings(min_neighbours=0)


def row(*values: float) -> np.ndarray:
    return np.asarray(values, np.float32).reshape(1, 1, -1)


@pytest.mark.parametrize(
    ("pe", "s0", "region", "settings", "expected"),
    [
        # P95 of S0 in the region (20, 100, 100, 100, 100) = 100 -> background threshold 60
        (row(69.9, 70, 150, 200, 300), row(100, 100, 100, 100, 20), row(1, 1, 1, 1, 1),
         NO_NEIGHBOURS, [0, 1, 1, 1, 0]),
        # voxels outside the region never count
        (row(100, 100, 100, 100), row(100, 100, 100, 100), row(1, 0, 1, 0),
         NO_NEIGHBOURS, [1, 0, 1, 0]),
        # other PE threshold
        (row(69.9, 70, 150), row(100, 100, 100), row(1, 1, 1),
         FTVSettings(min_neighbours=0, pe_threshold_pct=100), [0, 0, 1]),
        # "region" reference: P95 over (100, 100) = 100 -> threshold 60, both pass
        (row(100, 100, 0, 0), row(100, 100, 400, 400), row(1, 1, 0, 0),
         NO_NEIGHBOURS, [1, 1, 0, 0]),
        # "volume" reference: P95 over (100, 100, 400, 400) = 400 -> threshold 240, none pass
        (row(100, 100, 0, 0), row(100, 100, 400, 400), row(1, 1, 0, 0),
         FTVSettings(min_neighbours=0, background_reference="volume"), [0, 0, 0, 0]),
        # background fraction 0.9 of P95 (= 100) -> threshold 90
        (row(100, 100, 100), row(89, 90, 100), row(1, 1, 1),
         FTVSettings(min_neighbours=0, background_fraction=0.9), [0, 1, 1]),
    ],
)  # fmt: skip
def test_thresholds_by_hand(pe, s0, region, settings, expected):
    result = ftv_mask(pe, s0, region, (1.0, 1.0, 1.0), settings)
    assert result.mask_zyx.dtype == np.uint8
    np.testing.assert_array_equal(result.mask_zyx.ravel(), expected)
    assert result.voxel_count == sum(expected)


def pattern() -> np.ndarray:
    """5x5x5 selection: a 2x2x2 cube, a 3-voxel line and an isolated voxel."""
    selected = np.zeros((5, 5, 5), bool)
    selected[1:3, 1:3, 1:3] = True  # each cube voxel has 7 selected neighbours
    selected[4, 0, 0:3] = True  # line: ends 1 neighbour, middle 2
    selected[4, 4, 4] = True  # isolated: 0 (its neighbour (3, 3, 3) is not selected)
    return selected


@pytest.mark.parametrize(
    ("min_neighbours", "expected_count"),
    [(0, 12), (1, 11), (2, 9), (4, 8), (7, 8), (8, 0)],
)
def test_neighbour_rule_on_a_hand_made_pattern(min_neighbours, expected_count):
    selected = pattern()
    pe = np.where(selected, 200.0, 0.0).astype(np.float32)
    s0 = np.full(selected.shape, 100, np.float32)
    region = np.ones(selected.shape, np.uint8)
    result = ftv_mask(pe, s0, region, (1, 1, 1), FTVSettings(min_neighbours=min_neighbours))
    assert result.voxel_count == expected_count
    if min_neighbours == 4:
        np.testing.assert_array_equal(result.mask_zyx[1:3, 1:3, 1:3], 1)


def test_neighbours_outside_the_region_do_not_count():
    selected = pattern()
    pe = np.where(selected, 200.0, 0.0).astype(np.float32)
    s0 = np.full(selected.shape, 100, np.float32)
    region = np.ones(selected.shape, np.uint8)
    region[1, 1, 1] = 0  # the other 7 cube voxels keep 6 selected neighbours each
    assert ftv_mask(pe, s0, region, (1, 1, 1), FTVSettings(min_neighbours=6)).voxel_count == 7
    assert ftv_mask(pe, s0, region, (1, 1, 1), FTVSettings(min_neighbours=7)).voxel_count == 0


@pytest.mark.parametrize(
    ("spacing", "expected_ml"),
    [((1.0, 1.0, 1.0), 0.008), ((0.5, 0.8, 2.0), 0.0064), ((0.7, 0.7, 1.5), 8 * 0.735e-3)],
)
def test_volume_ml_from_anisotropic_spacing(spacing, expected_ml):
    selected = pattern()
    pe = np.where(selected, 200.0, 0.0).astype(np.float32)
    result = ftv_mask(pe, np.full(pe.shape, 100, np.float32), np.ones(pe.shape), spacing)
    assert result.voxel_count == 8  # the cube, with the default 4 neighbours
    assert result.volume_ml == pytest.approx(expected_ml)
    assert result.to_dict()["settings"]["min_neighbours"] == 4


def test_empty_region_gives_zero(caplog):
    with caplog.at_level(logging.WARNING, logger="BreastAIAssistantLib.dce.ftv"):
        result = ftv_mask(row(100), row(100), row(0), (1, 1, 1))
    assert (result.voxel_count, result.volume_ml) == (0, 0.0)
    assert "empty" in caplog.text


def test_study_level_ftv_uses_ispy_early_phase():
    shape = (5, 5, 5)
    s0 = np.full(shape, 100, np.float32)
    early = s0.copy()
    early[pattern()] = 200  # PE 100 % on the pattern at 150 s
    late = early.copy()
    early_90 = s0 + 10  # PE 10 % at 90 s: would give an empty FTV
    images = [make_image(a) for a in (s0, early_90, early, late)]
    study = DCEStudy.from_images(images, [0, 90, 150, 450])
    region = sitk.Image(images[0].GetSize(), sitk.sitkUInt8) + 1
    region.CopyInformation(images[0])
    result = functional_tumour_volume(study, region)
    assert (result.early_phase, result.voxel_count) == (2, 8)
    assert result.volume_ml == pytest.approx(8 * 0.8 * 0.7 * 2.0 / 1000)
    assert functional_tumour_volume(study, np.ones(shape), early=1).voxel_count == 0
    pe = np.where(pattern(), 80.0, 0.0).astype(np.float32)
    assert functional_tumour_volume(study, np.ones(shape), pe=pe).voxel_count == 8


def test_study_level_errors():
    study = DCEStudy.from_images([make_image(np.full((3, 3, 3), 100.0))] * 2)
    with pytest.raises(StudyError, match="has shape"):
        functional_tumour_volume(study, np.ones((2, 2, 2)))
    other = make_image(np.ones((3, 3, 3)), origin=(0, 0, 0))
    with pytest.raises(StudyError, match="not on the study's pre-contrast grid"):
        functional_tumour_volume(study, other)
    with pytest.raises(PhaseSelectionError, match="out of range"):
        functional_tumour_volume(study, np.ones((3, 3, 3)), early=2)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"min_neighbours": 27}, "min_neighbours must be 0..26"),
        ({"background_reference": "box"}, "background_reference"),
        ({"background_percentile": 0}, "background_percentile"),
    ],
)
def test_settings_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        FTVSettings(**kwargs)
