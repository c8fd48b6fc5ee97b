"""A MRML scene with the logics Slicer would attach, for use outside the Slicer application.

Inside Slicer the application creates one scene (``slicer.mrmlScene``) and attaches the module
logics to it. With the ``slicer-core`` wheel (tests, headless rendering, scripts) nobody does, and
without them a scene cannot create segments, place markups or pick colour tables. This module
does what ``qSlicerCoreApplication`` and the module loaders do for the classes this package uses:

* a default crosshair node, the application logic (selection and interaction singletons) and the
  default colour tables (``vtkMRMLColorLogic.AddDefaultColorNodes``);
* the Segmentations, Markups and Volumes module logics, registered under their module names;
* the default slice orientation presets (``vtkMRMLSliceNode.AddDefaultSliceOrientationPresets``,
  patient right on screen left as in Slicer's default).

Nothing here is needed inside Slicer; the adapter functions take whatever scene they are given.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import slicer
import vtk

logger = logging.getLogger(__name__)


@dataclass
class SceneContext:
    """A scene and the logics attached to it (keep the object alive while using the scene).

    Attributes:
        scene: The ``vtkMRMLScene``.
        app_logic: The ``vtkSlicerApplicationLogic``.
        logics: Module logics by module name (``Segmentations``, ``Markups``, ``Volumes``).
    """

    scene: slicer.vtkMRMLScene
    app_logic: slicer.vtkSlicerApplicationLogic
    logics: dict[str, Any] = field(default_factory=dict)

    def close(self) -> None:
        """Detach the logics and clear the scene."""
        for logic in self.logics.values():
            logic.SetMRMLScene(None)
        self.scene.Clear(True)


def standalone_scene(set_global: bool = True) -> SceneContext:
    """A new scene with the application and module logics of a Slicer session attached.

    Args:
        set_global: Also set ``slicer.mrmlScene`` and ``slicer.app_logic`` (what
            ``slicer.util`` functions use) to the new scene and logic.

    Returns:
        The scene context.
    """
    scene = slicer.vtkMRMLScene()
    crosshair = slicer.vtkMRMLCrosshairNode()
    crosshair.SetCrosshairName("default")
    scene.AddNode(crosshair)

    app_logic = slicer.vtkSlicerApplicationLogic()
    app_logic.SetMRMLScene(scene)
    color_logic = app_logic.GetColorLogic()
    color_logic.SetMRMLScene(scene)
    color_logic.AddDefaultColorNodes()
    app_logic.SetSliceLogics(vtk.vtkCollection())
    app_logic.SetViewLogics(vtk.vtkCollection())

    logics: dict[str, Any] = {}
    for name, cls in (("Volumes", slicer.vtkSlicerVolumesLogic),
                      ("Segmentations", slicer.vtkSlicerSegmentationsModuleLogic),
                      ("Markups", slicer.vtkSlicerMarkupsLogic)):  # fmt: skip
        logic = cls()
        logic.SetMRMLApplicationLogic(app_logic)
        logic.SetMRMLScene(scene)
        app_logic.SetModuleLogic(name, logic)
        logics[name] = logic
    slicer.vtkMRMLSliceNode.AddDefaultSliceOrientationPresets(scene, True)
    if set_global:
        slicer.mrmlScene = scene
        slicer.app_logic = app_logic
    logger.debug("standalone MRML scene ready with logics %s", ", ".join(logics))
    return SceneContext(scene=scene, app_logic=app_logic, logics=logics)
