"""Synthetic breast DCE-MRI studies: the example study, the test data and the training data.

Everything here is synthetic: it says nothing about clinical accuracy. See ``generator.py`` for
what the phantom models and what it does not.
"""

from __future__ import annotations

from BreastAIAssistantLib.phantom.generator import (
    LESION_KINDS,
    PhantomCase,
    PhantomSpec,
    generate_case,
)
from BreastAIAssistantLib.phantom.simple import SimpleStudySpec, make_simple_study
from BreastAIAssistantLib.phantom.tissues import TISSUE_NAMES
from BreastAIAssistantLib.phantom.truth import SCHEMA
from BreastAIAssistantLib.phantom.writer import write_case

__all__ = [
    "LESION_KINDS",
    "SCHEMA",
    "TISSUE_NAMES",
    "PhantomCase",
    "PhantomSpec",
    "SimpleStudySpec",
    "generate_case",
    "make_simple_study",
    "write_case",
]
