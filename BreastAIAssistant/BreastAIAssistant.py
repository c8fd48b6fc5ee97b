"""BreastAIAssistant: one-click breast DCE-MRI analysis in 3D Slicer (research use only).

The Slicer side of the extension, kept thin:

* the analysis itself is the Slicer-free core ``BreastAIAssistantLib`` (also the ``breast-ai``
  command line); it runs in a **separate Python process** (``QProcess`` running
  ``breast-ai run --progress-json``), so Slicer stays responsive, shows a progress bar per stage
  and Cancel really stops the work;
* everything that touches MRML nodes is the adapter package ``BreastAIAssistantMRML`` (tested
  with the ``slicer-core`` wheel against a real ``vtkMRMLScene``): reading the input sequence or
  volumes, writing the study for the process, and showing its results as nodes;
* this file holds the module metadata, the Widget (built from ``Resources/UI`` with
  ``SlicerParameterName`` bindings to a ``@parameterNodeWrapper`` class), a Logic that only
  delegates, and the self-test.

Nothing is installed or imported from the core at import time: PyTorch and the other packages
are checked when the user first runs an analysis (PyTorch through the PyTorch extension's
``PyTorchUtils`` when present, which picks the right CUDA build; else ``slicer.util.pip_install``
after a confirmation). Once installed, everything works offline.
"""

import html
import importlib.util
import logging
import pathlib
import shutil
import sys
import tempfile
import time
from typing import Annotated

import qt
import slicer
import vtk
from slicer import (
    vtkMRMLScalarVolumeNode,
    vtkMRMLSegmentationNode,
    vtkMRMLSequenceNode,
    vtkMRMLTableNode,
)
from slicer.parameterNodeWrapper import Choice, WithinRange, parameterNodeWrapper
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)
from slicer.util import VTKObservationMixin

DISCLAIMER = (
    "Research use only. Not a medical device and not validated for clinical decisions. "
    "The bundled models are research demonstrations trained on a synthetic phantom."
)

#: Python packages the core needs (import name -> pip requirement); torch is handled apart.
REQUIREMENTS = {
    "numpy": "numpy>=1.26",
    "scipy": "scipy>=1.11",
    "SimpleITK": "SimpleITK>=2.3",
    "pydicom": "pydicom>=2.4",
    "highdicom": "highdicom>=0.27,<0.29",
    "click": "click>=8.1",
    "tqdm": "tqdm>=4.66",
    "jsonschema": "jsonschema>=4.18",
    "matplotlib": "matplotlib>=3.7,<4",
}
TORCH_REQUIREMENT = "torch>=2.2,<3"
INPUT_SEQUENCE = "Volume sequence"
INPUT_VOLUMES = "Volumes in order"


#
# Module
#


class BreastAIAssistant(ScriptedLoadableModule):
    """Module metadata shown in Slicer's module list and help panel."""

    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = "Breast AI Assistant"
        self.parent.categories = ["Segmentation"]
        self.parent.dependencies = []
        self.parent.contributors = ["BreastAIAssistant developers"]
        self.parent.helpText = (
            "Breast DCE-MRI assistant: pick a volume sequence (or the phase volumes in order), "
            "press <b>Run analysis</b>. It computes subtraction and kinetic maps, a whole-breast "
            "mask, tumour segmentation, each lesion's exact 3-D maximum diameter and AJCC T "
            "category, kinetic curve types and (research demo) malignancy and receptor "
            "predictions with Grad-CAM. Results appear as a segmentation (editable in the "
            "Segment Editor; press <b>Re-measure</b> afterwards), diameter lines, a lesion table, "
            "a curve plot and a heat-map layer; export them as .seg.nrrd, NIfTI, DICOM SEG, "
            "CSV or the HTML report. The same core runs outside Slicer as the "
            "<code>breast-ai</code> command line.<br><br>"
            f"<b>{DISCLAIMER}</b>"
        )
        self.parent.acknowledgementText = (
            "Methods after Zhang et al., Patterns 2023 (spatial-temporal breast tumour "
            "segmentation), Hylton (I-SPY kinetic maps and functional tumour volume), Kuhl 1999 "
            "(kinetic curve types), AJCC 8th edition (T categories) and Selvaraju et al. 2017 "
            "(Grad-CAM). The Slicer integration follows the MONAIAuto3DSeg and TotalSegmentator "
            "extensions. Built on 3D Slicer, SimpleITK, PyTorch, pydicom and highdicom."
        )


#
# Parameter node
#


@parameterNodeWrapper
class BreastAIAssistantParameterNode:
    """The panel's state, saved with the scene.

    inputMode: where the phases come from (a sequence, or single volumes in order).
    inputSequence / inputVolumes: the DCE input.
    preContrastIndex: which phase is pre-contrast (earlier ones are not used).
    acquisitionTimes: optional comma-separated times in seconds, overriding the input's.
    device: Auto, CPU or CUDA.
    runClassifiers / gradcam: lesion classifiers and their heat maps.
    outputFolder: where the analysis writes (empty: a temporary folder per run).
    radiomicsModel: optional saved radiomics model folder applied to every lesion.
    exportFolder: where the export buttons write.
    heatmapOpacity: foreground opacity of the Grad-CAM layer.
    segmentation / lesionTable / heatmapVolume / subtractionVolume: the last result's nodes.
    """

    inputMode: Annotated[str, Choice([INPUT_SEQUENCE, INPUT_VOLUMES])] = INPUT_SEQUENCE
    inputSequence: vtkMRMLSequenceNode
    inputVolumes: list[vtkMRMLScalarVolumeNode]
    preContrastIndex: Annotated[int, WithinRange(0, 99)] = 0
    acquisitionTimes: str = ""
    device: Annotated[str, Choice(["Auto", "CPU", "CUDA"])] = "Auto"
    runClassifiers: bool = True
    gradcam: bool = True
    outputFolder: pathlib.Path
    radiomicsModel: pathlib.Path
    exportFolder: pathlib.Path
    heatmapOpacity: Annotated[float, WithinRange(0.0, 1.0)] = 0.5
    segmentation: vtkMRMLSegmentationNode
    lesionTable: vtkMRMLTableNode
    heatmapVolume: vtkMRMLScalarVolumeNode
    subtractionVolume: vtkMRMLScalarVolumeNode


def _folder(path) -> pathlib.Path | None:
    """A folder parameter, or None when unset (the wrapper's default Path is '.')."""
    if path is None or str(path) in ("", "."):
        return None
    return pathlib.Path(path)


#
# Widget
#


class BreastAIAssistantWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    """The panel: inputs, device, Run/Cancel with progress, results, exports."""

    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None
        self._currentLesionId = None

    def setup(self) -> None:
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/BreastAIAssistant.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = BreastAIAssistantLogic()

        self.ui.disclaimerLabel.setText(f"<b>{DISCLAIMER}</b>")
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)

        self.ui.addVolumeButton.connect("clicked(bool)", self.onAddVolume)
        self.ui.removeVolumeButton.connect("clicked(bool)", self.onRemoveVolume)
        self.ui.moveUpButton.connect("clicked(bool)", lambda: self.onMoveVolume(-1))
        self.ui.moveDownButton.connect("clicked(bool)", lambda: self.onMoveVolume(1))
        self.ui.runButton.connect("clicked(bool)", self.onRun)
        self.ui.cancelButton.connect("clicked(bool)", self.onCancel)
        self.ui.lesionTableView.connect("clicked(QModelIndex)", self.onLesionRowClicked)
        self.ui.previousLesionButton.connect("clicked(bool)", lambda: self.onStepLesion(-1))
        self.ui.nextLesionButton.connect("clicked(bool)", lambda: self.onStepLesion(1))
        self.ui.heatmapModelComboBox.connect("activated(int)", self.onHeatmapModelChanged)
        self.ui.editSegmentsButton.connect("clicked(bool)", self.onEditSegments)
        self.ui.remeasureButton.connect("clicked(bool)", self.onRemeasure)
        self.ui.exportSegNrrdButton.connect("clicked(bool)", lambda: self.onExport("seg.nrrd"))
        self.ui.exportNiftiButton.connect("clicked(bool)", lambda: self.onExport("nifti"))
        self.ui.exportDicomSegButton.connect("clicked(bool)", lambda: self.onExport("dicom-seg"))
        self.ui.exportReportButton.connect("clicked(bool)", lambda: self.onExport("report"))
        self.ui.exportCsvButton.connect("clicked(bool)", lambda: self.onExport("csv"))

        self.initializeParameterNode()
        qt.QTimer.singleShot(0, self.updateDeviceInfo)

    def cleanup(self) -> None:
        """Called when the application closes and the module widget is destroyed."""
        if self.logic is not None:
            self.logic.cancel()
        self.removeObservers()

    def enter(self) -> None:
        self.initializeParameterNode()

    def exit(self) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self._parameterNodeGuiTag = None
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent,
                                self._onParameterNodeModified)

    def onSceneStartClose(self, caller, event) -> None:
        if self.logic is not None:
            self.logic.cancel()
            self.logic.results = None
        self.setParameterNode(None)

    def onSceneEndClose(self, caller, event) -> None:
        if self.parent.isEntered:
            self.initializeParameterNode()

    def initializeParameterNode(self) -> None:
        self.setParameterNode(self.logic.getParameterNode())
        if self._parameterNode.inputSequence is None and \
                self._parameterNode.inputMode == INPUT_SEQUENCE:
            sequence = slicer.mrmlScene.GetFirstNodeByClass("vtkMRMLSequenceNode")
            if sequence is not None:
                self._parameterNode.inputSequence = sequence

    def setParameterNode(self, inputParameterNode) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent,
                                self._onParameterNodeModified)
        self._parameterNode = inputParameterNode
        if self._parameterNode:
            self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)
            self.addObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent,
                             self._onParameterNodeModified)
            self._onParameterNodeModified()

    def _onParameterNodeModified(self, caller=None, event=None) -> None:
        """Keep the parts of the panel that are not bound to a parameter in step."""
        params = self._parameterNode
        if params is None:
            return
        sequenceMode = params.inputMode == INPUT_SEQUENCE
        self.ui.inputSequenceSelector.setEnabled(sequenceMode)
        self.ui.volumesWidget.setEnabled(not sequenceMode)
        self._refreshVolumeList()
        running = self.logic.isRunning()
        self.ui.runButton.setEnabled(self.logic.hasInput(params) and not running)
        self.ui.cancelButton.setEnabled(running)
        self.logic.setHeatmapOpacity(params.heatmapOpacity)
        self._updateResultWidgets()

    def _refreshVolumeList(self) -> None:
        names = [node.GetName() for node in self._parameterNode.inputVolumes if node is not None]
        current = [self.ui.volumeListWidget.item(i).text()
                   for i in range(self.ui.volumeListWidget.count)]
        if names != current:
            row = self.ui.volumeListWidget.currentRow
            self.ui.volumeListWidget.clear()
            for index, name in enumerate(names):
                self.ui.volumeListWidget.addItem(f"{index}: {name}")
            self.ui.volumeListWidget.setCurrentRow(min(row, len(names) - 1))

    def updateDeviceInfo(self) -> None:
        """Show the device Auto would use, with the GPU's name and memory (needs PyTorch)."""
        self.ui.deviceInfoLabel.setText(self.logic.describeDevices())

    # --- inputs ----------------------------------------------------------------------------

    def onAddVolume(self) -> None:
        node = self.ui.addVolumeSelector.currentNode()
        if node is not None:
            self._parameterNode.inputVolumes = [*self._parameterNode.inputVolumes, node]

    def onRemoveVolume(self) -> None:
        row = self.ui.volumeListWidget.currentRow
        volumes = list(self._parameterNode.inputVolumes)
        if 0 <= row < len(volumes):
            del volumes[row]
            self._parameterNode.inputVolumes = volumes

    def onMoveVolume(self, step: int) -> None:
        row = self.ui.volumeListWidget.currentRow
        volumes = list(self._parameterNode.inputVolumes)
        target = row + step
        if 0 <= row < len(volumes) and 0 <= target < len(volumes):
            volumes[row], volumes[target] = volumes[target], volumes[row]
            self._parameterNode.inputVolumes = volumes
            self.ui.volumeListWidget.setCurrentRow(target)

    # --- running ---------------------------------------------------------------------------

    def onRun(self) -> None:
        with slicer.util.tryWithErrorDisplay("Failed to start the analysis.", waitCursor=True):
            if not self.logic.ensureDependencies():
                self.ui.statusLabel.setText("The analysis needs PyTorch and other packages.")
                return
            self.updateDeviceInfo()
            study = self.logic.loadStudy(self._parameterNode)
            times = "times unknown (phase order)" if study.times_s is None else \
                "times " + ", ".join(f"{t:.0f}" for t in study.times_s) + " s"
            self.ui.studyInfoLabel.setText(
                f"{study.n_phases} phases, {' x '.join(map(str, study.size_xyz))} voxels, {times}")
            self.logic.startAnalysis(study, self._parameterNode, self.onProgress,
                                     self.onFinished)
            self.ui.statusLabel.setText("Running...")
            self.ui.stageProgressBar.setValue(0)
            self.ui.overallProgressBar.setValue(0)
        self._onParameterNodeModified()

    def onCancel(self) -> None:
        self.logic.cancel()
        self.ui.statusLabel.setText("Cancelled.")
        self.ui.stageLabel.setText("")
        self._onParameterNodeModified()

    def onProgress(self, update) -> None:
        self.ui.stageLabel.setText(update.label)
        if update.stage_fraction is not None:
            self.ui.stageProgressBar.setValue(round(100 * update.stage_fraction))
        self.ui.overallProgressBar.setValue(round(100 * update.fraction))

    def onFinished(self, success: bool, message: str) -> None:
        self._onParameterNodeModified()
        if not success:
            self.ui.statusLabel.setText(message.splitlines()[0] if message else "Failed.")
            slicer.util.errorDisplay("The analysis failed.", detailedText=message)
            return
        with slicer.util.tryWithErrorDisplay("Failed to load the results.", waitCursor=True):
            self.logic.loadResults(self._parameterNode)
            self.showResultViews()
            self.ui.statusLabel.setText(f"Done. Outputs in {self.logic.outputFolder}")
        self._updateResultWidgets()

    # --- results ---------------------------------------------------------------------------

    def showResultViews(self) -> None:
        """Four-up layout with the table and plot; table and chart made active."""
        results = self.logic.results
        if results is None:
            return
        slicer.app.layoutManager().setLayout(
            slicer.vtkMRMLLayoutNode.SlicerLayoutFourUpPlotTableView)
        selection = slicer.app.applicationLogic().GetSelectionNode()
        selection.SetActiveTableID(results.table.GetID())
        slicer.app.applicationLogic().PropagateTableSelection()
        if results.chart is not None:
            selection.SetActivePlotChartID(results.chart.GetID())
            slicer.app.applicationLogic().PropagatePlotChartSelection()
        self.ui.lesionTableView.setMRMLTableNode(results.table)
        self.ui.featuresTableView.setMRMLTableNode(results.features)
        self.ui.featuresTableView.setVisible(results.features is not None)

    def _updateResultWidgets(self) -> None:
        results = self.logic.results
        has = results is not None
        for widget in (self.ui.previousLesionButton, self.ui.nextLesionButton,
                       self.ui.remeasureButton, self.ui.editSegmentsButton,
                       self.ui.exportSegNrrdButton, self.ui.exportNiftiButton,
                       self.ui.exportDicomSegButton, self.ui.exportReportButton,
                       self.ui.exportCsvButton):
            widget.setEnabled(has)
        if not has:
            return
        count = len(results.lesions)
        stage = results.t_stage or "none"
        data = getattr(self.logic, "resultData", None)
        cautions = data.cautions if data is not None else []
        self.ui.tStageLabel.setText(
            f"<b>{count} lesion(s); T stage {stage}</b> (research demo models, not for clinical "
            "use)" + "".join(f'<br><span style="color:#b26a00"><b>Caution:</b> {html.escape(c)}'
                             "</span>" for c in cautions))
        models = self.logic.heatmapModels()
        current = [self.ui.heatmapModelComboBox.itemText(i)
                   for i in range(self.ui.heatmapModelComboBox.count)]
        if models != current:
            self.ui.heatmapModelComboBox.clear()
            self.ui.heatmapModelComboBox.addItems(models)
        if self._currentLesionId is not None and self._currentLesionId in results.lesion_ids():
            lesion = results.lesion(self._currentLesionId)
            diameter = lesion.get("max_diameter_mm")
            text = f"Lesion {self._currentLesionId}"
            if diameter is not None:
                text += f": {diameter:.1f} mm, {lesion.get('t_category')}"
            self.ui.lesionLabel.setText(text)
        else:
            self.ui.lesionLabel.setText("")

    def onLesionRowClicked(self, index) -> None:
        results = self.logic.results
        if results is None:
            return
        ids = results.lesion_ids()
        if 0 <= index.row() < len(ids):
            self._jumpTo(ids[index.row()])

    def onStepLesion(self, step: int) -> None:
        results = self.logic.results
        if results is not None:
            lesionId = results.neighbour(self._currentLesionId, step)
            if lesionId is not None:
                self._jumpTo(lesionId)

    def _jumpTo(self, lesionId: int) -> None:
        self._currentLesionId = lesionId
        self.logic.results.jump_to(lesionId)
        row = self.logic.results.lesion_ids().index(lesionId)
        self.ui.lesionTableView.selectRow(row)
        self._updateResultWidgets()

    def onHeatmapModelChanged(self, index: int) -> None:
        with slicer.util.tryWithErrorDisplay("Failed to show the heat map.", waitCursor=True):
            self.logic.showHeatmap(self.ui.heatmapModelComboBox.currentText, self._parameterNode)

    def onEditSegments(self) -> None:
        results = self.logic.results
        if results is None:
            return
        slicer.util.selectModule("SegmentEditor")
        editor = slicer.modules.segmenteditor.widgetRepresentation().self().editor
        editor.setSegmentationNode(results.segmentation.node)
        editor.setSourceVolumeNode(results.background)

    def onRemeasure(self) -> None:
        with slicer.util.tryWithErrorDisplay("Failed to re-measure the segments.",
                                             waitCursor=True):
            self.logic.remeasure()
            self.ui.lesionTableView.setMRMLTableNode(self.logic.results.table)
            self.ui.statusLabel.setText("Re-measured from the edited segments.")
        self._updateResultWidgets()

    def onExport(self, kind: str) -> None:
        folder = _folder(self._parameterNode.exportFolder)
        if folder is None:
            chosen = qt.QFileDialog.getExistingDirectory(
                slicer.util.mainWindow(), "Export folder")
            if not chosen:
                return
            folder = pathlib.Path(chosen)
            self._parameterNode.exportFolder = folder
        with slicer.util.tryWithErrorDisplay(f"Failed to export ({kind}).", waitCursor=True):
            written = self.logic.export(kind, folder)
            self.ui.statusLabel.setText("Wrote " + ", ".join(p.name for p in written) +
                                        f" to {folder}")


#
# Logic
#


class BreastAIAssistantLogic(ScriptedLoadableModuleLogic):
    """Thin logic: dependencies, the analysis process and delegation to the MRML adapter.

    Never touches widgets; reports through the callbacks it is given.
    """

    def __init__(self) -> None:
        ScriptedLoadableModuleLogic.__init__(self)
        self.process = None
        self.study = None
        self.outputFolder = None
        self.results = None
        self.resultData = None
        self._stderrBuffer = ""
        self._stderrTail = []
        self._onProgress = None
        self._onFinished = None
        self._temporaryFolders = []
        self._finishedProcess = None

    def getParameterNode(self):
        return BreastAIAssistantParameterNode(super().getParameterNode())

    # --- dependencies ----------------------------------------------------------------------

    @staticmethod
    def missingPackages() -> list:
        """Pip requirements of the packages that cannot be imported (torch included)."""
        missing = [req for name, req in REQUIREMENTS.items()
                   if importlib.util.find_spec(name) is None]
        if importlib.util.find_spec("torch") is None:
            missing.insert(0, TORCH_REQUIREMENT)
        return missing

    def ensureDependencies(self, askConfirmation: bool = True) -> bool:
        """Install what is missing, after a confirmation; False if the user declined."""
        missing = self.missingPackages()
        if not missing:
            return True
        if TORCH_REQUIREMENT in missing:
            missing.remove(TORCH_REQUIREMENT)
            if not self._installTorch(askConfirmation):
                return False
        if missing:
            if askConfirmation and not slicer.util.confirmOkCancelDisplay(
                    "BreastAIAssistant needs these Python packages, which will be downloaded "
                    "and installed now (a few minutes):\n\n" + "\n".join(missing)):
                return False
            slicer.util.pip_install(missing)
        importlib.invalidate_caches()
        return not self.missingPackages()

    @staticmethod
    def _installTorch(askConfirmation: bool) -> bool:
        try:
            import PyTorchUtils  # the PyTorch extension (picks the CUDA build for this machine)
        except ImportError:
            PyTorchUtils = None
        if PyTorchUtils is not None:
            torchLogic = PyTorchUtils.PyTorchUtilsLogic()
            if torchLogic.torchInstalled():
                return True
            torch = torchLogic.installTorch(askConfirmation=askConfirmation,
                                            torchVersionRequirement=">=2.2")
            return torch is not None
        if askConfirmation and not slicer.util.confirmOkCancelDisplay(
                "BreastAIAssistant needs PyTorch. Install the PyTorch extension (Extensions "
                "Manager) to get the build that matches your GPU, or press OK to install "
                f"'{TORCH_REQUIREMENT}' from PyPI now (CPU or default CUDA build, large "
                "download)."):
            return False
        slicer.util.pip_install(TORCH_REQUIREMENT)
        return True

    @staticmethod
    def describeDevices() -> str:
        """Which device Auto picks, with the GPU's name and memory; a hint without PyTorch."""
        if importlib.util.find_spec("torch") is None:
            return "PyTorch is not installed yet: it is installed on the first run."
        try:
            import torch

            if torch.cuda.is_available():
                props = torch.cuda.get_device_properties(0)
                return (f"Auto uses CUDA: {props.name}, "
                        f"{props.total_memory / 2**30:.1f} GiB (PyTorch {torch.__version__})")
            return f"Auto uses the CPU: no CUDA GPU found (PyTorch {torch.__version__})."
        except Exception as exc:  # a broken torch install must not break the panel
            logging.warning("cannot query PyTorch devices: %s", exc)
            return f"PyTorch is installed but cannot be queried: {exc}"

    # --- inputs ----------------------------------------------------------------------------

    @staticmethod
    def hasInput(params) -> bool:
        if params.inputMode == INPUT_SEQUENCE:
            return params.inputSequence is not None
        return len([v for v in params.inputVolumes if v is not None]) >= 2

    @staticmethod
    def parseTimes(text: str):
        """Comma-separated seconds, or None when empty."""
        text = (text or "").replace(" ", "")
        if not text:
            return None
        try:
            return [float(v) for v in text.split(",") if v]
        except ValueError:
            raise ValueError(f"acquisition times must be numbers separated by commas, got "
                             f"{text!r}") from None

    def loadStudy(self, params):
        """The DCE study of the panel's input (through the MRML adapter)."""
        from BreastAIAssistantMRML.study import study_from_sequence, study_from_volume_nodes

        times = self.parseTimes(params.acquisitionTimes)
        if params.inputMode == INPUT_SEQUENCE:
            if params.inputSequence is None:
                raise ValueError("select the volume sequence of the DCE study")
            self.study = study_from_sequence(params.inputSequence, params.preContrastIndex, times)
        else:
            volumes = [v for v in params.inputVolumes if v is not None]
            self.study = study_from_volume_nodes(volumes, params.preContrastIndex, times)
        return self.study

    def preContrastNode(self, params):
        """The pre-contrast phase's volume node (for DICOM references), or None."""
        if params.inputMode == INPUT_SEQUENCE and params.inputSequence is not None:
            return params.inputSequence.GetNthDataNode(params.preContrastIndex)
        volumes = [v for v in params.inputVolumes if v is not None]
        index = params.preContrastIndex
        return volumes[index] if index < len(volumes) else None

    # --- the analysis process --------------------------------------------------------------

    @staticmethod
    def pythonExecutable() -> str:
        """Slicer's Python launcher (PythonSlicer), else this interpreter."""
        return shutil.which("PythonSlicer") or sys.executable

    def isRunning(self) -> bool:
        return self.process is not None and self.process.state() != qt.QProcess.NotRunning

    def startAnalysis(self, study, params, onProgress=None, onFinished=None) -> None:
        """Write the study to a folder and start ``breast-ai run`` on it in a QProcess.

        Args:
            study: The DCEStudy (:meth:`loadStudy`).
            params: The parameter node (device, classifiers, output folder).
            onProgress: Called with each ``ProgressUpdate``.
            onFinished: Called with ``(success, message)``.
        """
        from BreastAIAssistantMRML.process import (
            analysis_arguments,
            available_classifiers,
            process_environment,
        )
        from BreastAIAssistantMRML.study import write_study_folder

        if self.isRunning():
            raise RuntimeError("an analysis is already running")
        work = pathlib.Path(tempfile.mkdtemp(prefix="BreastAI-"))
        self._temporaryFolders.append(work)
        studyFolder = write_study_folder(study, work / "study")
        self.outputFolder = _folder(params.outputFolder) or work / "results"
        arguments = analysis_arguments(
            studyFolder, self.outputFolder, device=params.device,
            classifiers=available_classifiers() if params.runClassifiers else [],
            gradcam=params.gradcam, radiomics_model=_folder(params.radiomicsModel))
        self._onProgress, self._onFinished = onProgress, onFinished
        self._stderrBuffer, self._stderrTail = "", []
        process = qt.QProcess()
        environment = qt.QProcessEnvironment()
        for key, value in process_environment().items():
            environment.insert(key, value)
        process.setProcessEnvironment(environment)
        process.connect("readyReadStandardError()", self._readStderr)
        process.connect("finished(int,QProcess::ExitStatus)", self._processFinished)
        self.process = process
        logging.info("starting the analysis: %s %s", self.pythonExecutable(),
                     " ".join(arguments[2:]))
        process.start(self.pythonExecutable(), arguments)

    def _readStderr(self) -> None:
        from BreastAIAssistantMRML.process import parse_progress_line

        data = bytes(self.process.readAllStandardError().data()).decode("utf-8", "replace")
        self._stderrBuffer += data
        *lines, self._stderrBuffer = self._stderrBuffer.split("\n")
        for line in lines:
            update = parse_progress_line(line)
            if update is None:
                if line.strip():
                    logging.info("analysis: %s", line.rstrip())
                    self._stderrTail = [*self._stderrTail, line.rstrip()][-40:]
            elif self._onProgress is not None:
                self._onProgress(update)

    def _processFinished(self, exitCode, exitStatus) -> None:
        if self.process is None:
            return
        self._readStderr()
        success = exitStatus == qt.QProcess.NormalExit and exitCode == 0
        message = "\n".join(self._stderrTail)
        errors = [line for line in self._stderrTail if line.startswith("breast-ai: error:")]
        if errors:
            message = errors[-1] + "\n\n" + message
        # keep the finished QProcess alive until the next run: it is still emitting this signal
        self._finishedProcess, self.process = self.process, None
        if self._onFinished is not None:
            self._onFinished(success, message)

    def cancel(self) -> None:
        """Kill the analysis process (and wait until it is gone)."""
        process, self.process = self.process, None
        if process is not None and process.state() != qt.QProcess.NotRunning:
            process.kill()
            process.waitForFinished(5000)
            logging.info("analysis cancelled")

    def waitForAnalysis(self, timeoutSeconds: float = 1800.0) -> None:
        """Process events until the analysis ends (tests and scripts)."""
        start = time.time()
        while self.isRunning():
            if time.time() - start > timeoutSeconds:
                self.cancel()
                raise TimeoutError("the analysis did not finish in time")
            slicer.app.processEvents()
            time.sleep(0.05)

    # --- results ---------------------------------------------------------------------------

    def loadResults(self, params, folder=None):
        """Show the output folder's results as nodes (segmentation, lines, table, plot, heat)."""
        from BreastAIAssistantMRML.results import ResultData, show_results
        from BreastAIAssistantMRML.segmentation import manifest_terminologies

        folder = pathlib.Path(folder or self.outputFolder)
        self.resultData = ResultData.from_folder(folder)
        self.outputFolder = folder
        self.results = show_results(slicer.mrmlScene, self.resultData,
                                    terminologies=manifest_terminologies(),
                                    heatmap_opacity=params.heatmapOpacity)
        params.segmentation = self.results.segmentation.node
        params.lesionTable = self.results.table
        params.subtractionVolume = self.results.background
        params.heatmapVolume = self.results.heatmap
        return self.results

    def heatmapModels(self) -> list:
        return sorted(self.resultData.heatmaps) if self.resultData is not None else []

    def showHeatmap(self, model: str, params) -> None:
        """Replace the heat-map layer with another classifier's Grad-CAM."""
        from BreastAIAssistantMRML.results import set_slice_layers
        from BreastAIAssistantMRML.volumes import add_heatmap_node, combine_heatmaps

        if self.results is None or model not in (self.resultData.heatmaps or {}):
            return
        if self.results.heatmap is not None:
            slicer.mrmlScene.RemoveNode(self.results.heatmap)
        combined = combine_heatmaps(self.resultData.background, self.resultData.heatmaps[model])
        self.results.heatmap = add_heatmap_node(slicer.mrmlScene, combined,
                                                f"Breast AI Grad-CAM ({model})")
        params.heatmapVolume = self.results.heatmap
        set_slice_layers(slicer.mrmlScene, self.results.background, self.results.heatmap,
                         params.heatmapOpacity)

    def setHeatmapOpacity(self, opacity: float) -> None:
        if self.results is not None and self.results.heatmap is not None:
            from BreastAIAssistantMRML.results import set_slice_layers

            set_slice_layers(slicer.mrmlScene, foreground_opacity=opacity)

    def remeasure(self):
        """Measure the edited segments again; lines, table and plot follow."""
        if self.results is None:
            raise ValueError("run an analysis first")
        return self.results.remeasure(self.study)

    def export(self, kind: str, folder) -> list:
        """Write one export into ``folder``; returns the files written."""
        from BreastAIAssistantMRML import export

        if self.results is None:
            raise ValueError("run an analysis first")
        folder = pathlib.Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        node, reference = self.results.segmentation.node, self.results.background
        if kind == "seg.nrrd":
            return [export.export_seg_nrrd(node, folder / "segmentation.seg.nrrd", reference)]
        if kind == "nifti":
            return export.export_nifti(node, folder, reference)
        if kind == "dicom-seg":
            if self.study is None:
                raise ValueError("the study of this result is not loaded; run the analysis again")
            source = None
            database = getattr(slicer, "dicomDatabase", None)
            preContrast = self.preContrastNode(self.getParameterNode())
            if database is not None and preContrast is not None:
                source = export.dicom_source_datasets(preContrast, database.fileForInstance)
            return [export.export_dicom_seg(node, self.study, folder / "segmentation.dcm",
                                            reference, source)]
        if kind == "report":
            return export.copy_report(self.outputFolder, folder)
        if kind == "csv":
            return [export.export_table_csv(self.results.table, folder / "lesions.csv"),
                    export.export_measurements_csv(self.results.lesions, self.results.t_stage,
                                                   folder / "measurements.csv")]
        raise ValueError(f"unknown export {kind!r}")


#
# Test
#


class BreastAIAssistantTest(ScriptedLoadableModuleTest):
    """End to end inside Slicer: a phantom study as a volume sequence, the analysis process,
    the result nodes, a segment edit with re-measure, and every export."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_phantom_end_to_end()

    def test_phantom_end_to_end(self):
        self.delayDisplay("Starting the phantom end-to-end test")
        logic = BreastAIAssistantLogic()
        missing = logic.missingPackages()
        self.assertEqual(missing, [], f"install the dependencies first (Run once): {missing}")

        from BreastAIAssistantLib.phantom import generate_case
        from BreastAIAssistantMRML.geometry import lps_to_ras
        from BreastAIAssistantMRML.study import add_volume_sequence

        case = generate_case(3, size="small", n_phases=3, lesions=("malignant",))
        sequence = add_volume_sequence(slicer.mrmlScene, case.study.phases, case.study.times_s,
                                       "Phantom DCE")
        params = logic.getParameterNode()
        params.inputMode = INPUT_SEQUENCE
        params.inputSequence = sequence
        params.device = "CPU"
        study = logic.loadStudy(params)
        self.assertEqual(study.n_phases, 3)
        self.assertEqual(study.times_s, case.study.times_s)

        finished, stages = [], []
        logic.startAnalysis(study, params, lambda update: stages.append(update.stage),
                            lambda ok, message: finished.append((ok, message)))
        logic.waitForAnalysis()
        self.assertTrue(finished and finished[0][0], finished[0][1] if finished else "no result")
        self.assertIn("tumour", stages)
        self.delayDisplay("Analysis finished")

        results = logic.loadResults(params)
        segmentation = results.segmentation.node.GetSegmentation()
        self.assertIsNotNone(segmentation.GetSegmentIdBySegmentName("Breast") or None)
        self.assertEqual(segmentation.GetNumberOfSegments(), 1 + len(results.lesions))
        self.assertEqual(results.table.GetNumberOfRows(), len(results.lesions))
        for lesion in results.lesions:
            line = results.lines[lesion["id"]]
            start = [line.GetNthControlPointPosition(0)[i] for i in range(3)]
            expected = lps_to_ras(lesion["endpoints_lps_mm"][0])
            for a, b in zip(start, expected, strict=True):
                self.assertAlmostEqual(a, float(b), places=3)
        if results.lesions:
            self.assertTrue(results.jump_to(results.lesion_ids()[0]))
            found = logic.remeasure()
            self.assertEqual(len(found.lesions), len(results.lesions))

        exportFolder = pathlib.Path(tempfile.mkdtemp(prefix="BreastAI-export-"))
        for kind in ("seg.nrrd", "nifti", "csv", "report"):
            for path in logic.export(kind, exportFolder):
                self.assertTrue(path.is_file(), f"{kind}: {path} missing")
        if results.lesions:
            dicom = logic.export("dicom-seg", exportFolder)
            self.assertTrue(dicom[0].is_file())
        self.delayDisplay("Phantom end-to-end test passed")

