"""Exact diameters: farthest pair, voxel conventions, analytic shapes on oblique grids."""

from __future__ import annotations

import math

import numpy as np
import pytest
import SimpleITK as sitk
from scipy.spatial.distance import pdist

from BreastAIAssistantLib.measure import Grid, LesionGeometry, farthest_pair, measure_lesions
from BreastAIAssistantLib.measure.diameter import candidate_points_index, perpendicular_extents

from conftest import OBLIQUE, rotation_zyx_deg

SPACING = (0.7, 0.7, 1.5)
VOXEL_DIAGONAL = math.sqrt(0.7**2 + 0.7**2 + 1.5**2)
CENTRE_LPS = np.array([3.1, -20.4, 15.7])
IDENTITY = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)


def shape_image(inside, size_xyz, spacing=SPACING, direction=OBLIQUE) -> sitk.Image:
    """A mask whose voxel centres ``p`` (LPS) satisfy ``inside(p - CENTRE_LPS)``.

    The grid is centred on ``CENTRE_LPS`` so that the shape fits whatever the rotation.
    """
    d = np.asarray(direction, dtype=float).reshape(3, 3)
    size, spacing = np.asarray(size_xyz), np.asarray(spacing, dtype=float)
    origin = CENTRE_LPS - d @ ((size - 1) / 2 * spacing)
    k, j, i = np.indices(size[::-1])
    grid_mm = np.stack([i, j, k], axis=-1).reshape(-1, 3) * spacing
    lps = grid_mm @ d.T + origin
    mask = inside(lps - CENTRE_LPS).reshape(size[::-1])
    image = sitk.GetImageFromArray(mask.astype(np.uint8))
    image.SetSpacing(tuple(spacing))
    image.SetOrigin(tuple(origin))
    image.SetDirection(tuple(direction))
    return image


def ellipsoid(semi_axes, rotation):
    return lambda q: (((q @ rotation) / np.asarray(semi_axes)) ** 2).sum(axis=1) <= 1.0


def box(sides, rotation):
    return lambda q: np.all(np.abs(q @ rotation) <= np.asarray(sides) / 2.0, axis=1)


ROTATIONS = [
    np.asarray(rotation_zyx_deg(*angles)).reshape(3, 3)
    for angles in ((0, 0, 0), (31, -17, 58), (-64, 22, 11), (90, 45, -30))
]


def test_farthest_pair_matches_brute_force_and_degenerate_sets():
    rng = np.random.default_rng(7)
    for points in (rng.normal(size=(500, 3)) * [30, 10, 5], rng.normal(size=(300, 2))):
        pair = farthest_pair(points)
        assert pair.length_mm == pytest.approx(pdist(points).max(), rel=1e-12)
        assert np.linalg.norm(pair.b - pair.a) == pytest.approx(pair.length_mm)
    line = np.outer(np.linspace(-3, 5, 40), [1.0, 2.0, -2.0])  # collinear: length 8 * 3
    assert farthest_pair(line).length_mm == pytest.approx(24.0)
    flat = np.c_[rng.normal(size=(200, 2)), np.zeros(200)]  # coplanar in 3-D
    assert farthest_pair(flat).length_mm == pytest.approx(pdist(flat).max())
    assert farthest_pair(np.array([[1.0, 2.0, 3.0]])).length_mm == 0.0
    with pytest.raises(ValueError, match="non-empty"):
        farthest_pair(np.zeros((0, 3)))


@pytest.mark.parametrize("convention", ["centres", "corners"])
def test_candidate_points_give_the_hull_of_all_voxels(convention):
    rng = np.random.default_rng(3)
    mask = rng.random((9, 11, 13)) < 0.3
    spacing = np.array([0.7, 0.8, 1.5])
    z, y, x = np.nonzero(mask)
    points = np.c_[x, y, z].astype(float)
    if convention == "corners":
        corners = np.array(np.meshgrid(*[[-0.5, 0.5]] * 3)).reshape(3, -1).T
        points = (points[:, None, :] + corners[None]).reshape(-1, 3)
    expected = pdist(points * spacing).max()
    found = farthest_pair(candidate_points_index(mask, convention) * spacing).length_mm
    assert found == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("rotation", ROTATIONS)
def test_rotated_ellipsoid_on_oblique_anisotropic_grid(rotation):
    """Semi-axes 12, 7, 5 mm: max diameter 24 mm, endpoints at ±12 mm along the major axis.

    Voxel-centre convention: the measured value lies in [24 - voxel diagonal, 24].
    """
    image = shape_image(ellipsoid((12.0, 7.0, 5.0), rotation), (56, 56, 28))
    lesion = measure_lesions(image).lesions[0]
    diameter = lesion["max_diameter_mm"]
    assert 24.0 - VOXEL_DIAGONAL <= diameter <= 24.0 + 1e-9
    tips = [CENTRE_LPS + 12.0 * rotation[:, 0], CENTRE_LPS - 12.0 * rotation[:, 0]]
    for end in np.asarray(lesion["endpoints_lps_mm"]):
        assert min(np.linalg.norm(end - tip) for tip in tips) < 2.0
    second, third = lesion["perpendicular_diameters_mm"]
    assert 14.0 - VOXEL_DIAGONAL <= second <= 14.0 + 0.1
    assert abs(third - 10.0) <= VOXEL_DIAGONAL
    assert lesion["volume_ml"] == pytest.approx(4 / 3 * math.pi * 12 * 7 * 5 / 1000, rel=0.03)
    assert np.allclose(lesion["centroid_lps_mm"], CENTRE_LPS, atol=0.1)
    assert 0.7 <= lesion["max_diameter_uncertainty_mm"] <= VOXEL_DIAGONAL + 1e-9


@pytest.mark.parametrize("rotation", ROTATIONS[1:])
def test_rotated_box_space_diagonal(rotation):
    sides = np.array([20.0, 12.0, 6.0])
    image = shape_image(box(sides, rotation), (60, 60, 30))
    diameter = measure_lesions(image).lesions[0]["max_diameter_mm"]
    assert np.linalg.norm(sides) - 2 * VOXEL_DIAGONAL <= diameter <= np.linalg.norm(sides) + 1e-9


def test_grid_aligned_box_is_exact_in_both_conventions():
    """n voxels per axis: centres span (n - 1) x spacing, voxel boxes n x spacing."""
    mask = np.zeros((8, 20, 30), dtype=bool)
    mask[2:6, 3:17, 5:25] = True  # 4 x 14 x 20 voxels (z, y, x)
    grid = Grid(np.array(SPACING), np.zeros(3), np.asarray(OBLIQUE).reshape(3, 3), (30, 20, 8))
    lesion = LesionGeometry(mask, (0, 0, 0), grid)
    counts_xyz = np.array([20, 14, 4])
    assert lesion.diameter.length_mm == pytest.approx(np.linalg.norm((counts_xyz - 1) * SPACING))
    assert lesion.diameter_with("corners") == pytest.approx(np.linalg.norm(counts_xyz * SPACING))


def test_equals_simpleitk_feret_diameter_on_an_oblique_grid():
    image = shape_image(ellipsoid((9.0, 6.0, 4.0), ROTATIONS[2]), (40, 40, 20))
    stats = sitk.LabelShapeStatisticsImageFilter()
    stats.ComputeFeretDiameterOn()
    stats.Execute(image)
    diameter = measure_lesions(image).lesions[0]["max_diameter_mm"]
    assert diameter == pytest.approx(stats.GetFeretDiameter(1), abs=1e-9)


def test_axial_diameter_is_the_in_plane_maximum():
    """A cigar along S-I: 24 mm in 3-D but at most 14 mm on any axial slice."""
    along_si = np.array([[0, 0, 1], [0, 1, 0], [1, 0, 0]], dtype=float)  # columns: axes
    image = shape_image(
        ellipsoid((12.0, 7.0, 5.0), along_si), (30, 30, 20), (0.7, 0.7, 1.5), IDENTITY
    )
    lesion = measure_lesions(image).lesions[0]
    assert 14.0 - 1.0 <= lesion["axial_diameter_mm"] <= 14.0
    assert lesion["max_diameter_mm"] > 22.0
    ends = np.asarray(lesion["axial_endpoints_lps_mm"])
    assert ends[0, 2] == pytest.approx(ends[1, 2])  # both on one axial slice
    assert np.linalg.norm(ends[1] - ends[0]) == pytest.approx(lesion["axial_diameter_mm"])


def test_single_voxel_and_flat_lesions():
    grid = Grid(np.array(SPACING), np.zeros(3), np.eye(3), (5, 5, 5))
    one = np.zeros((3, 3, 3), dtype=bool)
    one[1, 1, 1] = True
    lesion = LesionGeometry(one, (0, 0, 0), grid)
    assert lesion.diameter.length_mm == 0.0 and lesion.axial.length_mm == 0.0
    assert lesion.perpendicular.second_mm == 0.0
    assert lesion.diameter_uncertainty_mm == pytest.approx(VOXEL_DIAGONAL)
    flat = np.zeros((3, 6, 6), dtype=bool)
    flat[1, 1:5, 0:6] = True  # one slice, 4 x 6 voxels
    lesion = LesionGeometry(flat, (0, 0, 0), grid)
    assert lesion.diameter.length_mm == pytest.approx(math.hypot(5 * 0.7, 3 * 0.7))
    assert lesion.perpendicular.third_mm == pytest.approx(0.0, abs=1e-9)


def test_perpendicular_extents_of_a_point_box():
    """Across a 10 x 4 x 2 box's long axis: the 4 x 2 rectangle's diagonal, then its width
    perpendicular to that diagonal (2ab / diagonal)."""
    corners = np.array(np.meshgrid([0, 10], [0, 4], [0, 2])).reshape(3, -1).T.astype(float)
    extents = perpendicular_extents(corners, np.array([1.0, 0.0, 0.0]))
    assert extents.second_mm == pytest.approx(math.hypot(4, 2))
    assert extents.third_mm == pytest.approx(2 * 4 * 2 / math.hypot(4, 2))
    assert abs(extents.v @ extents.w) < 1e-12 and abs(extents.w[0]) < 1e-12
