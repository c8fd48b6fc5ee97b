"""Phantom generator: determinism, truth consistency, diameters, curve types, anatomy layout."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from scipy.spatial import ConvexHull, QhullError
from scipy.spatial.distance import pdist

from BreastAIAssistantLib.dce import classify_curve, compute_maps
from BreastAIAssistantLib.measure.tstage import t_category
from BreastAIAssistantLib.phantom import tissues as T
from BreastAIAssistantLib.phantom.generator import PhantomSpec, generate_case
from BreastAIAssistantLib.phantom.receptors import molecular_subtype

ALL_KINDS = ("malignant", "malignant", "benign", "cyst", "malignant_non_mass", "benign_non_mass")


def _arrays(case):
    return [sitk.GetArrayFromImage(p) for p in case.study.phases]


@pytest.fixture(scope="module")
def case():
    return generate_case(11, size="small", n_phases=6, lesions=ALL_KINDS)


def test_same_seed_same_case_regardless_of_threads():
    a = generate_case(3, size="small", n_threads=1)
    b = generate_case(3, size="small", n_threads=2)
    assert a.truth == b.truth
    for x, y in zip(_arrays(a), _arrays(b), strict=True):
        assert np.array_equal(x, y)
    assert np.array_equal(
        sitk.GetArrayViewFromImage(a.tumour_labels), sitk.GetArrayViewFromImage(b.tumour_labels)
    )
    c = generate_case(4, size="small", n_threads=1)
    assert c.truth != a.truth


def test_phase_count_does_not_change_the_anatomy():
    a = generate_case(5, size="small", n_phases=3, lesions=())
    b = generate_case(5, size="small", n_phases=7, lesions=())
    assert a.study.n_phases == 3 and b.study.n_phases == 7
    assert np.array_equal(
        sitk.GetArrayViewFromImage(a.tissue_labels), sitk.GetArrayViewFromImage(b.tissue_labels)
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"size": "huge"}, "size must be one of"),
        ({"n_phases": 1}, "at least 2 phases"),
        ({"lesions": ("fibroadenoma",)}, "unknown lesion"),
        ({"motion": -1.0}, "motion must be >= 0"),
        ({"density": "e"}, "density must be one of"),
    ],
)
def test_bad_specs_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        generate_case(0, **kwargs)


def test_truth_matches_the_masks(case):
    truth = case.truth
    assert truth["synthetic"] is True and "not measurements" in truth["disclaimer"]
    assert truth["acquisition"]["n_phases"] == case.study.n_phases
    assert tuple(truth["acquisition"]["times_s"]) == pytest.approx(case.study.times_s)
    labels = sitk.GetArrayViewFromImage(case.tumour_labels)
    breast = sitk.GetArrayViewFromImage(case.breast_mask)
    records = truth["lesions"]
    assert [r["label"] for r in records] == list(range(1, len(records) + 1))
    assert set(np.unique(labels)) == {0, *range(1, len(records) + 1)}
    assert np.all(breast[labels > 0] == 1)
    for r in records:
        assert r["voxel_count"] == int((labels == r["label"]).sum())
        assert r["class"] == ("malignant" if r["malignant"] else "benign")
        if r["malignant"]:
            expected = molecular_subtype(
                r["er"] == "positive",
                r["pr"] == "positive",
                r["her2"] == "positive",
                r["ki67_percent"],
            )
            assert r["molecular_subtype"] == expected
        else:
            assert r["er"] is None and r["ki67_percent"] is None
    kinds = sorted(r["kind"] for r in records)
    assert kinds == sorted(["mass", "mass", "mass", "cyst", "non_mass", "non_mass"])


def test_anatomy_layout_is_radiological(case):
    tissue = sitk.GetArrayViewFromImage(case.tissue_labels)
    image = case.tissue_labels
    assert image.GetPixelID() == sitk.sitkUInt8
    y_breast = np.nonzero(
        np.isin(tissue, (T.FAT, T.FIBROGLANDULAR))
        & (sitk.GetArrayViewFromImage(case.breast_mask) > 0)
    )[1].mean()
    y_heart = np.nonzero(tissue == T.MYOCARDIUM)[1].mean()
    assert y_breast < y_heart  # breasts anterior (low j = top of an axial image), heart posterior
    x_heart = np.nonzero(tissue == T.MYOCARDIUM)[2].mean()
    assert x_heart > tissue.shape[2] / 2  # heart on the patient's left (+x in LPS)
    fgt = case.truth["anatomy"]["fgt_fraction"]
    target = case.truth["anatomy"]["fgt_fraction_target"]
    assert all(abs(v - target) < 0.05 for v in fgt.values())


def _voxel_diameter(points: np.ndarray) -> float:
    if len(points) < 2:
        return 0.0
    try:
        points = points[ConvexHull(points).vertices]
    except (QhullError, ValueError):
        pass
    return float(pdist(points).max())


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_diameters_agree_with_the_voxels_within_a_voxel(seed):
    case = generate_case(seed, size="small", lesions=ALL_KINDS, noise=False)
    labels = sitk.GetArrayViewFromImage(case.tumour_labels)
    spacing = np.asarray(case.tumour_labels.GetSpacing())
    voxel = float(np.linalg.norm(spacing))  # one voxel: its diagonal
    for r in case.truth["lesions"]:
        centres = np.argwhere(labels == r["label"])[:, ::-1] * spacing  # x, y, z in mm
        measured = _voxel_diameter(centres)
        exact = r["max_diameter_mm"]
        assert measured <= exact + 1e-6  # voxel centres lie inside the analytic solid
        assert exact - measured <= voxel, (r["label"], r["kind"], exact, measured)
        lps = np.asarray(r["diameter_endpoints_lps_mm"])
        assert np.linalg.norm(lps[1] - lps[0]) == pytest.approx(exact, abs=1e-3)
        assert r["t_category"] == t_category(exact)


def _check_curve_types(case, min_voxels: int) -> int:
    maps = compute_maps(case.study, n_threads=1)
    acq = case.truth["acquisition"]
    assert (maps.phases.early, maps.phases.late) == (acq["early_phase"], acq["late_phase"])
    curve = maps.array("curve_type")
    labels = sitk.GetArrayViewFromImage(case.tumour_labels)
    phases = np.stack(_arrays(case))
    checked = 0
    for r in case.truth["lesions"]:
        if r["voxel_count"] < min_voxels or abs(abs(r["delayed_change_pct"]) - 10.0) < 2.0:
            continue  # borderline by construction (see lesion_kinetics)
        mask = labels == r["label"]
        values = curve[mask]
        if r["curve_type_code"]:
            values = values[values > 0]  # the assessed voxels of an enhancing lesion
        assert np.bincount(values, minlength=4).argmax() == r["curve_type_code"], r
        mean = phases[:, mask].mean(axis=1)
        if min_voxels == 0:
            assert classify_curve(mean, maps.phases.early, maps.phases.late) == r["curve_type_code"]
        checked += 1
    return checked


@pytest.mark.parametrize("seed", [20, 21, 22])
def test_curve_types_match_the_kinetic_maps(seed):
    case = generate_case(seed, size="small", lesions=ALL_KINDS, n_phases=5 + seed % 3, motion=0.0)
    assert _check_curve_types(case, min_voxels=0) >= 4
    patterns = {(r["kinetic_pattern"], r["curve_type"]) for r in case.truth["lesions"]}
    assert ("none", "not_assessed") in patterns  # the cyst


def test_curve_types_survive_motion():
    spec = PhantomSpec(size="small", lesions=ALL_KINDS, n_phases=6, motion=1.0)
    checked = sum(_check_curve_types(generate_case(s, spec), min_voxels=30) for s in (32, 33))
    assert checked >= 4  # small lesions are dominated by motion partial volume: skipped


def test_noise_is_rician_in_air():
    case = generate_case(8, size="small", lesions=(), bias=False)
    tissue = sitk.GetArrayViewFromImage(case.tissue_labels)
    air = sitk.GetArrayFromImage(case.study.phases[0])[tissue == T.AIR]
    sigma = case.truth["acquisition"]["noise"]["sigma"]
    assert air.min() >= 0
    assert float(air.mean()) == pytest.approx(sigma * np.sqrt(np.pi / 2), rel=0.05)  # Rayleigh
