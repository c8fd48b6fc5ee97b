"""The optional PDF report: the same content drawn on A4 pages with matplotlib's PDF backend.

No extra dependency: ``matplotlib.backends.backend_pdf.PdfPages`` writes vector pages of figures
built with the object API (no pyplot). Page 1 holds the disclaimer, the T stage, the lesion
summary and the study; then one page per lesion with its four key images and its tables.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from matplotlib.axes import Axes
from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.figure import Figure

from BreastAIAssistantLib.report import figures as fig
from BreastAIAssistantLib.report.html import DISCLAIMER, ReportPage
from BreastAIAssistantLib.report.keyimages import KeyImage
from BreastAIAssistantLib.report.tables import Rows

A4_IN = (8.27, 11.69)


def _rows_text(
    ax: Axes, rows: Rows, top: float, size: float = 8.0, label_fraction: float = 0.36
) -> float:
    """Write a two-column (label, value) list from ``top`` (axes fraction) down.

    Labels and values wrap within their columns (an average glyph is taken as 0.62 em wide);
    the line step is 1.35 font sizes. Returns the next free ``y``.
    """
    width_in = ax.get_position().width * ax.figure.get_figwidth()
    height_in = ax.get_position().height * ax.figure.get_figheight()
    step = 1.35 * size / 72.0 / height_in
    chars_per_in = 72.0 / (0.62 * size)
    label_chars = max(8, int(label_fraction * width_in * chars_per_in) - 1)
    value_chars = max(8, int((1 - label_fraction) * width_in * chars_per_in) - 1)
    y = top
    for label, value in rows:
        labels = textwrap.wrap(str(label), label_chars) or [""]
        values = textwrap.wrap(str(value), value_chars) or [""]
        for line in range(max(len(labels), len(values))):
            if line < len(labels):
                ax.text(0.0, y, labels[line], fontsize=size, va="top", fontweight="bold")
            if line < len(values):
                ax.text(label_fraction, y, values[line], fontsize=size, va="top")
            y -= step
        y -= 0.25 * step
    return y


def _cover(page: ReportPage) -> Figure:
    figure = Figure(figsize=A4_IN)
    ax = figure.add_axes((0.07, 0.04, 0.86, 0.92))
    ax.axis("off")
    ax.text(0.0, 1.0, page.title, fontsize=16, fontweight="bold", va="top", color="#0b5394")
    ax.text(0.0, 0.965, page.created, fontsize=8, va="top", color="#5b6575")
    box = {"facecolor": "#fdecea", "edgecolor": "#c62828", "boxstyle": "round,pad=0.5"}
    # wrapped to the text width: one line of it ran off the A4 page
    disclaimer = textwrap.fill(DISCLAIMER, 96)
    ax.text(0.0, 0.94, disclaimer, fontsize=9, va="top", color="#8e1b1b", bbox=box)
    ax.text(
        0.0, 0.885, f"Overall T stage: {page.t_stage}", fontsize=14, fontweight="bold", va="top"
    )
    ax.text(0.0, 0.86, page.t_stage_note, fontsize=8, va="top")
    rows = [("Caution", c) for c in page.cautions] + [("Flag", f) for f in page.flags]
    y = _rows_text(ax, rows, 0.835, label_fraction=0.1)
    if page.summary_rows:
        height = 0.03 * (len(page.summary_rows) + 1)
        # the flags column is left out here: flags are listed above and on each lesion's page
        table = ax.table(cellText=[list(r[:-1]) for r in page.summary_rows],
                         colLabels=list(page.summary_header[:-1]), loc="upper left",
                         bbox=(0.0, y - height - 0.01, 1.0, height))  # fmt: skip
        table.auto_set_font_size(False)
        table.set_fontsize(6.5)
        y -= height + 0.04
    ax.text(0.0, y, "Study", fontsize=11, fontweight="bold", va="top")
    y = _rows_text(ax, page.study, y - 0.025)
    ax.text(0.0, y - 0.01, "Models", fontsize=11, fontweight="bold", va="top")
    models = [(m[0], f"version {m[1]}, sha256 {m[2]}, research demo {m[3]}") for m in page.models]
    _rows_text(ax, models or [("Models", "none used")], y - 0.035, size=7)
    return figure


def _lesion_page(lesion_id: int, drawables: Sequence[Any], rows: Rows) -> Figure:
    figure = Figure(figsize=A4_IN)
    figure.suptitle(f"Lesion {lesion_id}", fontsize=14, fontweight="bold", x=0.07, ha="left")
    boxes = ((0.04, 0.60, 0.44, 0.34), (0.52, 0.60, 0.44, 0.34),
             (0.04, 0.25, 0.44, 0.33), (0.56, 0.27, 0.40, 0.27))  # fmt: skip
    for drawable, box in zip(drawables, boxes, strict=False):
        ax = figure.add_axes(box)
        if isinstance(drawable, KeyImage):
            fig.draw_key_image(ax, drawable)
        else:
            fig.draw_curve(ax, drawable)
    text = figure.add_axes((0.07, 0.01, 0.86, 0.22))
    text.axis("off")
    half = (len(rows) + 1) // 2
    _rows_text(text, rows[:half], 1.0, size=7)
    column = figure.add_axes((0.52, 0.01, 0.44, 0.22))
    column.axis("off")
    _rows_text(column, rows[half:], 1.0, size=7)
    figure.text(0.5, 0.003, DISCLAIMER, ha="center", fontsize=6, color="#8e1b1b")
    return figure


def write_pdf(
    path: str | Path, page: ReportPage, lesions: Sequence[tuple[int, Sequence[Any], Rows]]
) -> Path:
    """Write the PDF report to ``path`` (the caller makes it atomic).

    Args:
        path: Output file.
        page: The formatted page content (as for the HTML).
        lesions: ``(lesion id, drawables, rows)`` per lesion: drawables are key images and
            kinetics dicts, drawn in order in a 2 × 2 grid.
    """
    with PdfPages(str(path), metadata={"Title": page.title, "Subject": DISCLAIMER}) as document:
        document.savefig(_cover(page))
        for lesion_id, drawables, rows in lesions:
            document.savefig(_lesion_page(lesion_id, drawables, rows))
    return Path(path)
