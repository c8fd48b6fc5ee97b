"""Apply a saved radiomics model (``breast-ai radiomics-model``) to a new study's lesions.

The model's ``model.json`` lists the feature columns it was trained on. Only the DCE modality
can be computed from a study: a column ``<modality>:<image>_<region>_<family>_<feature>`` is
computed when its image is a DCE image name (pre, post<k>, sub<k>, kinetic maps) or ``mask``;
the extraction settings are those saved beside the model (``radiomics_settings.json``, written
when the feature table came from ``breast-ai features``), restricted to the images, regions,
families and filters the model's *selected* features need. Columns of other modalities
(ultrasound, mammography) are missing and imputed by the model's training medians; the model
refuses to predict when more than half of its selected features are missing.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import SimpleITK as sitk

from BreastAIAssistantLib.radiomics.features import MAP_IMAGES, dce_images, lesion_features
from BreastAIAssistantLib.radiomics.settings import FAMILIES, RadiomicsSettings, load_settings
from BreastAIAssistantLib.study import DCEStudy

_DCE_IMAGE = re.compile(r"^(pre|post\d+|sub\d+)$")
_LOG = re.compile(r"^log-sigma-(\d+)-(\d+)-mm-3D-(\w+)$")


def _parse(column: str) -> tuple[str, str, str, str, str] | None:
    modality, _, key = column.rpartition(":")
    parts = key.split("_", 3)
    if len(parts) != 4:
        return None
    return (modality or "all", *parts)  # type: ignore[return-value]


def settings_for(columns: list[str], base: RadiomicsSettings) -> tuple[RadiomicsSettings, str]:
    """Extraction settings covering ``columns``, and the modality prefix they use."""
    images: list[str] = []
    regions: set[str] = set()
    families: set[str] = set()
    sigmas: set[float] = set()
    wavelet = False
    modalities: set[str] = set()
    for column in columns:
        parsed = _parse(column)
        if parsed is None:
            continue
        modality, image, region, family, _ = parsed
        if image != "mask" and not (_DCE_IMAGE.match(image) or image in MAP_IMAGES):
            continue
        modalities.add(modality)
        if image != "mask" and image not in images:
            images.append(image)
        regions.add(region)
        log = _LOG.match(family)
        if log:
            sigmas.add(float(f"{log.group(1)}.{log.group(2)}"))
            family = log.group(3)
        elif family.startswith("wavelet-"):
            wavelet = True
            family = family.rsplit("-", 1)[-1]
        if family in FAMILIES:
            families.add(family)
    prefix = sorted(modalities)[0] if modalities else "dce"
    settings = replace(base, images=images or ["sub1"], regions=sorted(regions) or ["lesion"],
                       families=[f for f in FAMILIES if f in families] or ["firstorder"],
                       log_sigma_mm=sorted(sigmas), wavelet=wavelet, deep=False)
    return settings, prefix


class RadiomicsApplier:
    """A saved radiomics model ready to score lesions of studies."""

    def __init__(self, model_dir: str | Path) -> None:
        from BreastAIAssistantLib.radiomics.modelling import load_model

        self.model = load_model(model_dir)
        folder = Path(self.model.path)
        sidecar = folder / "radiomics_settings.json"
        base = load_settings(sidecar) if sidecar.is_file() else RadiomicsSettings()
        selected = list(self.model.info.get("selected_features") or
                        self.model.info["feature_columns"])
        self.settings, self.prefix = settings_for(selected, base)
        self.name = str(Path(folder).resolve().parent.name if folder.name == "best_model"
                        else folder.name)

    def predict(self, study: DCEStudy, lesion: sitk.Image,
                breast: sitk.Image | None = None) -> dict[str, Any]:
        """``radiomics_probability`` (class 1 = the model's positive label), provenance, and
        ``features``: the lesion's computed feature values by column name."""
        from BreastAIAssistantLib.radiomics.modelling import predict

        images = dce_images(study, self.settings.images)
        features = lesion_features(images, lesion, self.settings, breast)
        row = {f"{self.prefix}:{k}" if self.prefix != "all" else k: v
               for k, v in features.items()}
        info = self.model.info
        return {"radiomics_probability": predict(self.model, row),
                "radiomics_model": {"name": self.name, "label": info.get("label_column"),
                                    "strategy": info.get("strategy"),
                                    "classifier": info.get("classifier"),
                                    "cv_auc": (info.get("metrics") or {}).get("auc")},
                "features": row}

    def describe(self) -> str:
        return json.dumps(self.model.info.get("metrics", {}))


LESION_FEATURES_CSV = "radiomics_features.csv"


def write_lesion_features(features: Mapping[int, Mapping[str, float]],
                          path: str | os.PathLike[str]) -> Path:  # fmt: skip
    """Write one row per lesion (``lesion_id`` then the feature columns, sorted) atomically;
    a missing or non-finite value is an empty cell."""
    from BreastAIAssistantLib.io.volumes import atomic_path

    columns = sorted({name for row in features.values() for name in row})
    path = Path(path)
    with atomic_path(path) as tmp, tmp.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["lesion_id", *columns])
        for lesion_id in sorted(features):
            row = features[lesion_id]
            cells = []
            for name in columns:
                value = row.get(name)
                ok = value is not None and math.isfinite(float(value))
                cells.append(repr(float(value)) if ok else "")
            writer.writerow([lesion_id, *cells])
    return path


def read_lesion_features(path: str | os.PathLike[str]) -> dict[int, dict[str, float]]:
    """Read :func:`write_lesion_features`' file: lesion id -> feature -> value (NaN if empty)."""
    with Path(path).open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    if not rows or not rows[0] or rows[0][0] != "lesion_id":
        raise ValueError(f"{path} is not a lesion feature table (no lesion_id column)")
    header = rows[0][1:]
    return {int(row[0]): {name: float(cell) if cell else math.nan
                          for name, cell in zip(header, row[1:], strict=True)}
            for row in rows[1:] if row}  # fmt: skip
