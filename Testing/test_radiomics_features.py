"""Radiomics extraction: agreement with plain PyRadiomics, names, regions, settings files,
robustness, the cohort CLI (parallel, resumable, multi-modal), and the real I-SPY 2 masks."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from BreastAIAssistantLib.cli.main import main
from BreastAIAssistantLib.radiomics.features import lesion_features, region_features, shell_mask
from BreastAIAssistantLib.radiomics.settings import (
    RadiomicsSettings,
    RadiomicsSettingsError,
    load_settings,
)

from conftest import make_image

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "ispy2-real-masks"


def _blob(shape=(24, 48, 48), centre=(12, 24, 24), radius=(5, 9, 8), seed=0):
    rng = np.random.default_rng(seed)
    zz, yy, xx = np.indices(shape)
    inside = (((zz - centre[0]) / radius[0]) ** 2 + ((yy - centre[1]) / radius[1]) ** 2
              + ((xx - centre[2]) / radius[2]) ** 2) <= 1
    image = 100 + 20 * rng.standard_normal(shape) + 80 * inside
    image += 30 * np.sin(xx / 3.0) * inside  # texture
    return make_image(image), sitk.Cast(make_image(inside.astype(np.uint8)), sitk.sitkUInt8)


def plain_pyradiomics(image, mask, classes, **settings):
    """PyRadiomics called the usual way on the whole image."""
    from radiomics import featureextractor

    extractor = featureextractor.RadiomicsFeatureExtractor(**settings)
    extractor.disableAllFeatures()
    for name in classes:
        extractor.enableFeatureClassByName(name)
    return {k: float(v) for k, v in extractor.execute(image, mask, label=1).items()
            if not k.startswith("diagnostics_")}


def test_features_match_plain_pyradiomics():
    image, mask = _blob()
    settings = RadiomicsSettings(regions=["lesion"], families=["firstorder", "shape", "glcm",
                                                               "glrlm", "glszm", "ngtdm", "gldm"])
    ours = region_features({"t1c": image}, mask, "lesion", settings)
    plain = plain_pyradiomics(image, mask, ["firstorder", "shape", "glcm", "glrlm", "glszm",
                                            "ngtdm", "gldm"], binCount=32)
    assert len(ours) == len(plain) > 90
    for key, value in plain.items():
        _, family, feature = key.split("_", 2)
        name = f"{'mask' if family == 'shape' else 't1c'}_lesion_{family}_{feature}"
        assert ours[name] == pytest.approx(value, rel=1e-9, abs=1e-12), name


def test_log_features_close_to_plain_pyradiomics():
    image, mask = _blob()
    settings = RadiomicsSettings(regions=["lesion"], families=["firstorder"], log_sigma_mm=[2.0])
    ours = region_features({"img": image}, mask, "lesion", settings)
    from radiomics import featureextractor

    extractor = featureextractor.RadiomicsFeatureExtractor(binCount=32)
    extractor.disableAllFeatures()
    extractor.enableFeatureClassByName("firstorder")
    extractor.enableImageTypeByName("LoG", customArgs={"sigma": [2.0]})
    plain = extractor.execute(image, mask, label=1)
    value = float(plain["log-sigma-2-0-mm-3D_firstorder_Mean"])
    assert ours["img_lesion_log-sigma-2-0-mm-3D-firstorder_Mean"] == pytest.approx(value, rel=1e-3)


def test_shell_is_outside_the_lesion_inside_the_image_and_the_breast():
    _image, mask = _blob(centre=(12, 24, 4))  # touching the image edge
    shell = sitk.GetArrayFromImage(shell_mask(mask, 5.0))
    lesion = sitk.GetArrayFromImage(mask) > 0
    assert shell.shape == lesion.shape and shell.any() and not (shell.astype(bool) & lesion).any()
    breast = np.zeros_like(lesion)
    breast[:, :, 6:] = True
    within = sitk.GetArrayFromImage(shell_mask(mask, 5.0, make_image(breast.astype(np.uint8))))
    assert within.sum() < shell.sum() and not within[:, :, :6].any()


def test_names_regions_and_shape2d():
    image, mask = _blob()
    features = lesion_features({"sub1": image, "pe": image * 2.0}, mask,
                               RadiomicsSettings(families=["firstorder", "shape", "shape2D"]))
    keys = set(features)
    assert "mask_lesion_shape_Sphericity" in keys and not any("mask_shell" in k for k in keys)
    assert "mask_lesion_shape2D_MaximumDiameter" in keys
    assert "sub1_shell_firstorder_Mean" in keys and "pe_lesion_firstorder_Mean" in keys
    assert all(len(k.split("_")) == 4 for k in keys)
    # the shell is darker than the lesion here
    assert features["sub1_shell_firstorder_Mean"] < features["sub1_lesion_firstorder_Mean"]


def test_a_failing_region_gives_no_crash(caplog):
    image, _ = _blob()
    tiny = np.zeros((24, 48, 48), np.uint8)
    tiny[12, 24, 24] = 1  # one voxel: PyRadiomics refuses it
    features = lesion_features({"img": image}, sitk.Cast(make_image(tiny), sitk.sitkUInt8),
                               RadiomicsSettings(families=["firstorder", "glcm"]))
    assert "img_lesion_glcm_Contrast" not in features  # left for the cohort as NaN
    assert any("failed" in r.message for r in caplog.records)


def test_settings_files(tmp_path):
    (tmp_path / "p.yaml").write_text("images: [pre, sub1]\nshell_mm: 3\nlog_sigma_mm: [2]\n"
                                     "pyradiomics: {binCount: 16}\n")
    s = load_settings(tmp_path / "p.yaml")
    assert s.images == ["pre", "sub1"] and s.shell_mm == 3 and s.margin_mm == 10.0
    assert s.pyradiomics["binCount"] == 16 and s.pyradiomics["interpolator"] == "sitkBSpline"
    (tmp_path / "p.json").write_text(json.dumps({"families": ["glcm"], "wavelet": True}))
    assert load_settings(tmp_path / "p.json").wavelet is True
    (tmp_path / "bad.json").write_text(json.dumps({"bin_width": 5}))
    with pytest.raises(RadiomicsSettingsError, match="unknown radiomics settings"):
        load_settings(tmp_path / "bad.json")
    with pytest.raises(RadiomicsSettingsError, match="families"):
        RadiomicsSettings(families=["glcmm"])
    with pytest.raises(RadiomicsSettingsError, match="may not contain"):
        RadiomicsSettings(images=["sub_1"])


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    """Three phantom DCE cases plus a 2-D 'ultrasound-like' PNG modality."""
    from BreastAIAssistantLib.phantom import write_case
    from BreastAIAssistantLib.phantom.generator import generate_case

    root = tmp_path_factory.mktemp("cohort")
    rows = []
    for seed, kind in ((41, "malignant"), (42, "benign"), (43, "malignant")):
        case = generate_case(seed, size="small", n_phases=4, lesions=(kind,))
        write_case(case, root / f"c{seed}")
        # a 2-D image and mask: the lesion's largest slice of the early subtraction, as PNG
        labels = sitk.GetArrayFromImage(case.tumour_labels)
        z = int(np.argmax((labels == 1).sum(axis=(1, 2))))
        sub = sitk.GetArrayFromImage(case.study.phases[1] - case.study.phases[0])[z]
        png = np.clip(255 * (sub - sub.min()) / (np.ptp(sub) + 1e-6), 0, 255).astype(np.uint8)
        sitk.WriteImage(sitk.GetImageFromArray(png), str(root / f"us{seed}.png"))
        sitk.WriteImage(sitk.GetImageFromArray((labels[z] == 1).astype(np.uint8)),
                        str(root / f"us{seed}_mask.png"))
        rows.append({"case_id": f"c{seed}", "malignant": int(kind == "malignant"),
                     "dce_image": f"c{seed}", "dce_mask": f"c{seed}/tumour_mask.nii.gz",
                     "dce_label": 1, "us_image": f"us{seed}.png", "us_mask": f"us{seed}_mask.png"})
    rows.append({**rows[0], "case_id": "broken", "dce_label": 9})  # no voxel with label 9
    path = root / "cohort.csv"
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    params = root / "params.json"
    params.write_text(json.dumps({"images": ["pre", "sub1", "pe"],
                                  "families": ["firstorder", "shape", "glcm"]}))
    return path, params


def _read(path):
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.slow
def test_cohort_cli_parallel_resumable_multimodal(cohort, tmp_path, capsys):
    path, params = cohort
    out = tmp_path / "features.csv"
    assert main(["features", "--cohort", str(path), "--out", str(out), "--params", str(params),
                 "--jobs", "2", "--no-progress"]) == 0
    counts = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert counts == {"cases": 4, "skipped": 0, "extracted": 3, "failed": 1, "out": str(out)}
    assert "broken" in (tmp_path / "features.csv.failures.log").read_text()
    rows = {r["case_id"]: r for r in _read(out)}
    assert set(rows) == {"c41", "c42", "c43"} and rows["c41"]["malignant"] == "1"
    columns = list(next(iter(rows.values())))
    assert "dce:sub1_lesion_glcm_Contrast" in columns and "dce:pe_shell_glcm_Contrast" in columns
    assert "us:image_lesion_firstorder_Mean" in columns
    assert "us:mask_lesion_shape2D_Perimeter" in columns
    assert all(math.isfinite(float(rows["c41"][c])) for c in columns if c.startswith("dce:"))
    # serial extraction gives the same numbers; a rerun skips finished cases
    serial = tmp_path / "serial.csv"
    assert main(["features", "--cohort", str(path), "--out", str(serial), "--params",
                 str(params), "--no-progress"]) == 0
    again = {r["case_id"]: r for r in _read(serial)}
    for c in columns[3:]:
        assert float(again["c42"][c] or "nan") == pytest.approx(float(rows["c42"][c] or "nan"),
                                                                 nan_ok=True)
    capsys.readouterr()
    assert main(["features", "--cohort", str(path), "--out", str(out), "--params", str(params),
                 "--no-progress"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["skipped"] == 3


def test_cohort_errors(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("case_id,x_image\nA,missing.nii.gz\n")
    assert main(["features", "--cohort", str(bad), "--out", str(tmp_path / "f.csv")]) == 2
    assert "x_mask" in capsys.readouterr().err


@pytest.mark.parametrize(("name", "families"), [
    ("ACRIN-6698-102212_spy2_vis1_mask.nii.gz", ["shape", "firstorder"]),
    ("ACRIN-6698-104268_spy2_vis1_mask.nii.gz", ["shape", "firstorder"]),
    # 103 ml: PyRadiomics' all-pairs diameter search takes ~20 s on it; 2-D shape and texture
    ("ISPY2-550421_spy2_vis1_mask.nii.gz", ["shape2D", "firstorder"]),
])
def test_real_masks_shape_finite_and_shell_inside(name, families):
    if not REAL.is_dir():
        pytest.skip(f"{REAL} is not present in this checkout")
    mask = sitk.ReadImage(str(REAL / name))
    array = sitk.GetArrayFromImage(mask) > 0
    # keep the largest component (the main lesion) to keep the test fast
    from scipy import ndimage

    labels, _ = ndimage.label(array, np.ones((3, 3, 3)))
    main_lesion = labels == np.argmax(np.bincount(labels.ravel())[1:]) + 1
    lesion = sitk.GetImageFromArray(main_lesion.astype(np.uint8))
    lesion.CopyInformation(mask)
    rng = np.random.default_rng(1)
    synthetic = sitk.GetImageFromArray((100 + 10 * rng.standard_normal(array.shape)
                                        + 50 * main_lesion).astype(np.float32))
    synthetic.CopyInformation(mask)
    shell = shell_mask(lesion, 5.0)
    assert shell.GetSize() == mask.GetSize()  # on the image grid: inside it by construction
    assert sitk.GetArrayViewFromImage(shell).any()
    features = lesion_features({"img": synthetic}, lesion, RadiomicsSettings(families=families))
    shape = {k: v for k, v in features.items() if "_shape" in k}
    assert len(shape) >= 9 and all(math.isfinite(v) for v in shape.values())
    assert features["img_shell_firstorder_Mean"] < features["img_lesion_firstorder_Mean"]
    if "shape" in families:
        assert features["mask_lesion_shape_Maximum3DDiameter"] > 50  # these are T3 lesions


def _worker_threads() -> tuple[int, int]:
    import torch

    return sitk.ProcessObject.GetGlobalDefaultNumberOfThreads(), torch.get_num_threads()


def test_cohort_workers_run_one_thread_each():
    from concurrent.futures import ProcessPoolExecutor

    from BreastAIAssistantLib.radiomics.cohort import single_threaded

    with ProcessPoolExecutor(max_workers=1, initializer=single_threaded) as pool:
        assert pool.submit(_worker_threads).result() == (1, 1)


def test_rows_of_one_study_form_one_group_whatever_their_single_images(tmp_path):
    from BreastAIAssistantLib.radiomics.cohort import CohortCase, _groups

    study_a, study_b = tmp_path / "a", tmp_path / "b"
    study_a.mkdir()
    study_b.mkdir()
    mask = tmp_path / "m.nii.gz"

    def row(name, study, image):
        modalities = {"mip": (tmp_path / image, mask, None)}
        if study is not None:
            modalities["dce"] = (study, mask, None)
        return CohortCase(name, modalities)

    rows = [row("a1", study_a, "a1.png"), row("b1", study_b, "b1.png"),
            row("a2", study_a, "a2.png"), row("u1", None, "u1.png"), row("u2", None, "u2.png")]
    groups = [[c.case_id for c in g] for g in _groups(rows)]
    assert sorted(groups) == [["a1", "a2"], ["b1"], ["u1"], ["u2"]]
