"""Small-lesion growth on the native grid (inference/refine.py)."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage

from BreastAIAssistantLib.inference.refine import (
    GrowthSettings,
    grow_small_lesions,
    grow_small_lesions_array,
    growth_settings,
)
from BreastAIAssistantLib.measure.diameter import candidate_points_index, farthest_pair
from BreastAIAssistantLib.study import DCEStudy

SPACING_XYZ = (0.7, 0.7, 1.0)
SHAPE_ZYX = (40, 80, 80)


def _ball(centre_zyx, radius_mm, shape=SHAPE_ZYX, spacing_xyz=SPACING_XYZ):
    grids = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
    terms = zip(grids, centre_zyx, spacing_xyz[::-1], strict=True)
    sq = sum(((g - c) * s) ** 2 for g, c, s in terms)
    return sq <= radius_mm**2


def _study(truth_balls, background=50.0, lesion=600.0, blur_mm=0.8, n_post=2, rng_seed=0):
    """Pre-contrast flat; post phases enhance inside the balls, blurred like a real acquisition."""
    rng = np.random.default_rng(rng_seed)
    enhancement = np.full(SHAPE_ZYX, background, np.float32)
    for ball in truth_balls:
        enhancement[ball] = lesion
    sigma = [blur_mm / s for s in SPACING_XYZ[::-1]]
    enhancement = ndimage.gaussian_filter(enhancement, sigma)
    pre = np.full(SHAPE_ZYX, 300.0, np.float32)
    phases = [pre + rng.normal(0, 5, SHAPE_ZYX).astype(np.float32)]
    for k in range(n_post):
        phases.append(pre + enhancement * (0.8 + 0.2 * k) + rng.normal(0, 5, SHAPE_ZYX))
    images = []
    for array in phases:
        image = sitk.GetImageFromArray(array.astype(np.float32))
        image.SetSpacing(SPACING_XYZ)
        images.append(image)
    return DCEStudy.from_images(images)


def _diameter(mask):
    points = candidate_points_index(mask) * np.asarray(SPACING_XYZ)  # (x, y, z) indices
    return farthest_pair(points).length_mm


def test_under_segmented_small_lesion_grows_to_its_half_maximum_boundary():
    truth = _ball((20, 40, 40), 3.5)  # a 7 mm T1b lesion
    study = _study([truth])
    predicted = _ball((20, 40, 40), 2.2)  # the network's short contour
    labels = predicted.astype(np.uint16)
    breast = np.ones(SHAPE_ZYX, bool)
    before = _diameter(predicted)
    grown = grow_small_lesions_array(labels, study, breast, GrowthSettings(0.5, 2.0, 10.0))
    after = _diameter(grown == 1)
    assert before < 5.0  # measured as T1a before
    assert abs(after - _diameter(truth)) <= max(SPACING_XYZ)  # within a voxel of the truth
    assert (grown[predicted] == 1).all()  # never shrinks
    assert labels.max() == 1 and (labels == predicted).all()  # the input is not modified


def test_reach_limits_growth_and_large_lesions_stay_as_drawn():
    truth = _ball((20, 40, 40), 3.5)
    study = _study([truth])
    predicted = _ball((20, 40, 40), 2.2).astype(np.uint16)
    breast = np.ones(SHAPE_ZYX, bool)
    short = grow_small_lesions_array(predicted, study, breast, GrowthSettings(0.5, 0.5, 10.0))
    dist = ndimage.distance_transform_edt(predicted == 0, sampling=SPACING_XYZ[::-1])
    assert (dist[short == 1] <= 0.5).all()
    # Below a 4 mm gate the lesion (about 4.2 mm) does not grow at all.
    gated = grow_small_lesions_array(predicted, study, breast, GrowthSettings(0.5, 2.0, 4.0))
    assert (gated == predicted).all()


def test_growth_stays_in_the_breast_and_out_of_other_lesions():
    a = _ball((20, 40, 30), 3.5)
    b = _ball((20, 40, 38), 3.5)  # touching neighbour
    study = _study([a, b])
    labels = np.zeros(SHAPE_ZYX, np.uint16)
    labels[_ball((20, 40, 30), 2.2)] = 1
    labels[_ball((20, 40, 38), 2.2)] = 2
    breast = np.ones(SHAPE_ZYX, bool)
    breast[:, :, 36:] = False  # b's predicted voxels lie outside the breast (kept, never grown)
    grown = grow_small_lesions_array(labels, study, breast, GrowthSettings(0.5, 3.0, 10.0))
    assert set(np.unique(grown)) == {0, 1, 2}  # never merged
    new = (grown > 0) & (labels == 0)
    assert not (new & ~breast).any()
    assert (grown[labels == 2] > 0).all() and (grown[labels == 1] > 0).all()


def test_renumbered_by_volume_and_image_wrapper():
    big, small = _ball((20, 40, 20), 3.0), _ball((20, 40, 60), 3.5)
    study = _study([big, small])
    labels = np.zeros(SHAPE_ZYX, np.uint16)
    labels[big] = 1  # drawn in full
    labels[_ball((20, 40, 60), 1.5)] = 2  # much smaller than 1
    image = sitk.GetImageFromArray(labels)
    image.SetSpacing(SPACING_XYZ)
    breast = sitk.GetImageFromArray(np.ones(SHAPE_ZYX, np.uint8))
    breast.CopyInformation(image)
    out = grow_small_lesions(image, study, breast, GrowthSettings(0.5, 3.0, 10.0))
    array = sitk.GetArrayFromImage(out)
    assert out.GetSpacing() == image.GetSpacing()
    sizes = np.bincount(array.ravel())[1:]
    assert list(sizes) == sorted(sizes, reverse=True)
    assert grow_small_lesions(image, study, breast, None) is image


def test_a_lesion_no_brighter_than_its_surroundings_does_not_grow():
    truth = _ball((20, 40, 40), 3.5)
    study = _study([truth], background=600.0, lesion=600.0)
    predicted = _ball((20, 40, 40), 2.2).astype(np.uint16)
    grown = grow_small_lesions_array(predicted, study, np.ones(SHAPE_ZYX, bool),
                                     GrowthSettings(0.5, 3.0, 10.0))  # fmt: skip
    assert (grown == predicted).all()


def test_settings_parse_validate_and_read_from_a_manifest():
    assert GrowthSettings.parse("0.5/2/10") == GrowthSettings(0.5, 2.0, 10.0)
    assert GrowthSettings(0.5, 2.0, 10.0).spec() == "0.5/2/10"
    for bad in ("0.5/2", "1.5/2/10", "0.5/0/10", "x/2/10"):
        with pytest.raises(ValueError):
            GrowthSettings.parse(bad)
    assert growth_settings({}) is None
    assert growth_settings({"grow": {"fraction": 0.4, "reach_mm": 1.5, "below_mm": 10}}) == (
        GrowthSettings(0.4, 1.5, 10.0)
    )
