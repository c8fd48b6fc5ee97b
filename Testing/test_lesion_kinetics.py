"""dce.lesion_kinetics: per-lesion curves, hotspot, curve type and composition on tiny studies."""

from __future__ import annotations

import json

import numpy as np
import pytest
import SimpleITK as sitk

from BreastAIAssistantLib import DCEStudy
from BreastAIAssistantLib.dce.curves import CurveType
from BreastAIAssistantLib.dce.lesion_kinetics import (
    COMPOSITION_KEYS,
    _hotspot_mask,
    lesion_kinetics,
)
from BreastAIAssistantLib.dce.maps import MapSettings, compute_maps
from BreastAIAssistantLib.dce.timing import PhaseChoice
from BreastAIAssistantLib.measure import MaskError

from conftest import make_image

TIMES = (0.0, 90.0, 180.0, 270.0)
SHAPE = (4, 6, 8)  # z, y, x
HOT = (100.0, 300.0, 250.0, 200.0)  # PE 200 % early, late -33 % of early: washout
WEAK = (100.0, 120.0, 125.0, 130.0)  # PE 20 %: not assessed
PERSISTENT_EARLY = (150.0, 160.0, 170.0, 180.0)  # PE 50..80 %, late +40: persistent


def make_case(times=TIMES) -> tuple[DCEStudy, sitk.Image]:
    """Lesion 1: 30 voxels, 3 of them hot (washout), 27 weak; lesion 3: 4 persistent voxels.

    Label 2 is unused (gaps in the labels must work). Geometry is oblique and anisotropic.
    """
    phases = np.full((len(TIMES), *SHAPE), 100.0, dtype=np.float32)
    labels = np.zeros(SHAPE, dtype=np.uint16)
    labels[0:2, 0:3, 0:5] = 1  # 30 voxels
    lesion_one = np.argwhere(labels == 1)
    hot = lesion_one[[4, 17, 29]]
    phases[(slice(None), *lesion_one.T)] = np.asarray(WEAK, dtype=np.float32)[:, None]
    phases[(slice(None), *hot.T)] = np.asarray(HOT, dtype=np.float32)[:, None]
    for n, early in enumerate(PERSISTENT_EARLY):
        z, y, x = 3, 5, 4 + n
        labels[z, y, x] = 3
        phases[:, z, y, x] = (100.0, early, early + 20.0, early + 40.0)
    study = DCEStudy.from_images([make_image(p) for p in phases], times_s=times)
    label_image = sitk.GetImageFromArray(labels)
    label_image.CopyInformation(study.reference)
    return study, label_image


def test_curves_hotspot_type_and_composition():
    study, labels = make_case()
    result = lesion_kinetics(study, labels)
    assert list(result) == [1, 3]
    one = result[1]
    assert (one.voxel_count, one.hotspot_voxel_count) == (30, 3)
    np.testing.assert_allclose(one.hotspot_curve, HOT, rtol=1e-6)
    expected_mean = (3 * np.asarray(HOT) + 27 * np.asarray(WEAK)) / 30
    np.testing.assert_allclose(one.mean_curve, expected_mean, rtol=1e-6)
    np.testing.assert_allclose(one.pe_curve_pct, [0, 200, 150, 100], atol=1e-4)
    assert one.curve_type is CurveType.WASHOUT and one.curve_type_name == "washout"
    assert one.mean_curve_type is CurveType.NOT_ASSESSED  # mean early PE 38 % < 50 %
    assert one.composition == pytest.approx(
        {"not_assessed": 0.9, "persistent": 0.0, "plateau": 0.0, "washout": 0.1}
    )
    assert one.assessed_composition == pytest.approx(
        {"persistent": 0.0, "plateau": 0.0, "washout": 1.0}
    )
    assert one.ser == pytest.approx(200 / 100)
    assert (one.peak_phase, one.time_to_peak_s) == (1, 90.0)
    assert (one.early, one.late) == (1, 3)


def test_small_lesion_hotspot_is_its_top_voxels_by_early_enhancement():
    study, labels = make_case()
    three = lesion_kinetics(study, labels)[3]
    assert (three.voxel_count, three.hotspot_voxel_count) == (4, 3)  # min 3 voxels
    top = np.asarray(PERSISTENT_EARLY[1:])
    np.testing.assert_allclose(three.hotspot_curve[1], top.mean(), rtol=1e-6)
    assert three.curve_type is CurveType.PERSISTENT
    assert three.composition["persistent"] == pytest.approx(1.0)


def test_maps_and_settings_paths_agree():
    study, labels = make_case()
    maps = compute_maps(study)
    with_maps = lesion_kinetics(study, labels, maps=maps)
    without = lesion_kinetics(study, labels, settings=MapSettings())
    for lesion_id in with_maps:
        assert with_maps[lesion_id].to_dict() == without[lesion_id].to_dict()


def test_explicit_phases_and_unknown_times():
    study, labels = make_case(times=None)
    result = lesion_kinetics(study, labels, phases=PhaseChoice(1, 2, "given"))
    one = result[1]
    assert (one.early, one.late) == (1, 2)
    assert one.times_s is None and one.time_to_peak_s is None
    assert one.curve_type is CurveType.WASHOUT  # 250 vs 300: -17 %


def test_to_dict_is_strict_json():
    study, labels = make_case()
    record = lesion_kinetics(study, labels)[1].to_dict()
    text = json.dumps(record, allow_nan=False)
    assert json.loads(text)["curve_type_name"] == "washout"
    assert set(record["composition"]) == set(COMPOSITION_KEYS)
    assert record["curve_rule"] == {"min_enhancement_pct": 50.0, "tolerance": 0.1}


def test_ser_is_none_without_late_enhancement():
    study, labels = make_case()
    arrays = [sitk.GetArrayFromImage(p) for p in study.phases]
    arrays[3][labels_array(labels) == 3] = 100.0  # late phase back to baseline
    flat = DCEStudy.from_images([make_image(a) for a in arrays], times_s=TIMES)
    record = lesion_kinetics(flat, labels)[3].to_dict()
    assert record["ser"] is None


def labels_array(labels: sitk.Image) -> np.ndarray:
    return sitk.GetArrayFromImage(labels)


def test_empty_labels_give_empty_result():
    study, labels = make_case()
    empty = sitk.Image(labels.GetSize(), sitk.sitkUInt8)
    empty.CopyInformation(labels)
    assert lesion_kinetics(study, empty) == {}


def test_labels_on_another_grid_are_refused():
    study, labels = make_case()
    moved = sitk.Image(labels)
    moved.SetOrigin((0.0, 0.0, 0.0))
    with pytest.raises(MaskError, match="not on the study grid"):
        lesion_kinetics(study, moved)


@pytest.mark.parametrize(
    ("fraction", "minimum", "message"),
    [(0.0, 3, "hotspot_fraction"), (1.5, 3, "hotspot_fraction"), (0.1, 0, "hotspot_min_voxels")],
)
def test_bad_hotspot_settings(fraction, minimum, message):
    study, labels = make_case()
    with pytest.raises(ValueError, match=message):
        lesion_kinetics(study, labels, hotspot_fraction=fraction, hotspot_min_voxels=minimum)


def test_vectorised_hotspot_matches_a_per_lesion_sort():
    rng = np.random.default_rng(7)
    codes = rng.integers(0, 5, 500)
    score = np.round(rng.normal(size=500), 1)  # ties on purpose
    counts = np.bincount(codes, minlength=5)
    mask = _hotspot_mask(codes, score, counts, 0.1, 3)
    for code in range(5):
        members = np.flatnonzero(codes == code)
        keep = min(counts[code], max(int(np.ceil(0.1 * counts[code])), 3))
        order = members[np.lexsort((members, score[members]))]
        np.testing.assert_array_equal(
            np.sort(order[-keep:]), np.flatnonzero(mask & (codes == code))
        )
