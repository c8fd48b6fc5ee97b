"""Synthetic breast DCE-MRI studies for the demo, the tests and (later) training.

Everything here is synthetic: it says nothing about clinical accuracy.
"""

from __future__ import annotations

from BreastAIAssistantLib.phantom.simple import SimpleStudySpec, make_simple_study

__all__ = ["SimpleStudySpec", "make_simple_study"]
