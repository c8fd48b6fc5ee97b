"""Lesion crops, boxes in LPS mm, region maps, network inputs and heat maps back on the study
grid — on an oblique, anisotropic, off-origin study."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from BreastAIAssistantLib.classify.crops import (
    CropError,
    box_crop,
    box_from_lps,
    index_box,
    intensity_scale,
    lesion_crop,
    regions,
)
from BreastAIAssistantLib.classify.inputs import dmif_input, mrsm_input, receptor_input
from BreastAIAssistantLib.classify.predictor import _to_study, covered_grid
from BreastAIAssistantLib.classify.subtype import molecular_subtype, predicted_subtype
from BreastAIAssistantLib.study import DCEStudy

from conftest import make_image

SHAPE = (20, 60, 70)  # z, y, x
LESION = (slice(8, 13), slice(20, 31), slice(30, 45))


def _study(n_phases: int = 4) -> tuple[DCEStudy, sitk.Image]:
    rng = np.random.default_rng(0)
    phases = []
    for k in range(n_phases):
        a = 100 + rng.normal(0, 30, SHAPE)  # a wide intensity scale: nothing clipped
        a[LESION] += 50 * k  # the lesion enhances
        phases.append(make_image(a))
    mask = np.zeros(SHAPE, np.uint8)
    mask[LESION] = 1
    lesion = make_image(mask)
    lesion = sitk.Cast(lesion, sitk.sitkUInt8)
    return DCEStudy.from_images(phases, times_s=[0, 60, 120, 180][:n_phases]), lesion


def test_lesion_crop_covers_the_lesion_in_every_slice():
    study, lesion = _study()
    crop = lesion_crop(study, lesion, pixels=32, margin=0.25, min_side_mm=10)
    assert crop.phases.shape == (4, 5, 32, 32)  # one crop slice per lesion slice
    assert crop.mask.shape == (5, 32, 32) and crop.mask.all(axis=(1, 2)).sum() == 0
    assert crop.mask.any(axis=(1, 2)).all()
    assert crop.weights.sum() == pytest.approx(1.0)
    # the crop grid keeps the study's direction and slice spacing
    assert np.allclose(crop.grid.GetDirection(), study.reference.GetDirection())
    assert crop.grid.GetSpacing()[2] == pytest.approx(study.reference.GetSpacing()[2])
    # intensities on the study's scale: the lesion enhances by 50 per phase
    lo, hi = intensity_scale(study)
    inside = crop.phases[:, crop.mask].mean(axis=1) * (hi - lo) + lo
    assert np.allclose(np.diff(inside), 50, atol=5)


def test_box_from_lps_on_an_oblique_grid():
    study, _lesion = _study()
    ref = study.reference
    lo_idx, hi_idx = (8, 20, 30), (12, 30, 44)  # z, y, x
    corners = np.array([ref.TransformIndexToPhysicalPoint((x, y, z))
                        for x in (lo_idx[2], hi_idx[2]) for y in (lo_idx[1], hi_idx[1])
                        for z in (lo_idx[0], hi_idx[0])])
    box = [*corners.min(0), *corners.max(0)]
    lo, hi = box_from_lps(ref, box)
    # the axis-aligned LPS box of an oblique index box contains it (and a little more)
    assert np.all(lo <= np.array(lo_idx)) and np.all(hi >= np.array(hi_idx))
    assert np.all(hi - lo < np.array(SHAPE))
    with pytest.raises(CropError, match="outside"):
        box_from_lps(ref, [1e4, 1e4, 1e4, 1e4 + 5, 1e4 + 5, 1e4 + 5])
    with pytest.raises(CropError, match="six numbers"):
        box_from_lps(ref, [0, 0, 0])
    with pytest.raises(CropError, match="zero size"):
        box_from_lps(ref, [0, 0, 0, 0, 5, 5])


def test_heat_map_returns_to_the_study_lattice():
    study, lesion = _study()
    crop = lesion_crop(study, lesion, pixels=32)
    target = covered_grid(crop, study.reference)
    # the sub-grid lies on the study's voxel lattice
    idx = np.array(study.reference.TransformPhysicalPointToContinuousIndex(target.GetOrigin()))
    assert np.allclose(idx, np.round(idx), atol=1e-6)
    heat = _to_study(crop.mask.astype(np.float32), crop, target)
    full = sitk.Resample(heat, study.reference, sitk.Transform(), sitk.sitkNearestNeighbor, 0.0)
    values = sitk.GetArrayFromImage(full)
    truth = sitk.GetArrayFromImage(lesion) > 0
    # the crop's lesion mask maps back onto the lesion's voxels
    assert values[truth].mean() > 0.9
    assert values[~truth].sum() < 0.2 * values[truth].sum()


def test_regions_partition_by_distance():
    mask = np.zeros((1, 40, 40), bool)
    mask[0, 10:30, 10:30] = True
    core, rim, shell = regions(mask, (3.0, 1.0, 1.0), rim_mm=3.0, shell_mm=4.0)
    assert not np.any((core > 0) & (rim > 0))
    assert np.array_equal((core + rim) > 0, mask)
    assert rim[0, 10, 20] == 1 and core[0, 20, 20] == 1
    assert shell[0, 6, 20] == 1 and shell[0, 5, 20] == 0  # 4 mm out, not 5
    assert not np.any(shell[mask])


def test_network_inputs():
    study, lesion = _study()
    crop = lesion_crop(study, lesion, pixels=32)
    x = mrsm_input(crop)
    assert x.shape == (5, 2, 4, 32, 32)
    np.testing.assert_allclose(x[:, 1, 0], 0)  # pre minus pre
    np.testing.assert_allclose(x[:, 1, 2], x[:, 0, 2] - x[:, 0, 0], atol=1e-6)
    r = receptor_input(crop, 1, 2.0, 5.0)
    assert r.shape == (5, 4, 32, 32)
    np.testing.assert_array_equal(r[:, 0], crop.phases[1])
    box = box_crop(study, *index_box(sitk.GetArrayFromImage(lesion) > 0), pixels=64)
    d = dmif_input(box, ["phase:1", "subtraction:-1"])
    assert d.shape == (5, 2, 64, 64)
    np.testing.assert_allclose(d[:, 1], box.phases[3] - box.phases[0], atol=1e-6)
    with pytest.raises(CropError, match="post-contrast"):
        dmif_input(box, ["phase:0"])
    with pytest.raises(CropError, match="unknown sequence"):
        dmif_input(box, ["t2:1"])


def test_empty_lesion_is_an_error():
    study, lesion = _study()
    with pytest.raises(CropError, match="empty"):
        lesion_crop(study, lesion * 0)


@pytest.mark.parametrize(("er", "pr", "her2", "ki67", "cutoff", "subtype"), [
    (False, False, False, 50, 20, "triple_negative"),
    (False, False, True, 30, 20, "her2_enriched"),
    (True, False, True, 10, 20, "luminal_b_her2_positive"),
    (True, True, False, 19.9, 20, "luminal_a"),
    (True, True, False, 20.0, 20, "luminal_b_her2_negative"),  # the cut-off is "high"
    (True, True, False, 16.0, 14, "luminal_b_her2_negative"),  # St Gallen 2011 cut-off
    (True, False, False, 5, 20, "luminal_b_her2_negative"),  # PR negative
    (False, True, False, 5, 20, "luminal_a"),  # HR+ through PR
])
def test_subtype_rules(er, pr, her2, ki67, cutoff, subtype):
    assert molecular_subtype(er, pr, her2, ki67, cutoff) == subtype


def test_predicted_subtype_thresholds_probabilities():
    assert predicted_subtype(0.8, 0.7, 0.2, 10.0) == "luminal_a"
    assert predicted_subtype(0.4, 0.3, 0.5, 10.0) == "her2_enriched"
