"""Checking lesion and breast masks before measuring them.

A lesion mask is a 3-D scalar image of non-negative integers: either *binary* (one non-zero value,
e.g. 1 or 255; lesions are found by the grouping rule) or an *instance label map* (values 1..n,
each value one lesion). Probability maps, vector images and 2-D images are refused with a message
that says what to do.
"""

from __future__ import annotations

import logging
from typing import Literal

import numpy as np
import SimpleITK as sitk

from BreastAIAssistantLib.errors import BreastAIError
from BreastAIAssistantLib.study import same_grid

logger = logging.getLogger(__name__)

LesionMode = Literal["auto", "binary", "labels"]


class MaskError(BreastAIError):
    """A mask cannot be measured (not a mask, empty, or on another grid than the lesion mask)."""


def mask_array(image: sitk.Image, what: str = "the mask") -> np.ndarray:
    """The voxels of a mask image as an integer (z, y, x) array, after checking it is a mask.

    Args:
        image: A 3-D scalar image.
        what: How to name the image in error messages.

    Raises:
        MaskError: not 3-D, not scalar, or values that are not non-negative integers.
    """
    if image.GetDimension() != 3:
        raise MaskError(f"{what} is {image.GetDimension()}-D; a 3-D mask volume is needed")
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise MaskError(
            f"{what} has {image.GetNumberOfComponentsPerPixel()} components per voxel; "
            "a mask has one (export a label map, not a colour or vector image)"
        )
    array = sitk.GetArrayViewFromImage(image)
    if np.issubdtype(array.dtype, np.integer) or array.dtype == bool:
        values = array[array != 0]
        if values.size and values.min() < 0:
            raise MaskError(f"{what} has negative values; a mask holds 0 and positive labels")
        return np.asarray(array)
    values = array[array != 0]
    if values.size and not (np.all(np.isfinite(values)) and np.all(values == np.round(values))):
        raise MaskError(
            f"{what} is not a mask: it holds non-integer values (a probability map? threshold "
            "it first, e.g. at 0.5)"
        )
    if values.size and values.min() < 0:
        raise MaskError(f"{what} has negative values; a mask holds 0 and positive labels")
    return np.rint(array).astype(np.int64)


def resolve_mode(array_zyx: np.ndarray, mode: LesionMode = "auto") -> Literal["binary", "labels"]:
    """Binary or instance labels: ``"auto"`` is binary when the mask has one non-zero value."""
    if mode in ("binary", "labels"):
        return mode
    if mode != "auto":
        raise ValueError(f"mode must be 'auto', 'binary' or 'labels', got {mode!r}")
    values = np.unique(array_zyx[array_zyx != 0])
    return "binary" if len(values) <= 1 else "labels"


def breast_array(breast: sitk.Image, lesion_mask: sitk.Image) -> np.ndarray:
    """The breast mask as a boolean (z, y, x) array on the lesion mask's grid.

    Raises:
        MaskError: not a mask, empty, or on another grid than the lesion mask.
    """
    array = mask_array(breast, "the breast mask")
    if not same_grid(breast, lesion_mask):
        raise MaskError(
            "the breast mask is on another grid than the lesion mask (size "
            f"{breast.GetSize()} vs {lesion_mask.GetSize()}, spacing "
            f"{tuple(round(s, 4) for s in breast.GetSpacing())} vs "
            f"{tuple(round(s, 4) for s in lesion_mask.GetSpacing())}); resample it onto the "
            "lesion mask's grid (nearest neighbour) first"
        )
    breast_zyx = array != 0
    if not breast_zyx.any():
        raise MaskError("the breast mask is empty; give a mask with the breast voxels set")
    return breast_zyx
