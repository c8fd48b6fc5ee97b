"""The documented grouping rule on three real I-SPY 2 FTV masks (skipped without ../shared).

Each mask is one main lesion plus fragments (56, 64 and 156 components with 26-connectivity; the
folder's README counts 164, 171 and 976 with 6-connectivity). With the defaults (fragments below
0.065 ml ignored, components within 5 mm merged) the main lesion is one lesion, and the diameter
taken over the whole mask as one object would be wrong (too long) for two of them.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import SimpleITK as sitk

from BreastAIAssistantLib.measure import measure_lesions

FOLDER = Path(__file__).resolve().parents[2] / "shared" / "data" / "ispy2-real-masks"

# file, components, lesions, fragments ignored, main volume (ml), main max diameter (mm), T,
# diameter of the whole mask taken as one object (mm)
CASES = [
    ("ACRIN-6698-102212_spy2_vis1_mask.nii.gz", 56, 1, 52, 42.010, 102.82, "T3", 102.82),
    ("ACRIN-6698-104268_spy2_vis1_mask.nii.gz", 64, 1, 61, 35.539, 102.34, "T3", 108.11),
    ("ISPY2-550421_spy2_vis1_mask.nii.gz", 156, 2, 152, 103.475, 138.80, "T3(m)", 150.81),
]


@pytest.fixture(scope="module")
def real_masks() -> Path:
    if not FOLDER.is_dir():
        pytest.skip(f"{FOLDER} is not present in this checkout")
    return FOLDER


@pytest.mark.parametrize(
    ("name", "components", "lesions", "ignored", "volume_ml", "diameter_mm", "stage", "whole_mm"),
    CASES,
)
def test_grouping_rule_on_real_masks(
    real_masks, name, components, lesions, ignored, volume_ml, diameter_mm, stage, whole_mm
):
    image = sitk.ReadImage(str(real_masks / name))
    report = measure_lesions(image)
    grouping = report.grouping
    assert grouping["components"] == components
    assert grouping["lesions"] == lesions == len(report.lesions)
    assert grouping["fragments_ignored"] == ignored
    assert 0.3 < grouping["fragments_ignored_volume_ml"] < 1.5
    main = report.lesions[0]
    assert main["volume_ml"] == pytest.approx(volume_ml, abs=0.01)
    assert main["max_diameter_mm"] == pytest.approx(diameter_mm, abs=0.05)
    assert report.t_stage == stage and report.t_stage_lesion_id == 1
    # the axial and perpendicular diameters never exceed the 3-D maximum
    assert main["axial_diameter_mm"] <= main["max_diameter_mm"]
    assert max(main["perpendicular_diameters_mm"]) <= main["max_diameter_mm"]
    whole = measure_lesions(image, mode="labels").lesions[0]  # all voxels as one object
    assert whole["max_diameter_mm"] == pytest.approx(whole_mm, abs=0.05)
