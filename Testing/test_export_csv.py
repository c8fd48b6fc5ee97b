"""Measurement CSV: one row per lesion, flattened vectors, flags, the overall T stage."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from BreastAIAssistantLib.export import measurement_rows, write_measurements_csv
from BreastAIAssistantLib.measure import measure_lesions

from conftest import OBLIQUE


def report():
    lesions = np.zeros((20, 30, 30), np.uint8)
    lesions[5:10, 5:12, 5:10] = 1
    lesions[12:15, 20:25, 20:26] = 1
    breast = np.zeros_like(lesions)
    breast[1:19, 1:29, 1:29] = 1
    images = [sitk.GetImageFromArray(a) for a in (lesions, breast)]
    for image in images:
        image.SetSpacing((1.0, 1.0, 2.0))
        image.SetOrigin((-10.0, 5.0, 30.0))
        image.SetDirection(OBLIQUE)
    return measure_lesions(images[0], images[1])


def read_rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames or []), list(reader)


def test_columns_and_values(tmp_path: Path) -> None:
    result = report()
    path = write_measurements_csv(result, tmp_path / "measurements.csv")
    columns, rows = read_rows(path)
    assert columns[:5] == [
        "lesion_id",
        "t_stage",
        "t_category",
        "t_category_low",
        "t_category_high",
    ]
    assert columns[-2:] == ["flags", "components"]
    for name in (
        "volume_ml",
        "max_diameter_mm",
        "endpoint1_lps_mm_x",
        "endpoint2_lps_mm_z",
        "axial_endpoint1_lps_mm_y",
        "perpendicular_diameter1_mm",
        "perpendicular_diameter2_mm",
        "centroid_lps_mm_x",
        "centroid_lps_mm_z",
        "distance_to_skin_mm",
    ):
        assert name in columns
    assert len(rows) == len(result.lesions) == 2
    first, data = rows[0], result.lesions[0]
    assert first["t_stage"] == result.t_stage == rows[1]["t_stage"]
    assert first["lesion_id"] == "1"
    assert float(first["max_diameter_mm"]) == data["max_diameter_mm"]
    assert float(first["endpoint2_lps_mm_y"]) == float(data["endpoints_lps_mm"][1][1])
    assert float(first["centroid_lps_mm_z"]) == float(data["centroid_lps_mm"][2])
    assert (first["t_category_low"], first["t_category_high"]) == data.t_category_range
    assert first["flags"] == "; ".join(data.flags)


def test_dict_input_with_missing_values(tmp_path: Path) -> None:
    data = json.loads(json.dumps(report().to_dict()))  # as read back from report.json
    data["lesions"][0]["distance_to_skin_mm"] = None
    data["lesions"][0]["flags"] = ["first", "second"]
    rows = measurement_rows(data)
    assert rows[0]["distance_to_skin_mm"] is None
    _, written = read_rows(write_measurements_csv(data, tmp_path / "m.csv"))
    assert written[0]["distance_to_skin_mm"] == ""
    assert written[0]["flags"] == "first; second"
    assert not math.isnan(float(written[1]["distance_to_skin_mm"]))


def test_empty_report_and_bad_input(tmp_path: Path) -> None:
    empty = measure_lesions(sitk.Image(4, 4, 4, sitk.sitkUInt8), allow_empty=True)
    columns, rows = read_rows(write_measurements_csv(empty, tmp_path / "empty.csv"))
    assert rows == [] and "t_stage" in columns
    with pytest.raises(ValueError, match="no 'lesions' entry"):
        write_measurements_csv({"t_stage": "T1"}, tmp_path / "bad.csv")
