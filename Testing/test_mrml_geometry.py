"""MRML adapter geometry and study input, on a real vtkMRMLScene (slicer-core wheel)."""

# ruff: noqa: E402  (the MRML imports must follow pytest.importorskip("slicer"))

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

slicer = pytest.importorskip("slicer")
if not hasattr(slicer, "vtkMRMLScene"):
    pytest.skip("the slicer-core wheel is not installed", allow_module_level=True)
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "BreastAIAssistant"))

from BreastAIAssistantLib.errors import StudyError
from BreastAIAssistantLib.io import load_study
from BreastAIAssistantMRML import geometry
from BreastAIAssistantMRML.scene import standalone_scene
from BreastAIAssistantMRML.study import (
    TIME_ATTRIBUTE,
    add_volume_sequence,
    sequence_times_s,
    study_from_sequence,
    study_from_volume_nodes,
    times_from_index,
    write_study_folder,
)
from BreastAIAssistantMRML.volumes import add_volume_node, combine_heatmaps, volume_3d

from conftest import OBLIQUE, make_image


@pytest.fixture
def scene():
    context = standalone_scene()
    yield context.scene
    context.close()


def _oblique_image(seed: int = 0, shape=(6, 7, 8)) -> sitk.Image:
    rng = np.random.default_rng(seed)
    return make_image(rng.uniform(0, 100, shape).astype(np.float32))


def test_lps_ras_points_flip_x_and_y():
    lps = np.array([[10.0, -20.0, 30.0], [-1.5, 2.5, -3.5]])
    ras = geometry.lps_to_ras(lps)
    np.testing.assert_allclose(ras, [[-10.0, 20.0, 30.0], [1.5, -2.5, -3.5]])
    np.testing.assert_allclose(geometry.ras_to_lps(ras), lps)
    np.testing.assert_allclose(geometry.lps_to_ras([1.0, 2.0, 3.0]), [-1.0, -2.0, 3.0])


def test_ijk_to_ras_of_an_oblique_off_origin_image_matches_itk():
    image = _oblique_image()
    matrix = geometry.ijk_to_ras_from_image(image)
    for index in [(0, 0, 0), (7, 0, 0), (3, 4, 5), (7, 6, 5)]:
        lps = np.asarray(image.TransformIndexToPhysicalPoint(index))
        ras = matrix @ np.array([*index, 1.0])
        np.testing.assert_allclose(ras[:3], geometry.lps_to_ras(lps), atol=1e-9)
    origin, spacing, direction = geometry.lps_geometry_from_ijk_to_ras(matrix)
    np.testing.assert_allclose(origin, image.GetOrigin())
    np.testing.assert_allclose(spacing, image.GetSpacing())
    np.testing.assert_allclose(direction, OBLIQUE, atol=1e-12)


def test_volume_node_round_trip_keeps_voxels_and_physical_positions(scene):
    image = _oblique_image()
    node = add_volume_node(scene, image, "oblique")
    # a voxel's physical position as Slicer computes it (IJKToRAS) equals ITK's, in RAS
    ijk_to_ras = geometry.from_vtk_matrix(_ijk_to_ras(node))
    index = (5, 2, 4)
    lps = np.asarray(image.TransformIndexToPhysicalPoint(index))
    np.testing.assert_allclose((ijk_to_ras @ [*index, 1.0])[:3], geometry.lps_to_ras(lps))
    back = geometry.image_from_volume_node(node)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(back), sitk.GetArrayFromImage(image))
    np.testing.assert_allclose(back.GetOrigin(), image.GetOrigin(), atol=1e-9)
    np.testing.assert_allclose(back.GetSpacing(), image.GetSpacing(), atol=1e-12)
    np.testing.assert_allclose(back.GetDirection(), image.GetDirection(), atol=1e-12)


def test_volume_node_survives_a_nrrd_file_written_by_slicer(scene, tmp_path):
    """Slicer's own storage node writes the node; SimpleITK reads the same LPS geometry."""
    image = _oblique_image(1)
    node = add_volume_node(scene, image, "stored")
    storage = node.CreateDefaultStorageNode()
    storage.SetFileName(str(tmp_path / "stored.nrrd"))
    assert storage.WriteData(node)
    read = sitk.ReadImage(str(tmp_path / "stored.nrrd"))
    np.testing.assert_allclose(read.GetOrigin(), image.GetOrigin(), atol=1e-4)
    np.testing.assert_allclose(read.GetDirection(), image.GetDirection(), atol=1e-6)
    np.testing.assert_allclose(sitk.GetArrayFromImage(read), sitk.GetArrayFromImage(image))


def _ijk_to_ras(node):
    import vtk

    matrix = vtk.vtkMatrix4x4()
    node.GetIJKToRASMatrix(matrix)
    return matrix


def _phases(n: int = 3) -> list[sitk.Image]:
    base = np.full((5, 6, 7), 100.0, dtype=np.float32)
    phases = []
    for k in range(n):
        array = base.copy()
        array[2, 3, 4] += 80.0 * k
        phases.append(make_image(array))
    return phases


@pytest.mark.parametrize(("name", "unit", "values", "expected"), [
    ("time", "s", ["0", "90", "180"], [0.0, 90.0, 180.0]),
    ("TriggerTime", "ms", ["0", "60000", "120000"], [0.0, 60.0, 120.0]),
    ("time", "", ["0", "1.5", "3"], [0.0, 1.5, 3.0]),
    ("AcquisitionTime", "", ["101500", "101630", "101800"], [36900.0, 36990.0, 37080.0]),
    ("frame", "", ["0", "1", "2"], None),
    ("time", "s", ["pre", "early", "late"], None),
])  # fmt: skip
def test_times_from_sequence_index(name, unit, values, expected):
    assert times_from_index(name, unit, values) == expected


def test_study_from_a_volume_sequence_uses_index_times(scene):
    phases = _phases(3)
    sequence = add_volume_sequence(scene, phases, [0.0, 75.0, 150.0], name="DCE")
    assert sequence.GetNumberOfDataNodes() == 3 and sequence.GetIndexUnit() == "s"
    study = study_from_sequence(sequence)
    assert study.times_s == (0.0, 75.0, 150.0)
    assert study.n_phases == 3
    for k in range(3):
        np.testing.assert_array_equal(study.phase_zyx(k), sitk.GetArrayFromImage(phases[k]))
    np.testing.assert_allclose(study.reference.GetOrigin(), phases[0].GetOrigin(), atol=1e-9)
    np.testing.assert_allclose(study.reference.GetDirection(), OBLIQUE, atol=1e-12)


def test_sequence_pre_contrast_choice_drops_earlier_items_and_shifts_times(scene):
    sequence = add_volume_sequence(scene, _phases(4), [10.0, 20.0, 100.0, 190.0])
    study = study_from_sequence(sequence, pre_contrast_index=1)
    assert study.n_phases == 3 and study.times_s == (0.0, 80.0, 170.0)
    with pytest.raises(StudyError, match="pre-contrast phase 4 does not exist"):
        study_from_sequence(sequence, pre_contrast_index=4)


def test_sequence_without_times_uses_multivolume_labels_or_node_attributes(scene):
    sequence = add_volume_sequence(scene, _phases(3), None)
    assert sequence.GetIndexName() == "phase" and sequence_times_s(sequence) is None
    assert study_from_sequence(sequence).times_s is None
    sequence.SetAttribute("MultiVolume.FrameLabels", "0,45000,90000")
    sequence.SetAttribute("MultiVolume.FrameIdentifyingDICOMTagUnits", "ms")
    assert sequence_times_s(sequence) == [0.0, 45.0, 90.0]
    assert study_from_sequence(sequence).times_s == (0.0, 45.0, 90.0)


def test_study_from_ordered_volume_nodes_resamples_other_grids(scene):
    phases = _phases(3)
    nodes = [add_volume_node(scene, image, f"phase {k}") for k, image in enumerate(phases)]
    # the last phase on a coarser, shifted grid: resampled onto the pre-contrast grid
    coarse = sitk.Resample(phases[2], [4, 3, 3], sitk.Transform(), sitk.sitkLinear,
                           phases[2].GetOrigin(), (1.4, 1.4, 3.0), phases[2].GetDirection(),
                           0.0, sitk.sitkFloat32)  # fmt: skip
    nodes[2] = add_volume_node(scene, coarse, "coarse")
    for node, seconds in zip(nodes, (0, 60, 120), strict=True):
        node.SetAttribute(TIME_ATTRIBUTE, str(seconds))
    study = study_from_volume_nodes(nodes)
    assert study.times_s == (0.0, 60.0, 120.0)
    assert study.phases[2].GetSize() == phases[0].GetSize()
    assert study.metadata["phase_names"] == ["phase 0", "phase 1", "coarse"]
    with pytest.raises(StudyError, match="at least 2 phases"):
        study_from_volume_nodes(nodes[:1])


def test_numeric_sequences_keep_items_in_time_order(scene):
    """Slicer sorts a numeric-index sequence by index value, whatever the insertion order."""
    phases = _phases(3)
    sequence = add_volume_sequence(scene, phases, [0.0, 90.0, 60.0])
    study = study_from_sequence(sequence)
    assert study.times_s == (0.0, 60.0, 90.0)
    np.testing.assert_array_equal(study.phase_zyx(2), sitk.GetArrayFromImage(phases[1]))


def test_non_increasing_times_give_a_study_in_phase_order(scene, caplog):
    nodes = [add_volume_node(scene, image, f"p{k}") for k, image in enumerate(_phases(3))]
    for node, seconds in zip(nodes, (0, 90, 60), strict=True):
        node.SetAttribute(TIME_ATTRIBUTE, str(seconds))
    assert study_from_volume_nodes(nodes).times_s is None
    assert "do not increase" in caplog.text


def test_study_folder_is_read_back_by_the_cli_reader(scene, tmp_path):
    sequence = add_volume_sequence(scene, _phases(3), [0.0, 90.0, 180.0])
    study = study_from_sequence(sequence)
    folder = write_study_folder(study, tmp_path / "study")
    assert json.loads((folder / "study.json").read_text())["times_s"] == [0.0, 90.0, 180.0]
    loaded = load_study(folder, "folder")
    assert loaded.times_s == study.times_s
    np.testing.assert_allclose(loaded.reference.GetDirection(), OBLIQUE, atol=1e-6)
    np.testing.assert_array_equal(loaded.phase_zyx(2), study.phase_zyx(2))


def test_heatmaps_combine_on_the_reference_grid():
    reference = make_image(np.zeros((6, 8, 8), np.float32))
    sub = sitk.RegionOfInterest(make_image(np.ones((6, 8, 8), np.float32)), [3, 3, 2], [2, 2, 1])
    four_d = sitk.JoinSeries([sub * 0.2, sub * 0.7])
    assert volume_3d(four_d).GetDimension() == 3
    assert sitk.GetArrayFromImage(volume_3d(four_d, "max")).max() == pytest.approx(0.7)
    combined = combine_heatmaps(reference, [four_d, sub * 0.3])  # 4-D maps are averaged
    array = sitk.GetArrayFromImage(combined)
    assert combined.GetSize() == reference.GetSize()
    assert array[2, 3, 3] == pytest.approx(0.45) and array[2, 4, 4] == pytest.approx(0.45)
    assert array[0, 0, 0] == 0.0 and array[3, 3, 3] == 0.0
    with pytest.raises(ValueError, match="reduce"):
        volume_3d(four_d, reduce="median")
