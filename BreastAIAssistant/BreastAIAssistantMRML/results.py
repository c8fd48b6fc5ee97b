"""An analysis result shown as Slicer nodes, and kept in step with the user's edits.

:class:`ResultData` gathers what the nodes are made from, either from a finished
``run_analysis`` in this process (:meth:`ResultData.from_result`) or from the output folder of
``breast-ai run`` (:meth:`ResultData.from_folder`: ``report.json``, ``breast_mask.nii.gz``,
``tumor_mask.nii.gz``, ``maps/`` and ``gradcam_<model>_lesion<k>.nii.gz``), which is how the
Slicer module gets it from its analysis process. :func:`show_results` creates the nodes:

* the early subtraction as background volume (and PE, SER volumes beside it);
* the segmentation node (:mod:`.segmentation`);
* the Grad-CAM heat map of one classifier, all lesions combined, as foreground;
* one diameter line per lesion, the lesion table and the curve plot (:mod:`.lesions`);
* the lesions' radiomics features as a second table, when the run applied a radiomics model
  (``radiomics_features.csv``);

and :meth:`ResultNodes.remeasure` updates lines, table and plot from the edited segments.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import SimpleITK as sitk
import slicer

from BreastAIAssistantLib.radiomics.apply import LESION_FEATURES_CSV, read_lesion_features
from BreastAIAssistantLib.study import DCEStudy
from BreastAIAssistantMRML.lesions import (
    add_curve_plot,
    add_diameter_line,
    add_features_table,
    add_lesion_table,
    fill_lesion_table,
    jump_to_lesion,
    update_diameter_line,
)
from BreastAIAssistantMRML.remeasure import Remeasured, remeasure
from BreastAIAssistantMRML.segmentation import (
    SegmentationNodes,
    SegmentTerminologies,
    add_segmentation_node,
)
from BreastAIAssistantMRML.volumes import (
    add_heatmap_node,
    add_volume_node,
    combine_heatmaps,
    window_level_in,
)

logger = logging.getLogger(__name__)

#: Maps added as volumes besides the background subtraction.
EXTRA_MAPS = ("pe", "ser")
_GRADCAM = re.compile(r"^gradcam_(?P<model>.+)_lesion(?P<id>\d+)\.nii\.gz$")


@dataclass
class ResultData:
    """The images and report an analysis produced (all on the study's pre-contrast grid).

    Attributes:
        report: The ``report.json`` content (``lesions``, ``t_stage``, ``dce``, ...).
        background: The early subtraction (``sub_<early>``).
        background_name: Its map name.
        breast_mask: Whole-breast mask, or ``None``.
        lesion_labels: Lesion instance labels, or ``None`` (no lesion found).
        maps: Further maps to show as volumes, by name.
        heatmaps: Classifier model -> Grad-CAM maps of its lesions (3-D or 4-D sub-grids).
        features: Lesion id -> radiomics feature values (a run with a radiomics model).
        folder: The output folder, when read from one.
    """

    report: dict[str, Any]
    background: sitk.Image
    background_name: str
    breast_mask: sitk.Image | None = None
    lesion_labels: sitk.Image | None = None
    maps: dict[str, sitk.Image] = field(default_factory=dict)
    heatmaps: dict[str, list[sitk.Image]] = field(default_factory=dict)
    features: dict[int, dict[str, float]] = field(default_factory=dict)
    folder: Path | None = None

    @staticmethod
    def _early(report: dict[str, Any], available: Sequence[str]) -> str:
        early = ((report.get("dce") or {}).get("phases") or {}).get("early")
        name = f"sub_{early}"
        if name in available:
            return name
        subs = sorted((m for m in available if m.startswith("sub_")),
                      key=lambda m: int(m.split("_")[1]))  # fmt: skip
        if not subs:
            raise ValueError("the result has no subtraction map")
        return subs[0]

    @staticmethod
    def _gradcams(files: Sequence[Path]) -> dict[str, list[sitk.Image]]:
        found: dict[str, list[sitk.Image]] = {}
        for path in sorted(files):
            match = _GRADCAM.match(path.name)
            if match:
                found.setdefault(match["model"], []).append(sitk.ReadImage(str(path)))
        return found

    @staticmethod
    def _features(path: Path | None) -> dict[int, dict[str, float]]:
        return read_lesion_features(path) if path is not None and Path(path).is_file() else {}

    @classmethod
    def from_result(cls, result: Any) -> ResultData:
        """From a ``BreastAIAssistantLib.pipeline.AnalysisResult`` of this process."""
        images = result.maps.images
        early = cls._early(result.report, list(images))
        gradcam_files = [Path(p) for k, p in result.files.items() if k.startswith("gradcam_")]
        has_lesions = bool(result.report.get("lesions"))
        return cls(report=result.report, background=images[early], background_name=early,
                   breast_mask=result.breast_mask,
                   lesion_labels=result.lesion_labels if has_lesions else None,
                   maps={m: images[m] for m in EXTRA_MAPS if m in images},
                   heatmaps=cls._gradcams(gradcam_files),
                   features=cls._features(result.files.get("radiomics_features")))  # fmt: skip

    @classmethod
    def from_folder(cls, folder: str | os.PathLike[str]) -> ResultData:
        """From the output folder of ``breast-ai run``.

        Raises:
            FileNotFoundError: no ``report.json`` or no subtraction map in the folder.
        """
        out = Path(folder)
        report_path = out / "report.json"
        if not report_path.is_file():
            raise FileNotFoundError(f"{out} holds no report.json: not a finished breast-ai run")
        report = json.loads(report_path.read_text(encoding="utf-8"))
        map_files = {p.name.split(".")[0]: p for p in (out / "maps").glob("*.nii.gz")}
        early = cls._early(report, list(map_files))

        def read(path: Path) -> sitk.Image | None:
            return sitk.ReadImage(str(path)) if path.is_file() else None

        return cls(report=report, background=sitk.ReadImage(str(map_files[early])),
                   background_name=early, breast_mask=read(out / "breast_mask.nii.gz"),
                   lesion_labels=read(out / "tumor_mask.nii.gz") if report.get("lesions")
                   else None,
                   maps={m: sitk.ReadImage(str(map_files[m])) for m in EXTRA_MAPS
                         if m in map_files},
                   heatmaps=cls._gradcams(list(out.glob("gradcam_*.nii.gz"))),
                   features=cls._features(out / LESION_FEATURES_CSV), folder=out)  # fmt: skip

    @property
    def lesions(self) -> list[dict[str, Any]]:
        """The report's lesion records."""
        return list(self.report.get("lesions") or [])

    @property
    def cautions(self) -> list[str]:
        """The report's cautions (e.g. voxels coarser than a model's grid), as sentences."""
        return [str(c.get("message", "")) for c in self.report.get("cautions") or []]


@dataclass
class ResultNodes:
    """The nodes showing one result.

    Attributes:
        scene: The scene.
        background: Early subtraction volume node (the segmentation's reference grid).
        segmentation: The segmentation node and its segment IDs.
        lines: Lesion id -> diameter line node.
        table: The lesion table node.
        chart: The curve plot chart node (``None`` without curves).
        features: The radiomics feature table node (``None`` without a radiomics model).
        heatmap: The Grad-CAM volume node (``None`` without maps).
        maps: Further map volume nodes by name.
        lesions: Current lesion records (updated by :meth:`remeasure`).
        t_stage: Current overall T stage.
    """

    scene: slicer.vtkMRMLScene
    background: slicer.vtkMRMLScalarVolumeNode
    segmentation: SegmentationNodes
    lines: dict[int, slicer.vtkMRMLMarkupsLineNode]
    table: slicer.vtkMRMLTableNode
    chart: slicer.vtkMRMLPlotChartNode | None = None
    features: slicer.vtkMRMLTableNode | None = None
    heatmap: slicer.vtkMRMLScalarVolumeNode | None = None
    maps: dict[str, slicer.vtkMRMLScalarVolumeNode] = field(default_factory=dict)
    lesions: list[dict[str, Any]] = field(default_factory=list)
    t_stage: str | None = None

    def lesion_ids(self) -> list[int]:
        """Lesion ids in table order."""
        return [int(lesion["id"]) for lesion in self.lesions]

    def lesion(self, lesion_id: int) -> dict[str, Any]:
        """The record of one lesion.

        Raises:
            KeyError: no such lesion.
        """
        for lesion in self.lesions:
            if int(lesion["id"]) == int(lesion_id):
                return lesion
        raise KeyError(f"no lesion {lesion_id}")

    def jump_to(self, lesion_id: int) -> bool:
        """Centre every slice view on a lesion."""
        return jump_to_lesion(self.scene, self.lesion(lesion_id))

    def neighbour(self, lesion_id: int | None, step: int) -> int | None:
        """The lesion ``step`` rows after (``-1``: before) ``lesion_id``, wrapping around."""
        ids = self.lesion_ids()
        if not ids:
            return None
        if lesion_id not in ids:
            return ids[0] if step >= 0 else ids[-1]
        return ids[(ids.index(lesion_id) + step) % len(ids)]

    def remeasure(self, study: DCEStudy | None = None) -> Remeasured:
        """Re-measure the edited segments; update lines, table and plot in place."""
        found = remeasure(self.segmentation.node, self.background,
                          previous_lesions=self.lesions,
                          previous_segments=self.segmentation.lesion_segment_ids,
                          study=study)  # fmt: skip
        self.lesions, self.t_stage = found.lesions, found.t_stage
        self.segmentation.lesion_segment_ids = dict(found.segment_ids)
        for lesion_id in [k for k in self.lines if k not in found.segment_ids]:
            self.scene.RemoveNode(self.lines.pop(lesion_id))
        for lesion in found.lesions:
            lesion_id = int(lesion["id"])
            if lesion_id in self.lines:
                line = self.lines[lesion_id]
                line.SetLocked(False)
                update_diameter_line(line, lesion)
                line.SetLocked(True)
            else:
                self.lines[lesion_id] = add_diameter_line(self.scene, lesion)
        fill_lesion_table(self.table, found.lesions)
        if self.chart is not None:
            _remove_chart(self.scene, self.chart)
        self.chart = add_curve_plot(self.scene, found.lesions)
        return found


def _remove_chart(scene: slicer.vtkMRMLScene, chart: slicer.vtkMRMLPlotChartNode) -> None:
    tables = set()
    for index in range(chart.GetNumberOfPlotSeriesNodes()):
        series = chart.GetNthPlotSeriesNode(index)
        if series is not None:
            if series.GetTableNode() is not None:
                tables.add(series.GetTableNode().GetID())
            scene.RemoveNode(series)
    for table_id in tables:
        scene.RemoveNode(scene.GetNodeByID(table_id))
    scene.RemoveNode(chart)


def set_slice_layers(scene: slicer.vtkMRMLScene,
                     background: slicer.vtkMRMLVolumeNode | None = None,
                     foreground: slicer.vtkMRMLVolumeNode | None = None,
                     foreground_opacity: float | None = None) -> None:  # fmt: skip
    """Show volumes in every slice view (``vtkMRMLSliceCompositeNode`` of each view)."""
    composites = scene.GetNodesByClass("vtkMRMLSliceCompositeNode")
    for index in range(composites.GetNumberOfItems()):
        composite = composites.GetItemAsObject(index)
        if background is not None:
            composite.SetBackgroundVolumeID(background.GetID())
        if foreground is not None:
            composite.SetForegroundVolumeID(foreground.GetID())
        if foreground_opacity is not None:
            composite.SetForegroundOpacity(float(foreground_opacity))


def show_results(scene: slicer.vtkMRMLScene, data: ResultData, *,
                 terminologies: SegmentTerminologies | None = None,
                 heatmap_model: str | None = None, heatmap_opacity: float = 0.5,
                 prefix: str = "Breast AI") -> ResultNodes:  # fmt: skip
    """Create every result node and show background, heat map and segmentation in slice views.

    Args:
        scene: The ``vtkMRMLScene``.
        data: The result.
        terminologies: Segment codes (default: the core's; the Slicer module passes the bundle
            manifests' through :func:`~.segmentation.manifest_terminologies`).
        heatmap_model: Classifier whose Grad-CAM is shown (default: the first with maps).
        heatmap_opacity: Foreground opacity of the heat map.
        prefix: Prefix of node names.

    Returns:
        The nodes.
    """
    background = add_volume_node(scene, data.background,
                                 f"{prefix} subtraction ({data.background_name})",
                                 window_level=window_level_in(data.background,
                                                              data.breast_mask))  # fmt: skip
    maps = {name: add_volume_node(scene, image, f"{prefix} {name}")
            for name, image in data.maps.items()}  # fmt: skip
    segmentation = add_segmentation_node(scene, background, data.breast_mask, data.lesion_labels,
                                         terminologies=terminologies,
                                         name=f"{prefix} segmentation")  # fmt: skip
    heatmap = None
    if data.heatmaps:
        model = heatmap_model if heatmap_model in data.heatmaps else sorted(data.heatmaps)[0]
        combined = combine_heatmaps(data.background, data.heatmaps[model])
        heatmap = add_heatmap_node(scene, combined, f"{prefix} Grad-CAM ({model})")
    lesions = data.lesions
    lines = {int(lesion["id"]): add_diameter_line(scene, lesion) for lesion in lesions
             if lesion.get("endpoints_lps_mm")}  # fmt: skip
    table = add_lesion_table(scene, lesions, f"{prefix} lesions")
    chart = add_curve_plot(scene, lesions, f"{prefix} curves")
    features = (add_features_table(scene, data.features, f"{prefix} radiomics features")
                if data.features else None)  # fmt: skip
    set_slice_layers(scene, background, heatmap, heatmap_opacity if heatmap else None)
    return ResultNodes(scene=scene, background=background, segmentation=segmentation,
                       lines=lines, table=table, chart=chart, features=features,
                       heatmap=heatmap, maps=maps,
                       lesions=lesions, t_stage=data.report.get("t_stage"))  # fmt: skip
