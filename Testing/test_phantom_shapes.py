"""Phantom shapes: exact diameters and volumes, lesion shapes, texture, motion."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage
from scipy.spatial.distance import pdist

from BreastAIAssistantLib.phantom.lesion_shapes import make_ball_union, make_star
from BreastAIAssistantLib.phantom.receptors import LesionTraits
from BreastAIAssistantLib.phantom.shapes import (
    BallUnion,
    StarShape,
    fibonacci_sphere,
    random_rotation,
)
from BreastAIAssistantLib.phantom.synthesis import shift_volume
from BreastAIAssistantLib.phantom.texture import powerlaw_noise, upsample_linear


def _dense_diameter(shape: StarShape, n: int = 60000) -> float:
    u = fibonacci_sphere(n)
    pts = shape.radius(u)[:, None] * u
    return float(pdist(pts[:: max(1, n // 6000)]).max())


def test_ellipsoid_diameter_and_volume_are_exact():
    rot = random_rotation(np.random.default_rng(1))
    shape = StarShape(np.zeros(3), rot, np.array([7.0, 4.0, 2.5]))
    d = shape.max_diameter()
    assert d.length_mm == pytest.approx(14.0, abs=1e-6)
    assert np.linalg.norm(d.end_a_mm - d.end_b_mm) == pytest.approx(d.length_mm)
    assert shape.volume_mm3() == pytest.approx(4 / 3 * math.pi * 7 * 4 * 2.5, rel=1e-3)
    assert shape.with_scale(2.0).max_diameter().length_mm == pytest.approx(28.0, abs=1e-6)


@pytest.mark.parametrize("margin", ["circumscribed", "irregular", "spiculated"])
def test_star_shapes_reach_their_target_diameter(margin):
    rng = np.random.default_rng(7)
    shape_name = "oval" if margin == "circumscribed" else "irregular"
    traits = LesionTraits(True, "mass", shape_name, margin, "heterogeneous", "washout", 23.0, None)
    star = make_star(traits, rng, min_feature_mm=0.8)
    d = star.max_diameter()
    assert d.length_mm == pytest.approx(23.0, abs=1e-3)
    assert _dense_diameter(star) <= d.length_mm + 1e-6  # nothing farther apart on the surface
    assert _dense_diameter(star) > d.length_mm - 0.05
    inside, _ = star.inside(np.stack([d.end_a_mm * 0.999, d.end_b_mm * 0.999]))
    assert inside.all()


def test_ball_union_diameter_is_exact():
    union = BallUnion(np.array([[0.0, 0, 0], [10, 0, 0], [3, 8, 0]]), np.array([2.0, 1.0, 3.0]))
    d = union.max_diameter()
    expected = max(10 + 2 + 1, math.hypot(3, 8) + 2 + 3, math.hypot(7, 8) + 1 + 3)
    assert d.length_mm == pytest.approx(expected)
    points = union.surface_points(2000)
    assert pdist(points).max() <= d.length_mm + 1e-9
    traits = LesionTraits(
        True, "non_mass", None, None, "clumped", "washout", 30.0, None, "segmental"
    )
    nme = make_ball_union(traits, np.random.default_rng(3), 1.0)
    assert nme.max_diameter().length_mm == pytest.approx(30.0, abs=0.01)


def test_powerlaw_noise_is_normalised_and_deterministic():
    a = powerlaw_noise((20, 24, 28), (2.0, 2.0, 2.0), np.random.default_rng(5))
    b = powerlaw_noise((20, 24, 28), (2.0, 2.0, 2.0), np.random.default_rng(5))
    assert a.dtype == np.float32 and np.array_equal(a, b)
    assert abs(float(a.mean())) < 1e-5 and float(a.std()) == pytest.approx(1.0, rel=1e-4)


def test_upsample_linear_reproduces_a_linear_ramp():
    coarse = np.add.outer(np.arange(6.0), np.arange(7.0))[None].repeat(5, 0).astype(np.float32)
    fine = upsample_linear(coarse, 2.0, (5, 9, 11), (2.0, 0.75, 1.1))
    y = np.arange(9) * 0.75 / 2.0
    x = np.arange(11) * 1.1 / 2.0
    assert np.allclose(fine[2], np.add.outer(y, x), atol=1e-5)


@pytest.mark.parametrize("shift", [(0.4, -1.3, 0.7), (-2.2, 0.0, 1.5), (0.0, 0.25, -0.6)])
def test_shift_volume_matches_scipy(shift):
    v = np.random.default_rng(0).random((9, 12, 14)).astype(np.float32)
    expected = ndimage.shift(v, shift, order=1, mode="nearest")
    assert np.allclose(shift_volume(v, shift), expected, atol=1e-5)
