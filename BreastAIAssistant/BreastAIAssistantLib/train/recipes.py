"""Default models: network arguments, grids and manifests of the two segmentation bundles.

The bundled research-demo weights are trained with exactly these recipes
(``breast-ai train breast|seg``); a paper-size model uses the same code with the networks'
``paper_config()`` arguments.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from BreastAIAssistantLib import __version__
from BreastAIAssistantLib.nets import SpatioTemporalSegmenter, UNet3d

INTENDED_USE = (
    "Research demonstration only, not for clinical use: trained on this project's synthetic "
    "DCE-MRI phantom; results on real images are unknown."
)
PATTERNS_2023 = (
    "Zhang J. et al., A robust and efficient AI assistant for breast tumor segmentation from "
    "DCE-MRI via a spatial-temporal framework, Patterns 4(9):100826, 2023"
)

BREAST = {
    "id": "breast-unet-demo",
    "network": "UNet3d",
    "network_args": UNet3d.small_config(),
    "spacing_mm": [3.0, 3.0, 4.0],
    "patch_size_zyx": [32, 80, 80],
    "normalisation": {"scheme": "percentile-minmax", "percentiles": [1.0, 99.0]},
}
TUMOUR = {
    "id": "tumour-st-demo",
    "network": "SpatioTemporalSegmenter",
    "network_args": SpatioTemporalSegmenter.small_config(),
    "spacing_mm": [1.5, 1.5, 2.0],
    "patch_size_zyx": [32, 64, 64],
    "normalisation": {"scheme": "shared-first-post", "percentiles": [1.0, 99.0], "clip_max": 3.0},
}


def breast_manifest(
    training: dict[str, Any], metrics: dict[str, Any], spacing_mm: Sequence[float] | None = None
) -> dict[str, Any]:
    """Manifest of the whole-breast bundle (the recipe's grid unless ``spacing_mm``, x,y,z)."""
    return {
        "id": BREAST["id"],
        "version": __version__,
        "name": "Whole-breast 3-D U-Net (research demo)",
        "description": "Whole-breast mask from the pre-contrast phase.",
        "task": "breast-segmentation",
        "research_demo": True,
        "references": [PATTERNS_2023],
        "network": {"name": BREAST["network"], "args": BREAST["network_args"]},
        "inputs": {
            "images": ["pre"],
            "spacing_mm": list(spacing_mm or BREAST["spacing_mm"]),
            "patch_size_zyx": BREAST["patch_size_zyx"],
            "normalisation": BREAST["normalisation"],
        },
        "outputs": {
            "kind": "probability",
            "threshold": 0.5,
            "labels": [
                {
                    "value": 1,
                    "name": "Breast",
                    "color": [221, 130, 101],
                    "terminology": {
                        "category": ["SCT", "123037004", "Anatomical Structure"],
                        "type": ["SCT", "76752008", "Breast"],
                    },
                }
            ],
        },
        "training": training,
        "intended_use": INTENDED_USE,
        "metrics": metrics,
        "licence": "MIT",
    }


def tumour_manifest(
    training: dict[str, Any], metrics: dict[str, Any], spacing_mm: Sequence[float] | None = None
) -> dict[str, Any]:
    """Manifest of the spatial-temporal tumour bundle (the recipe's grid unless ``spacing_mm``,
    x,y,z)."""
    return {
        "id": TUMOUR["id"],
        "version": __version__,
        "name": "Spatial-temporal transformer tumour segmenter (research demo)",
        "description": "Tumour probability from all DCE phases and their subtractions, with "
        "acquisition-time encoding and masked absent phases.",
        "task": "tumour-segmentation",
        "research_demo": True,
        "references": [PATTERNS_2023],
        "network": {"name": TUMOUR["network"], "args": TUMOUR["network_args"]},
        "inputs": {
            "images": ["all phases", "phase minus pre-contrast"],
            "min_phases": 2,
            "max_phases": 9,
            "spacing_mm": list(spacing_mm or TUMOUR["spacing_mm"]),
            "patch_size_zyx": TUMOUR["patch_size_zyx"],
            "normalisation": TUMOUR["normalisation"],
        },
        "outputs": {
            "kind": "probability",
            "threshold": 0.5,
            "labels": [
                {
                    "value": 1,
                    "name": "Tumour",
                    "color": [230, 30, 30],
                    "terminology": {
                        "category": ["SCT", "49755003", "Morphologically Altered Structure"],
                        "type": ["SCT", "4147007", "Mass"],
                    },
                }
            ],
        },
        "training": training,
        "intended_use": INTENDED_USE,
        "metrics": metrics,
        "licence": "MIT",
    }
