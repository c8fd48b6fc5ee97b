"""report.orientation / planes / keyimages: radiological display whatever the storage order."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from BreastAIAssistantLib import DCEStudy
from BreastAIAssistantLib.dce.maps import compute_maps
from BreastAIAssistantLib.measure import measure_lesions
from BreastAIAssistantLib.phantom import make_simple_study
from BreastAIAssistantLib.report.keyimages import (
    axial_image,
    diameter_image,
    mip_image,
    mip_overlays,
    robust_window,
)
from BreastAIAssistantLib.report.orientation import display_axes, edge_letters
from BreastAIAssistantLib.report.planes import (
    grid_plane,
    sample_plane,
    segment_plane,
    segment_plane_vectors,
)

from conftest import OBLIQUE, make_image, rotation_zyx_deg

LPS = (1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0)
RAS = (-1.0, 0, 0, 0, -1.0, 0, 0, 0, 1.0)
RADIOLOGICAL = {"left": "R", "right": "L", "top": "A", "bottom": "P"}


@pytest.mark.parametrize(
    ("direction", "flip_rows", "flip_cols"),
    [
        (LPS, False, False),
        (RAS, True, True),
        ((-1.0, 0, 0, 0, 1.0, 0, 0, 0, -1.0), False, True),  # RPI
        (OBLIQUE, False, False),
        (tuple((np.diag([-1.0, -1.0, 1.0]) @ np.reshape(OBLIQUE, (3, 3))).ravel()), True, True),
    ],
    ids=["LPS", "RAS", "RPI", "oblique-LPS", "oblique-RAS"],
)
def test_axial_flips_follow_the_direction(direction, flip_rows, flip_cols):
    axes = display_axes(direction)
    assert (axes.view, axes.slice_axis, axes.row_axis, axes.col_axis) == ("axial", 2, 1, 0)
    assert (axes.flip_rows, axes.flip_cols) == (flip_rows, flip_cols)
    assert axes.letters(direction) == RADIOLOGICAL


def test_tilt_is_reported_for_an_oblique_grid():
    assert display_axes(LPS).tilt_deg == pytest.approx(0.0)
    tilted = display_axes(rotation_zyx_deg(15.0, 0.0, 0.0))
    assert tilted.tilt_deg == pytest.approx(15.0)


def test_permuted_storage_picks_the_axis_closest_to_superior():
    # i: anterior -> posterior, j: superior -> inferior, k: right -> left (a sagittal stack)
    direction = np.column_stack([[0, 1, 0], [0, 0, -1], [1, 0, 0]]).astype(float)
    axes = display_axes(direction.ravel())
    assert (axes.slice_axis, axes.row_axis, axes.col_axis) == (1, 0, 2)
    assert (axes.flip_rows, axes.flip_cols) == (False, False)
    assert axes.letters(direction) == RADIOLOGICAL


def test_coronal_and_sagittal_views():
    coronal = display_axes(LPS, "coronal")
    assert (coronal.slice_axis, coronal.row_axis, coronal.col_axis) == (1, 2, 0)
    assert coronal.flip_rows and not coronal.flip_cols  # superior at the top
    assert coronal.letters(LPS) == {"left": "R", "right": "L", "top": "S", "bottom": "I"}
    sagittal = display_axes(LPS, "sagittal")
    assert sagittal.letters(LPS) == {"left": "A", "right": "P", "top": "S", "bottom": "I"}


def test_bad_view_and_axis():
    with pytest.raises(ValueError, match="unknown view"):
        display_axes(LPS, "oblique")
    with pytest.raises(ValueError, match="slice_axis"):
        display_axes(LPS, slice_axis=3)
    with pytest.raises(ValueError, match="singular"):
        display_axes((0.0,) * 9)


@pytest.mark.parametrize("direction", [LPS, RAS, OBLIQUE], ids=["LPS", "RAS", "oblique"])
def test_slice_pixel_of_and_sampled_plane_agree(direction):
    array = np.random.default_rng(1).normal(size=(5, 6, 7)).astype(np.float32)
    image = make_image(array, direction=direction)
    axes = display_axes(direction)
    display = axes.slice_zyx(array, 3)
    plane = grid_plane(image, axes, 3)
    np.testing.assert_array_equal(sample_plane(image, plane), display)
    for x, y in [(0, 0), (6, 5), (2, 4)]:
        row, col = axes.pixel_of(np.array([x, y, 3.0]), image.GetSize()).astype(int)
        assert display[row, col] == array[3, y, x]
        rc, distance = plane.to_pixel(image.TransformIndexToPhysicalPoint((x, y, 3)))
        np.testing.assert_allclose(rc, (row, col), atol=1e-9)
        assert abs(distance) < 1e-9
    assert edge_letters(plane.right, plane.down) == RADIOLOGICAL


@pytest.mark.parametrize(
    "b",
    [(30.0, 4.0, 2.0), (3.0, 2.0, 25.0), (0.0, 0.0, 20.0), (10.0, -12.0, -7.0)],
    ids=["horizontal", "steep", "vertical", "oblique"],
)
def test_segment_plane_contains_the_whole_segment(b):
    a = np.array([1.0, -2.0, 3.0])
    b = a + np.asarray(b)
    plane = segment_plane(a, b, pixel_mm=0.5, fov_mm=80.0)
    rc, distance = plane.to_pixel(np.stack([a, b]))
    np.testing.assert_allclose(distance, 0.0, atol=1e-9)
    assert np.all((rc >= 0) & (rc <= np.asarray(plane.shape_rc) - 1))
    normal = segment_plane_vectors(a, b)
    assert abs(normal @ (b - a)) < 1e-9
    if plane.tilt_from("axial") < 45.0:  # a near-horizontal diameter: near-axial plane
        assert plane.letters == RADIOLOGICAL
    else:  # steep: coronal-like, superior at the top, patient right on the left
        assert plane.letters["top"] == "S" and plane.letters["left"] in "RA"


def test_robust_window():
    values = np.concatenate([np.zeros(995), np.full(5, 1e6), [np.nan]])
    low, high = robust_window(values, (1.0, 99.0))
    assert (low, high) == (0.0, 1.0)  # flat after the outliers are cut: widened by one
    assert robust_window(np.array([np.nan])) == (0.0, 1.0)


def _flipped_twin(study: DCEStudy, labels: sitk.Image) -> tuple[DCEStudy, sitk.Image]:
    """The same physical study stored RAS: x and y reversed, origin at the far corner."""
    size = study.reference.GetSize()
    origin = study.reference.TransformIndexToPhysicalPoint((size[0] - 1, size[1] - 1, 0))

    def flip(image: sitk.Image) -> sitk.Image:
        twin = sitk.GetImageFromArray(sitk.GetArrayFromImage(image)[:, ::-1, ::-1].copy())
        twin.SetSpacing(image.GetSpacing())
        twin.SetOrigin(origin)
        twin.SetDirection(RAS)
        return twin

    twin = DCEStudy.from_images([flip(p) for p in study.phases], times_s=study.times_s)
    return twin, flip(labels)


@pytest.fixture(scope="module")
def twins():
    study = make_simple_study(seed=2)
    tissue = study.metadata["labels_zyx"]
    names = study.metadata["tissues"]
    lesions = np.zeros(tissue.shape, np.uint8)
    lesions[tissue == names.index("malignant")] = 1
    lesions[tissue == names.index("benign")] = 2
    labels = study.image_like(lesions)
    twin, twin_labels = _flipped_twin(study, labels)
    report = measure_lesions(labels).to_dict()  # LPS millimetres: valid for both storages
    return [(s, compute_maps(s), lab) for s, lab in ((study, labels), (twin, twin_labels))], report


def test_flipped_storage_gives_the_same_key_images(twins):
    (_, maps, labels), (twin, twin_maps, twin_labels) = twins[0]
    assert twin.describe()["orientation"] == "RAS"
    for lesion in twins[1]["lesions"]:
        early = maps.phases.early
        first = axial_image(maps[f"sub_{early}"], labels, lesion, early)
        second = axial_image(twin_maps[f"sub_{early}"], twin_labels, lesion, early)
        np.testing.assert_array_equal(first.pixels, second.pixels)
        np.testing.assert_array_equal(first.outlines[0].mask, second.outlines[0].mask)
        np.testing.assert_allclose(first.segments[0].a_rc, second.segments[0].a_rc, atol=1e-6)
        assert first.plane.letters == second.plane.letters == RADIOLOGICAL
        a = diameter_image(maps[f"sub_{early}"], labels, lesion, early)
        b = diameter_image(twin_maps[f"sub_{early}"], twin_labels, lesion, early)
        np.testing.assert_allclose(a.pixels, b.pixels, rtol=1e-4, atol=1e-3)
        assert max(a.info["endpoint_distance_mm"]) < 1e-6
        mips = []
        for m, lab in ((maps, labels), (twin_maps, twin_labels)):
            axes, overlays = mip_overlays(m["mip"], lab, 2)
            mips.append(mip_image(m["mip"], axes, overlays, int(lesion["id"])))
        np.testing.assert_array_equal(mips[0].pixels, mips[1].pixels)
        np.testing.assert_array_equal(mips[0].outlines[-1].mask, mips[1].outlines[-1].mask)
        assert mips[0].plane.letters == RADIOLOGICAL


def test_patient_left_lesion_is_on_the_image_right(twins):
    (_, maps, labels), _ = twins[0]
    _, overlays = mip_overlays(maps["mip"], labels, 2)
    for lesion in twins[1]["lesions"]:
        cols = np.nonzero(overlays[int(lesion["id"])])[1]
        on_right = cols.mean() > overlays[1].shape[1] / 2
        assert on_right == (lesion["centroid_lps_mm"][0] > 0)  # +x = patient left in LPS
