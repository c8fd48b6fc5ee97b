"""Segments and label layers: what every segmentation export takes.

A segmentation to export is a list of **layers** -- integer label maps on one grid (the study's
pre-contrast grid) -- and a list of :class:`SegmentInfo`, each naming one ``(layer, label value)``
pair. One layer is enough when segments do not overlap; segments that do (the tumour lies inside
the breast) go into separate layers, which is exactly how Slicer stores overlapping segments in a
``.seg.nrrd`` (one 3-D label map per layer, stacked into a 4-D file).

:func:`breast_lesion_segments` builds the project's standard layout: layer 0 holds the whole-breast
mask (value 1, segment "Breast"), layer 1 the lesion instance labels (value ``k`` is segment
"Lesion k", the lesion id of the measurement report), each lesion with its own colour. Two layers
are used whenever both masks are given, whether or not they overlap in a particular case, so that
a segment's layer and label value never depend on the data.

**Colours** are RGB floats in ``[0, 1]`` (Slicer's own convention in ``SegmentN_Color``);
DICOM SEG converts them to CIELab.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

from BreastAIAssistantLib.errors import OutputError
from BreastAIAssistantLib.export.terminology import BREAST, BREAST_MASS, Terminology
from BreastAIAssistantLib.study import same_grid

logger = logging.getLogger(__name__)

#: Colour of the whole-breast segment (Slicer's "tissue"-like pink).
BREAST_COLOR = (0.93, 0.75, 0.68)
#: Lesion colours, cycled: distinct, saturated, none close to the breast colour.
LESION_COLORS = (
    (0.89, 0.10, 0.11),
    (0.12, 0.47, 0.71),
    (0.20, 0.63, 0.17),
    (1.00, 0.50, 0.00),
    (0.42, 0.24, 0.60),
    (0.65, 0.34, 0.16),
    (0.97, 0.51, 0.75),
    (0.09, 0.75, 0.81),
    (0.74, 0.74, 0.13),
    (0.50, 0.50, 0.50),
)
#: Largest label value the exports write (unsigned 16-bit label maps).
MAX_LABEL = 65535
_INTEGER_PIXEL_IDS = {
    sitk.sitkUInt8,
    sitk.sitkInt8,
    sitk.sitkUInt16,
    sitk.sitkInt16,
    sitk.sitkUInt32,
    sitk.sitkInt32,
    sitk.sitkUInt64,
    sitk.sitkInt64,
}


@dataclass(frozen=True)
class SegmentInfo:
    """One segment of a label-layer segmentation.

    Attributes:
        label_value: Voxel value of the segment in its layer (1..65535).
        name: Display name ("Breast", "Lesion 1"); also the DICOM SegmentLabel (at most 64
            characters).
        color_rgb: Display colour as RGB floats in ``[0, 1]``.
        terminology: Coded meaning (category, type, region); ``None`` writes no codes to
            ``.seg.nrrd`` and is refused by DICOM SEG, which requires them.
        layer: Index of the label layer that holds the segment.
    """

    label_value: int
    name: str
    color_rgb: tuple[float, float, float]
    terminology: Terminology | None = None
    layer: int = 0

    def __post_init__(self) -> None:
        if not 1 <= int(self.label_value) <= MAX_LABEL:
            raise ValueError(f"segment {self.name!r}: label value must be in 1..{MAX_LABEL}")
        if not self.name.strip() or any(c in self.name for c in "\r\n"):
            raise ValueError(f"a segment name must be non-empty and on one line: {self.name!r}")
        if len(self.color_rgb) != 3 or not all(0.0 <= float(c) <= 1.0 for c in self.color_rgb):
            raise ValueError(
                f"segment {self.name!r}: color_rgb must be three floats in [0, 1], "
                f"got {self.color_rgb}"
            )
        if self.layer < 0:
            raise ValueError(f"segment {self.name!r}: layer must be >= 0")

    @property
    def color_rgb255(self) -> tuple[int, int, int]:
        """The colour as 0-255 integers."""
        r, g, b = (round(255 * float(c)) for c in self.color_rgb)
        return r, g, b


def lesion_color(index: int) -> tuple[float, float, float]:
    """Colour of lesion ``index`` (1-based), cycling through :data:`LESION_COLORS`."""
    return LESION_COLORS[(index - 1) % len(LESION_COLORS)]


def as_layers(labels: sitk.Image | Sequence[sitk.Image]) -> list[sitk.Image]:
    """One label image, or a sequence of them, as a list of layers."""
    return [labels] if isinstance(labels, sitk.Image) else list(labels)


def layer_array(image: sitk.Image, what: str = "the label map") -> np.ndarray:
    """The ``(z, y, x)`` values of an integer 3-D label image as ``uint8`` or ``uint16``.

    Raises:
        OutputError: not a 3-D scalar integer image, or values outside ``0..65535``.
    """
    if image.GetDimension() != 3 or image.GetNumberOfComponentsPerPixel() != 1:
        raise OutputError(f"{what} must be a 3-D scalar label image")
    if image.GetPixelID() not in _INTEGER_PIXEL_IDS:
        raise OutputError(
            f"{what} has pixel type {image.GetPixelIDTypeAsString()}; label maps must be "
            "integer images (threshold or cast probabilities first)"
        )
    array = sitk.GetArrayViewFromImage(image)
    if array.size and (array.min() < 0 or array.max() > MAX_LABEL):
        raise OutputError(f"{what} has values outside 0..{MAX_LABEL}")
    dtype = np.uint8 if not array.size or array.max() <= 255 else np.uint16
    return np.asarray(array, dtype=dtype)


def check_segmentation(layers: Sequence[sitk.Image], segments: Sequence[SegmentInfo]) -> None:
    """Check that the layers share one grid and that the segments fit them.

    Values present in a layer that no segment names are logged (they are exported as voxels but
    no viewer will show them as a segment).

    Raises:
        OutputError: no layer or segment, layers on different grids, a segment in a layer that
            does not exist, or two segments with the same layer and label value or name.
    """
    if not layers:
        raise OutputError("nothing to export: no label layer given")
    if not segments:
        raise OutputError("nothing to export: no segment described")
    for index, layer in enumerate(layers[1:], start=1):
        if not same_grid(layer, layers[0]):
            raise OutputError(
                f"label layer {index} is not on the grid of layer 0; every layer must be on the "
                "study's pre-contrast grid"
            )
    seen: dict[tuple[int, int], str] = {}
    names: set[str] = set()
    for segment in segments:
        if segment.layer >= len(layers):
            raise OutputError(
                f"segment {segment.name!r} is in layer {segment.layer} but only "
                f"{len(layers)} layer(s) were given"
            )
        key = (segment.layer, int(segment.label_value))
        if key in seen:
            raise OutputError(
                f"segments {seen[key]!r} and {segment.name!r} share layer {key[0]} and label "
                f"value {key[1]}"
            )
        if segment.name in names:
            raise OutputError(f"two segments are named {segment.name!r}; names must be unique")
        seen[key] = segment.name
        names.add(segment.name)


def warn_unnamed_values(index: int, array_zyx: np.ndarray, segments: Sequence[SegmentInfo]) -> None:
    """Log label values of layer ``index`` that no segment describes."""
    named = {int(s.label_value) for s in segments if s.layer == index}
    present = {int(v) for v in np.unique(array_zyx) if v != 0}
    unnamed = sorted(present - named)
    if unnamed:
        logger.warning(
            "label layer %d holds value(s) %s that no segment describes; they are written but "
            "not shown as segments",
            index,
            unnamed,
        )


def segment_mask(layers_zyx: Sequence[np.ndarray], segment: SegmentInfo) -> np.ndarray:
    """Boolean ``(z, y, x)`` mask of one segment."""
    return np.asarray(layers_zyx[segment.layer]) == int(segment.label_value)


def breast_lesion_segments(
    breast_mask: sitk.Image | None,
    lesion_labels: sitk.Image | None,
) -> tuple[list[sitk.Image], list[SegmentInfo]]:
    """Layers and segments of the standard export: breast in layer 0, lesions in layer 1.

    Args:
        breast_mask: Whole-breast mask (any non-zero voxel is breast), or ``None``.
        lesion_labels: Lesion instance labels (0 background, ``k`` = lesion ``k``, as the
            measurement report numbers them), or ``None``. A binary mask is one lesion.

    Returns:
        ``(layers, segments)``: the breast layer (values 0/1) first when given, then the lesion
        layer as it is; segments "Breast" and "Lesion k" for every value present.

    Raises:
        OutputError: neither mask given, or the masks are not on one grid or not integer.
    """
    layers: list[sitk.Image] = []
    segments: list[SegmentInfo] = []
    if breast_mask is not None:
        breast = layer_array(breast_mask, "the breast mask") != 0
        image = sitk.GetImageFromArray(breast.astype(np.uint8))
        image.CopyInformation(breast_mask)
        layers.append(image)
        segments.append(SegmentInfo(1, "Breast", BREAST_COLOR, BREAST, layer=0))
    if lesion_labels is not None:
        values = np.unique(layer_array(lesion_labels, "the lesion label map"))
        layer = len(layers)
        layers.append(lesion_labels)
        for value in (int(v) for v in values if v != 0):
            segments.append(
                SegmentInfo(value, f"Lesion {value}", lesion_color(value), BREAST_MASS, layer)
            )
    if not layers:
        raise OutputError("nothing to export: give a breast mask, a lesion label map or both")
    if len(layers) == 2 and not same_grid(layers[0], layers[1]):
        raise OutputError(
            "the breast mask and the lesion labels are on different grids; both must be on the "
            "study's pre-contrast grid"
        )
    return layers, segments
