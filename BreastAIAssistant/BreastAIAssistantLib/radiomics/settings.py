"""Radiomics extraction settings: documented defaults, read from a YAML or JSON parameter file.

Parameter file (every key optional; unknown keys are errors, so a typo is not silently ignored)::

    images: [pre, post1, sub1, pe, ser]   # DCE images: pre, post<k>, sub<k> (post<k> - pre),
                                          # and any kinetic map (pe, ser, washin, washout, ttp)
    regions: [lesion, shell]              # inside the lesion; peritumoral shell
    shell_mm: 5.0                         # shell width outside the lesion
    families: [firstorder, shape, shape2D, glcm, glrlm, glszm, ngtdm, gldm]
    log_sigma_mm: []                      # Laplacian-of-Gaussian images, e.g. [1.0, 3.0]
    wavelet: false                        # the 8 undecimated wavelet decompositions
    deep: false                           # deep features: pooled activations of this project's
                                          # MRSM encoder (DCE studies), or, with deep_weights,
    deep_weights: null                    # of an ImageNet ResNet from a local torchvision
                                          # weight file (.pth) on the lesion's ROI (any modality)
    deep_image: sub1                      # the DCE image that ResNet sees
    pyradiomics:                          # passed to PyRadiomics as its settings
      binCount: 32
      resampledPixelSpacing: null
      interpolator: sitkBSpline
      normalize: false

Why these defaults: DCE-MRI intensities are in arbitrary units that differ between scanners and
studies, so a fixed bin *count* (32 bins over each ROI's range) is used rather than PyRadiomics'
fixed bin width of 25 (meant for CT's Hounsfield units); images keep their native spacing
(resampling is a choice a study must make for its cohort: set ``resampledPixelSpacing``, e.g.
``[1, 1, 1]``); shape is computed once per region on the mask (it does not depend on the image)
and also in 2-D on the lesion's largest axial slice (``shape2D``); the shell is 5 mm, a common
peritumoral width in breast MRI radiomics (e.g. Braman NM, et al. Breast Cancer Res 2017;19:57
used bands up to 5-6 mm).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from BreastAIAssistantLib.errors import BreastAIError

FAMILIES = ("firstorder", "shape", "shape2D", "glcm", "glrlm", "glszm", "ngtdm", "gldm")
REGIONS = ("lesion", "shell")


class RadiomicsSettingsError(BreastAIError):
    """A parameter file that cannot be read or has invalid values."""


def _default_pyradiomics() -> dict[str, Any]:
    return {"binCount": 32, "resampledPixelSpacing": None, "interpolator": "sitkBSpline",
            "normalize": False}


@dataclass
class RadiomicsSettings:
    """What to extract; see the module docstring for the meaning and defaults."""

    images: list[str] = field(default_factory=lambda: ["pre", "post1", "sub1", "pe", "ser"])
    regions: list[str] = field(default_factory=lambda: list(REGIONS))
    shell_mm: float = 5.0
    families: list[str] = field(default_factory=lambda: list(FAMILIES))
    log_sigma_mm: list[float] = field(default_factory=list)
    wavelet: bool = False
    deep: bool = False
    deep_weights: str | None = None
    deep_image: str = "sub1"
    pyradiomics: dict[str, Any] = field(default_factory=_default_pyradiomics)

    def __post_init__(self) -> None:
        unknown = set(self.families) - set(FAMILIES)
        if unknown:
            raise RadiomicsSettingsError(
                f"unknown feature families {sorted(unknown)}; known: {', '.join(FAMILIES)}")
        unknown = set(self.regions) - set(REGIONS)
        if unknown or not self.regions:
            raise RadiomicsSettingsError(f"regions must be a non-empty subset of {list(REGIONS)}")
        if not self.shell_mm > 0:
            raise RadiomicsSettingsError(f"shell_mm must be > 0; got {self.shell_mm}")
        if any(not s > 0 for s in self.log_sigma_mm):
            raise RadiomicsSettingsError("log_sigma_mm values must be > 0")
        for name in self.images:
            if "_" in name or ":" in name:
                raise RadiomicsSettingsError(
                    f"image name {name!r} may not contain '_' or ':' (feature keys are "
                    "<image>_<region>_<family>_<feature>)")
        self.pyradiomics = {**_default_pyradiomics(), **self.pyradiomics}

    @property
    def margin_mm(self) -> float:
        """Context kept around the region when cropping before extraction: enough for the
        largest LoG kernel (3 sigma) and never less than 10 mm."""
        return max(10.0, 3.0 * max(self.log_sigma_mm, default=0.0))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_settings(path: str | Path | None = None,
                  overrides: Mapping[str, Any] | None = None) -> RadiomicsSettings:
    """Settings from a ``.yaml``/``.yml``/``.json`` parameter file (defaults when ``None``).

    Raises:
        RadiomicsSettingsError: Unreadable file, unknown keys or invalid values.
    """
    data: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise RadiomicsSettingsError(f"cannot read the parameter file {path}: {exc}") from None
        try:
            if path.suffix.lower() in (".yaml", ".yml"):
                import yaml

                data = yaml.safe_load(text) or {}
            else:
                data = json.loads(text)
        except Exception as exc:
            raise RadiomicsSettingsError(f"cannot parse {path}: {exc}") from None
        if not isinstance(data, dict):
            raise RadiomicsSettingsError(f"{path} must hold a mapping of settings")
    data.update(overrides or {})
    known = set(RadiomicsSettings.__dataclass_fields__)
    unknown = set(data) - known
    if unknown:
        raise RadiomicsSettingsError(
            f"unknown radiomics settings {sorted(unknown)}; known: {', '.join(sorted(known))}")
    try:
        return RadiomicsSettings(**data)
    except TypeError as exc:
        raise RadiomicsSettingsError(f"invalid radiomics settings: {exc}") from None
