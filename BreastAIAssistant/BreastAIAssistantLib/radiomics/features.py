"""PyRadiomics features per lesion, per image and per region, with stable names.

Keys are ``<image>_<region>_<family>_<feature>``:

* ``image``: a DCE image (``pre``, ``post<k>``, ``sub<k>`` = post<k> − pre, or a kinetic map:
  ``pe``, ``ser``, ``peak``, ``ttp``, ``washin``, ``washout``), ``image`` for a single-image
  modality, or ``mask`` for shape features (they depend on the mask only, so they are computed
  once per lesion rather than once per image; the shell gets none: its shape only restates the
  lesion's, and its two-surface mesh makes PyRadiomics' diameter search slow);
* ``region``: ``lesion`` or ``shell`` (the peritumoral shell, :func:`shell_mask`);
* ``family``: the PyRadiomics feature class (``firstorder``, ``shape``, ``shape2D``, ``glcm``,
  ``glrlm``, ``glszm``, ``ngtdm``, ``gldm``), prefixed by the filter for filtered images
  (``log-sigma-3-0-mm-3D-glcm``, ``wavelet-LLH-glcm``);
* ``feature``: PyRadiomics' feature name (``Contrast``, ``Sphericity``...).

Computation (van Griethuysen JJM, et al., "Computational radiomics system to decode the
radiographic phenotype", Cancer Res 2017;77:e104-e107): each image and region mask are cropped
to the region's bounding box plus a margin (:attr:`RadiomicsSettings.margin_mm`) before
PyRadiomics runs — exact for unfiltered features, which PyRadiomics computes on the ROI's
bounding box anyway, and close for LoG/wavelet images whose kernels then see the same
neighbourhood up to the margin; ``shape2D`` is computed on the lesion's largest slice along the
image's third index axis (the acquired slice). A family that fails for a region (e.g. a
one-voxel shell) gives NaN for its features and a log line; it never stops the extraction.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from BreastAIAssistantLib.radiomics.settings import RadiomicsSettings
from BreastAIAssistantLib.study import DCEStudy

logger = logging.getLogger(__name__)

#: Kinetic-map image names -> :func:`BreastAIAssistantLib.dce.compute_maps` names.
MAP_IMAGES = {"pe": "pe", "ser": "ser", "peak": "peak_enhancement", "ttp": "time_to_peak",
              "washin": "wash_in", "washout": "washout"}
TEXTURE = ("firstorder", "glcm", "glrlm", "glszm", "ngtdm", "gldm")


def _quiet_pyradiomics() -> None:
    logging.getLogger("radiomics").setLevel(logging.ERROR)


def shell_mask(lesion: sitk.Image, width_mm: float, within: sitk.Image | None = None) -> sitk.Image:
    """The peritumoral shell: voxels outside the lesion within ``width_mm`` of it (exact
    Euclidean distance on the voxel spacing), inside the image by construction and, when
    ``within`` (e.g. the breast mask) is given, inside it too. The distance transform runs on
    the lesion's bounding box plus the shell width only."""
    mask = sitk.GetArrayFromImage(lesion) > 0
    shell = np.zeros(mask.shape, np.uint8)
    spacing = np.array(lesion.GetSpacing()[::-1])
    box = _crop_box(mask, spacing, width_mm + spacing.max())
    if box is not None:
        part = mask[box]
        distance = ndimage.distance_transform_edt(~part, sampling=tuple(spacing))
        shell[box] = (~part) & (distance <= width_mm)
    if within is not None:
        shell &= (sitk.GetArrayViewFromImage(within) > 0).astype(np.uint8)
    image = sitk.GetImageFromArray(shell)
    image.CopyInformation(lesion)
    return image


def _crop_box(mask_zyx: np.ndarray, spacing_zyx: np.ndarray, margin_mm: float
              ) -> tuple[slice, ...] | None:
    found = np.argwhere(mask_zyx)
    if found.size == 0:
        return None
    pad = np.ceil(margin_mm / spacing_zyx).astype(int)
    lo = np.maximum(found.min(0) - pad, 0)
    hi = np.minimum(found.max(0) + pad + 1, mask_zyx.shape)
    return tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))


def _sub_image(image: sitk.Image, box: tuple[slice, ...]) -> sitk.Image:
    index = [box[2].start, box[1].start, box[0].start]
    size = [box[2].stop - box[2].start, box[1].stop - box[1].start, box[0].stop - box[0].start]
    return sitk.RegionOfInterest(image, size, index)


def _extractor(settings: RadiomicsSettings, families: list[str], filtered: bool) -> Any:
    from radiomics import featureextractor

    _quiet_pyradiomics()
    options = dict(settings.pyradiomics)
    options.setdefault("additionalInfo", False)
    options["label"] = 1
    extractor = featureextractor.RadiomicsFeatureExtractor(**options)
    extractor.disableAllFeatures()
    for family in families:
        extractor.enableFeatureClassByName(family)
    extractor.disableAllImageTypes()
    extractor.enableImageTypeByName("Original")
    if filtered and settings.log_sigma_mm:
        extractor.enableImageTypeByName("LoG", customArgs={"sigma": list(settings.log_sigma_mm)})
    if filtered and settings.wavelet:
        extractor.enableImageTypeByName("Wavelet")
    return extractor


def _rename(raw: Mapping[str, Any], image: str, region: str) -> dict[str, float]:
    out = {}
    for key, value in raw.items():
        if key.startswith("diagnostics_"):
            continue
        kind, family, feature = key.split("_", 2)
        family = family if kind == "original" else f"{kind.replace('_', '-')}-{family}"
        out[f"{image}_{region}_{family}_{feature}"] = float(value)
    return out


def _run(extractor: Any, image: sitk.Image, mask: sitk.Image, image_name: str, region: str,
         families: list[str]) -> dict[str, float]:
    try:
        return _rename(extractor.execute(image, mask, label=1), image_name, region)
    except Exception as exc:
        logger.warning("radiomics %s/%s (%s) failed: %s; its features are NaN", image_name,
                       region, ", ".join(families), str(exc).splitlines()[0] if str(exc) else exc)
        return {}


def _largest_slice(image: sitk.Image, mask: sitk.Image) -> tuple[sitk.Image, sitk.Image] | None:
    array = sitk.GetArrayViewFromImage(mask)
    areas = (array > 0).sum(axis=(1, 2))
    if areas.max() == 0:
        return None
    z = int(np.argmax(areas))
    size = list(mask.GetSize())
    return (sitk.RegionOfInterest(image, [size[0], size[1], 1], [0, 0, z]),
            sitk.RegionOfInterest(mask, [size[0], size[1], 1], [0, 0, z]))


def region_features(images: Mapping[str, sitk.Image], mask: sitk.Image, region: str,
                    settings: RadiomicsSettings) -> dict[str, float]:
    """Features of one region (binary ``mask``) on every image (all on the mask's grid)."""
    mask_zyx = sitk.GetArrayViewFromImage(mask) > 0
    spacing = np.array(mask.GetSpacing()[::-1])
    box = _crop_box(mask_zyx, spacing, settings.margin_mm)
    if box is None:
        logger.warning("radiomics: the %s region is empty; its features are NaN", region)
        return {}
    mask_crop = _sub_image(sitk.Cast(mask > 0, sitk.sitkUInt8), box)
    volumetric = mask_crop.GetSize()[2] > 1
    out: dict[str, float] = {}
    texture = [f for f in settings.families if f in TEXTURE]
    first_image = next(iter(images.values()))
    lesion_region = region == "lesion"  # a shell's shape only restates the lesion's
    if "shape" in settings.families and volumetric and lesion_region:
        shape = _extractor(settings, ["shape"], filtered=False)
        out.update(_run(shape, _sub_image(first_image, box), mask_crop, "mask", region,
                        ["shape"]))
    if lesion_region and ("shape2D" in settings.families
                          or ("shape" in settings.families and not volumetric)):
        # a 2-D image's shape is its 2-D shape
        pair = _largest_slice(_sub_image(first_image, box), mask_crop)
        if pair is not None:
            flat = _extractor(settings, ["shape2D"], filtered=False)
            flat.settings["force2D"] = True
            flat.settings["force2Ddimension"] = 0
            out.update(_run(flat, *pair, "mask", region, ["shape2D"]))
    if texture:
        extractor = _extractor(settings, texture, filtered=True)
        if not volumetric:
            extractor.settings["force2D"] = True
            extractor.settings["force2Ddimension"] = 0
        for name, image in images.items():
            out.update(_run(extractor, _sub_image(image, box), mask_crop, name, region, texture))
    return out


def dce_images(study: DCEStudy, names: list[str]) -> dict[str, sitk.Image]:
    """The named DCE images of a study on its pre-contrast grid (see the module docstring).

    Raises:
        ValueError: An unknown name or a phase the study does not have.
    """
    from BreastAIAssistantLib.errors import BreastAIError

    images: dict[str, sitk.Image] = {}
    maps = None
    for name in names:
        if name == "pre":
            images[name] = study.phases[0]
        elif name.startswith(("post", "sub")) and name[4 if name[0] == "p" else 3:].isdigit():
            k = int(name[4:] if name.startswith("post") else name[3:])
            if not 1 <= k < study.n_phases:
                raise BreastAIError(f"radiomics image {name!r}: the study has post-contrast "
                                    f"phases 1-{study.n_phases - 1}")
            images[name] = study.phases[k] if name.startswith("post") else \
                sitk.Subtract(study.phases[k], study.phases[0])
        elif name in MAP_IMAGES:
            if maps is None:
                from BreastAIAssistantLib.dce import compute_maps

                maps = compute_maps(study)
            images[name] = sitk.Cast(maps[MAP_IMAGES[name]], sitk.sitkFloat32)
        else:
            raise BreastAIError(
                f"unknown radiomics image {name!r}; use pre, post<k>, sub<k> or one of "
                f"{', '.join(MAP_IMAGES)}")
    return images


def lesion_features(images: Mapping[str, sitk.Image], lesion: sitk.Image,
                    settings: RadiomicsSettings | None = None,
                    breast: sitk.Image | None = None) -> dict[str, float]:
    """All configured features of one lesion: every image x region x family.

    Args:
        images: Image name -> image on the lesion mask's grid.
        lesion: Binary mask of the lesion.
        settings: What to extract (defaults when ``None``).
        breast: Optional mask that the shell is kept inside (e.g. the whole-breast mask).

    Returns:
        Key -> value; a feature that could not be computed is NaN (present in the keys when
        another lesion had it: :func:`BreastAIAssistantLib.radiomics.cohort` aligns columns).
    """
    settings = settings or RadiomicsSettings()
    out: dict[str, float] = {}
    regions = {"lesion": sitk.Cast(lesion > 0, sitk.sitkUInt8)}
    if "shell" in settings.regions:
        regions["shell"] = shell_mask(lesion, settings.shell_mm, breast)
    for region, mask in regions.items():
        if region in settings.regions:
            out.update(region_features(images, mask, region, settings))
    return out
