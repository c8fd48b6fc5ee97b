"""The segmentation node: "Breast" plus one segment per lesion, and reading segments back.

Layout, names, colours and codes follow the core's export (:mod:`BreastAIAssistantLib.export`),
so that the node, the ``.seg.nrrd`` and the DICOM SEG say the same thing:

* segment ``"Breast"`` (colour :data:`~BreastAIAssistantLib.export.BREAST_COLOR`) and segments
  ``"Lesion k"`` for lesion ``k`` of the report (colour ``lesion_color(k)``);
* terminology from the bundle manifests' output labels (``outputs.labels[0].terminology`` of the
  breast and tumour models), falling back to the core's SNOMED CT codes; the tumour entry gets
  the anatomic region *Breast* when its manifest gives none, as the core's ``BREAST_MASS`` has;
* each segment is a binary labelmap cropped to its bounding box on the study grid (as Slicer
  stores segments), then ``CollapseBinaryLabelmaps`` packs them into shared layers -- the breast
  and the lesions inside it overlap, so there are two layers, as in the core's ``.seg.nrrd``;
* segment tags ``BreastAI.Role`` (``breast``/``lesion``) and ``BreastAI.LesionId`` keep the link
  to the report when the user renames segments.

Reading back (:func:`segment_mask_zyx`, :func:`lesion_labels_from_segmentation`) resamples each
segment's labelmap onto the reference volume's grid (nearest neighbour, Slicer's
``vtkOrientedImageDataResample``), so edits made in the Segment Editor, which may change a
segment's extent or layer, come back on the study grid.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import SimpleITK as sitk
import slicer
import vtk
from scipy import ndimage
from vtk.util import numpy_support

from BreastAIAssistantLib.export import BREAST, BREAST_COLOR, BREAST_MASS, lesion_color
from BreastAIAssistantLib.export.terminology import BREAST_CODE, Code, Terminology
from BreastAIAssistantMRML.geometry import from_vtk_matrix, ijk_to_ras_from_image, to_vtk_matrix

logger = logging.getLogger(__name__)

BREAST_SEGMENT = "Breast"
ROLE_TAG = "BreastAI.Role"
LESION_ID_TAG = "BreastAI.LesionId"
#: 2-D fill opacity of lesion segments (the outline stays opaque); the breast has no fill.
LESION_FILL_OPACITY = 0.3
_LESION_NAME = re.compile(r"^\s*lesion\s+(\d+)\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class SegmentTerminologies:
    """Coded meaning of the two kinds of segments.

    Attributes:
        breast: Terminology of the whole-breast segment.
        lesion: Terminology of every lesion segment.
    """

    breast: Terminology = BREAST
    lesion: Terminology = BREAST_MASS


@dataclass
class SegmentationNodes:
    """A segmentation node made by :func:`add_segmentation_node`.

    Attributes:
        node: The ``vtkMRMLSegmentationNode``.
        breast_segment_id: Segment ID of "Breast" (``None`` without a breast mask).
        lesion_segment_ids: Lesion id -> segment ID.
    """

    node: slicer.vtkMRMLSegmentationNode
    breast_segment_id: str | None = None
    lesion_segment_ids: dict[int, str] = field(default_factory=dict)


def _code(value: Sequence[str] | None) -> Code | None:
    return Code(*value) if value else None


def terminology_from_manifest(label: dict, fallback: Terminology) -> Terminology:
    """A core :class:`Terminology` from one manifest output label (``fallback`` if it has none).

    The manifest's ``terminology`` holds ``category``, ``type`` and optional ``type_modifier``,
    ``region`` and ``region_modifier`` as ``[scheme, value, meaning]`` triples.
    """
    terms = label.get("terminology") or {}
    try:
        category, type_ = _code(terms.get("category")), _code(terms.get("type"))
        if category is None or type_ is None:
            return fallback
        return Terminology(category=category, type=type_,
                           type_modifier=_code(terms.get("type_modifier")),
                           region=_code(terms.get("region")),
                           region_modifier=_code(terms.get("region_modifier")))  # fmt: skip
    except (TypeError, ValueError) as exc:
        logger.warning("manifest label %r has an unusable terminology (%s); using %s",
                       label.get("name"), exc, fallback.type.meaning)  # fmt: skip
        return fallback


def manifest_terminologies(breast_model: str = "breast-unet-demo",
                           tumour_model: str = "tumour-st-demo",
                           model_dirs: Sequence[str] = ()) -> SegmentTerminologies:  # fmt: skip
    """Segment terminologies from the breast and tumour bundles' manifests (core defaults if a
    bundle or its labels cannot be read)."""
    from BreastAIAssistantLib.bundles import BundleError, find_bundle

    found = []
    for model, fallback in ((breast_model, BREAST), (tumour_model, BREAST_MASS)):
        try:
            labels = find_bundle(model, model_dirs).manifest.outputs.get("labels") or [{}]
        except BundleError as exc:
            logger.warning("no terminology from model %r (%s); using the built-in codes",
                           model, exc)  # fmt: skip
            labels = [{}]
        found.append(terminology_from_manifest(labels[0], fallback))
    lesion = found[1]
    if lesion.region is None:
        lesion = replace(lesion, region=BREAST_CODE)
    return SegmentTerminologies(breast=found[0], lesion=lesion)


def _oriented_image(mask_zyx: np.ndarray, ijk_to_ras: np.ndarray,
                    box: tuple[slice, ...]) -> slicer.vtkOrientedImageData:  # fmt: skip
    """A ``vtkOrientedImageData`` (uint8 0/1) of the mask inside ``box`` on the full grid."""
    zs, ys, xs = box
    crop = np.ascontiguousarray(mask_zyx[box], dtype=np.uint8)
    image = slicer.vtkOrientedImageData()
    image.SetExtent(xs.start, xs.stop - 1, ys.start, ys.stop - 1, zs.start, zs.stop - 1)
    image.AllocateScalars(vtk.VTK_UNSIGNED_CHAR, 1)
    numpy_support.vtk_to_numpy(image.GetPointData().GetScalars())[:] = crop.ravel()
    image.SetImageToWorldMatrix(to_vtk_matrix(ijk_to_ras))
    return image


def _add_segment(segmentation: slicer.vtkSegmentation, segment_id: str, name: str,
                 color: Sequence[float],
                 terminology: Terminology, image: slicer.vtkOrientedImageData, role: str,
                 lesion_id: int | None = None) -> str:  # fmt: skip
    segment = slicer.vtkSegment()
    segment.SetName(name)
    segment.SetColor(*(float(c) for c in color))
    segment.AddRepresentation(
        slicer.vtkSegmentationConverter.GetBinaryLabelmapRepresentationName(), image)
    segment.SetTag(slicer.vtkSegment.GetTerminologyEntryTagName(), terminology.to_slicer())
    segment.SetTag(ROLE_TAG, role)
    if lesion_id is not None:
        segment.SetTag(LESION_ID_TAG, str(lesion_id))
    segmentation.AddSegment(segment, segmentation.GenerateUniqueSegmentID(segment_id))
    return segmentation.GetSegmentIdBySegmentName(name)


def add_segmentation_node(scene: slicer.vtkMRMLScene,
                          reference_volume: slicer.vtkMRMLScalarVolumeNode | None,
                          breast_mask: sitk.Image | None,
                          lesion_labels: sitk.Image | None, *,
                          terminologies: SegmentTerminologies | None = None,
                          name: str = "Breast AI segmentation") -> SegmentationNodes:  # fmt: skip
    """Add a segmentation node with "Breast" and one segment per lesion.

    Args:
        scene: The ``vtkMRMLScene`` (with the Segmentations logic attached).
        reference_volume: Volume whose grid the Segment Editor will use (a study map).
        breast_mask: Whole-breast mask on the study grid (non-zero = breast), or ``None``.
        lesion_labels: Lesion instance labels (``k`` = lesion ``k``), or ``None``.
        terminologies: Segment codes (default: the core's).
        name: Node name.

    Returns:
        The node and its segment IDs.
    """
    terminologies = terminologies or SegmentTerminologies()
    node = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", scene.GenerateUniqueName(name))
    node.CreateDefaultDisplayNodes()
    if reference_volume is not None:
        node.SetReferenceImageGeometryParameterFromVolumeNode(reference_volume)
    segmentation = node.GetSegmentation()
    result = SegmentationNodes(node=node)
    was_modifying = node.StartModify()
    if breast_mask is not None:
        mask = sitk.GetArrayViewFromImage(breast_mask) != 0
        box = ndimage.find_objects(mask.astype(np.uint8))
        if box:
            image = _oriented_image(mask, ijk_to_ras_from_image(breast_mask), box[0])
            result.breast_segment_id = _add_segment(
                segmentation, BREAST_SEGMENT, BREAST_SEGMENT, BREAST_COLOR,
                terminologies.breast, image, "breast")  # fmt: skip
        else:
            logger.warning("the breast mask is empty: no Breast segment")
    if lesion_labels is not None:
        labels = sitk.GetArrayViewFromImage(lesion_labels)
        matrix = ijk_to_ras_from_image(lesion_labels)
        boxes = ndimage.find_objects(np.asarray(labels, dtype=np.int64))
        for lesion_id, box in enumerate(boxes, start=1):
            if box is None:
                continue
            image = _oriented_image(labels == lesion_id, matrix, box)
            result.lesion_segment_ids[lesion_id] = _add_segment(
                segmentation, f"Lesion_{lesion_id}", f"Lesion {lesion_id}",
                lesion_color(lesion_id), terminologies.lesion, image, "lesion", lesion_id)
    segmentation.CollapseBinaryLabelmaps(False)
    node.EndModify(was_modifying)
    display = node.GetDisplayNode()
    if display is not None:  # the breast as an outline, lesions lightly filled
        if result.breast_segment_id is not None:
            display.SetSegmentOpacity2DFill(result.breast_segment_id, 0.0)
        for segment_id in result.lesion_segment_ids.values():
            display.SetSegmentOpacity2DFill(segment_id, LESION_FILL_OPACITY)
    return result


def _reference_geometry(segmentation_node: slicer.vtkMRMLSegmentationNode,
                        reference_volume: slicer.vtkMRMLScalarVolumeNode | None
                        ) -> slicer.vtkOrientedImageData:  # fmt: skip
    """An empty ``vtkOrientedImageData`` with the reference grid (volume or stored geometry)."""
    geometry = slicer.vtkOrientedImageData()
    if reference_volume is not None:
        matrix = vtk.vtkMatrix4x4()
        reference_volume.GetIJKToRASMatrix(matrix)
        geometry.SetImageToWorldMatrix(matrix)
        geometry.SetExtent(reference_volume.GetImageData().GetExtent())
        return geometry
    text = segmentation_node.GetSegmentation().GetConversionParameter(
        slicer.vtkSegmentationConverter.GetReferenceImageGeometryParameterName())
    if not text or not slicer.vtkSegmentationConverter.DeserializeImageGeometry(text, geometry,
                                                                                 False):
        raise ValueError(f"segmentation {segmentation_node.GetName()!r} has no reference "
                         "geometry; give the reference volume")  # fmt: skip
    return geometry


def segment_mask_zyx(segmentation_node: slicer.vtkMRMLSegmentationNode, segment_id: str,
                     reference_volume: slicer.vtkMRMLScalarVolumeNode | None = None
                     ) -> np.ndarray:  # fmt: skip
    """Boolean ``(z, y, x)`` mask of one segment on the reference volume's grid.

    Args:
        segmentation_node: The ``vtkMRMLSegmentationNode``.
        segment_id: The segment.
        reference_volume: Volume whose grid to use; default: the segmentation's reference
            image geometry.

    Raises:
        KeyError: no such segment.
        ValueError: no reference grid, or the segment has no binary labelmap.
    """
    segmentation = segmentation_node.GetSegmentation()
    segment = segmentation.GetSegment(segment_id)
    if segment is None:
        raise KeyError(f"segmentation {segmentation_node.GetName()!r} has no segment "
                       f"{segment_id!r}")  # fmt: skip
    geometry = _reference_geometry(segmentation_node, reference_volume)
    x0, x1, y0, y1, z0, z1 = geometry.GetExtent()
    shape = (z1 - z0 + 1, y1 - y0 + 1, x1 - x0 + 1)
    labelmap = slicer.vtkOrientedImageData()
    if not slicer.vtkSlicerSegmentationsModuleLogic.GetSegmentBinaryLabelmapRepresentation(
            segmentation_node, segment_id, labelmap):  # fmt: skip
        raise ValueError(f"segment {segment.GetName()!r} has no binary labelmap")
    e = labelmap.GetExtent()
    if e[1] < e[0] or e[3] < e[2] or e[5] < e[4]:
        return np.zeros(shape, dtype=bool)
    resampled = slicer.vtkOrientedImageData()
    slicer.vtkOrientedImageDataResample.ResampleOrientedImageToReferenceOrientedImage(
        labelmap, geometry, resampled, False)
    scalars = numpy_support.vtk_to_numpy(resampled.GetPointData().GetScalars())
    return scalars.reshape(shape) == segment.GetLabelValue()


def lesion_segments(segmentation_node: slicer.vtkMRMLSegmentationNode,
                    reserved: Sequence[int] = ()) -> dict[int, str]:
    """Lesion id -> segment ID for every segment that is not the breast.

    The id is the ``BreastAI.LesionId`` tag, else ``k`` of a name ``"Lesion k"``, else (a segment
    the user added) the next id above every numbered segment and every ``reserved`` id (ids of
    lesions that existed before, so that a new segment never takes a deleted lesion's number).
    Breast segments: role tag ``breast`` or the name "Breast".
    """
    segmentation = segmentation_node.GetSegmentation()
    found: dict[int, str] = {}
    unnumbered: list[str] = []
    for index in range(segmentation.GetNumberOfSegments()):
        segment_id = segmentation.GetNthSegmentID(index)
        segment = segmentation.GetSegment(segment_id)
        role = vtk.reference("")
        tagged = segment.GetTag(ROLE_TAG, role)
        if (tagged and str(role) == "breast") or segment.GetName() == BREAST_SEGMENT:
            continue
        id_tag = vtk.reference("")
        match = _LESION_NAME.match(segment.GetName())
        if segment.GetTag(LESION_ID_TAG, id_tag) and str(id_tag).isdigit():
            lesion_id = int(str(id_tag))
        elif match:
            lesion_id = int(match.group(1))
        else:
            unnumbered.append(segment_id)
            continue
        if lesion_id in found:
            unnumbered.append(segment_id)
        else:
            found[lesion_id] = segment_id
    next_id = max([*found, *reserved], default=0) + 1
    for segment_id in unnumbered:
        found[next_id] = segment_id
        next_id += 1
    return dict(sorted(found.items()))


def breast_segment_id(segmentation_node: slicer.vtkMRMLSegmentationNode) -> str | None:
    """The breast segment's ID (role tag ``breast`` or name "Breast"), or ``None``."""
    segmentation = segmentation_node.GetSegmentation()
    for index in range(segmentation.GetNumberOfSegments()):
        segment_id = segmentation.GetNthSegmentID(index)
        segment = segmentation.GetSegment(segment_id)
        role = vtk.reference("")
        if (segment.GetTag(ROLE_TAG, role) and str(role) == "breast") or \
                segment.GetName() == BREAST_SEGMENT:  # fmt: skip
            return segment_id
    return None


def _image_on_grid(array_zyx: np.ndarray, geometry: slicer.vtkOrientedImageData) -> sitk.Image:
    from BreastAIAssistantMRML.geometry import lps_geometry_from_ijk_to_ras

    matrix = vtk.vtkMatrix4x4()
    geometry.GetImageToWorldMatrix(matrix)
    origin_index = np.array(geometry.GetExtent()[::2], dtype=float)
    ijk_to_ras = from_vtk_matrix(matrix)
    ijk_to_ras[:3, 3] = ijk_to_ras[:3, :3] @ origin_index + ijk_to_ras[:3, 3]
    origin, spacing, direction = lps_geometry_from_ijk_to_ras(ijk_to_ras)
    image = sitk.GetImageFromArray(array_zyx)
    image.SetOrigin(origin)
    image.SetSpacing(spacing)
    image.SetDirection(direction)
    return image


def lesion_labels_from_segmentation(segmentation_node: slicer.vtkMRMLSegmentationNode,
                                    reference_volume: slicer.vtkMRMLScalarVolumeNode | None = None,
                                    reserved: Sequence[int] = ()
                                    ) -> tuple[sitk.Image, sitk.Image | None, dict[int, str]]:
    """The lesion instance label map and breast mask of a (possibly edited) segmentation.

    Args:
        segmentation_node: The ``vtkMRMLSegmentationNode``.
        reference_volume: Grid to use; default: the segmentation's reference geometry.
        reserved: Lesion ids new segments must not take (see :func:`lesion_segments`).

    Returns:
        ``(labels, breast, lesion_segments)``: uint16 labels (``k`` = lesion ``k``; where two
        lesion segments overlap the lower id wins), the uint8 breast mask or ``None``, and
        lesion id -> segment ID for the lesions that have voxels.
    """
    geometry = _reference_geometry(segmentation_node, reference_volume)
    x0, x1, y0, y1, z0, z1 = geometry.GetExtent()
    labels = np.zeros((z1 - z0 + 1, y1 - y0 + 1, x1 - x0 + 1), dtype=np.uint16)
    kept: dict[int, str] = {}
    for lesion_id, segment_id in sorted(lesion_segments(segmentation_node, reserved).items(),
                                          reverse=True):
        mask = segment_mask_zyx(segmentation_node, segment_id, reference_volume)
        if not mask.any():
            logger.info("segment %r is empty: not measured", segment_id)
            continue
        labels[mask] = lesion_id
        kept[lesion_id] = segment_id
    breast = None
    breast_id = breast_segment_id(segmentation_node)
    if breast_id is not None:
        breast_zyx = segment_mask_zyx(segmentation_node, breast_id, reference_volume)
        breast = _image_on_grid(breast_zyx.astype(np.uint8), geometry) if breast_zyx.any() else None
    return _image_on_grid(labels, geometry), breast, dict(sorted(kept.items()))
