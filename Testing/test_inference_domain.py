"""Cautions for studies coarser than a model's grid."""

import pytest

from BreastAIAssistantLib.inference.domain import COARSE_FACTOR, grid_cautions

TUMOUR = ("tumour-st-demo", (1.2, 1.2, 1.6))
BREAST = ("breast-unet-demo", (3.0, 3.0, 4.0))


@pytest.mark.parametrize("spacing", [(0.78, 0.78, 1.0), (1.69, 1.69, 2.6), (0.7, 0.7, 3.0)])
def test_clinical_and_training_voxels_get_no_caution(spacing):
    assert grid_cautions(spacing, [TUMOUR, BREAST]) == []


def test_coarse_voxels_are_cautioned_per_model_and_axis():
    coarse = (3.65, 3.65, 5.0)
    cautions = grid_cautions(coarse, [TUMOUR, BREAST, ("mrsm-demo", None)])
    assert [(c.code, c.model) for c in cautions] == [("coarse-voxels", "tumour-st-demo")]
    message = cautions[0].message
    assert "3.65 x 3.65 x 5 mm" in message and "1.2 x 1.2 x 1.6 mm grid" in message
    assert "along x, y, z" in message and "unreliable" in message
    assert cautions[0].to_dict() == {"code": "coarse-voxels", "model": "tumour-st-demo",
                                     "message": message}  # fmt: skip
    # only the slice thickness too coarse: that axis alone is named
    (thick,) = grid_cautions((0.7, 0.7, 3.5), [TUMOUR])
    assert "along z than" in thick.message


def test_the_factor_is_a_strict_bound():
    at_bound = (1.2 * COARSE_FACTOR, 1.2, 1.6)
    assert grid_cautions(at_bound, [TUMOUR]) == []
    assert len(grid_cautions((1.2 * COARSE_FACTOR + 1e-6, 1.2, 1.6), [TUMOUR])) == 1
    assert grid_cautions((2.9, 1.2, 1.6), [TUMOUR], factor=2.5) == []
    assert len(grid_cautions((2.9, 1.2, 1.6), [TUMOUR], factor=2.0)) == 1


@pytest.mark.parametrize(
    ("spacing", "models", "factor"),
    [((1.0, 1.0), [TUMOUR], 1.5), ((1.0, 0.0, 1.0), [TUMOUR], 1.5),
     ((1.0, 1.0, 1.0), [("m", (1.0, 1.0))], 1.5), ((1.0, 1.0, 1.0), [TUMOUR], 0.5)],
)  # fmt: skip
def test_bad_arguments_are_refused(spacing, models, factor):
    with pytest.raises(ValueError):
        grid_cautions(spacing, models, factor)
