"""The bundled research-demo classifiers: manifests, held-out metrics, Grad-CAM on phantom
lesions (not constant, mass in or near the lesion), predictions in range."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage

from BreastAIAssistantLib.bundles import find_bundle
from BreastAIAssistantLib.classify.predictor import load_classifier
from BreastAIAssistantLib.inference.preprocess import resample
from BreastAIAssistantLib.phantom.generator import generate_case
from BreastAIAssistantLib.pipeline import CLASSIFIER_MODELS
from BreastAIAssistantLib.train.data import enhancing_lesions
from BreastAIAssistantLib.train.lesion_data import classification_spec

SEED = 9801  # not among the training (5000-5299) or held-out (9500-9609) seeds


@pytest.mark.parametrize("model", CLASSIFIER_MODELS)
def test_manifest_is_a_research_demo_with_held_out_metrics(model):
    manifest = find_bundle(model).manifest
    assert manifest.research_demo
    assert "not for clinical use" in manifest.data["intended_use"]
    metrics = manifest.data["metrics"]
    assert metrics["dataset"].startswith("held out: synthetic phantom")
    if manifest.task == "receptor-prediction":
        assert metrics["lesions"] >= 150 and 0 < metrics["ki67_mae_points"] < 50
    else:
        assert metrics["n"] >= 200 and 0.5 < metrics["auc"] <= 1.0
    assert set(manifest.data["explain"]["targets"].values()) <= {0, 1, 2}


@pytest.fixture(scope="module")
def phantom():
    case = generate_case(SEED, size_xyz=(224, 224, 80), **classification_spec(SEED))
    labels = enhancing_lesions(case.tumour_labels, case.truth)
    array = sitk.GetArrayFromImage(labels)
    lesions = []
    for record in case.truth["lesions"]:
        if record["kind"] != "cyst" and (array == record["label"]).any():
            mask = sitk.GetImageFromArray((array == record["label"]).astype(np.uint8))
            mask.CopyInformation(labels)
            lesions.append((record, mask))
    assert len(lesions) >= 3
    return case, lesions


@pytest.mark.slow
@pytest.mark.parametrize("model", CLASSIFIER_MODELS)
def test_gradcam_sits_on_the_lesion(phantom, model):
    case, lesions = phantom
    classifier = load_classifier(model, device="cpu")
    for record, mask in lesions:
        result = classifier.predict(case.study, mask)
        heat = result.heatmap
        assert heat is not None
        volume = heat if heat.GetDimension() == 3 else \
            sitk.Extract(heat, [*heat.GetSize()[:3], 0], [0, 0, 0, 0])
        # on the study's lattice
        index = case.study.reference.TransformPhysicalPointToContinuousIndex(volume.GetOrigin())
        assert np.allclose(index, np.round(index), atol=1e-4)
        lesion = sitk.GetArrayFromImage(resample(mask, volume, sitk.sitkNearestNeighbor)) > 0
        near = ndimage.distance_transform_edt(
            ~lesion, sampling=volume.GetSpacing()[::-1]) <= 5.0  # in or within 5 mm
        values = sitk.GetArrayFromImage(heat)
        assert values.std() > 0.01, "the heat map is constant"
        values = values.reshape(-1, *near.shape)  # (volumes, z, y, x)
        share = values[:, near].sum() / values.sum()
        # most of the heat is in or near the lesion, clearly more than an even spread would put
        # there (a box crop is mostly "near" its lesion: then the far rim must stay cool)
        area = near.mean()
        assert share > 0.5, (record["label"], share)
        assert share > min(1.2 * area, area + 0.5 * (1 - area)), (record["label"], share, area)
        for key, value in result.values.items():
            if key in ("malignancy_probability", "dmif_malignancy_probability", "er", "pr",
                       "her2"):
                assert 0.0 <= value <= 1.0
        if model == "mrsm-demo":
            assert result.heatmap_volumes == [f"phase {t}" for t in range(case.study.n_phases)]
