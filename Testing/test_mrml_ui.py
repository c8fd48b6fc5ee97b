"""The module's Qt Designer file against the module code (no Slicer or Qt needed).

Every ``self.ui.<name>`` the module uses must be a widget of the ``.ui`` file, every
``SlicerParameterName`` must be a parameter of the ``@parameterNodeWrapper`` class, and every
non-Qt widget class must be declared as a custom widget (else Slicer's loader fails).
"""

from __future__ import annotations

import ast
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

MODULE_DIR = Path(__file__).resolve().parents[1] / "BreastAIAssistant"
UI_FILE = MODULE_DIR / "Resources" / "UI" / "BreastAIAssistant.ui"
MODULE_FILE = MODULE_DIR / "BreastAIAssistant.py"


@pytest.fixture(scope="module")
def ui() -> ET.Element:
    return ET.parse(UI_FILE).getroot()


def _widgets(root: ET.Element) -> dict[str, str]:
    return {w.get("name"): w.get("class") for w in root.iter("widget")}


def _parameter_names(root: ET.Element) -> dict[str, str]:
    found = {}
    for widget in root.iter("widget"):
        for prop in widget.findall("property"):
            if prop.get("name") == "SlicerParameterName":
                found[widget.get("name")] = prop.findtext("string")
    return found


def _wrapper_parameters() -> set[str]:
    tree = ast.parse(MODULE_FILE.read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and any(
                getattr(d, "id", None) == "parameterNodeWrapper" for d in node.decorator_list):
            return {s.target.id for s in node.body if isinstance(s, ast.AnnAssign)}
    raise AssertionError("no @parameterNodeWrapper class in the module")


def test_ui_parses_with_the_module_widget_on_top(ui):
    assert ui.tag == "ui" and ui.findtext("class") == "BreastAIAssistant"
    top = ui.find("widget")
    assert top.get("class") == "qMRMLWidget" and top.get("name") == "BreastAIAssistant"


def test_every_widget_the_module_uses_exists(ui):
    used = set(re.findall(r"self\.ui\.(\w+)", MODULE_FILE.read_text(encoding="utf-8")))
    assert len(used) > 20
    missing = sorted(used - set(_widgets(ui)))
    assert not missing, f"widgets used by the module but not in the .ui file: {missing}"


def test_widget_names_are_unique(ui):
    names = [w.get("name") for w in ui.iter("widget")]
    assert len(names) == len(set(names))


def test_parameter_bindings_match_the_wrapper(ui):
    bound = _parameter_names(ui)
    parameters = _wrapper_parameters()
    assert set(bound.values()) <= parameters, set(bound.values()) - parameters
    expected = {"inputMode", "inputSequence", "preContrastIndex", "acquisitionTimes", "device",
                "runClassifiers", "gradcam", "outputFolder", "exportFolder", "heatmapOpacity"}
    assert expected <= set(bound.values())


def test_custom_widgets_are_declared(ui):
    declared = {c.findtext("class") for c in ui.iter("customwidget")}
    used = {cls for cls in _widgets(ui).values() if not cls.startswith("Q")}
    assert used <= declared, used - declared


def test_node_selectors_get_the_scene(ui):
    receivers = {c.findtext("receiver") for c in ui.iter("connection")
                 if c.findtext("signal") == "mrmlSceneChanged(vtkMRMLScene*)"}  # fmt: skip
    mrml_widgets = {name for name, cls in _widgets(ui).items()
                    if cls.startswith("qMRML") and cls != "qMRMLWidget"}  # fmt: skip
    assert mrml_widgets <= receivers, mrml_widgets - receivers


def test_device_choices_match_the_process_arguments(ui):
    from BreastAIAssistantMRML.process import DEVICES

    combo = next(w for w in ui.iter("widget") if w.get("name") == "deviceComboBox")
    items = [item.findtext("property/string") for item in combo.findall("item")]
    assert items == list(DEVICES)
