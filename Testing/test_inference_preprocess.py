"""Model-grid resampling and the manifest's normalisation schemes."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from BreastAIAssistantLib.inference.preprocess import (
    NormalisationError,
    model_grid,
    normalise_phases,
    normalise_single,
    resample,
    to_study_grid,
)

from conftest import make_image


def test_model_grid_keeps_the_physical_extent():
    ref = make_image(np.zeros((20, 30, 40)))  # spacing (0.8, 0.7, 2.0), oblique
    grid = model_grid(ref, (1.6, 1.4, 1.0))
    assert grid.GetSize() == (20, 15, 40)
    for index in [(-0.5, -0.5, -0.5), (39.5, 29.5, 19.5)]:
        scaled = tuple((i + 0.5) * r - 0.5 for i, r in zip(index, (0.5, 0.5, 2.0), strict=True))
        np.testing.assert_allclose(
            grid.TransformContinuousIndexToPhysicalPoint(scaled),
            ref.TransformContinuousIndexToPhysicalPoint(index),
            atol=1e-6,
        )
    assert grid.GetDirection() == ref.GetDirection()


def test_linear_ramp_survives_the_round_trip():
    z, y, x = np.meshgrid(np.arange(12), np.arange(16), np.arange(20), indexing="ij")
    ref = make_image((3.0 * x + 2.0 * y + z).astype(np.float32))
    there = resample(ref, model_grid(ref, (1.6, 1.4, 1.0)))
    back = sitk.GetArrayFromImage(to_study_grid(there, ref))
    inner = (slice(2, -2), slice(2, -2), slice(2, -2))
    np.testing.assert_allclose(back[inner], sitk.GetArrayFromImage(ref)[inner], atol=1e-3)


def test_shared_first_post_keeps_subtraction_on_one_scale():
    rng = np.random.default_rng(0)
    pre = rng.uniform(0, 100, (4, 5, 6)).astype(np.float32)
    post = pre + 50
    out = normalise_phases([pre, post, post + 10], {"scheme": "shared-first-post"})
    assert out.shape == (3, 2, 4, 5, 6)
    np.testing.assert_allclose(out[0, 1], 0.0)
    scale = out[1, 0].max() - out[1, 0].min()
    # the same +50 offset on one scale: the subtraction channel is constant
    np.testing.assert_allclose(out[1, 1], out[1, 1].mean(), atol=1e-5)
    assert out[2, 0].mean() > out[1, 0].mean() and scale > 0


def test_single_image_percentile_minmax():
    array = np.arange(1000, dtype=np.float32).reshape(10, 10, 10)
    out = normalise_single(array, {"scheme": "percentile-minmax", "percentiles": [1, 99]})
    assert out.min() == 0.0 and out.max() == 1.0
    assert out[5, 0, 0] == pytest.approx((500 - 9.99) / (989.01 - 9.99), abs=1e-4)


@pytest.mark.parametrize(
    ("func", "args"),
    [(normalise_single, (np.zeros((2, 2, 2)),)),
     (normalise_phases, ([np.zeros((2, 2, 2))] * 2,))],
)  # fmt: skip
def test_unknown_scheme(func, args):
    with pytest.raises(NormalisationError, match="unknown normalisation scheme 'z-score'"):
        func(*args, {"scheme": "z-score"})
