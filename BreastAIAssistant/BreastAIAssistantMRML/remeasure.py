"""Re-measure lesions after the user edited the segmentation in the Segment Editor.

The edited segments are read back onto the study grid (:mod:`.segmentation`), turned into an
instance label map (lesion ``k`` = the segment's lesion id) and measured again by the core's
``measure_lesions`` (``mode="labels"``: one lesion per segment, exactly as drawn), with the breast
segment for the skin and chest-wall distances. With the study, kinetics are recomputed too
(``lesion_kinetics``). Classifier outputs are kept from the original run for lesions that still
exist, and flagged as such: the classifiers are not re-run here.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import slicer
import vtk

from BreastAIAssistantLib.measure import MeasurementReport, measure_lesions
from BreastAIAssistantLib.study import DCEStudy
from BreastAIAssistantMRML.segmentation import (
    LESION_ID_TAG,
    ROLE_TAG,
    lesion_labels_from_segmentation,
)

logger = logging.getLogger(__name__)

#: Keys of a lesion record that come from the classifiers (kept across a re-measure).
PREDICTION_KEYS = ("malignancy_probability", "dmif_malignancy_probability", "er", "pr", "her2",
                   "ki67", "subtype", "radiomics_probability", "gradcam", "classifier_models")
FLAG_STALE_PREDICTIONS = "classifier outputs are from the segmentation before editing"


@dataclass(frozen=True)
class Remeasured:
    """What :func:`remeasure` found.

    Attributes:
        report: The core's measurement report of the edited segments.
        lesions: Lesion records (report fields, kinetics, kept predictions), ascending ids.
        segment_ids: Lesion id -> segment ID.
    """

    report: MeasurementReport
    lesions: list[dict[str, Any]]
    segment_ids: dict[int, str]

    @property
    def t_stage(self) -> str | None:
        """Overall T stage (largest lesion; "(m)" for several)."""
        return self.report.t_stage


def remeasure(segmentation_node: slicer.vtkMRMLSegmentationNode,
              reference_volume: slicer.vtkMRMLScalarVolumeNode | None = None, *,
              previous_lesions: Sequence[Mapping[str, Any]] = (),
              previous_segments: Mapping[int, str] | None = None,
              study: DCEStudy | None = None) -> Remeasured:  # fmt: skip
    """Measure the (edited) lesion segments of a segmentation node again.

    Args:
        segmentation_node: The ``vtkMRMLSegmentationNode`` ("Breast" + lesion segments; segments
            the user added count as new lesions).
        reference_volume: The study-grid volume (default: the segmentation's reference
            geometry).
        previous_lesions: Lesion records before editing; their classifier outputs are kept for
            lesions still drawn by the same segment.
        previous_segments: Lesion id -> segment ID before editing (default: a lesion id's
            records are trusted to be the same lesion). New segments never reuse these ids.
        study: The study, to recompute each lesion's kinetics and curve type.

    Returns:
        The new measurements and merged lesion records.
    """
    before = {int(les["id"]): les for les in previous_lesions}
    reserved = [*before, *(previous_segments or {})]
    labels, breast, segment_ids = lesion_labels_from_segmentation(segmentation_node,
                                                                  reference_volume, reserved)
    report = measure_lesions(labels, breast, mode="labels", allow_empty=True)
    kinetics: dict[int, Any] = {}
    if study is not None and report.lesions:
        from BreastAIAssistantLib.dce.lesion_kinetics import lesion_kinetics

        kinetics = {k: v.to_dict() for k, v in lesion_kinetics(study, labels).items()}
    lesions = []
    for measured in report.to_dict()["lesions"]:
        lesion_id = int(measured["id"])
        same = previous_segments is None or previous_segments.get(lesion_id) == \
            segment_ids.get(lesion_id)  # fmt: skip
        old = before.get(lesion_id, {}) if same else {}
        record: dict[str, Any] = {**measured, "remeasured": True}
        kin = kinetics.get(lesion_id) or old.get("kinetics")
        if kin:
            record.update(kinetics=kin, curve_type=kin.get("curve_type_name"),
                          mean_curve=kin.get("mean_curve"))  # fmt: skip
        kept = {k: old[k] for k in PREDICTION_KEYS if old.get(k) is not None}
        if kept:
            record.update(kept)
            record["flags"] = [*record.get("flags", []), FLAG_STALE_PREDICTIONS]
        lesions.append(record)
    _tag_segments(segmentation_node, segment_ids)
    logger.info("re-measured %d lesion(s); T stage %s", len(lesions), report.t_stage)
    return Remeasured(report=report, lesions=lesions, segment_ids=segment_ids)


def _tag_segments(segmentation_node: slicer.vtkMRMLSegmentationNode,
                  segment_ids: Mapping[int, str]) -> None:
    """Record each segment's lesion id in its tags, so later re-measures keep the numbering."""
    segmentation = segmentation_node.GetSegmentation()
    for lesion_id, segment_id in segment_ids.items():
        segment = segmentation.GetSegment(segment_id)
        current = vtk.reference("")
        if not segment.GetTag(LESION_ID_TAG, current) or str(current) != str(lesion_id):
            segment.SetTag(LESION_ID_TAG, str(lesion_id))
            segment.SetTag(ROLE_TAG, "lesion")

