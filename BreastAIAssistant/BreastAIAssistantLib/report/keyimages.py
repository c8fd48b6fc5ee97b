"""The key images of one lesion, as data: pixels, window, outlines, lines and captions.

Key images per lesion (drawn by :mod:`.figures`; building them needs no plotting library):

1. **MIP**: the maximum-intensity projection of the early subtraction (``maps["mip"]``) with the
   projected outline of this lesion (other lesions dotted), whole field of view.
2. **Axial slice**: the grid slice closest to axial (exact voxels, no interpolation) through the
   lesion's *axial* diameter, i.e. the slice on which the longest in-plane diameter was measured;
   the mask outline and that diameter (which lies wholly in the slice) are drawn. The 3-D maximum
   diameter usually runs across slices, so its endpoints' slice numbers are given in the caption.
3. **Grad-CAM** (one per classifier map): the grid slice closest to axial through the midpoint of
   the 3-D maximum diameter, early subtraction in grey, the classifier's heat map (0-1) over it
   with a colour bar, and the lesion outline (:func:`gradcam_image`).
4. **Diameter plane**: an oblique reformat of the early subtraction (linear interpolation) on
   the plane that contains the whole 3-D maximum diameter and is closest to axial (spanned by the
   diameter and the horizontal direction perpendicular to it, :func:`.planes.segment_plane`),
   with the mask outline on that plane and the full diameter line. This is the honest picture of
   the number that sets the T category; its tilt from axial is given.

All three are shown radiologically (:mod:`.orientation`): patient right on the image left,
anterior up for axial-like planes. The grey window is the 1st-99.5th percentile of the image's
finite pixels (:func:`robust_window`), so a bright heart or a hot vessel does not wash out the
lesion and the display does not depend on the scanner's signal scale.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from BreastAIAssistantLib.report.orientation import DisplayAxes, display_axes
from BreastAIAssistantLib.report.planes import (
    PlaneGeometry,
    grid_plane,
    sample_plane,
    segment_plane,
)

logger = logging.getLogger(__name__)

#: Default display percentiles (low, high).
WINDOW_PERCENTILES = (1.0, 99.5)
#: Smallest field of view of the zoomed lesion images (mm), and its multiple of the diameter.
MIN_FOV_MM, FOV_PER_DIAMETER = 60.0, 3.0

LESION_COLOUR = "#ffd21f"
OTHER_COLOUR = "#7fd4ff"
DIAMETER_COLOUR = "#ff3b6b"
AXIAL_COLOUR = "#2ee6a8"


@dataclass(frozen=True)
class Outline:
    """A mask drawn as its 0.5 contour."""

    mask: np.ndarray
    colour: str
    linewidth: float = 1.6
    linestyle: str = "solid"
    label: str = ""


@dataclass(frozen=True)
class Segment:
    """A line between two continuous ``(row, col)`` pixel positions, with a text label."""

    a_rc: np.ndarray
    b_rc: np.ndarray
    colour: str
    text: str = ""


@dataclass
class KeyImage:
    """One key image: what to draw and how to caption it."""

    kind: str
    title: str
    plane: PlaneGeometry
    pixels: np.ndarray
    window: tuple[float, float]
    caption: str = ""
    outlines: list[Outline] = field(default_factory=list)
    segments: list[Segment] = field(default_factory=list)
    labels: list[tuple[np.ndarray, str, str]] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)
    heat: np.ndarray | None = None
    heat_label: str = ""


def robust_window(
    values: np.ndarray, percentiles: tuple[float, float] = WINDOW_PERCENTILES
) -> tuple[float, float]:
    """Display window ``(low, high)`` from robust percentiles of the finite values.

    Returns ``(0, 1)`` without finite values, and widens a flat window by one unit.
    """
    finite = np.asarray(values, dtype=float)
    finite = finite[np.isfinite(finite)]
    if finite.size == 0:
        return 0.0, 1.0
    low, high = (float(v) for v in np.percentile(finite, percentiles))
    if high <= low:
        high = low + 1.0
    return low, high


def lesion_mask_image(labels: sitk.Image, lesion_ids: list[int]) -> sitk.Image:
    """0/1 uint8 image of the voxels whose label is in ``lesion_ids`` (same grid)."""
    array = np.isin(sitk.GetArrayViewFromImage(labels), lesion_ids).astype(np.uint8)
    image = sitk.GetImageFromArray(array)
    image.CopyInformation(labels)
    return image


def _point(lesion: dict[str, Any], key: str) -> np.ndarray | None:
    value = lesion.get(key)
    if value is None:
        return None
    points = np.asarray(value, dtype=float)
    return points if np.all(np.isfinite(points)) else None


def slice_numbers(image: sitk.Image, axes: DisplayAxes, points_lps: np.ndarray) -> list[int]:
    """Slice index (0-based, along ``axes.slice_axis``) of each LPS point."""
    numbers = []
    for point in np.atleast_2d(points_lps):
        index = image.TransformPhysicalPointToContinuousIndex(tuple(float(c) for c in point))
        numbers.append(round(index[axes.slice_axis]))
    return numbers


def mip_overlays(
    mip: sitk.Image, labels: sitk.Image, mip_axis: int
) -> tuple[DisplayAxes, dict[int, np.ndarray]]:
    """Each lesion's mask projected along ``mip_axis``, as display arrays matching the MIP.

    One bounding-box crop per lesion (``ndimage.find_objects``), no full-volume pass per lesion.

    Returns:
        The MIP's display axes and lesion id -> boolean ``(rows, cols)`` array.
    """
    axes = display_axes(mip.GetDirection(), slice_axis=mip_axis)
    label_zyx = sitk.GetArrayViewFromImage(labels)
    array_axis = 2 - mip_axis
    overlays: dict[int, np.ndarray] = {}
    shape = list(label_zyx.shape)
    shape[array_axis] = 1
    for index, box in enumerate(ndimage.find_objects(np.asarray(label_zyx, dtype=np.int64))):
        if box is None:
            continue
        lesion_id = index + 1
        projected = np.zeros(shape, dtype=bool)
        target = list(box)
        target[array_axis] = slice(0, 1)
        inside = label_zyx[box] == lesion_id
        projected[tuple(target)] = np.any(inside, axis=array_axis, keepdims=True)
        overlays[lesion_id] = np.ascontiguousarray(axes.slice_zyx(projected, 0))
    return axes, overlays


def mip_image(
    mip: sitk.Image,
    axes: DisplayAxes,
    overlays: dict[int, np.ndarray],
    lesion_id: int,
    window_mask: np.ndarray | None = None,
) -> KeyImage:
    """The MIP with this lesion's projected outline and number (other lesions dotted).

    Args:
        mip: The MIP image (one voxel thick along ``axes.slice_axis``).
        axes: Its display axes (:func:`mip_overlays`).
        overlays: Projected lesion masks (:func:`mip_overlays`).
        lesion_id: The lesion to outline.
        window_mask: Display pixels the grey window is computed from (e.g. the projected breast
            mask, so that the heart does not set the window); all pixels when ``None``.
    """
    plane = grid_plane(mip, axes, 0)
    pixels = np.asarray(axes.slice_zyx(sitk.GetArrayViewFromImage(mip), 0), dtype=np.float32)
    sample = pixels if window_mask is None or not window_mask.any() else pixels[window_mask]
    key = KeyImage(
        kind="mip",
        title=f"Early subtraction MIP — lesion {lesion_id}",
        plane=plane,
        pixels=pixels,
        window=robust_window(sample, (1.0, 99.8)),
        info={"view": axes.view, "mip_axis": axes.slice_axis},
    )
    others = [i for i in overlays if i != lesion_id]
    if others:
        union = np.logical_or.reduce([overlays[i] for i in others])
        key.outlines.append(Outline(union.astype(np.float32), OTHER_COLOUR, 1.0, "dotted"))
    if lesion_id in overlays:
        key.outlines.append(Outline(overlays[lesion_id].astype(np.float32), LESION_COLOUR, 2.0))
    for lid in [*others, lesion_id]:
        if lid not in overlays:
            continue
        rows, cols = np.nonzero(overlays[lid])
        width = overlays[lid].shape[1]
        spot = np.array([max(rows.min() - 3.0, 4.0), min(cols.max() + 3.0, width - 8.0)])
        key.labels.append((spot, str(lid), LESION_COLOUR if lid == lesion_id else OTHER_COLOUR))
    return key


def _zoom(plane: PlaneGeometry, centre_lps: np.ndarray, diameter_mm: float) -> PlaneGeometry:
    fov = max(MIN_FOV_MM, FOV_PER_DIAMETER * (diameter_mm if math.isfinite(diameter_mm) else 0))
    centre_rc, _ = plane.to_pixel(centre_lps)
    return plane.crop(centre_rc, fov / 2.0)


def axial_image(
    subtraction: sitk.Image, labels: sitk.Image, lesion: dict[str, Any], early: int
) -> KeyImage:
    """The grid slice closest to axial through the lesion's axial diameter."""
    lesion_id = int(lesion["id"])
    axes = display_axes(subtraction.GetDirection(), "axial")
    mask_image = lesion_mask_image(labels, [lesion_id])
    axial = _point(lesion, "axial_endpoints_lps_mm")
    centroid = _point(lesion, "centroid_lps_mm")
    if axial is not None:
        index = slice_numbers(labels, axes, axial)[0]
    elif centroid is not None:
        index = slice_numbers(labels, axes, centroid)[0]
    else:  # the slice with the most lesion voxels
        counts = sitk.GetArrayViewFromImage(mask_image).sum(axis=tuple(
            a for a in range(3) if a != 2 - axes.slice_axis))  # fmt: skip
        index = int(np.argmax(counts))
    full = grid_plane(subtraction, axes, index)
    mask_full = sample_plane(mask_image, full, default=0.0)
    if centroid is None:
        rows, cols = np.nonzero(mask_full > 0.5)
        centre_lps = full.origin_lps_mm + (
            rows.mean() * full.row_step_mm + cols.mean() * full.col_step_mm if rows.size else 0.0
        )
    else:
        centre_lps = centroid
    plane = _zoom(full, centre_lps, float(lesion.get("max_diameter_mm") or 0.0))
    pixels = sample_plane(subtraction, plane)
    key = KeyImage(
        kind="axial",
        title=f"Axial slice {index} — early subtraction (phase {early} − 0)",
        plane=plane,
        pixels=pixels,
        window=robust_window(pixels),
        info={"slice_index": index, "slice_axis": axes.slice_axis, "tilt_deg": axes.tilt_deg},
    )
    mask = sample_plane(mask_image, plane, default=0.0)
    if mask.any():
        key.outlines.append(Outline(mask, LESION_COLOUR, 1.8, "solid", "lesion mask"))
    axial_mm = lesion.get("axial_diameter_mm")
    if axial is not None and axial_mm is not None:
        rc, _ = plane.to_pixel(axial)
        key.segments.append(Segment(rc[0], rc[1], AXIAL_COLOUR, f"{axial_mm:.1f} mm"))
    parts = [
        f"Grid slice {index} (0-based; index axis {'xyz'[axes.slice_axis]}, "
        f"{axes.tilt_deg:.1f}° from true axial): exact voxels, no interpolation."
    ]
    if axial is not None and axial_mm is not None:
        parts.append(f"Green line: axial diameter {axial_mm:.1f} mm, measured on this slice.")
    ends = _point(lesion, "endpoints_lps_mm")
    if ends is not None:
        numbers = slice_numbers(labels, axes, ends)
        key.info["max_diameter_slices"] = numbers
        length = float(np.linalg.norm(ends[1] - ends[0]))
        parts.append(
            f"The 3-D maximum diameter ({float(lesion.get('max_diameter_mm') or length):.1f} mm) "
            f"runs from slice {numbers[0]} to slice {numbers[1]}; it is shown whole on the "
            "diameter plane."
        )
    key.caption = " ".join(parts)
    return key


def diameter_image(
    subtraction: sitk.Image, labels: sitk.Image, lesion: dict[str, Any], early: int
) -> KeyImage | None:
    """Oblique reformat on the plane that contains the whole 3-D maximum diameter.

    Returns ``None`` when the lesion has no finite endpoints.
    """
    ends = _point(lesion, "endpoints_lps_mm")
    if ends is None:
        return None
    lesion_id = int(lesion["id"])
    length = float(np.linalg.norm(ends[1] - ends[0]))
    pixel_mm = min(subtraction.GetSpacing()) / 2.0
    fov = max(MIN_FOV_MM, FOV_PER_DIAMETER * length)
    plane = segment_plane(ends[0], ends[1], pixel_mm, fov)
    pixels = sample_plane(subtraction, plane, sitk.sitkLinear)
    mask = sample_plane(lesion_mask_image(labels, [lesion_id]), plane, sitk.sitkLinear, 0.0)
    rc, distance = plane.to_pixel(ends)
    axes = display_axes(labels.GetDirection(), "axial")
    numbers = slice_numbers(labels, axes, ends)
    diameter = float(lesion.get("max_diameter_mm") or length)
    key = KeyImage(
        kind="diameter",
        title=f"Maximum-diameter plane — {plane.tilt_from('axial'):.0f}° from axial",
        plane=plane,
        pixels=pixels,
        window=robust_window(pixels),
        info={
            "tilt_deg": plane.tilt_from("axial"),
            "endpoint_distance_mm": np.abs(distance).tolist(),
            "endpoint_slices": numbers,
        },
    )
    if mask.max() > 0.5:
        key.outlines.append(Outline(mask, LESION_COLOUR, 1.8, "solid", "lesion mask"))
    key.segments.append(Segment(rc[0], rc[1], DIAMETER_COLOUR, f"{diameter:.1f} mm"))
    key.caption = (
        f"Oblique reformat of the early subtraction (phase {early} − 0, linear interpolation, "
        f"{pixel_mm:.2f} mm pixels) on the plane that contains the whole 3-D maximum diameter "
        f"(red, {diameter:.1f} mm), tilted {plane.tilt_from('axial'):.0f}° from axial. Its "
        f"endpoints lie on axial slices {numbers[0]} and {numbers[1]}."
    )
    return key


def gradcam_image(subtraction: sitk.Image, labels: sitk.Image, lesion: dict[str, Any],
                  heat: sitk.Image, title: str, caption: str) -> KeyImage:
    """A classifier's heat map over the early subtraction on the axial grid slice through the
    midpoint of the lesion's 3-D maximum diameter (its centroid if it has none).

    ``heat`` is a 3-D map on (part of) the study's voxel lattice; it is sampled on the slice
    with linear interpolation, 0 outside its extent.
    """
    lesion_id = int(lesion["id"])
    axes = display_axes(subtraction.GetDirection(), "axial")
    ends = _point(lesion, "endpoints_lps_mm")
    centre = ends.mean(axis=0) if ends is not None else _point(lesion, "centroid_lps_mm")
    if centre is None:
        raise ValueError("lesion has neither diameter endpoints nor a centroid")
    index = slice_numbers(labels, axes, centre[None])[0]
    plane = _zoom(grid_plane(subtraction, axes, index), centre,
                  float(lesion.get("max_diameter_mm") or 0.0))
    pixels = sample_plane(subtraction, plane)
    key = KeyImage(kind="gradcam", title=title, plane=plane, pixels=pixels,
                   window=robust_window(pixels), caption=caption,
                   heat=sample_plane(heat, plane, sitk.sitkLinear, 0.0),
                   heat_label="Grad-CAM (0-1)", info={"slice_index": index})
    mask = sample_plane(lesion_mask_image(labels, [lesion_id]), plane, default=0.0)
    if mask.any():
        key.outlines.append(Outline(mask, LESION_COLOUR, 1.4, "solid", "lesion mask"))
    return key
