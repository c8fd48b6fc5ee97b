"""Default classifier models: network arguments, crops and manifests of the three demo bundles.

The bundled research-demo weights are trained with exactly these recipes
(``breast-ai train cls --task mrsm|receptors|dmif``).
"""

from __future__ import annotations

from typing import Any

from BreastAIAssistantLib import __version__
from BreastAIAssistantLib.train.recipes import INTENDED_USE

MRSM_PAPER = (
    "Zhang L. et al., Breast tumor prediction based on multiscale residual spatiotemporal model "
    "(MRSM), Chinese Journal of Biomedical Engineering, 2026, "
    "doi:10.3969/j.issn.0258-8021.2026.01.004"
)
MULTITASK_PAPER = (
    "Spatial multi-task learning for breast cancer molecular subtype prediction from "
    "single-phase DCE-MRI (abstract; shared/seeds/001)"
)
DMIF_PAPER = (
    "Chen QJ. et al., Deep multi-scale invariant features-based network (DMIF-Net) for "
    "predicting 1p/19q status in glioma, Journal of Software 33(12):4559-4573, 2022"
)
NORMALISATION = {"scheme": "shared-first-post", "percentiles": [1.0, 99.0], "clip_max": 3.0}

RECIPES: dict[str, dict[str, Any]] = {
    "mrsm": {
        "id": "mrsm-demo",
        "name": "MRSM ResNet(2+1)D benign/malignant classifier (research demo)",
        "description": "Malignancy probability of a lesion from every DCE phase of each of its "
                       "slices; Grad-CAM per phase.",
        "task": "lesion-classification",
        "references": [MRSM_PAPER],
        "network": {"name": "MRSMNet",
                    "args": {"in_channels": 2, "num_classes": 2, "stem_width": 16,
                             "widths": [16, 32, 64], "blocks_per_stage": 1, "dropout": 0.15},
                    "gradcam_layer": "last residual stage (time kept: one map per phase)"},
        "inputs": {"images": ["every phase", "phase minus pre-contrast"], "min_phases": 2,
                   "max_phases": 9, "normalisation": NORMALISATION,
                   "crop": {"pixels": 48, "margin": 0.25, "min_side_mm": 20.0}},
        "outputs": {"kind": "class-probabilities", "class_names": ["benign", "malignant"]},
        "explain": {"feature_map": "last residual stage", "targets": {"malignant": 1},
                    "methods": ["gradcam", "gradcam++"]},
    },
    "receptors": {
        "id": "receptors-demo",
        "name": "Multi-task ER/PR/HER2/Ki-67 network (research demo)",
        "description": "ER, PR and HER2 probabilities and the Ki-67 index from the first "
                       "post-contrast phase with tumour core, rim and peritumoral-shell weighting; "
                       "surrogate molecular subtype by St Gallen 2013 rules.",
        "task": "receptor-prediction",
        "references": [MULTITASK_PAPER],
        "network": {"name": "ReceptorNet",
                    "args": {"in_channels": 4, "widths": [16, 32, 64, 96], "hidden": 64,
                             "dropout": 0.2},
                    "gradcam_layer": "last stage"},
        "inputs": {"images": ["post-contrast phase 1", "core", "rim", "peritumoral shell"],
                   "phase": 1, "min_phases": 2, "max_phases": 9,
                   "normalisation": NORMALISATION,
                   "regions": {"rim_mm": 2.0, "shell_mm": 5.0},
                   "crop": {"pixels": 48, "margin": 0.35, "min_side_mm": 24.0}},
        "outputs": {"kind": "multi-task", "class_names": ["er", "pr", "her2", "ki67"],
                    "ki67_cutoff_percent": 20.0},
        "explain": {"feature_map": "last stage", "targets": {"er": 0, "pr": 1, "her2": 2},
                    "methods": ["gradcam", "gradcam++"]},
    },
    "dmif": {
        "id": "dmif-demo",
        "name": "DMIF-Net box-prompted malignancy classifier (research demo)",
        "description": "Malignancy probability from a bounding box only (no delineation): "
                       "wavelet-scattering and ResNeXt branches per sequence (first "
                       "post-contrast phase and its subtraction), fused.",
        "task": "box-classification",
        "references": [DMIF_PAPER],
        "network": {"name": "DMIFNet",
                    "args": {"sequences": 2, "num_classes": 2, "widths": [32, 64, 128],
                             "cardinality": 8, "fused": 32, "scales": [2, 3],
                             "orientations": 8, "order": 2, "dropout": 0.3},
                    "gradcam_layer": "DF-Net (ResNeXt) fusion-block maps of all sequences"},
        "inputs": {"images": ["phase 1", "phase 1 minus pre-contrast"],
                   "sequences": ["phase:1", "subtraction:1"], "min_phases": 2, "max_phases": 9,
                   "normalisation": NORMALISATION,
                   "crop": {"pixels": 64, "margin": 0.1, "min_side_mm": 12.0}},
        "outputs": {"kind": "class-probabilities", "class_names": ["benign", "malignant"]},
        "explain": {"feature_map": "DF-Net maps", "targets": {"malignant": 1},
                    "methods": ["gradcam", "gradcam++"]},
    },
}
TASKS = tuple(RECIPES)


def classifier_manifest(task: str, training: dict[str, Any], metrics: dict[str, Any],
                        network_args: dict[str, Any] | None = None) -> dict[str, Any]:
    """Manifest of a classifier bundle trained with recipe ``task``."""
    recipe = RECIPES[task]
    network = dict(recipe["network"])
    if network_args is not None:
        network["args"] = network_args
    return {
        "id": recipe["id"],
        "version": __version__,
        "name": recipe["name"],
        "description": recipe["description"],
        "task": recipe["task"],
        "research_demo": True,
        "references": recipe["references"],
        "network": network,
        "inputs": recipe["inputs"],
        "outputs": recipe["outputs"],
        "explain": recipe["explain"],
        "training": training,
        "intended_use": INTENDED_USE,
        "metrics": metrics,
        "licence": "MIT",
    }
