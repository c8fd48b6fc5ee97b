"""dce.maps: compute_maps end to end on a small oblique study, and write_maps."""

from __future__ import annotations

import json

import numpy as np
import pytest
import SimpleITK as sitk

from BreastAIAssistantLib import DCEStudy, OutputError
from BreastAIAssistantLib.dce import kernel
from BreastAIAssistantLib.dce.curves import curve_type_map
from BreastAIAssistantLib.dce.enhancement import (
    peak_kinetics,
    percent_enhancement,
    signal_enhancement_ratio,
)
from BreastAIAssistantLib.dce.maps import (
    MAP_CATALOGUE,
    MapSettings,
    compute_maps,
    describe_map,
    write_maps,
)
from BreastAIAssistantLib.dce.timing import PhaseSelectionError

from conftest import make_image

TIMES = [0, 90, 180, 270, 360, 450]
EXPECTED = [
    "sub_1", "sub_2", "sub_3", "sub_4", "sub_5", "pe", "ser", "peak_enhancement",
    "time_to_peak", "wash_in", "washout", "curve_type", "mip",
]  # fmt: skip
SHAPE = (4, 5, 6)  # z, y, x


def make_study(times=TIMES, seed=3) -> DCEStudy:
    """Noisy 100 background, a washout voxel at (1, 2, 3), a persistent one at (2, 1, 1)."""
    rng = np.random.default_rng(seed)
    phases = []
    for k in range(len(TIMES)):
        arr = (100 + rng.normal(0, 3, SHAPE)).astype(np.float32)
        arr[0, 0, :] = 0.5  # air row: below the S0 floor
        arr[1, 2, 3] = [100, 300, 280, 260, 240, 220][k]
        arr[2, 1, 1] = [100, 160, 180, 200, 220, 240][k]
        phases.append(make_image(arr))  # oblique, anisotropic, non-zero origin
    return DCEStudy.from_images(phases, times)


@pytest.fixture(scope="module")
def study() -> DCEStudy:
    return make_study()


@pytest.fixture(scope="module")
def maps(study):
    return compute_maps(study, n_threads=2)


def test_all_maps_on_the_pre_contrast_grid(study, maps):
    assert list(maps.names) == EXPECTED
    ref = study.reference
    for name in EXPECTED[:-1]:
        image = maps[name]
        assert image.GetSize() == ref.GetSize(), name
        assert image.GetOrigin() == ref.GetOrigin(), name
        assert image.GetSpacing() == ref.GetSpacing(), name
        assert image.GetDirection() == ref.GetDirection(), name
        expected_type = sitk.sitkUInt8 if name == "curve_type" else sitk.sitkFloat32
        assert image.GetPixelID() == expected_type, name
    # the oblique direction's k axis is closest to S-I: a one-slice axial MIP, 4 x 2 mm thick
    assert maps["mip"].GetSize() == (6, 5, 1)
    assert maps["mip"].GetSpacing() == pytest.approx((0.8, 0.7, 8.0))
    assert maps["mip"].GetDirection() == ref.GetDirection()


def test_hand_checked_voxels(maps):
    # washout voxel: S0 100, early (90 s) 300, late (450 s) 220, peak 300 at 90 s
    # persistent voxel: S0 100, early 160, late 240, peak 240 at 450 s
    expected = {
        "sub_1": (200, 60),
        "sub_5": (120, 140),
        "pe": (200, 60),
        "ser": (200 / 120, 60 / 140),
        "peak_enhancement": (200, 140),
        "time_to_peak": (90, 450),
        "wash_in": (200 * 60 / 90, 140 * 60 / 450),
        "washout": (100 * (300 - 220) / 300, 0),
        "curve_type": (3, 1),  # (220 - 300) / 300 = -27 %; (240 - 160) / 160 = +50 %
    }
    for name, values in expected.items():
        got = maps.array(name)
        assert float(got[1, 2, 3]) == pytest.approx(values[0], rel=1e-5), name
        assert float(got[2, 1, 1]) == pytest.approx(values[1], rel=1e-5, abs=1e-5), name
    air = maps.array("pe")[0, 0, :]
    np.testing.assert_array_equal(air, 0)  # S0 = 0.5 is below the floor
    assert maps.phases.early == 1 and maps.phases.late == 5


def test_maps_match_reference_functions(study, maps):
    s0 = study.phase_zyx(0)
    posts = [study.phase_zyx(k) for k in range(1, study.n_phases)]
    floor = maps.s0_floor
    np.testing.assert_array_equal(maps.array("pe"), percent_enhancement(s0, posts[0], floor))
    np.testing.assert_allclose(
        maps.array("ser"), signal_enhancement_ratio(s0, posts[0], posts[-1], floor, clip_max=3)
    )
    reference = peak_kinetics(s0, posts, TIMES, floor)
    for name, array in reference.items():
        np.testing.assert_allclose(maps.array(name), array, rtol=1e-6, err_msg=name)
    np.testing.assert_array_equal(
        maps.array("curve_type"), curve_type_map(s0, posts[0], posts[-1], floor)
    )
    for k in range(1, study.n_phases):
        np.testing.assert_array_equal(maps.array(f"sub_{k}"), posts[k - 1] - s0)
    np.testing.assert_array_equal(
        sitk.GetArrayViewFromImage(maps["mip"]).ravel(),
        np.max(maps.array("sub_1"), axis=2 - maps["mip"].GetSize().index(1)).ravel(),
    )


def test_threads_and_slabs_do_not_change_results(study, maps, monkeypatch):
    assert len(kernel.slabs(SHAPE[0], SHAPE[1] * SHAPE[2])) == 1
    monkeypatch.setattr(kernel, "SLAB_VOXELS", 1)  # one z slice per slab: 4 slabs
    assert len(kernel.slabs(SHAPE[0], SHAPE[1] * SHAPE[2])) == 4
    for n_threads in (1, 2):
        sliced = compute_maps(study, n_threads=n_threads)
        for name in EXPECTED:
            np.testing.assert_array_equal(sliced.array(name), maps.array(name), err_msg=name)


def test_without_times_and_with_settings():
    study = make_study(times=None)
    seen: list[tuple[str, float]] = []
    settings = MapSettings(preset="ispy", early=2, late=4, ser_max=None, curve_tolerance=0.2)
    maps = compute_maps(study, settings, progress=lambda s, f: seen.append((s, f)))
    assert (maps.phases.early, maps.phases.late) == (2, 4)
    assert float(maps.array("time_to_peak")[1, 2, 3]) == 1.0  # phase index
    assert float(maps.array("wash_in")[1, 2, 3]) == pytest.approx(200.0)  # %/phase
    assert (maps.unit("time_to_peak"), maps.unit("wash_in"), maps.unit("pe")) == (
        "phase index",
        "%/phase",
        "%",
    )
    fractions = [f for _, f in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert seen[-1][0] == "done"
    json.dumps(maps.provenance())  # JSON-ready


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"preset": "nope"}, PhaseSelectionError, "unknown timing preset 'nope'"),
        ({"ser_max": 0}, ValueError, "ser_max"),
        ({"mip_axis": 3}, ValueError, "mip_axis"),
        ({"curve_tolerance": 1.0}, ValueError, "curve_tolerance"),
    ],
)
def test_settings_validation(kwargs, error, message):
    with pytest.raises(error, match=message):
        MapSettings(**kwargs)


def test_bad_phase_override_raises(study):
    with pytest.raises(PhaseSelectionError, match="out of range"):
        compute_maps(study, MapSettings(early=6))


def test_catalogue():
    assert describe_map("sub_3") is MAP_CATALOGUE["sub_k"]
    assert describe_map("ser").unit == "ratio"
    assert set(EXPECTED[5:]) <= set(MAP_CATALOGUE)
    with pytest.raises(KeyError, match="unknown map 'foo'"):
        describe_map("foo")


def test_write_maps_round_trip(maps, tmp_path):
    paths = write_maps(maps, tmp_path / "maps", prefix="case_")
    assert list(paths) == EXPECTED
    for name, path in paths.items():
        assert path.name == f"case_{name}.nii.gz" and path.is_file()
        back = sitk.ReadImage(str(path))
        np.testing.assert_array_equal(sitk.GetArrayViewFromImage(back), maps.array(name))
        np.testing.assert_allclose(back.GetOrigin(), maps[name].GetOrigin(), atol=1e-4)
        np.testing.assert_allclose(back.GetDirection(), maps[name].GetDirection(), atol=1e-5)
    assert not list((tmp_path / "maps").glob(".*tmp*"))  # no temporary left behind
    with pytest.raises(OutputError, match="cannot write"):
        write_maps(maps, tmp_path, fmt=".png")
