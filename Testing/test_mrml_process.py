"""The analysis process of the Slicer module: command line, JSON progress, results back as nodes.

The pure parts (arguments, progress lines) need neither Slicer nor Qt; the end-to-end test runs
``breast-ai run --progress-json`` in a separate process exactly as the module's ``QProcess``
does, on a study written from a volume sequence, and loads its output folder into a real scene.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "BreastAIAssistant"))

from BreastAIAssistantLib.cli.common import json_progress
from BreastAIAssistantLib.pipeline import STAGES
from BreastAIAssistantMRML.process import (
    ENTRY_CODE,
    analysis_arguments,
    available_classifiers,
    parse_progress_line,
    process_environment,
)


def test_json_progress_lines_parse_back():
    stream = io.StringIO()
    with json_progress(STAGES, stream=stream) as progress:
        progress("maps: subtraction", 0.05)
        progress("maps: subtraction", 0.05)  # repeated: skipped
        progress("tumour: windows", 0.5)
        progress("done", 1.0)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 3 and all(json.loads(line) for line in lines)
    updates = [parse_progress_line(line) for line in lines]
    assert [u.stage for u in updates] == ["maps", "tumour", "done"]
    assert updates[0].stage_fraction == pytest.approx(0.5)
    assert updates[1].stage_fraction == pytest.approx(0.5) and updates[1].fraction == 0.5
    assert updates[1].label == "Tumour segmentation" and updates[1].message == "tumour: windows"
    assert updates[2].stage_fraction is None and updates[2].label == "Done"


@pytest.mark.parametrize("line", [
    "", "INFO BreastAIAssistantLib.pipeline: something", "{not json", '{"stage": "maps"}',
    '{"fraction": 0.3}', b"WARNING x: y",
])  # fmt: skip
def test_other_lines_are_not_progress(line):
    assert parse_progress_line(line) is None


def test_progress_values_are_clamped():
    update = parse_progress_line(b'{"stage": "breast", "fraction": 1.7, "stage_fraction": -2}\n')
    assert update.fraction == 1.0 and update.stage_fraction == 0.0 and update.message == "breast"


def test_analysis_arguments():
    args = analysis_arguments("/s", "/o", device="CUDA", classifiers=["mrsm-demo"],
                              gradcam=False, model_dirs=["/m"], exports=["dicom-seg"])  # fmt: skip
    assert args[:2] == ["-c", ENTRY_CODE]
    assert args[2:6] == ["run", "/s", "--out", "/o"]
    for pair in (["--device", "cuda"], ["--input-format", "folder"], ["--classifier", "mrsm-demo"],
                 ["--gradcam", "none"], ["--models", "/m"], ["--export", "dicom-seg"]):  # fmt: skip
        index = args.index(pair[0])
        assert args[index: index + 2] == pair
    assert "--progress-json" in args
    assert "--no-classify" in analysis_arguments("/s", "/o", classifiers=[])
    with_model = analysis_arguments("/s", "/o", radiomics_model="/r/best_model")
    assert with_model[-2:] == ["--radiomics-model", "/r/best_model"]
    assert "--radiomics-model" not in args
    assert "--classifier" not in analysis_arguments("/s", "/o")
    with pytest.raises(ValueError, match="device"):
        analysis_arguments("/s", "/o", device="TPU")


def test_available_classifiers_are_classifier_bundles():
    found = available_classifiers()
    assert "mrsm-demo" in found
    assert "tumour-st-demo" not in found and "breast-unet-demo" not in found


def test_process_environment_puts_the_module_folder_first():
    env = process_environment({"PYTHONPATH": os.pathsep.join(["/a", "/b"])})
    parts = env["PYTHONPATH"].split(os.pathsep)
    assert Path(parts[0], "BreastAIAssistantLib").is_dir() and parts[1:] == ["/a", "/b"]
    assert env["PYTHONUNBUFFERED"] == "1"


@pytest.mark.slow
def test_analysis_process_end_to_end(tmp_path):
    """Sequence node -> study folder -> ``breast-ai run`` process -> result nodes."""
    slicer = pytest.importorskip("slicer")
    if not hasattr(slicer, "vtkMRMLScene"):
        pytest.skip("the slicer-core wheel is not installed")
    from BreastAIAssistantLib.phantom import generate_case
    from BreastAIAssistantMRML.geometry import lps_to_ras
    from BreastAIAssistantMRML.results import ResultData, show_results
    from BreastAIAssistantMRML.scene import standalone_scene
    from BreastAIAssistantMRML.study import (
        add_volume_sequence,
        study_from_sequence,
        write_study_folder,
    )

    case = generate_case(3, size="small", n_phases=3, lesions=("malignant",))
    context = standalone_scene()
    sequence = add_volume_sequence(context.scene, case.study.phases, case.study.times_s)
    study = study_from_sequence(sequence)
    folder = write_study_folder(study, tmp_path / "study")
    out = tmp_path / "out"
    env = process_environment({**os.environ, "OMP_NUM_THREADS": "1"})
    done = subprocess.run(
        [sys.executable, *analysis_arguments(folder, out, device="CPU",
                                             classifiers=["mrsm-demo"])],
        env=env, capture_output=True, text=True, timeout=600, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    updates = [u for line in done.stderr.splitlines() if (u := parse_progress_line(line))]
    fractions = [u.fraction for u in updates]
    assert fractions == sorted(fractions) and updates[-1].stage == "done"
    assert {"maps", "breast", "tumour", "write"} <= {u.stage for u in updates}

    data = ResultData.from_folder(out)
    nodes = show_results(context.scene, data)
    report = json.loads((out / "report.json").read_text())
    segmentation = nodes.segmentation.node.GetSegmentation()
    assert segmentation.GetNumberOfSegments() == 1 + len(report["lesions"])
    for lesion in report["lesions"]:
        line = nodes.lines[lesion["id"]]
        points = np.array([line.GetNthControlPointPosition(i) for i in range(2)])
        np.testing.assert_allclose(points, lps_to_ras(lesion["endpoints_lps_mm"]), atol=1e-9)
    if report["lesions"]:
        assert nodes.heatmap is not None and "mrsm-demo" in nodes.heatmap.GetName()
    context.close()
