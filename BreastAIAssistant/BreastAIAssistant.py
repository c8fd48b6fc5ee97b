"""BreastAIAssistant Slicer module: the thin Slicer side of the extension.

The analysis lives in the Slicer-free core package ``BreastAIAssistantLib`` (also the ``breast-ai``
command line). This file holds only the Slicer classes: Module (metadata), Widget, Logic and Test.
The full graphical workflow (inputs from sequences, Run with progress and Cancel, results display)
is built on this seam by the Slicer-module work item; until then the Widget shows the research-use
notice and points to the command line.
"""

from __future__ import annotations

import slicer
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)

DISCLAIMER = (
    "Research use only. Not a medical device and not validated for clinical decisions. "
    "Bundled models are research demonstrations trained on a synthetic phantom."
)


class BreastAIAssistant(ScriptedLoadableModule):
    """Module metadata shown in Slicer's module list and help panel."""

    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = "Breast AI Assistant"
        self.parent.categories = ["Segmentation"]
        self.parent.dependencies = []
        self.parent.contributors = ["BreastAIAssistant developers"]
        self.parent.helpText = (
            "Breast DCE-MRI assistant: kinetic maps, whole-breast and tumour segmentation, lesion "
            "measurement with AJCC T category, report and exports from a multi-phase study. "
            "The same core runs outside Slicer as the <code>breast-ai</code> command line.<br><br>"
            f"<b>{DISCLAIMER}</b>"
        )
        self.parent.acknowledgementText = (
            "Methods from Zhang et al., Patterns 2023 (spatial-temporal breast tumour "
            "segmentation); kinetic maps after Hylton (I-SPY) and Kuhl (curve types)."
        )


class BreastAIAssistantWidget(ScriptedLoadableModuleWidget):
    """Panel: for now the research-use notice and a pointer to the command line."""

    def setup(self):
        ScriptedLoadableModuleWidget.setup(self)
        import qt

        notice = qt.QLabel(
            f"<b>{DISCLAIMER}</b><br><br>The interactive workflow is not available in this "
            "version. Use <code>breast-ai run STUDY --out DIR</code> and load "
            "<code>segmentation.seg.nrrd</code> and the maps from DIR."
        )
        notice.wordWrap = True
        self.layout.addWidget(notice)
        self.layout.addStretch(1)


class BreastAIAssistantLogic(ScriptedLoadableModuleLogic):
    """Logic: a thin adapter between MRML nodes and the core (grows with the Slicer work)."""


class BreastAIAssistantTest(ScriptedLoadableModuleTest):
    """Checks that run inside Slicer: the core imports and computes maps on a synthetic study."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_core_maps()

    def test_core_maps(self):
        from BreastAIAssistantLib.dce import compute_maps
        from BreastAIAssistantLib.phantom import make_simple_study

        study = make_simple_study(seed=1)
        maps = compute_maps(study)
        self.assertIn("ser", maps.images)
        self.delayDisplay("core maps computed")
