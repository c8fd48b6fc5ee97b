"""The module file's Logic on a real vtkMRMLScene, with Slicer's GUI-side packages stubbed.

Outside the Slicer application there is no ``qt``, ``slicer.ScriptedLoadableModule`` or
``slicer.parameterNodeWrapper``; minimal stand-ins (below) let ``BreastAIAssistant.py`` be
imported, so that its metadata and every Logic step that does not need the event loop (study
from a sequence, results from an output folder, heat-map switch, re-measure, every export,
dependency and device checks) run for real. The analysis process itself is tested in
``test_mrml_process.py``; the Qt widget only inside Slicer (the module's self-test).
"""

# ruff: noqa: E402  (the MRML imports must follow pytest.importorskip("slicer"))

from __future__ import annotations

import importlib
import json
import sys
import types
import unittest
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

slicer = pytest.importorskip("slicer")
if not hasattr(slicer, "vtkMRMLScene"):
    pytest.skip("the slicer-core wheel is not installed", allow_module_level=True)
MODULE_DIR = Path(__file__).resolve().parents[1] / "BreastAIAssistant"
sys.path.insert(0, str(MODULE_DIR))

from BreastAIAssistantLib.dce import compute_maps, write_maps
from BreastAIAssistantLib.dce.lesion_kinetics import lesion_kinetics
from BreastAIAssistantLib.io.volumes import write_json, write_volume
from BreastAIAssistantLib.measure import measure_lesions
from BreastAIAssistantLib.phantom import generate_case
from BreastAIAssistantMRML.scene import standalone_scene
from BreastAIAssistantMRML.study import add_volume_sequence


def _stub_modules() -> dict[str, types.ModuleType]:
    """``qt``, ``slicer.ScriptedLoadableModule`` and ``slicer.parameterNodeWrapper`` stand-ins."""
    qt = types.ModuleType("qt")

    class QProcess:
        NotRunning, NormalExit = 0, 0

    qt.QProcess = QProcess
    qt.QTimer = types.SimpleNamespace(singleShot=lambda *a: None)

    slm = types.ModuleType("slicer.ScriptedLoadableModule")

    class ScriptedLoadableModule:
        def __init__(self, parent):
            self.parent = parent

    class ScriptedLoadableModuleLogic:
        def getParameterNode(self):
            scene = slicer.mrmlScene
            node = scene.GetFirstNodeByName("BreastAIAssistant")
            if node is None:
                node = scene.AddNewNodeByClass("vtkMRMLScriptedModuleNode", "BreastAIAssistant")
            return node

    slm.ScriptedLoadableModule = ScriptedLoadableModule
    slm.ScriptedLoadableModuleLogic = ScriptedLoadableModuleLogic
    slm.ScriptedLoadableModuleWidget = type("ScriptedLoadableModuleWidget", (), {})
    slm.ScriptedLoadableModuleTest = unittest.TestCase

    pnw = types.ModuleType("slicer.parameterNodeWrapper")
    store: dict[str, dict] = {}

    def parameterNodeWrapper(cls):
        defaults = {name: getattr(cls, name, [] if str(hint).startswith("list") else None)
                    for name, hint in cls.__annotations__.items()}  # fmt: skip

        def __init__(self, node):
            object.__setattr__(self, "_values", store.setdefault(node.GetID(), dict(defaults)))

        def __getattr__(self, name):
            return self._values[name]

        def __setattr__(self, name, value):
            if name not in self._values:
                raise AttributeError(name)
            self._values[name] = value

        return type(cls.__name__, (), {"__init__": __init__, "__getattr__": __getattr__,
                                       "__setattr__": __setattr__})

    pnw.parameterNodeWrapper = parameterNodeWrapper
    pnw.Choice = lambda values: ("choice", tuple(values))
    pnw.WithinRange = lambda low, high: ("range", low, high)
    return {"qt": qt, "slicer.ScriptedLoadableModule": slm, "slicer.parameterNodeWrapper": pnw}


@pytest.fixture(scope="module")
def module():
    saved = {name: sys.modules.get(name) for name in (*_stub_modules(), "BreastAIAssistant")}
    sys.modules.update(_stub_modules())
    sys.modules.pop("BreastAIAssistant", None)
    try:
        yield importlib.import_module("BreastAIAssistant")
    finally:
        for name, old in saved.items():
            if old is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = old


@pytest.fixture(scope="module")
def case():
    return generate_case(8, size="small", n_phases=4, lesions=("malignant", "benign"),
                         noise=False)  # fmt: skip


@pytest.fixture(scope="module")
def run_folder(case, tmp_path_factory) -> Path:
    """An output folder as ``breast-ai run`` writes it (from the phantom's true masks)."""
    out = tmp_path_factory.mktemp("run")
    study, labels = case.study, case.tumour_labels
    maps = compute_maps(study)
    write_maps(maps, out / "maps")
    write_volume(labels, out / "tumor_mask.nii.gz")
    write_volume(case.breast_mask, out / "breast_mask.nii.gz")
    measured = measure_lesions(labels, case.breast_mask, mode="labels").to_dict()
    kinetics = lesion_kinetics(study, labels, maps=maps)
    lesions = []
    for lesion in measured["lesions"]:
        kin = kinetics[lesion["id"]].to_dict()
        lesions.append({**lesion, "kinetics": kin, "curve_type": kin["curve_type_name"],
                        "malignancy_probability": 0.5})  # fmt: skip
        box = sitk.Cast(labels == lesion["id"], sitk.sitkFloat32)
        write_volume(sitk.JoinSeries([box, box]),
                     out / f"gradcam_mrsm-demo_lesion{lesion['id']}.nii.gz")
    write_json({"lesions": lesions, "t_stage": measured["t_stage"], "dce": maps.provenance()},
               out / "report.json")
    (out / "report.html").write_text("<html>report</html>", encoding="utf-8")
    return out


@pytest.fixture
def scene():
    context = standalone_scene()
    yield context.scene
    context.close()


def test_module_metadata(module):
    parent = types.SimpleNamespace()
    module.BreastAIAssistant(parent)
    assert parent.title == "Breast AI Assistant" and parent.categories == ["Segmentation"]
    assert module.DISCLAIMER in parent.helpText and "Research use only" in parent.helpText
    assert "Zhang" in parent.acknowledgementText and parent.contributors


def test_dependencies_and_device(module):
    logic = module.BreastAIAssistantLogic()
    assert logic.missingPackages() == []  # every import name the module checks is right
    assert "CPU" in logic.describeDevices() or "CUDA" in logic.describeDevices()
    assert Path(logic.pythonExecutable()).exists()
    assert not logic.isRunning()


def test_times_and_inputs(module, scene, case):
    logic = module.BreastAIAssistantLogic()
    assert logic.parseTimes(" 0, 90,180 ") == [0.0, 90.0, 180.0] and logic.parseTimes("") is None
    with pytest.raises(ValueError, match="numbers separated by commas"):
        logic.parseTimes("0,early")
    params = logic.getParameterNode()
    assert not logic.hasInput(params)
    params.inputSequence = add_volume_sequence(scene, case.study.phases, case.study.times_s)
    assert logic.hasInput(params)
    params.preContrastIndex = 1
    study = logic.loadStudy(params)
    assert study.n_phases == case.study.n_phases - 1
    assert logic.preContrastNode(params) is params.inputSequence.GetNthDataNode(1)
    params.inputMode = module.INPUT_VOLUMES
    params.inputVolumes = [params.inputSequence.GetNthDataNode(i) for i in range(3)]
    params.preContrastIndex, params.acquisitionTimes = 0, "0,60,120"
    assert logic.loadStudy(params).times_s == (0.0, 60.0, 120.0)


def test_results_remeasure_and_exports(module, scene, case, run_folder, tmp_path):
    logic = module.BreastAIAssistantLogic()
    params = logic.getParameterNode()
    params.inputSequence = add_volume_sequence(scene, case.study.phases, case.study.times_s)
    logic.loadStudy(params)
    results = logic.loadResults(params, run_folder)
    report = json.loads((run_folder / "report.json").read_text())
    assert results.lesion_ids() == [les["id"] for les in report["lesions"]]
    assert params.segmentation is results.segmentation.node
    assert logic.heatmapModels() == ["mrsm-demo"]
    first = results.heatmap
    logic.showHeatmap("mrsm-demo", params)
    assert results.heatmap is not first and first.GetScene() is None
    logic.setHeatmapOpacity(0.3)
    found = logic.remeasure()
    assert [les["id"] for les in found.lesions] == results.lesion_ids()
    np.testing.assert_allclose([les["max_diameter_mm"] for les in found.lesions],
                               [les["max_diameter_mm"] for les in report["lesions"]])
    expected = {"seg.nrrd": ["segmentation.seg.nrrd"],
                "nifti": ["lesion_labels.nii.gz", "breast_mask.nii.gz"],
                "csv": ["lesions.csv", "measurements.csv"],
                "report": ["report.html", "report.json"],
                "dicom-seg": ["segmentation.dcm"]}  # fmt: skip
    for kind, names in expected.items():
        written = logic.export(kind, tmp_path / "export")
        assert [p.name for p in written] == names and all(p.is_file() for p in written)
    with pytest.raises(ValueError, match="unknown export"):
        logic.export("pdf", tmp_path)
