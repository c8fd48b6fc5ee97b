"""Offscreen slice-view rendering (EGL) with Slicer's displayable managers, checked from pixels.

The axial slice through a lesion's maximum diameter is rendered with the subtraction as
background, then with each overlay added in turn (segmentation outline, Grad-CAM foreground,
diameter line with its label); each overlay must change pixels at the lesion and nowhere far
from it, in its own colours. PNGs go to the test's output folder.
"""

# ruff: noqa: E402  (the MRML imports must follow pytest.importorskip("slicer"))

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

slicer = pytest.importorskip("slicer")
if not hasattr(slicer, "vtkMRMLScene"):
    pytest.skip("the slicer-core wheel is not installed", allow_module_level=True)
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "BreastAIAssistant"))
os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")


def _offscreen_opengl_works() -> bool:
    """Whether an offscreen render window renders here (checked in a child process, because a
    missing EGL/OpenGL library can abort the interpreter instead of raising)."""
    code = ("import vtk; w = vtk.vtkRenderWindow(); w.SetOffScreenRendering(True); "
            "w.AddRenderer(vtk.vtkRenderer()); w.Render(); print(w.GetClassName())")
    try:
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              timeout=120, check=False)  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0 and "RenderWindow" in done.stdout


if not _offscreen_opengl_works():
    pytest.skip("offscreen OpenGL (Mesa EGL: libegl1 libegl-mesa0 libgl1-mesa-dri) is not "
                "available", allow_module_level=True)

import SimpleITK as sitk

from BreastAIAssistantLib.dce import compute_maps
from BreastAIAssistantLib.dce.lesion_kinetics import lesion_kinetics
from BreastAIAssistantLib.export import lesion_color
from BreastAIAssistantLib.measure import measure_lesions
from BreastAIAssistantLib.phantom import generate_case
from BreastAIAssistantMRML.lesions import diameter_slice_to_ras, lesion_endpoints_ras
from BreastAIAssistantMRML.rendering import SliceViewRenderer
from BreastAIAssistantMRML.results import ResultData, show_results
from BreastAIAssistantMRML.scene import standalone_scene

SIZE = (400, 400)


def _gradcam(labels: sitk.Image, lesion_id: int) -> sitk.Image:
    """A smooth map peaking on the lesion (what a classifier's Grad-CAM looks like)."""
    mask = sitk.Cast(labels == lesion_id, sitk.sitkFloat32)
    blurred = sitk.SmoothingRecursiveGaussian(mask, 4.0)
    array = sitk.GetArrayFromImage(blurred)
    out = sitk.GetImageFromArray(array / max(float(array.max()), 1e-6))
    out.CopyInformation(labels)
    return out


@pytest.fixture(scope="module")
def scene_and_nodes():
    case = generate_case(17, size="small", size_xyz=(160, 160, 48), n_phases=4,
                         lesions=("malignant",), oblique=False, noise=False)  # fmt: skip
    maps = compute_maps(case.study)
    labels = case.tumour_labels
    measured = measure_lesions(labels, case.breast_mask, mode="labels").to_dict()
    kinetics = lesion_kinetics(case.study, labels, maps=maps)
    lesions = [{**les, "kinetics": kinetics[les["id"]].to_dict()} for les in measured["lesions"]]
    early = f"sub_{maps.phases.early}"
    data = ResultData(report={"lesions": lesions, "t_stage": measured["t_stage"]},
                      background=maps.images[early], background_name=early,
                      breast_mask=case.breast_mask, lesion_labels=labels,
                      heatmaps={"mrsm-demo": [_gradcam(labels, 1)]})  # fmt: skip
    context = standalone_scene()
    nodes = show_results(context.scene, data)
    yield context, nodes
    context.close()


def _lesion_view(context, nodes) -> tuple[SliceViewRenderer, np.ndarray]:
    """The (near-axial) plane that holds lesion 1's whole 3-D diameter, zoomed on it."""
    view = SliceViewRenderer(context.scene, context.app_logic, size=SIZE)
    endpoints = lesion_endpoints_ras(nodes.lesion(1))
    view.set_layers(nodes.background, None)
    view.show_plane(diameter_slice_to_ras(endpoints))
    view.zoom(2.5, endpoints.mean(axis=0))
    return view, endpoints


def _visible(nodes, segmentation=False, breast=False, line=False, label=False):
    display = nodes.segmentation.node.GetDisplayNode()
    display.SetVisibility(segmentation)
    display.SetSegmentVisibility(nodes.segmentation.breast_segment_id, breast)
    for node in nodes.lines.values():
        node.GetDisplayNode().SetVisibility(line)
        node.GetDisplayNode().SetPropertiesLabelVisibility(label)


def _changed(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs(a.astype(int) - b.astype(int)).sum(axis=2) > 30


def test_overlays_appear_at_the_lesion(scene_and_nodes, tmp_path):
    context, nodes = scene_and_nodes
    view, endpoints = _lesion_view(context, nodes)
    row, col = view.ras_to_pixel(endpoints.mean(axis=0))
    assert 0 <= row < SIZE[1] and 0 <= col < SIZE[0]
    # the diameter lies in the view's plane: its in-plane length is the 3-D length
    (r0, c0), (r1, c1) = (view.ras_to_pixel(p) for p in endpoints)
    pixel_mm = view.slice_node.GetFieldOfView()[0] / SIZE[0]
    assert np.hypot(r1 - r0, c1 - c0) * pixel_mm == pytest.approx(
        nodes.lesion(1)["max_diameter_mm"], abs=2 * pixel_mm)
    near = np.zeros(SIZE[::-1], dtype=bool)
    near[max(0, row - 80):row + 80, max(0, col - 80):col + 80] = True

    _visible(nodes)
    plain = view.render()
    assert plain.std() > 5, "the subtraction background is not drawn"
    gray = np.abs(plain.astype(int) - plain.mean(axis=2, keepdims=True)).max(axis=2) < 3
    assert gray.mean() > 0.99, "the background should be grey only"

    _visible(nodes, segmentation=True)
    with_segmentation = view.render()
    seg_changed = _changed(with_segmentation, plain)
    assert seg_changed[near].sum() > 20 and not seg_changed[~near].any()
    red = np.array([round(255 * c) for c in lesion_color(1)])
    reddish = np.abs(with_segmentation.astype(int) - red).sum(axis=2) < 90
    assert (reddish & near).sum() > 10, "the lesion's outline is not in its colour"

    view.set_layers(nodes.background, nodes.heatmap, opacity=0.6, fit=False)
    with_heat = view.render()
    heat_changed = _changed(with_heat, with_segmentation)
    assert heat_changed[near].sum() > 100 and heat_changed[near].mean() > heat_changed[~near].mean()
    red_channel, blue_channel = with_heat[..., 0].astype(int), with_heat[..., 2].astype(int)
    warm = (red_channel - blue_channel > 60) & heat_changed
    assert warm[near].sum() > 50, "the heat map is not drawn in heat colours"

    _visible(nodes, segmentation=True, line=True)
    with_line = view.render()
    assert _changed(with_line, with_heat)[near].sum() > 10
    _visible(nodes, segmentation=True, line=True, label=True)
    with_label = view.render()
    label_changed = _changed(with_label, with_line)
    assert label_changed.sum() > 30, "the line's length label is not drawn"

    _visible(nodes, segmentation=True, breast=True, line=True, label=True)
    with_breast = view.render()
    assert _changed(with_breast, with_label)[~near].sum() > 50, "no breast outline"
    path = view.save_png(tmp_path / "lesion_slice.png")
    assert path.stat().st_size > 10_000
    view.close()
