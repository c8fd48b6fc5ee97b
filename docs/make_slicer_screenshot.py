"""Render docs/slicer_slice_view.png: a result of ``breast-ai run`` in a Slicer slice view.

Uses the MRML adapter and Slicer's own displayable managers offscreen (``slicer-core`` wheel and
Mesa EGL; see README, "3D Slicer"): the early subtraction as background, the Grad-CAM heat map
as foreground, the segmentation (breast outline, lesions) and each lesion's 3-D maximum
diameter line with its "mm · T" label, in the plane nearest a standard orientation that holds
the largest lesion's whole diameter.

    python docs/make_slicer_screenshot.py [RUN_DIR] [--out docs/slicer_slice_view.png]

Without RUN_DIR the clinical-size phantom case of the README (seed 27) is analysed first on the
CPU (a few minutes) into a temporary folder.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "BreastAIAssistant"))

from BreastAIAssistantMRML.lesions import diameter_slice_to_ras, lesion_endpoints_ras
from BreastAIAssistantMRML.rendering import SliceViewRenderer
from BreastAIAssistantMRML.results import ResultData, show_results
from BreastAIAssistantMRML.scene import standalone_scene
from BreastAIAssistantMRML.segmentation import manifest_terminologies

logger = logging.getLogger("make_slicer_screenshot")


def analyse_phantom(folder: Path) -> Path:
    """Run the main job on the README's phantom case (seed 27, clinical size, 6 phases)."""
    from BreastAIAssistantLib.bundles import available_bundles
    from BreastAIAssistantLib.phantom import generate_case
    from BreastAIAssistantLib.pipeline import CLASSIFIER_MODELS, AnalysisSettings, run_analysis

    case = generate_case(27, size="clinical", n_phases=6)
    classifiers = tuple(c for c in CLASSIFIER_MODELS if c in available_bundles())
    run_analysis(case.study, folder, AnalysisSettings(device="cpu", classifiers=classifiers))
    return folder


def render(run_dir: Path, out: Path, size: tuple[int, int] = (720, 540)) -> Path:
    """Show the run's result in a slice view through the largest lesion's diameter; save it."""
    context = standalone_scene()
    data = ResultData.from_folder(run_dir)
    nodes = show_results(context.scene, data, terminologies=manifest_terminologies())
    if not nodes.lesions:
        raise SystemExit(f"{run_dir}: no lesion to show")
    lesion = max(nodes.lesions, key=lambda les: les["max_diameter_mm"] or 0.0)
    endpoints = lesion_endpoints_ras(lesion)
    view = SliceViewRenderer(context.scene, context.app_logic, size=size)
    view.set_layers(nodes.background, nodes.heatmap, opacity=0.45)
    view.show_plane(diameter_slice_to_ras(endpoints, "auto"))
    view.zoom(2.2, endpoints.mean(axis=0))
    path = view.save_png(out)
    view.close()
    logger.info("lesion %d (%.1f mm, %s) rendered to %s", lesion["id"],
                lesion["max_diameter_mm"], lesion["t_category"], path)  # fmt: skip
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", nargs="?", type=Path, help="output folder of breast-ai run")
    parser.add_argument("--out", type=Path,
                        default=Path(__file__).resolve().parent / "slicer_slice_view.png")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.run_dir is None:
        with tempfile.TemporaryDirectory() as tmp:
            render(analyse_phantom(Path(tmp)), args.out)
    else:
        render(args.run_dir, args.out)


if __name__ == "__main__":
    main()
