"""BreastAIAssistantLib: the Slicer-free core of the BreastAIAssistant extension.

It never imports ``slicer``, ``qt``, ``ctk`` or ``vtk``. Research use only: nothing in this package
is validated for clinical use.
"""

from __future__ import annotations

from BreastAIAssistantLib.errors import (
    BreastAIError,
    OutputError,
    ReaderError,
    StudyError,
    UnsupportedTransferSyntaxError,
)
from BreastAIAssistantLib.study import DCEStudy

__version__ = "0.1.0"

__all__ = [
    "BreastAIError",
    "DCEStudy",
    "OutputError",
    "ReaderError",
    "StudyError",
    "UnsupportedTransferSyntaxError",
    "__version__",
]
