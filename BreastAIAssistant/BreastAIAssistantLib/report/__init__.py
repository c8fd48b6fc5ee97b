"""The self-contained HTML (and optional PDF) report of an analysed study.

Typical use::

    from BreastAIAssistantLib.report import write_report
    paths = write_report("out", study=study, maps=maps, lesions=measurements,
                         tumour_labels=labels, kinetics=kinetics, models=[...], timings={...})

Modules, one concept each: :mod:`.orientation` (radiological display from the direction matrix),
:mod:`.planes` (display planes in patient space and sampling), :mod:`.keyimages` (what each key
image shows), :mod:`.figures` (drawing with matplotlib's Agg canvas), :mod:`.tables` (text rows),
:mod:`.html` (markup), :mod:`.pdf` (optional PDF), :mod:`.writer` (``write_report``).
matplotlib is imported by the drawing modules only, never at package import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from BreastAIAssistantLib.report.orientation import DisplayAxes, display_axes, edge_letters
from BreastAIAssistantLib.report.planes import PlaneGeometry, grid_plane, sample_plane

if TYPE_CHECKING:
    from BreastAIAssistantLib.report.writer import write_report

__all__ = [
    "DisplayAxes",
    "PlaneGeometry",
    "display_axes",
    "edge_letters",
    "grid_plane",
    "sample_plane",
    "write_report",
]


def __getattr__(name: str) -> Any:
    # write_report pulls in matplotlib; import it on first use, not with the package
    if name == "write_report":
        from BreastAIAssistantLib.report.writer import write_report

        return write_report
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
