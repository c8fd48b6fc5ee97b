"""ImageNet ResNet deep features: torchvision's layout (so a user's weight file loads), the
lesion ROI input, errors, and the cohort CLI with ``--deep-weights``."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from BreastAIAssistantLib.errors import BreastAIError
from BreastAIAssistantLib.radiomics.imagenet import (
    ResNet,
    imagenet_features,
    infer_architecture,
    load_resnet,
    roi_input,
)


@pytest.mark.parametrize(
    ("arch", "parameters", "pooled"),
    # torchvision's documented parameter counts of these models (ImageNet, 1000 classes)
    [("resnet18", 11_689_512, 512), ("resnet34", 21_797_672, 512),
     ("resnet50", 25_557_032, 2048), ("resnet101", 44_549_160, 2048)],
)
def test_resnets_have_torchvision_sizes(arch, parameters, pooled):
    model = ResNet(arch)
    assert sum(p.numel() for p in model.parameters()) == parameters
    assert model.num_features == pooled
    assert infer_architecture(model.state_dict()) == arch


def test_resnet50_keys_follow_torchvision():
    state = ResNet("resnet50").state_dict()
    expected = {"conv1.weight": (64, 3, 7, 7), "bn1.running_var": (64,),
                "layer1.0.downsample.0.weight": (256, 64, 1, 1),
                "layer2.0.conv2.weight": (128, 128, 3, 3),  # v1.5: stride on the 3x3
                "layer4.2.conv3.weight": (2048, 512, 1, 1), "fc.weight": (1000, 2048)}
    for key, shape in expected.items():
        assert tuple(state[key].shape) == shape
    assert "layer1.0.bn1.num_batches_tracked" in state
    assert len(state) == 320  # 161 parameters + 159 batch-norm buffers


def test_weight_file_round_trip_and_wrapped_checkpoints(tmp_path):
    torch.manual_seed(0)
    model = ResNet("resnet18").eval()
    path = tmp_path / "resnet18.pth"
    torch.save(model.state_dict(), path)
    x = torch.randn(1, 3, 64, 64)
    loaded = load_resnet(path)
    with torch.inference_mode():
        torch.testing.assert_close(loaded.features(x), model.features(x))
    wrapped = tmp_path / "wrapped.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in model.state_dict().items()}}, wrapped)
    assert load_resnet(wrapped).arch == "resnet18"


def test_weight_file_errors(tmp_path):
    with pytest.raises(BreastAIError, match="does not exist"):
        load_resnet(tmp_path / "absent.pth")
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a torch file")
    with pytest.raises(BreastAIError, match="cannot read"):
        load_resnet(junk)
    other = tmp_path / "other.pth"
    torch.save({"weight": torch.zeros(3)}, other)
    with pytest.raises(BreastAIError, match="not a torchvision ResNet"):
        load_resnet(other)


def test_roi_input_is_the_lesion_rectangle_on_its_largest_slice():
    image = np.zeros((5, 60, 80), np.float32)
    mask = np.zeros_like(image, np.uint8)
    mask[1, 10:14, 10:14] = 1
    mask[3, 20:40, 30:60] = 1  # the largest slice
    image[3, 20:40, 30:60] = 100.0
    img = sitk.GetImageFromArray(image)
    img.SetSpacing((1.0, 1.0, 3.0))
    lesion = sitk.GetImageFromArray(mask)
    lesion.CopyInformation(img)
    x = roi_input(img, lesion, margin_mm=5.0)
    assert x.shape == (1, 3, 224, 224)
    # the same grey image in the three channels, each with ImageNet's mean and std
    torch.testing.assert_close(x[0, 0] * 0.229 + 0.485, x[0, 2] * 0.225 + 0.406)
    # bright lesion in the middle, dark 5 mm margin at the border, per channel normalised
    raw = x[0, 0] * 0.229 + 0.485
    assert float(raw[112, 112]) == pytest.approx(1.0, abs=1e-4)
    assert float(raw[2, 2]) == pytest.approx(0.0, abs=1e-4)
    with pytest.raises(BreastAIError, match="empty"):
        roi_input(img, lesion * 0)


def test_imagenet_features_are_named_per_architecture(tmp_path):
    img = sitk.GetImageFromArray(np.random.default_rng(0).random((3, 40, 40)).astype(np.float32))
    mask = np.zeros((3, 40, 40), np.uint8)
    mask[1, 10:30, 12:28] = 1
    lesion = sitk.GetImageFromArray(mask)
    features = imagenet_features(img, lesion, _weights(tmp_path))
    assert len(features) == 512 and "deep_lesion_resnet18_f0511" in features


def _weights(folder) -> str:
    torch.manual_seed(1)
    path = folder / "resnet18.pth"
    torch.save(ResNet("resnet18").state_dict(), path)
    return str(path)


def test_cohort_cli_with_deep_weights(tmp_path, capsys):
    from BreastAIAssistantLib.cli.main import main
    from BreastAIAssistantLib.phantom import generate_case, write_case

    case = generate_case(44, size="small", n_phases=3, lesions=("malignant",))
    write_case(case, tmp_path / "c44")
    labels = sitk.GetArrayFromImage(case.tumour_labels) > 0
    z = int(np.argmax(labels.sum(axis=(1, 2))))  # a 2-D "ultrasound": the lesion's largest slice
    us = sitk.GetArrayFromImage(case.study.phases[1])[z].astype(np.float32)
    us_mask = labels[z].astype(np.uint8)
    sitk.WriteImage(sitk.GetImageFromArray(us), str(tmp_path / "us.nii.gz"))
    sitk.WriteImage(sitk.GetImageFromArray(us_mask), str(tmp_path / "us_mask.nii.gz"))
    cohort = tmp_path / "cohort.csv"
    cohort.write_text("case_id,dce_image,dce_mask,us_image,us_mask\n"
                      "c44,c44,c44/tumour_mask.nii.gz,us.nii.gz,us_mask.nii.gz\n")
    params = tmp_path / "params.json"
    params.write_text(json.dumps({"images": ["sub1"], "regions": ["lesion"],
                                  "families": ["firstorder"]}))
    out = tmp_path / "features.csv"
    assert main(["features", "--cohort", str(cohort), "--out", str(out), "--params", str(params),
                 "--deep-weights", _weights(tmp_path), "--no-progress"]) == 0
    with out.open(newline="") as handle:
        row = next(csv.DictReader(handle))
    for modality in ("dce", "us"):
        deep = [k for k in row if k.startswith(f"{modality}:deep_lesion_resnet18_f")]
        assert len(deep) == 512
        assert all(np.isfinite(float(row[k])) for k in deep)
    capsys.readouterr()


@pytest.mark.parametrize("arch", ["resnet18", "resnet50"])
def test_same_outputs_as_torchvision(arch, tmp_path):
    """Run where torchvision is installed (it is not a dependency: it would pull a CUDA torch)."""
    models = pytest.importorskip("torchvision.models")
    torch.manual_seed(0)
    reference = getattr(models, arch)(weights=None).eval()
    path = tmp_path / f"{arch}.pth"
    torch.save(reference.state_dict(), path)
    ours = load_resnet(path)
    x = torch.randn(2, 3, 96, 96)
    with torch.inference_mode():
        torch.testing.assert_close(ours(x), reference(x))


def test_cohort_cli_refuses_a_missing_weight_file_from_the_params(tmp_path, capsys):
    from BreastAIAssistantLib.cli.main import main

    cohort = tmp_path / "cohort.csv"
    cohort.write_text("case_id,us_image,us_mask\n")
    params = tmp_path / "params.json"
    params.write_text(json.dumps({"deep": True, "deep_weights": str(tmp_path / "gone.pth")}))
    assert main(["features", "--cohort", str(cohort), "--out", str(tmp_path / "f.csv"),
                 "--params", str(params), "--no-progress"]) == 2
    assert "no weight file" in capsys.readouterr().err
