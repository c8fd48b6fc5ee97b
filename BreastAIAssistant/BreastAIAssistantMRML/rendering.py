"""Offscreen slice-view rendering with Slicer's own displayable managers (no Qt, no GUI).

A slice view in Slicer is a ``vtkMRMLSliceNode`` driven by a ``vtkMRMLSliceLogic`` (which
reslices and blends the background and foreground volumes into one RGBA image) plus a
``vtkMRMLDisplayableManagerGroup`` whose managers draw segmentations and markups on top. Slicer's
Qt widget ``qMRMLSliceView`` puts these together; :class:`SliceViewRenderer` does the same with a
plain offscreen ``vtkRenderWindow``: the blended slice image as a background 2-D actor, the
segmentation and markups displayable managers, and the same slice-node geometry. The result is
what Slicer's Red view shows, used for tests (pixel checks) and documentation screenshots.

Offscreen OpenGL goes through EGL (Mesa's ``libEGL`` works without a display or GPU): the
renderer sets ``VTK_DEFAULT_OPENGL_WINDOW=vtkEGLRenderWindow`` unless already set, before the
first render window is created.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import slicer
import vtk
from vtk.util import numpy_support

from BreastAIAssistantMRML.geometry import from_vtk_matrix, to_vtk_matrix

logger = logging.getLogger(__name__)

#: Displayable managers of a slice view that this renderer uses (Slicer registers more).
SLICE_MANAGERS = ("vtkMRMLSegmentationsDisplayableManager2D", "vtkMRMLMarkupsDisplayableManager")


class SliceViewRenderer:
    """One offscreen slice view of a scene.

    Args:
        scene: The ``vtkMRMLScene``.
        app_logic: The scene's application logic (:class:`~.scene.SceneContext.app_logic`).
        size: Window ``(width, height)`` in pixels.
        orientation: ``Axial``, ``Sagittal`` or ``Coronal``.
        name: Slice node layout name (``Red``, ``Yellow``, ``Green``).
    """

    def __init__(self, scene: slicer.vtkMRMLScene, app_logic: slicer.vtkMRMLApplicationLogic,
                 size: tuple[int, int] = (512, 512),
                 orientation: str = "Axial", name: str = "Red") -> None:  # fmt: skip
        os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")
        self.scene = scene
        self.size = (int(size[0]), int(size[1]))
        self.window = vtk.vtkRenderWindow()
        self.window.SetOffScreenRendering(True)
        self.window.SetMultiSamples(0)
        self.window.SetSize(*self.size)
        self.renderer = vtk.vtkRenderer()
        self.renderer.GetActiveCamera().ParallelProjectionOn()
        self.window.AddRenderer(self.renderer)
        self.interactor = vtk.vtkRenderWindowInteractor()
        self.interactor.SetRenderWindow(self.window)
        self.interactor.Initialize()

        factory = slicer.vtkMRMLSliceViewDisplayableManagerFactory.GetInstance()
        factory.SetMRMLApplicationLogic(app_logic)
        for manager in SLICE_MANAGERS:
            if not factory.IsDisplayableManagerRegistered(manager):
                factory.RegisterDisplayableManager(manager)
        self.managers = slicer.vtkMRMLDisplayableManagerGroup()
        self.managers.Initialize(factory, self.renderer)

        self.logic = slicer.vtkMRMLSliceLogic()
        self.logic.SetMRMLApplicationLogic(app_logic)
        app_logic.GetSliceLogics().AddItem(self.logic)
        self.logic.SetMRMLScene(scene)
        self.slice_node = self.logic.AddSliceNode(name)
        self.slice_node.SetOrientation(orientation)
        self._managers_connected = False

        self.image_mapper = vtk.vtkImageMapper()
        self.image_mapper.SetColorWindow(255.0)
        self.image_mapper.SetColorLevel(127.5)
        self.image_actor = vtk.vtkActor2D()
        self.image_actor.SetMapper(self.image_mapper)
        self.image_actor.GetProperty().SetDisplayLocationToBackground()
        self.renderer.AddViewProp(self.image_actor)
        self.logic.ResizeSliceNode(*self.size)

    @property
    def composite_node(self) -> slicer.vtkMRMLSliceCompositeNode:
        """The view's ``vtkMRMLSliceCompositeNode`` (background/foreground layers)."""
        return self.logic.GetSliceCompositeNode()

    def set_layers(self, background: slicer.vtkMRMLVolumeNode | None = None,
                   foreground: slicer.vtkMRMLVolumeNode | None = None, opacity: float = 0.5,
                   fit: bool = True) -> None:  # fmt: skip
        """Show volumes as background and foreground (with the foreground's opacity).

        Args:
            background: Background volume node (or ``None``).
            foreground: Foreground volume node (or ``None``).
            opacity: Foreground opacity.
            fit: Fit the view to the background (resets the slice plane and zoom).
        """
        composite = self.composite_node
        composite.SetBackgroundVolumeID(background.GetID() if background is not None else None)
        composite.SetForegroundVolumeID(foreground.GetID() if foreground is not None else None)
        composite.SetForegroundOpacity(float(opacity))
        if fit:
            self.logic.FitSliceToBackground()
        if not self._managers_connected:
            # connected after the background is shown: segmentations that already exist would
            # otherwise get a 2-D fill pipeline that renders opaque over the slice image
            self.managers.SetMRMLDisplayableNode(self.slice_node)
            self._managers_connected = True

    def show_slice_through(self, point_ras: Sequence[float]) -> None:
        """Move the slice plane through a RAS point (snapped to the background's voxel grid)."""
        self.slice_node.JumpSliceByOffsetting(*(float(v) for v in point_ras))
        self.logic.SnapSliceOffsetToIJK()

    def show_plane(self, slice_to_ras: np.ndarray) -> None:
        """Reformat the view to a plane given by its ``SliceToRAS`` matrix (e.g.
        :func:`~.lesions.diameter_slice_to_ras`, the plane that holds a lesion's diameter)."""
        self.slice_node.GetSliceToRAS().DeepCopy(to_vtk_matrix(slice_to_ras))
        self.slice_node.UpdateMatrices()

    def zoom(self, factor: float, centre_ras: Sequence[float] | None = None) -> None:
        """Shrink the field of view by ``factor`` (> 1 zooms in), optionally centred on a point."""
        fov = self.slice_node.GetFieldOfView()
        self.slice_node.SetFieldOfView(fov[0] / factor, fov[1] / factor, fov[2])
        if centre_ras is not None:
            self.slice_node.JumpSliceByCentering(*(float(v) for v in centre_ras))

    def render(self) -> np.ndarray:
        """Render the view; an RGB ``(height, width, 3)`` uint8 array, top row first."""
        self.image_mapper.SetInputConnection(self.logic.GetImageDataConnection())
        self.window.Render()
        grabber = vtk.vtkWindowToImageFilter()
        grabber.SetInput(self.window)
        grabber.SetInputBufferTypeToRGB()
        grabber.ReadFrontBufferOff()
        grabber.Update()
        image = grabber.GetOutput()
        width, height, _ = image.GetDimensions()
        pixels = numpy_support.vtk_to_numpy(image.GetPointData().GetScalars())
        return np.flipud(pixels.reshape(height, width, -1)[:, :, :3]).copy()

    def save_png(self, path: str | os.PathLike[str]) -> Path:
        """Render and write the view as a PNG file."""
        pixels = self.render()
        height, width, _ = pixels.shape
        image = vtk.vtkImageData()
        image.SetDimensions(width, height, 1)
        scalars = numpy_support.numpy_to_vtk(np.flipud(pixels).reshape(-1, 3), deep=True,
                                             array_type=vtk.VTK_UNSIGNED_CHAR)  # fmt: skip
        image.GetPointData().SetScalars(scalars)
        writer = vtk.vtkPNGWriter()
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        writer.SetFileName(str(out))
        writer.SetInputData(image)
        writer.Write()
        return out

    def ras_to_pixel(self, point_ras: Sequence[float]) -> tuple[int, int]:
        """``(row, column)`` of a RAS point in :meth:`render`'s array (its in-plane projection)."""
        xy_to_ras = from_vtk_matrix(self.slice_node.GetXYToRAS())
        xy = np.linalg.inv(xy_to_ras) @ np.array([*point_ras, 1.0])
        return round(float(self.size[1] - 1 - xy[1])), round(float(xy[0]))

    def close(self) -> None:
        """Release the window and detach the view from the scene."""
        self.managers.SetMRMLDisplayableNode(None)
        self.logic.SetMRMLScene(None)
        self.window.Finalize()
