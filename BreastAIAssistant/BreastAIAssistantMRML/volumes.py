"""Volume nodes from SimpleITK images: maps, subtractions and the Grad-CAM heat map.

Volumes are created the way Slicer's volume readers create them: a ``vtkMRMLScalarVolumeNode``
with its ``IJKToRAS`` geometry (converted from LPS in :mod:`.geometry`) and a scalar volume
display node. The heat map is shown as a slice-view foreground layer with its own colour table
(:func:`heat_color_table`: black -> red -> yellow -> white, the "hot" ramp of Grad-CAM figures)
and a lower threshold, so that voxels with no evidence stay transparent over the background.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import numpy as np
import SimpleITK as sitk
import slicer

from BreastAIAssistantMRML.geometry import update_volume_from_image

logger = logging.getLogger(__name__)

HEAT_TABLE_NAME = "BreastAI Heat"
#: Heat-map values at or below this fraction of the maximum are not drawn (transparent).
HEAT_THRESHOLD = 0.5


def add_volume_node(scene: slicer.vtkMRMLScene, image: sitk.Image, name: str, *,
                    label: bool = False, color_node_id: str | None = None,
                    window_level: tuple[float, float] | None = None
                    ) -> slicer.vtkMRMLVolumeNode:  # fmt: skip
    """Add a scalar (or label map) volume node holding ``image``.

    Args:
        scene: The ``vtkMRMLScene``.
        image: A 3-D scalar SimpleITK image (LPS geometry).
        name: Node name (made unique by the scene when taken).
        label: Create a ``vtkMRMLLabelMapVolumeNode`` instead of a scalar volume.
        color_node_id: Colour table of the display node (default: Slicer's default).
        window_level: Fixed ``(window, level)``; default: automatic window/level.

    Returns:
        The new volume node, with a display node.
    """
    node_class = "vtkMRMLLabelMapVolumeNode" if label else "vtkMRMLScalarVolumeNode"
    node = scene.AddNewNodeByClass(node_class, scene.GenerateUniqueName(name))
    update_volume_from_image(node, image)
    node.CreateDefaultDisplayNodes()
    display = node.GetDisplayNode()
    if color_node_id is not None:
        display.SetAndObserveColorNodeID(color_node_id)
    if window_level is not None and not label:
        display.SetAutoWindowLevel(False)
        display.SetWindowLevel(float(window_level[0]), float(window_level[1]))
    return node


def window_level_in(image: sitk.Image, mask: sitk.Image | None = None,
                    percentiles: tuple[float, float] = (1.0, 99.0)) -> tuple[float, float]:
    """``(window, level)`` spanning the given percentiles of the image inside ``mask``.

    Slicer's automatic window/level looks at the whole volume, where the heart and vessels of a
    breast subtraction are far brighter than any breast lesion; windowing on the breast keeps
    lesions visible.
    """
    values = sitk.GetArrayViewFromImage(image)
    if mask is not None:
        inside = sitk.GetArrayViewFromImage(mask) != 0
        if inside.shape == values.shape and inside.any():
            values = values[inside]
    low, high = (float(v) for v in np.percentile(values, percentiles))
    if high <= low:
        high = low + 1.0
    return high - low, (high + low) / 2.0


def heat_color_table(scene: slicer.vtkMRMLScene) -> slicer.vtkMRMLColorTableNode:
    """The scene's heat colour table, created on first use (256 entries, opaque).

    Black -> red -> yellow -> white over the value range, as in Grad-CAM figures (Selvaraju
    et al., ICCV 2017) and Slicer's own "Heat" look. Returns the ``vtkMRMLColorTableNode``.
    """
    existing = scene.GetFirstNodeByName(HEAT_TABLE_NAME)
    if existing is not None and existing.IsA("vtkMRMLColorTableNode"):
        return existing
    table = scene.AddNewNodeByClass("vtkMRMLColorTableNode", HEAT_TABLE_NAME)
    table.SetTypeToUser()
    table.SetNumberOfColors(256)
    table.SetHideFromEditors(False)
    for index, t in enumerate(np.linspace(0.0, 1.0, 256)):
        red = min(1.0, 3.0 * t)
        green = min(1.0, max(0.0, 3.0 * t - 1.0))
        blue = min(1.0, max(0.0, 3.0 * t - 2.0))
        table.SetColor(index, f"heat {index}", red, green, blue, 1.0)
    return table


def add_heatmap_node(scene: slicer.vtkMRMLScene, image: sitk.Image, name: str = "Grad-CAM",
                     threshold: float = HEAT_THRESHOLD
                     ) -> slicer.vtkMRMLScalarVolumeNode:  # fmt: skip
    """Add a heat-map volume node: heat colour table, fixed 0..max window, low values hidden.

    Args:
        scene: The ``vtkMRMLScene``.
        image: Heat map on the study grid (any non-negative scale; typically 0..1).
        name: Node name.
        threshold: Values at or below ``threshold * max`` are transparent in slice views
            (display-node threshold, as Slicer's Volumes module "Threshold" does).

    Returns:
        The volume node.
    """
    values = sitk.GetArrayViewFromImage(image)
    top = float(values.max()) if values.size else 0.0
    top = top if top > 0 else 1.0
    table = heat_color_table(scene)
    node = add_volume_node(scene, image, name, color_node_id=table.GetID(),
                           window_level=(top, top / 2.0))  # fmt: skip
    display = node.GetDisplayNode()
    display.SetApplyThreshold(True)
    display.SetLowerThreshold(threshold * top)
    display.SetUpperThreshold(top * 10.0)
    node.SetAttribute("BreastAI.Role", "heatmap")
    return node


def volume_3d(image: sitk.Image, reduce: str = "mean") -> sitk.Image:
    """A 3-D image from a 3-D or 4-D one (4-D: volumes reduced voxel-wise by mean or max).

    The core writes Grad-CAM maps of several volumes (phases, receptors) as 4-D images with
    ``JoinSeries``; the 3-D geometry is that of the first volume.

    Raises:
        ValueError: neither 3-D nor 4-D, or an unknown ``reduce``.
    """
    if image.GetDimension() == 3:
        return image
    if image.GetDimension() != 4:
        raise ValueError(f"expected a 3-D or 4-D image, got {image.GetDimension()}-D")
    if reduce not in ("max", "mean"):
        raise ValueError(f"reduce must be 'max' or 'mean', got {reduce!r}")
    size = list(image.GetSize())
    first = sitk.Extract(image, [*size[:3], 0], [0, 0, 0, 0])
    array = sitk.GetArrayViewFromImage(image)  # (t, z, y, x)
    reduced = array.max(axis=0) if reduce == "max" else array.mean(axis=0)
    out = sitk.GetImageFromArray(np.asarray(reduced, dtype=np.float32))
    out.CopyInformation(first)
    return out


def combine_heatmaps(reference: sitk.Image, heatmaps: Iterable[sitk.Image]) -> sitk.Image:
    """One heat map on the reference grid: the voxel-wise maximum of every lesion's map.

    Each Grad-CAM map of the core covers only its lesion's neighbourhood on the study lattice;
    it is resampled (linear, identity transform, 0 outside) onto the full grid. A 4-D map (one
    volume per phase or receptor) is averaged over its volumes first.

    Args:
        reference: The study's pre-contrast phase (the grid of every output).
        heatmaps: 3-D or 4-D maps (4-D reduced by :func:`volume_3d`).

    Returns:
        A float32 image on the reference grid (zeros where no map reaches).
    """
    out = np.zeros(sitk.GetArrayViewFromImage(reference).shape, dtype=np.float32)
    for heatmap in heatmaps:
        volume = sitk.Cast(volume_3d(heatmap), sitk.sitkFloat32)
        resampled = sitk.Resample(volume, reference, sitk.Transform(), sitk.sitkLinear, 0.0,
                                  sitk.sitkFloat32)  # fmt: skip
        np.maximum(out, sitk.GetArrayViewFromImage(resampled), out=out)
    image = sitk.GetImageFromArray(out)
    image.CopyInformation(reference)
    return image
