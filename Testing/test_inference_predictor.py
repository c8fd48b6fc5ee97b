"""Predictors end to end with tiny scripted stand-in networks whose answers are known.

The stand-ins are not models: they threshold their input, so the expected probability map can be
computed by hand, which checks the whole chain (model grid, normalisation, windows, blending,
breast gating, back to the study grid) on an oblique study.
"""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from BreastAIAssistantLib.bundles import BundleError, read_bundle, save_bundle
from BreastAIAssistantLib.inference.postprocess import (
    lesion_grouping,
    lesion_instances,
    lesion_thresholds,
)
from BreastAIAssistantLib.inference.predictor import BreastPredictor, TumourPredictor
from BreastAIAssistantLib.study import DCEStudy

from conftest import make_image


class BrightIsBreast(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 40.0 * (x - 0.5)


class EnhancingIsTumour(torch.nn.Module):
    def forward(self, x: torch.Tensor, times_s: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return 40.0 * (x[:, 1, 1:2] - 0.5)  # phase 1 minus pre, on the shared scale


def manifest(task, network, scheme, spacing):
    return {
        "id": f"stand-in-{task}", "version": "0.0.1", "task": task, "research_demo": True,
        "network": {"name": network, "args": {}},
        "inputs": {"images": ["x"], "spacing_mm": spacing, "patch_size_zyx": [8, 16, 16],
                   "normalisation": {"scheme": scheme, "percentiles": [0.0, 100.0]}},
        "outputs": {"kind": "probability", "threshold": 0.5},
        "training": {"data": "none"}, "intended_use": "tests; not for clinical use",
        "metrics": {"dataset": "none"}, "licence": "MIT",
    }  # fmt: skip


def study_with_blobs():
    shape = (12, 40, 48)
    pre = np.zeros(shape, np.float32)
    pre[2:10, 4:36, 4:30] = 100.0  # "breast": bright, left part of the volume
    post = pre.copy()
    post[4:8, 6:12, 6:12] = 300.0  # enhancing lesion inside the breast
    post[4:8, 10:16, 38:44] = 300.0  # enhancing "heart" outside the breast
    images = [make_image(a, spacing=(2.0, 2.0, 3.0)) for a in (pre, post, post)]
    return DCEStudy.from_images(images, [0, 90, 180]), pre > 0


def test_breast_and_tumour_predictors_follow_the_stand_in_rules(tmp_path):
    study, breast_truth = study_with_blobs()
    spacing = [2.0, 2.0, 3.0]  # the study's own spacing: no interpolation blur
    breast_bundle = read_bundle(save_bundle(
        BrightIsBreast(), manifest("breast-segmentation", "Stand-in", "percentile-minmax",
                                   spacing), tmp_path / "b"))  # fmt: skip
    tumour_bundle = read_bundle(save_bundle(
        EnhancingIsTumour(), manifest("tumour-segmentation", "Stand-in", "shared-first-post",
                                      spacing), tmp_path / "t"))  # fmt: skip
    breast_prob, info = BreastPredictor(breast_bundle, device="cpu").predict(study)
    breast = sitk.GetArrayFromImage(breast_prob) >= 0.5
    assert np.array_equal(breast, breast_truth)
    assert info.windows_evaluated == info.windows_total > 0

    mask = sitk.Cast(breast_prob >= 0.5, sitk.sitkUInt8)
    tumour = TumourPredictor(tumour_bundle, device="cpu", breast_margin_mm=0.1)
    prob, info = tumour.predict(study, mask)
    labels = sitk.GetArrayFromImage(lesion_instances(prob, 0.5, min_volume_ml=0.0))
    assert info.windows_evaluated < info.windows_total  # windows without enhancement skipped
    assert labels.max() == 1  # the lesion; the enhancing blob outside the breast is gated off
    assert labels[4:8, 6:12, 6:12].all() and not labels[:, :, 30:].any()


def test_tumour_scales_average_the_maps_of_each_grid(tmp_path):
    study, breast_truth = study_with_blobs()
    spacing = [2.0, 2.0, 3.0]
    mask = study.image_like(breast_truth.astype(np.uint8))
    bundle = read_bundle(save_bundle(
        EnhancingIsTumour(), manifest("tumour-segmentation", "Stand-in", "shared-first-post",
                                      spacing), tmp_path / "t"))  # fmt: skip

    def predict(scales, **kwargs):
        predictor = TumourPredictor(bundle, device="cpu", scales=scales, **kwargs)
        prob, info = predictor.predict(study, mask)
        return sitk.GetArrayFromImage(prob), info

    one, info_one = predict((1.0,))
    fine, info_fine = predict((2.0,))  # a 1 x 1 x 1.5 mm grid: interpolated, not identical
    assert not np.allclose(one, fine, atol=1e-3)
    both, info = predict((1.0, 2.0))
    np.testing.assert_allclose(both, (one + fine) / 2, atol=1e-6)
    assert info.scales == (1.0, 2.0) and info.to_dict()["scales"] == [1.0, 2.0]
    assert info.windows_evaluated == info_one.windows_evaluated + info_fine.windows_evaluated
    seen = []
    predictor = TumourPredictor(bundle, device="cpu", scales=(1.0, 2.0))
    predictor.predict(study, mask, progress=lambda stage, f: seen.append(f))
    assert seen == sorted(seen) and max(seen) == pytest.approx(1.0) and min(seen) < 0.5

    data = manifest("tumour-segmentation", "Stand-in", "shared-first-post", spacing)
    data["inputs"]["scales"] = [2.0]
    from_manifest = read_bundle(save_bundle(EnhancingIsTumour(), data, tmp_path / "m"))
    assert TumourPredictor(from_manifest, device="cpu").scales == (2.0,)
    with pytest.raises(BundleError, match="scales"):
        TumourPredictor(bundle, device="cpu", scales=(0.0,))


def test_hysteresis_keeps_faint_rims_of_seeded_lesions_only():
    prob = np.zeros((6, 20, 30), np.float32)
    prob[1:5, 2:10, 2:10] = 0.35  # faint rim ...
    prob[2:4, 4:8, 4:8] = 0.9  # ... around a confident core
    prob[1:5, 2:10, 18:26] = 0.35  # a faint blob that never reaches the seed level
    image = make_image(prob)
    plain = sitk.GetArrayFromImage(lesion_instances(image, 0.5, 0.0))
    low = sitk.GetArrayFromImage(lesion_instances(image, 0.3, 0.0))
    seeded = sitk.GetArrayFromImage(lesion_instances(image, 0.3, 0.0, seed_threshold=0.5))
    assert plain.max() == 1 and (plain > 0).sum() == 2 * 4 * 4
    assert low.max() == 2  # the faint blob becomes a lesion without a seed
    assert seeded.max() == 1 and (seeded > 0).sum() == 4 * 8 * 8  # the whole rim, one lesion
    assert not seeded[:, :, 18:].any()
    with pytest.raises(ValueError, match="below threshold"):
        lesion_instances(image, 0.5, seed_threshold=0.3)


def test_lesion_components_close_together_are_one_lesion():
    prob = np.zeros((6, 20, 60), np.float32)
    prob[1:5, 4:12, 2:10] = 0.9  # a tumour cut in two by a 3-voxel (3 mm) vessel ...
    prob[1:5, 4:12, 13:17] = 0.8
    prob[1:5, 4:12, 40:48] = 0.9  # ... and a second focus 23 mm away
    image = make_image(prob, spacing=(1.0, 1.0, 1.0))
    grouped = sitk.GetArrayFromImage(lesion_instances(image, 0.5, 0.0, gap_mm=5.0))
    split = sitk.GetArrayFromImage(lesion_instances(image, 0.5, 0.0))  # default: no grouping
    assert split.max() == 3
    assert grouped.max() == 2 and np.array_equal(grouped > 0, split > 0)  # same voxels
    assert set(np.unique(grouped[:, :, :20])) == {0, 1}  # the two halves, the largest lesion
    assert set(np.unique(grouped[:, :, 40:])) == {0, 2}
    tight = sitk.GetArrayFromImage(lesion_instances(image, 0.5, 0.0, gap_mm=2.0))
    assert tight.max() == 3  # a 3 mm gap is more than 2 mm


def test_small_pieces_merge_beside_a_mass_that_stays_alone():
    # clumped non-mass enhancement found as three 0.027 ml pieces 3 voxels apart, 3 from a
    # 0.45 ml mass: with merge_below_ml 0.1 the pieces are one lesion, the mass another
    prob = np.zeros((8, 20, 60), np.float32)
    prob[1:7, 5:15, 2:11] = 0.95  # the mass, 540 voxels of 0.833 mm³
    for start in (14, 19, 24):
        prob[2:6, 8:12, start:start + 2] = 0.9  # 32 voxels each
    image = make_image(prob, spacing=(0.8333, 1.0, 1.0))
    pieces = sitk.GetArrayFromImage(
        lesion_instances(image, 0.5, 0.0, gap_mm=5.0, merge_below_ml=0.1))
    everything = sitk.GetArrayFromImage(lesion_instances(image, 0.5, 0.0, gap_mm=5.0))
    alone = sitk.GetArrayFromImage(lesion_instances(image, 0.5, 0.0))
    assert alone.max() == 4 and everything.max() == 1
    assert pieces.max() == 2 and np.array_equal(pieces > 0, alone > 0)
    assert set(np.unique(pieces[:, :, :12])) == {0, 1}
    assert set(np.unique(pieces[:, :, 13:])) == {0, 2}


def test_lesion_labels_land_where_the_lesions_are_on_the_whole_grid():
    # labelling works inside the box of the voxels above threshold: the result must come back to
    # the right place on the full grid, with its geometry, and an empty map gives no lesion
    prob = np.zeros((12, 30, 40), np.float32)
    prob[7:10, 20:26, 25:33] = 0.9  # the larger lesion, off-centre
    prob[9:12, 27:30, 37:40] = 0.8  # a smaller one in the last corner of the grid
    prob[5, 18, 24] = 0.95  # one voxel, below the minimum volume (the box starts there)
    image = make_image(prob, spacing=(0.7, 0.8, 1.5))
    image.SetOrigin((-3.0, 2.0, 5.0))
    labels = lesion_instances(image, 0.5, min_volume_ml=0.005)
    assert labels.GetOrigin() == image.GetOrigin() and labels.GetSpacing() == image.GetSpacing()
    assert labels.GetDirection() == image.GetDirection()
    array = sitk.GetArrayFromImage(labels)
    assert (array == 1).sum() == 3 * 6 * 8 and array[7:10, 20:26, 25:33].min() == 1
    assert (array == 2).sum() == 27 and array[9:12, 27:30, 37:40].min() == 2
    assert array[5, 18, 24] == 0 and array.max() == 2
    empty = lesion_instances(make_image(np.full((4, 5, 6), 0.2, np.float32)), 0.5)
    assert empty.GetSize() == (6, 5, 4) and not sitk.GetArrayFromImage(empty).any()


@pytest.mark.parametrize(
    ("outputs", "expected"),
    [({"threshold": 0.4, "seed_threshold": 0.6}, (0.4, 0.6)), ({}, (0.5, None))],
)
def test_lesion_thresholds_come_from_the_manifest(outputs, expected):
    assert lesion_thresholds(outputs) == expected


@pytest.mark.parametrize(
    ("outputs", "expected"),
    [({"gap_mm": 5, "merge_below_ml": 0.524}, (5.0, 0.524)), ({"threshold": 0.3}, (0.0, None))],
)
def test_lesion_grouping_comes_from_the_manifest(outputs, expected):
    assert lesion_grouping(outputs) == expected
