"""Explanations: Grad-CAM and Grad-CAM++ for the classifiers' TorchScript bundles."""

from BreastAIAssistantLib.explain.gradcam import METHODS, class_activation_map

__all__ = ["METHODS", "class_activation_map"]
