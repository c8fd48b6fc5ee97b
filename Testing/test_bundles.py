"""Model bundles: schema, checksum before loading, lookup by id or path, clear errors."""

from __future__ import annotations

import json

import pytest
import torch

from BreastAIAssistantLib.bundles import (
    BUILTIN_MODELS,
    BundleError,
    find_bundle,
    read_bundle,
    save_bundle,
    starting_weights,
    validate_manifest,
)


class Tiny(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv3d(1, 1, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def manifest(model_id="tiny-test"):
    return {
        "id": model_id,
        "version": "0.1.0",
        "task": "breast-segmentation",
        "research_demo": True,
        "network": {"name": "Tiny", "args": {}},
        "inputs": {"images": ["pre"], "spacing_mm": [1.5, 1.5, 3.0], "patch_size_zyx": [8, 16, 16],
                   "normalisation": {"scheme": "percentile-minmax", "percentiles": [1, 99]}},
        "outputs": {"kind": "probability", "threshold": 0.5,
                    "labels": [{"value": 1, "name": "breast", "color": [200, 150, 120]}]},
        "training": {"data": "none: test fixture"},
        "intended_use": "tests only",
        "metrics": {"dataset": "none"},
        "licence": "MIT",
    }  # fmt: skip


@pytest.fixture
def bundle_dir(tmp_path):
    torch.manual_seed(0)
    return save_bundle(Tiny(), manifest(), tmp_path / "models" / "tiny-test")


def test_round_trip_by_path_and_id(bundle_dir, tmp_path, monkeypatch):
    bundle = read_bundle(bundle_dir)
    assert bundle.manifest.patch_size_zyx == (8, 16, 16)
    assert bundle.manifest.spacing_mm == (1.5, 1.5, 3.0)
    module = bundle.load()
    x = torch.randn(1, 1, 8, 16, 16)
    torch.manual_seed(0)
    assert torch.allclose(module(x), Tiny()(x), atol=1e-6)
    assert find_bundle("tiny-test", extra=[bundle_dir.parent]).folder == bundle_dir
    monkeypatch.setenv("BREAST_AI_MODELS", str(bundle_dir.parent))
    assert find_bundle("tiny-test").folder == bundle_dir
    assert find_bundle(bundle_dir).manifest.id == "tiny-test"


def test_starting_weights_give_the_weights_and_the_training_record(bundle_dir):
    assert starting_weights(None) == (None, {})
    state, training = starting_weights(bundle_dir)
    torch.manual_seed(1)
    fresh = Tiny()  # other weights until the state dict is loaded
    fresh.load_state_dict(state)
    torch.manual_seed(0)
    assert torch.equal(fresh.conv.weight, Tiny().conv.weight)
    sha = read_bundle(bundle_dir).manifest.sha256
    assert training == {"bundle": {"id": "tiny-test", "version": "0.1.0", "sha256": sha},
                        "data": "none: test fixture"}  # fmt: skip
    assert starting_weights(bundle_dir, ("Tiny", {}))[1] == training  # the same network
    with pytest.raises(BundleError, match=r"'tiny-test' \(Tiny\): it is not the UNet3d"):
        starting_weights(bundle_dir, ("UNet3d", {}))
    with pytest.raises(BundleError, match="its network arguments differ"):
        starting_weights(bundle_dir, ("Tiny", {"width": 2}))
    training["data"] = "edited"  # a copy: the manifest is untouched
    assert read_bundle(bundle_dir).manifest.data["training"]["data"] == "none: test fixture"
    (bundle_dir / "model.pt").write_bytes(b"not a model")
    with pytest.raises(BundleError, match="does not match its manifest"):
        starting_weights(bundle_dir)


def test_altered_weights_are_refused_before_loading(bundle_dir):
    model = bundle_dir / "model.pt"
    model.write_bytes(model.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(BundleError, match="does not match its manifest"):
        read_bundle(bundle_dir).load()


def test_missing_weights(bundle_dir):
    (bundle_dir / "model.pt").unlink()
    with pytest.raises(BundleError, match=r"has no weights file model\.pt"):
        read_bundle(bundle_dir).load()


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda m: m.pop("intended_use"), "'intended_use' is a required property"),
        (lambda m: m.update(task="guessing"), "task: 'guessing' is not one of"),
        (lambda m: m["inputs"].update(spacing_mm=[1, 1]), "inputs/spacing_mm"),
        (lambda m: m.update(schema_version=99), "update BreastAIAssistant"),
        (lambda m: m["outputs"].update(threshold=1.5), "outputs/threshold"),
        (lambda m: m["outputs"].update(threshold=0.5, seed_threshold=0.3), "seed_threshold is"),
        (lambda m: m["outputs"].update(gap_mm=-1), "outputs/gap_mm"),
        (lambda m: m["outputs"].update(merge_below_ml=0), "outputs/merge_below_ml"),
    ],
)
def test_invalid_manifests(bundle_dir, edit, message):
    path = bundle_dir / "manifest.json"
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))
    with pytest.raises(BundleError, match=message):
        read_bundle(bundle_dir)


def test_not_a_bundle_and_unknown_id(tmp_path, bundle_dir):
    with pytest.raises(BundleError, match=r"has no manifest\.json"):
        read_bundle(tmp_path)
    (bundle_dir / "manifest.json").write_text("{oops")
    with pytest.raises(BundleError, match="cannot parse"):
        read_bundle(bundle_dir)
    with pytest.raises(BundleError, match="unknown model 'nope'"):
        find_bundle("nope", extra=[tmp_path])


@pytest.mark.parametrize(
    "manifest_path", sorted(BUILTIN_MODELS.glob("*/manifest.json")), ids=lambda p: p.parent.name
)
def test_every_bundled_manifest_is_valid_and_matches_its_weights(manifest_path):
    data = json.loads(manifest_path.read_text())
    validate_manifest(data, str(manifest_path))
    assert data["research_demo"] is True and "not for clinical use" in data["intended_use"]
    read_bundle(manifest_path.parent).verify()


def test_update_metrics_keeps_the_weights_and_checksum(bundle_dir):
    from BreastAIAssistantLib.bundles import update_metrics

    before = read_bundle(bundle_dir)
    after = update_metrics(before, {"dataset": "held out: 3 cases", "mean_dice": 0.5})
    assert after.manifest.data["metrics"]["mean_dice"] == 0.5
    assert after.manifest.sha256 == before.manifest.sha256
    after.verify()
    with pytest.raises(BundleError, match="metrics"):
        update_metrics(after, {"mean_dice": 0.5})  # no dataset: invalid
