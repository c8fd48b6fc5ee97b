"""Model bundles: a folder with ``manifest.json`` and a TorchScript ``model.pt``.

The manifest (schema: ``Resources/Models/manifest.schema.json``) says what the network is, which
inputs it takes at which spacing and patch size, how to normalise them, what it returns, how it
was trained and what was measured on held-out data, and the sha256 of the weights file. Loading
checks the schema, then the checksum, and only then deserialises the weights, so an altered or
truncated file is refused before PyTorch reads it.

Bundles are found by id in, in order: folders given by the caller (``--models DIR``), the folders
in the ``BREAST_AI_MODELS`` environment variable (``os.pathsep``-separated), and the bundles
shipped in ``Resources/Models``. A path to a bundle folder is accepted wherever an id is.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from BreastAIAssistantLib.errors import BreastAIError

logger = logging.getLogger(__name__)

MANIFEST = "manifest.json"
SCHEMA_VERSION = 1
#: Folder of the bundles shipped with the extension (also what Slicer installs).
BUILTIN_MODELS = Path(__file__).resolve().parents[1] / "Resources" / "Models"
SCHEMA_PATH = BUILTIN_MODELS / "manifest.schema.json"
MODELS_ENV = "BREAST_AI_MODELS"


class BundleError(BreastAIError):
    """A model bundle is missing, altered, invalid or incompatible."""


@contextlib.contextmanager
def quiet_torchscript() -> Iterator[None]:
    """Silence TorchScript's deprecation warnings (torch 2.13) around script/save/load only."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", category=DeprecationWarning, message=r"`torch\.jit\.\w+` is deprecated"
        )
        yield


@cache
def manifest_schema() -> dict[str, Any]:
    """The manifest JSON Schema (draft 2020-12)."""
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


def validate_manifest(data: Mapping[str, Any], source: str = "manifest") -> None:
    """Check a manifest against the schema.

    Raises:
        BundleError: naming the first offending field.
    """
    import jsonschema

    validator = jsonschema.Draft202012Validator(manifest_schema())
    errors = sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path))
    if errors:
        first = errors[0]
        where = "/".join(str(p) for p in first.absolute_path) or "(top level)"
        raise BundleError(f"{source} is not a valid model manifest: {where}: {first.message}")
    outputs = data.get("outputs", {})
    if outputs.get("seed_threshold", 1.0) < outputs.get("threshold", 0.5):
        raise BundleError(
            f"{source} is not a valid model manifest: outputs/seed_threshold is below its threshold"
        )


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class Manifest:
    """A validated manifest, with typed access to what the pipeline needs.

    Attributes:
        data: The whole manifest as read (JSON-ready).
    """

    data: Mapping[str, Any]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "manifest") -> Manifest:
        """Validate and wrap a manifest dictionary (raises :class:`BundleError`)."""
        validate_manifest(data, source)
        return cls(data=data)

    @property
    def id(self) -> str:
        return str(self.data["id"])

    @property
    def version(self) -> str:
        return str(self.data["version"])

    @property
    def task(self) -> str:
        return str(self.data["task"])

    @property
    def network_name(self) -> str:
        return str(self.data["network"]["name"])

    @property
    def network_args(self) -> dict[str, Any]:
        return dict(self.data["network"]["args"])

    @property
    def spacing_mm(self) -> tuple[float, float, float]:
        """Model spacing (x, y, z) in mm."""
        x, y, z = self.data["inputs"]["spacing_mm"]
        return float(x), float(y), float(z)

    @property
    def patch_size_zyx(self) -> tuple[int, int, int]:
        z, y, x = self.data["inputs"]["patch_size_zyx"]
        return int(z), int(y), int(x)

    @property
    def normalisation(self) -> dict[str, Any]:
        return dict(self.data["inputs"]["normalisation"])

    @property
    def inputs(self) -> dict[str, Any]:
        return dict(self.data["inputs"])

    @property
    def outputs(self) -> dict[str, Any]:
        return dict(self.data["outputs"])

    @property
    def model_file(self) -> str:
        return str(self.data["files"]["model"])

    @property
    def sha256(self) -> str:
        return str(self.data["files"]["sha256"])

    @property
    def file_format(self) -> str:
        return str(self.data["files"]["format"])

    @property
    def research_demo(self) -> bool:
        return bool(self.data.get("research_demo", False))

    def summary(self) -> dict[str, Any]:
        """What a report or ``run.json`` records about the model."""
        return {
            "id": self.id,
            "version": self.version,
            "task": self.task,
            "network": self.network_name,
            "sha256": self.sha256,
            "research_demo": self.research_demo,
            "intended_use": self.data["intended_use"],
            "metrics": self.data["metrics"],
        }


@dataclass(frozen=True)
class ModelBundle:
    """A bundle folder with its validated manifest."""

    folder: Path
    manifest: Manifest

    @property
    def model_path(self) -> Path:
        return self.folder / self.manifest.model_file

    def verify(self) -> None:
        """Check that the weights file exists and matches the manifest's sha256.

        Raises:
            BundleError: missing or altered file.
        """
        path = self.model_path
        if not path.is_file():
            raise BundleError(f"model bundle {self.folder} has no weights file {path.name}")
        actual = sha256_file(path)
        if actual != self.manifest.sha256:
            raise BundleError(
                f"{path} does not match its manifest (sha256 {actual[:12]}..., expected "
                f"{self.manifest.sha256[:12]}...): the file was altered or is incomplete; "
                "reinstall the bundle"
            )

    def load(self, device: str = "cpu") -> Any:
        """Verify the checksum, then load the network in eval mode on ``device``.

        Raises:
            BundleError: checksum mismatch, or a file PyTorch cannot load.
        """
        import torch

        self.verify()
        try:
            if self.manifest.file_format == "torchscript":
                with quiet_torchscript():
                    module = torch.jit.load(str(self.model_path), map_location=device)
            else:
                module = torch.export.load(str(self.model_path)).module().to(device)
        except (RuntimeError, ValueError) as exc:
            raise BundleError(
                f"cannot load {self.model_path} ({self.manifest.file_format}): "
                f"{str(exc).strip().splitlines()[0]}"
            ) from exc
        module.eval()
        return module


def read_bundle(folder: str | os.PathLike[str]) -> ModelBundle:
    """Read and validate the manifest of a bundle folder (weights are checked on load).

    Raises:
        BundleError: no folder, no manifest, invalid JSON or schema, newer schema version.
    """
    folder = Path(folder)
    manifest_path = folder / MANIFEST
    if not manifest_path.is_file():
        raise BundleError(f"{folder} is not a model bundle: it has no {MANIFEST}")
    try:
        data = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise BundleError(f"cannot parse {manifest_path}: {exc}") from exc
    if isinstance(data, dict) and data.get("schema_version", SCHEMA_VERSION) > SCHEMA_VERSION:
        raise BundleError(
            f"{manifest_path} uses manifest schema {data['schema_version']}; this version of "
            f"BreastAIAssistant reads schema {SCHEMA_VERSION}: update BreastAIAssistant"
        )
    return ModelBundle(folder=folder, manifest=Manifest.from_dict(data, str(manifest_path)))


def search_paths(extra: Sequence[str | os.PathLike[str]] = ()) -> list[Path]:
    """Folders searched for bundles, in order: ``extra``, ``$BREAST_AI_MODELS``, built-in."""
    env = [p for p in os.environ.get(MODELS_ENV, "").split(os.pathsep) if p]
    return [Path(p) for p in (*extra, *env)] + [BUILTIN_MODELS]


def available_bundles(extra: Sequence[str | os.PathLike[str]] = ()) -> dict[str, ModelBundle]:
    """Every valid bundle found, by id (the first found wins; invalid ones are logged)."""
    found: dict[str, ModelBundle] = {}
    for root in search_paths(extra):
        if not root.is_dir():
            continue
        for folder in sorted(p for p in root.iterdir() if (p / MANIFEST).is_file()):
            try:
                bundle = read_bundle(folder)
            except BundleError as exc:
                logger.warning("skipping model bundle %s: %s", folder, exc)
                continue
            found.setdefault(bundle.manifest.id, bundle)
    return found


def find_bundle(
    id_or_path: str | os.PathLike[str], extra: Sequence[str | os.PathLike[str]] = ()
) -> ModelBundle:
    """A bundle by id (searched as :func:`search_paths` says) or by folder path.

    Raises:
        BundleError: unknown id (listing the known ones) or invalid bundle.
    """
    path = Path(id_or_path)
    if (path / MANIFEST).is_file():
        return read_bundle(path)
    bundles = available_bundles(extra)
    if str(id_or_path) in bundles:
        return bundles[str(id_or_path)]
    known = ", ".join(sorted(bundles)) or "none"
    raise BundleError(
        f"unknown model {str(id_or_path)!r} (known: {known}); give a bundle id or the path of a "
        f"folder with a {MANIFEST}"
    )


def starting_weights(
    id_or_path: str | os.PathLike[str] | ModelBundle | None,
    network: tuple[str, Mapping[str, Any]] | None = None,
) -> tuple[Any, dict[str, Any]]:
    """The weights and training record of the bundle a training run continues from (``--init``).

    Resolved (found, checksum verified, weights loaded on the CPU) before any data are prepared, so
    a wrong name fails at once rather than after an hour of preparation.

    Args:
        id_or_path: bundle id, folder or an already resolved bundle; None: training starts
            from fresh weights.
        network: ``(name, args)`` of the network to be trained; a bundle of another network (a
            whole-breast U-Net given to ``train seg``, or other arguments) is refused with a
            :class:`BundleError` here rather than a shape mismatch after the data are prepared.

    Returns:
        ``(state_dict, record)``: ``record`` is a copy of the bundle's ``training`` record with
        ``bundle`` (its id, version and weights sha256) added, to be kept as ``continued_from``;
        ``(None, {})`` when ``id_or_path`` is None.
    """
    if id_or_path is None:
        return None, {}
    start = id_or_path if isinstance(id_or_path, ModelBundle) else find_bundle(id_or_path)
    if network is not None:
        name, args = network
        want = json.loads(json.dumps({"name": name, "args": dict(args)}))
        have = {"name": start.manifest.network_name, "args": start.manifest.network_args}
        if want != have:
            why = (f"it is not the {name} being trained" if want["name"] != have["name"]
                   else f"its network arguments differ from those of the {name} being trained")
            raise BundleError(f"cannot continue training from {start.manifest.id!r} "
                              f"({start.manifest.network_name}): {why}")
    identity = {"id": start.manifest.id, "version": start.manifest.version,
                "sha256": start.manifest.sha256}  # fmt: skip
    return start.load("cpu").state_dict(), {"bundle": identity, **start.manifest.data["training"]}


def save_bundle(module: Any, manifest: Mapping[str, Any], folder: str | os.PathLike[str]) -> Path:
    """Script ``module``, write it and its manifest (with the sha256 filled in) to ``folder``.

    Both files are written atomically; the manifest is written last and validated first.

    Returns:
        The bundle folder.
    """
    import torch

    from BreastAIAssistantLib.io.volumes import atomic_path, write_json

    folder = Path(folder)
    data = json.loads(json.dumps(manifest))  # deep copy, JSON-only
    data.setdefault("schema_version", SCHEMA_VERSION)
    files = data.setdefault("files", {})
    files.setdefault("model", "model.pt")
    files["format"] = "torchscript"
    files["sha256"] = "0" * 64
    validate_manifest(data, "the new manifest")
    with quiet_torchscript():
        scripted = (
            module
            if isinstance(module, torch.jit.ScriptModule)
            else torch.jit.script(module.eval())
        )
        with atomic_path(folder / files["model"]) as tmp:
            torch.jit.save(scripted, str(tmp))
            files["sha256"] = sha256_file(tmp)
    write_json(data, folder / MANIFEST)
    return folder


def update_metrics(bundle: ModelBundle, metrics: Mapping[str, Any]) -> ModelBundle:
    """Record new held-out ``metrics`` in a bundle's manifest (weights and checksum unchanged).

    Returns:
        The re-read bundle.
    """
    from BreastAIAssistantLib.io.volumes import write_json

    data = json.loads(json.dumps(bundle.manifest.data))
    data["metrics"] = dict(metrics)
    validate_manifest(data, "the updated manifest")
    write_json(data, bundle.folder / MANIFEST)
    return read_bundle(bundle.folder)
