"""Result nodes on a real vtkMRMLScene: segmentation, lines, table, plot, re-measure, exports.

The result is built from an oblique small phantom case's true masks with the core's own
measurement and kinetics (what ``run_analysis`` puts in ``report.json``), so that these tests
check the adapter, not the networks, and run in seconds.
"""

# ruff: noqa: E402  (the MRML imports must follow pytest.importorskip("slicer"))

from __future__ import annotations

import csv
import dataclasses
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage

slicer = pytest.importorskip("slicer")
if not hasattr(slicer, "vtkMRMLScene"):
    pytest.skip("the slicer-core wheel is not installed", allow_module_level=True)
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "BreastAIAssistant"))

import vtk
from vtk.util import numpy_support

from BreastAIAssistantLib.dce import compute_maps
from BreastAIAssistantLib.dce.lesion_kinetics import lesion_kinetics
from BreastAIAssistantLib.export import (
    BREAST,
    BREAST_COLOR,
    BREAST_MASS,
    lesion_color,
    read_slicer_segmentation,
)
from BreastAIAssistantLib.measure import measure_lesions
from BreastAIAssistantLib.phantom import generate_case
from BreastAIAssistantLib.radiomics.apply import LESION_FEATURES_CSV, write_lesion_features
from BreastAIAssistantMRML import export
from BreastAIAssistantMRML.geometry import lps_to_ras
from BreastAIAssistantMRML.lesions import TABLE_COLUMNS, table_rows
from BreastAIAssistantMRML.remeasure import FLAG_STALE_PREDICTIONS
from BreastAIAssistantMRML.results import ResultData, show_results
from BreastAIAssistantMRML.scene import standalone_scene
from BreastAIAssistantMRML.segmentation import (
    lesion_segments,
    manifest_terminologies,
    segment_mask_zyx,
)

SEED = 11


def _fake_gradcam(labels: sitk.Image, lesion_id: int) -> sitk.Image:
    """A 4-D map on the lesion's box (as the core's MRSM Grad-CAM files are)."""
    array = sitk.GetArrayViewFromImage(labels) == lesion_id
    zs, ys, xs = (np.flatnonzero(array.any(axis=a)) for a in ((1, 2), (0, 2), (0, 1)))
    lo = [int(xs[0]), int(ys[0]), int(zs[0])]
    size = [int(xs[-1]) - lo[0] + 1, int(ys[-1]) - lo[1] + 1, int(zs[-1]) - lo[2] + 1]
    box = sitk.RegionOfInterest(sitk.Cast(labels == lesion_id, sitk.sitkFloat32), size, lo)
    return sitk.JoinSeries([box * 0.5, box * 1.0])


@pytest.fixture(scope="module")
def case():
    return generate_case(SEED, size="small", n_phases=4, lesions=("malignant", "benign"),
                         oblique=True, noise=False)  # fmt: skip


@pytest.fixture(scope="module")
def data(case):
    study, labels = case.study, case.tumour_labels
    maps = compute_maps(study)
    measured = measure_lesions(labels, case.breast_mask, mode="labels").to_dict()
    kinetics = lesion_kinetics(study, labels, maps=maps)
    lesions = []
    for lesion in measured["lesions"]:
        kin = kinetics[lesion["id"]].to_dict()
        lesions.append({**lesion, "kinetics": kin, "curve_type": kin["curve_type_name"],
                        "malignancy_probability": 0.8 if lesion["id"] == 1 else 0.2,
                        "er": 0.6, "subtype": "luminal_a",
                        "radiomics_probability": 0.7 if lesion["id"] == 1 else None})  # fmt: skip
    report = {"lesions": lesions, "t_stage": measured["t_stage"], "dce": maps.provenance()}
    early = f"sub_{maps.phases.early}"
    return ResultData(report=report, background=maps.images[early], background_name=early,
                      breast_mask=case.breast_mask, lesion_labels=labels,
                      maps={"pe": maps.images["pe"]},
                      heatmaps={"mrsm-demo": [_fake_gradcam(labels, k["id"]) for k in lesions]},
                      features=FEATURES)


#: Radiomics features of lesion 1 only (lesion 2's prediction failed in this made-up run).
FEATURES = {1: {"dce:sub1_lesion_firstorder_Mean": 123.5,
                "dce:pe_shell_glcm_Contrast": float("nan")}}


@pytest.fixture
def shown(data):
    context = standalone_scene()
    nodes = show_results(context.scene, data, terminologies=manifest_terminologies())
    yield context, nodes
    context.close()


def test_the_case_is_oblique_and_off_origin(case):
    direction = np.asarray(case.study.reference.GetDirection()).reshape(3, 3)
    assert not np.allclose(np.abs(direction), np.eye(3), atol=1e-3)
    assert np.linalg.norm(case.study.reference.GetOrigin()) > 1.0
    assert case.truth["lesions"] and len(case.truth["lesions"]) == 2


def _tag(segment, name: str) -> str:
    value = vtk.reference("")
    assert segment.GetTag(name, value)
    return str(value)


def test_segments_have_names_colours_and_terminology(shown):
    _, nodes = shown
    segmentation = nodes.segmentation.node.GetSegmentation()
    names = [segmentation.GetNthSegment(i).GetName()
             for i in range(segmentation.GetNumberOfSegments())]  # fmt: skip
    assert names == ["Breast", "Lesion 1", "Lesion 2"]
    breast = segmentation.GetSegment(nodes.segmentation.breast_segment_id)
    np.testing.assert_allclose(breast.GetColor(), BREAST_COLOR)
    assert _tag(breast, "TerminologyEntry") == BREAST.to_slicer()
    for lesion_id, segment_id in nodes.segmentation.lesion_segment_ids.items():
        segment = segmentation.GetSegment(segment_id)
        np.testing.assert_allclose(segment.GetColor(), lesion_color(lesion_id))
        # the tumour bundle's manifest codes (Mass, Morphologically Altered Structure) with the
        # anatomic region Breast: the same entry as the core's .seg.nrrd and DICOM SEG
        assert _tag(segment, "TerminologyEntry") == BREAST_MASS.to_slicer()
    # breast and lesions overlap: two shared labelmap layers, as in the core's .seg.nrrd
    assert segmentation.GetNumberOfLayers() == 2


def test_segments_hold_the_lesions_at_their_physical_position(shown, case, data):
    _, nodes = shown
    truth = sitk.GetArrayFromImage(case.tumour_labels)
    for lesion in data.lesions:
        lesion_id = lesion["id"]
        segment_id = nodes.segmentation.lesion_segment_ids[lesion_id]
        np.testing.assert_array_equal(
            segment_mask_zyx(nodes.segmentation.node, segment_id, nodes.background),
            truth == lesion_id)
        # Slicer's own representation: voxel centres through its ImageToWorld matrix (RAS)
        segment = nodes.segmentation.node.GetSegmentation().GetSegment(segment_id)
        labelmap = segment.GetRepresentation("Binary labelmap")
        extent = labelmap.GetExtent()
        dims = [extent[1] - extent[0] + 1, extent[3] - extent[2] + 1, extent[5] - extent[4] + 1]
        values = numpy_support.vtk_to_numpy(labelmap.GetPointData().GetScalars())
        kji = np.argwhere(values.reshape(dims[::-1]) == segment.GetLabelValue())
        ijk = kji[:, ::-1] + np.array(extent[::2])
        matrix = vtk.vtkMatrix4x4()
        labelmap.GetImageToWorldMatrix(matrix)
        to_world = np.array([[matrix.GetElement(r, c) for c in range(4)] for r in range(4)])
        ras = (to_world @ np.c_[ijk, np.ones(len(ijk))].T).T[:, :3]
        np.testing.assert_allclose(ras.mean(axis=0), lps_to_ras(lesion["centroid_lps_mm"]),
                                   atol=1e-3)  # fmt: skip


def test_diameter_lines_sit_on_the_core_endpoints(shown, data):
    _, nodes = shown
    assert sorted(nodes.lines) == [1, 2]
    for lesion in data.lesions:
        line = nodes.lines[lesion["id"]]
        points = np.array([line.GetNthControlPointPosition(i) for i in range(2)])
        np.testing.assert_allclose(points, lps_to_ras(lesion["endpoints_lps_mm"]), atol=1e-9)
        # report endpoints are rounded to 0.1 µm
        assert line.GetLineLengthWorld() == pytest.approx(lesion["max_diameter_mm"], abs=1e-3)
        label = line.GetPropertiesLabelText().strip()
        assert label == f"{lesion['max_diameter_mm']:.1f} mm · {lesion['t_category']}"
        assert line.GetLocked()


def test_table_lists_every_lesion(shown, data):
    _, nodes = shown
    rows = table_rows(nodes.table)
    assert [int(r["Lesion"]) for r in rows] == [les["id"] for les in data.lesions]
    assert [c.name for c in TABLE_COLUMNS] == list(rows[0])
    for row, lesion in zip(rows, data.lesions, strict=True):
        assert row["Volume"] == pytest.approx(lesion["volume_ml"])
        assert row["Max diameter"] == pytest.approx(lesion["max_diameter_mm"])
        assert row["T"] == lesion["t_category"]
        assert row["Curve type"] == lesion["curve_type"]
        assert row["Malignancy"] == pytest.approx(lesion["malignancy_probability"])
        assert np.isnan(row["HER2"]) and row["Subtype"] == "luminal_a"
    assert rows[0]["Radiomics"] == pytest.approx(0.7) and np.isnan(rows[1]["Radiomics"])
    assert nodes.table.GetColumnUnitLabel("Max diameter") == "mm"
    assert nodes.table.GetColumnTitle("Volume") == "Volume (ml)"


def test_cautions_for_the_panel(data):
    assert data.cautions == []  # older reports have no "cautions" key
    caution = {"code": "coarse-voxels", "model": "m", "message": "too coarse"}
    cautioned = dataclasses.replace(data, report={**data.report, "cautions": [caution]})
    assert cautioned.cautions == ["too coarse"]


def test_radiomics_features_table(shown, tmp_path):
    _, nodes = shown
    rows = table_rows(nodes.features)
    assert [r["Feature"] for r in rows] == sorted(FEATURES[1])
    assert list(rows[0]) == ["Feature", "Lesion 1"]
    assert np.isnan(rows[0]["Lesion 1"])  # dce:pe_shell_glcm_Contrast
    assert rows[1]["Lesion 1"] == pytest.approx(123.5)
    # the file a run writes is what the module reads back
    path = write_lesion_features(FEATURES, tmp_path / LESION_FEATURES_CSV)
    back = ResultData._features(path)
    assert back[1]["dce:sub1_lesion_firstorder_Mean"] == 123.5
    assert np.isnan(back[1]["dce:pe_shell_glcm_Contrast"])
    assert ResultData._features(tmp_path / "absent.csv") == {}


def test_plot_has_one_curve_per_lesion(shown, data):
    _, nodes = shown
    chart = nodes.chart
    assert chart.GetNumberOfPlotSeriesNodes() == len(data.lesions)
    series = chart.GetNthPlotSeriesNode(0)
    table = series.GetTableNode().GetTable()
    assert series.GetXColumnName() == "Time (s)"
    times = [table.GetValue(r, 0).ToDouble() for r in range(table.GetNumberOfRows())]
    np.testing.assert_allclose(times, data.lesions[0]["kinetics"]["times_s"])
    curve = [table.GetValue(r, 1).ToDouble() for r in range(table.GetNumberOfRows())]
    np.testing.assert_allclose(curve, data.lesions[0]["kinetics"]["mean_pe_curve_pct"])


def test_heatmap_and_layers(shown):
    _, nodes = shown
    heat = nodes.heatmap
    assert heat is not None and heat.GetAttribute("BreastAI.Role") == "heatmap"
    display = heat.GetDisplayNode()
    assert display.GetColorNode().GetName() == "BreastAI Heat" and display.GetApplyThreshold()
    assert nodes.maps["pe"].GetImageData() is not None


def test_jump_to_lesion_centres_slice_views(shown, data):
    context, nodes = shown
    slice_node = context.scene.AddNewNodeByClass("vtkMRMLSliceNode")
    slice_node.SetLayoutName("Red")
    slice_node.SetOrientation("Axial")
    assert nodes.jump_to(2)
    centre = lps_to_ras(data.lesions[1]["centroid_lps_mm"])
    slice_to_ras = slice_node.GetSliceToRAS()
    np.testing.assert_allclose([slice_to_ras.GetElement(r, 3) for r in range(3)], centre,
                               atol=1e-6)  # fmt: skip
    assert nodes.neighbour(2, 1) == 1 and nodes.neighbour(1, -1) == 2
    assert nodes.neighbour(None, 1) == 1


def _set_segment(nodes, segment_id: str, mask_zyx: np.ndarray) -> None:
    """Replace a segment's voxels the way the Segment Editor does."""
    image = slicer.vtkOrientedImageData()
    z, y, x = mask_zyx.shape
    image.SetExtent(0, x - 1, 0, y - 1, 0, z - 1)
    image.AllocateScalars(vtk.VTK_UNSIGNED_CHAR, 1)
    numpy_support.vtk_to_numpy(image.GetPointData().GetScalars())[:] = \
        mask_zyx.astype(np.uint8).ravel()  # fmt: skip
    matrix = vtk.vtkMatrix4x4()
    nodes.background.GetIJKToRASMatrix(matrix)
    image.SetImageToWorldMatrix(matrix)
    mode = slicer.vtkSlicerSegmentationsModuleLogic.MODE_REPLACE
    assert slicer.vtkSlicerSegmentationsModuleLogic.SetBinaryLabelmapToSegment(
        image, nodes.segmentation.node, segment_id, mode)


def test_remeasure_after_editing_a_segment(shown, case, data):
    _, nodes = shown
    truth = sitk.GetArrayFromImage(case.tumour_labels)
    # the user grows lesion 1 by one voxel (e.g. the Segment Editor's Margin effect)
    edited = ndimage.binary_dilation(truth == 1) & (truth != 2)
    _set_segment(nodes, nodes.segmentation.lesion_segment_ids[1], edited)
    found = nodes.remeasure(study=case.study)

    expected_labels = np.where(edited, 1, np.where(truth == 2, 2, 0)).astype(np.uint16)
    expected_image = sitk.GetImageFromArray(expected_labels)
    expected_image.CopyInformation(case.tumour_labels)
    expected = measure_lesions(expected_image, case.breast_mask, mode="labels")
    lesion = nodes.lesion(1)
    assert lesion["max_diameter_mm"] == pytest.approx(expected.lesions[0]["max_diameter_mm"])
    assert lesion["max_diameter_mm"] > data.lesions[0]["max_diameter_mm"] + 1.0
    assert lesion["volume_ml"] > data.lesions[0]["volume_ml"]
    assert found.t_stage == expected.t_stage and lesion["t_category"] == \
        expected.lesions[0].t_category  # fmt: skip
    assert FLAG_STALE_PREDICTIONS in lesion["flags"]
    assert lesion["malignancy_probability"] == 0.8
    line = nodes.lines[1]
    points = np.array([line.GetNthControlPointPosition(i) for i in range(2)])
    np.testing.assert_allclose(points, lps_to_ras(lesion["endpoints_lps_mm"]), atol=1e-9)
    assert table_rows(nodes.table)[0]["Max diameter"] == pytest.approx(lesion["max_diameter_mm"])
    assert nodes.chart.GetNumberOfPlotSeriesNodes() == 2


def test_remeasure_follows_removed_and_added_segments(shown, case):
    context, nodes = shown
    segmentation = nodes.segmentation.node.GetSegmentation()
    line2 = nodes.lines[2]
    segmentation.RemoveSegment(nodes.segmentation.lesion_segment_ids[2])
    new_id = segmentation.AddEmptySegment("", "Drawn by user", [0.1, 0.9, 0.1])
    truth = sitk.GetArrayFromImage(case.tumour_labels)
    _set_segment(nodes, new_id, truth == 2)
    nodes.remeasure()
    # the drawn segment is a new lesion: it does not take the deleted lesion's number (nor its
    # classifier outputs), and keeps that number from now on
    assert nodes.lesion_ids() == [1, 3]
    assert nodes.segmentation.lesion_segment_ids[3] == new_id
    assert lesion_segments(nodes.segmentation.node)[3] == new_id
    assert "malignancy_probability" not in nodes.lesion(3)
    assert line2.GetScene() is None and nodes.lines[3].GetScene() is context.scene
    assert [int(r["Lesion"]) for r in table_rows(nodes.table)] == [1, 3]


def test_exports_through_the_core(shown, case, data, tmp_path):
    _, nodes = shown
    seg_path = export.export_seg_nrrd(nodes.segmentation.node, tmp_path / "s.seg.nrrd",
                                      nodes.background)  # fmt: skip
    read = read_slicer_segmentation(seg_path)
    assert [s.name for s in read.segments] == ["Breast", "Lesion 1", "Lesion 2"]
    assert read.segments[1].terminology == BREAST_MASS
    np.testing.assert_array_equal(sitk.GetArrayFromImage(read.mask("Lesion 2")),
                                  sitk.GetArrayFromImage(case.tumour_labels) == 2)
    np.testing.assert_allclose(read.layers[0].GetDirection(),
                               case.study.reference.GetDirection(), atol=1e-6)  # fmt: skip

    files = export.export_nifti(nodes.segmentation.node, tmp_path / "nifti", nodes.background)
    labels = sitk.ReadImage(str(files[0]))
    np.testing.assert_array_equal(sitk.GetArrayFromImage(labels),
                                  sitk.GetArrayFromImage(case.tumour_labels))
    np.testing.assert_allclose(labels.GetOrigin(), case.study.reference.GetOrigin(), atol=1e-4)

    table_csv = export.export_table_csv(nodes.table, tmp_path / "lesions.csv")
    with open(table_csv, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    assert rows[0][:3] == ["Lesion", "Volume (ml)", "Max diameter (mm)"] and len(rows) == 3
    measurements = export.export_measurements_csv(data.lesions, data.report["t_stage"],
                                                  tmp_path / "measurements.csv")  # fmt: skip
    assert "max_diameter_mm" in measurements.read_text().splitlines()[0]


def test_dicom_seg_export_references_a_generated_source(shown, case, tmp_path):
    import pydicom

    _, nodes = shown
    path = export.export_dicom_seg(nodes.segmentation.node, case.study, tmp_path / "seg.dcm",
                                   nodes.background)  # fmt: skip
    seg = pydicom.dcmread(path)
    assert seg.Modality == "SEG"
    assert [s.SegmentLabel for s in seg.SegmentSequence] == ["Breast", "Lesion 1", "Lesion 2"]
    assert (tmp_path / "seg_source").is_dir() or any(tmp_path.glob("*source*"))


def test_slicer_storage_node_file_is_read_by_the_core(shown, case, tmp_path):
    """Slicer's own .seg.nrrd writer and the core's reader agree on names and positions."""
    _, nodes = shown
    storage = nodes.segmentation.node.CreateDefaultStorageNode()
    storage.SetFileName(str(tmp_path / "slicer.seg.nrrd"))
    assert storage.WriteData(nodes.segmentation.node)
    read = read_slicer_segmentation(tmp_path / "slicer.seg.nrrd")
    assert [s.name for s in read.segments] == ["Breast", "Lesion 1", "Lesion 2"]
    mask = sitk.Resample(read.mask("Lesion 1"), case.study.reference, sitk.Transform(),
                         sitk.sitkNearestNeighbor, 0)  # fmt: skip
    np.testing.assert_array_equal(sitk.GetArrayFromImage(mask),
                                  sitk.GetArrayFromImage(case.tumour_labels) == 1)
