"""Typed errors a user can cause.

Every exception here carries a message that says what went wrong *and what to do*. The CLI prints
it on one line and exits with status 2; the Slicer module shows it in a dialog. Anything else that
escapes is a bug and keeps its traceback.
"""

from __future__ import annotations


class BreastAIError(Exception):
    """Base class of all errors caused by user input (files, arguments, settings)."""


class StudyError(BreastAIError):
    """The phases do not form a usable DCE study (too few phases, no overlap, NaN voxels, ...)."""


class ReaderError(BreastAIError):
    """A file or folder cannot be read as a study in the requested or detected format."""


class UnsupportedTransferSyntaxError(ReaderError):
    """A DICOM file is compressed with a transfer syntax that no installed decoder handles."""


class OutputError(BreastAIError):
    """An output cannot be written (for example it would overwrite an input)."""
