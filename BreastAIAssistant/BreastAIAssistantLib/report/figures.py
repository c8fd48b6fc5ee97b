"""Drawing the report's figures with matplotlib's object API on the Agg canvas (no pyplot).

Every figure is a :class:`matplotlib.figure.Figure` attached to a ``FigureCanvasAgg`` explicitly,
so nothing touches pyplot's global state or the user's default backend (which matters inside 3D
Slicer's Qt application). The same ``draw_*`` functions draw into the axes of a single-image
figure (HTML) or of a page (PDF).

Images are drawn in millimetres (pixel centre ``(r, c)`` at ``(c * col_mm, r * row_mm)``) so that
anisotropic pixels keep their physical aspect; orientation letters come from the plane's own
geometry (:attr:`.planes.PlaneGeometry.letters`).
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from matplotlib import patheffects
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from BreastAIAssistantLib.dce.curves import CURVE_TYPE_LABELS
from BreastAIAssistantLib.report.keyimages import KeyImage

#: Raster resolution of the HTML figures.
PNG_DPI = 110
_OUTLINE = [patheffects.withStroke(linewidth=2.5, foreground="black")]
_BAR_CHOICES_MM = (5, 10, 20, 50, 100)


def new_figure(width_in: float, height_in: float) -> Figure:
    """A figure on its own Agg canvas (no pyplot)."""
    figure = Figure(figsize=(width_in, height_in), dpi=PNG_DPI)
    FigureCanvasAgg(figure)
    return figure


def png_bytes(figure: Figure) -> bytes:
    """The figure rendered as PNG by the Agg canvas."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=PNG_DPI, facecolor="white")
    return buffer.getvalue()


def curve_colour(curve_type: int) -> str:
    """Line colour of a curve type (the map's colour, darkened for a white background)."""
    rgb = np.asarray(CURVE_TYPE_LABELS.get(int(curve_type), CURVE_TYPE_LABELS[0])["color"])
    rgb = np.clip(rgb * 0.8 if rgb.sum() > 0 else np.array([90, 90, 90]), 0, 255)
    return "#" + "".join(f"{int(v):02x}" for v in rgb)


def _mm(key: KeyImage, rc: np.ndarray) -> tuple[float, float]:
    row_mm, col_mm = key.plane.spacing_rc_mm
    return float(rc[1] * col_mm), float(rc[0] * row_mm)


def _scale_bar(ax: Axes, width_mm: float, height_mm: float) -> None:
    target = width_mm / 5.0
    length = max([b for b in _BAR_CHOICES_MM if b <= target] or [_BAR_CHOICES_MM[0]])
    x1, y = width_mm * 0.95, height_mm * 0.95
    ax.plot([x1 - length, x1], [y, y], color="white", lw=3, solid_capstyle="butt",
            path_effects=_OUTLINE)  # fmt: skip
    ax.text(x1 - length / 2, y - height_mm * 0.02, f"{length} mm", color="white", ha="center",
            va="bottom", fontsize=8, path_effects=_OUTLINE)  # fmt: skip


def _letters(ax: Axes, key: KeyImage, width_mm: float, height_mm: float) -> None:
    letters = key.plane.letters
    style = {"color": "white", "fontsize": 11, "fontweight": "bold", "path_effects": _OUTLINE}
    ax.text(width_mm * 0.02, height_mm / 2, letters["left"], ha="left", va="center", **style)
    ax.text(width_mm * 0.98, height_mm / 2, letters["right"], ha="right", va="center", **style)
    ax.text(width_mm / 2, height_mm * 0.02, letters["top"], ha="center", va="top", **style)
    ax.text(width_mm / 2, height_mm * 0.98, letters["bottom"], ha="center", va="bottom", **style)


def draw_key_image(ax: Axes, key: KeyImage, title: bool = True) -> None:
    """Draw a key image: grey pixels, outlines, lines with lengths, labels, letters, scale bar."""
    rows, cols = key.pixels.shape
    row_mm, col_mm = key.plane.spacing_rc_mm
    extent = (-0.5 * col_mm, (cols - 0.5) * col_mm, (rows - 0.5) * row_mm, -0.5 * row_mm)
    ax.set_facecolor("black")
    ax.imshow(key.pixels, cmap="gray", vmin=key.window[0], vmax=key.window[1], extent=extent,
              interpolation="nearest", aspect="equal")  # fmt: skip
    if key.heat is not None and key.heat.shape == (rows, cols):
        heat = np.ma.masked_less(key.heat, 0.05)  # cold pixels stay grey
        shown = ax.imshow(heat, cmap="inferno", vmin=0.0, vmax=1.0, alpha=0.55, extent=extent,
                          interpolation="bilinear", aspect="equal")
        # the colour bar sits in its own axes right of the image (the image keeps its size)
        bar = ax.figure.colorbar(shown, cax=ax.inset_axes((1.03, 0.1, 0.04, 0.8)))
        bar.set_label(key.heat_label, fontsize=8)
        bar.ax.tick_params(labelsize=7)
    xs, ys = np.arange(cols) * col_mm, np.arange(rows) * row_mm
    for outline in key.outlines:
        if outline.mask.shape == (rows, cols) and np.nanmax(outline.mask) > 0.5:
            ax.contour(xs, ys, outline.mask, levels=[0.5], colors=[outline.colour],
                       linewidths=outline.linewidth, linestyles=outline.linestyle)  # fmt: skip
    for segment in key.segments:
        (xa, ya), (xb, yb) = _mm(key, segment.a_rc), _mm(key, segment.b_rc)
        ax.plot([xa, xb], [ya, yb], color=segment.colour, lw=2.2, path_effects=_OUTLINE)
        ax.plot([xa, xb], [ya, yb], "o", color=segment.colour, ms=5, mec="black", mew=0.8)
        if segment.text:
            ax.text((xa + xb) / 2, min(ya, yb) - 0.04 * rows * row_mm, segment.text,
                    color=segment.colour, fontsize=10, fontweight="bold", ha="center",
                    va="bottom", path_effects=_OUTLINE)  # fmt: skip
    for rc, text, colour in key.labels:
        x, y = _mm(key, rc)
        ax.text(x, y, text, color=colour, fontsize=11, fontweight="bold", ha="left",
                va="bottom", path_effects=_OUTLINE)  # fmt: skip
    width_mm, height_mm = cols * col_mm, rows * row_mm
    ax.set_xlim(extent[0], extent[1])
    ax.set_ylim(extent[2], extent[3])
    _letters(ax, key, width_mm - 0.5 * col_mm, height_mm - 0.5 * row_mm)
    _scale_bar(ax, width_mm, height_mm)
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(key.title, fontsize=10)


def key_image_figure(key: KeyImage, width_in: float = 5.0) -> Figure:
    """A single-image figure sized to the image's physical aspect."""
    rows, cols = key.pixels.shape
    row_mm, col_mm = key.plane.spacing_rc_mm
    aspect = (rows * row_mm) / max(cols * col_mm, 1e-9)
    extra_in = 0.9 if key.heat is not None else 0.0  # room for the colour bar
    figure = new_figure(width_in + extra_in, width_in * aspect + 0.45)
    share = width_in / (width_in + extra_in)
    ax = figure.add_axes((0.01 * share, 0.01, 0.98 * share,
                          0.98 - 0.4 / (width_in * aspect + 0.45)))
    draw_key_image(ax, key)
    return figure


def draw_curve(ax: Axes, kinetics: Mapping[str, Any], title: bool = True) -> None:
    """Percent-enhancement curves (hotspot and whole lesion) with early/late phases marked.

    The x axis is the acquisition time in seconds when known, else the phase index. The shaded
    band between the early and late phases is the plateau band of the curve-type rule: a hotspot
    whose late value stays inside it is a plateau (±10 % of the early signal by default). With a
    single post-contrast phase (early = late) there is no band: the rule has no late phase.
    """
    times = kinetics.get("times_s")
    pe = np.asarray([np.nan if v is None else v for v in kinetics["pe_curve_pct"]], dtype=float)
    mean = np.asarray(
        [np.nan if v is None else v for v in kinetics["mean_pe_curve_pct"]], dtype=float
    )
    x = np.asarray(times if times is not None else range(pe.size), dtype=float)
    early, late = int(kinetics["early"]), int(kinetics["late"])
    colour = curve_colour(kinetics["curve_type"])
    tolerance = float((kinetics.get("curve_rule") or {}).get("tolerance", 0.10))
    if late != early and math.isfinite(pe[early]):  # one post-contrast phase: no late to judge
        signal_early = 1.0 + pe[early] / 100.0  # S_e / S_0
        band = tuple(100 * (signal_early * (1 + s * tolerance) - 1) for s in (-1, 1))
        ax.fill_between([x[early], x[late]], *band, color="#dddddd", zorder=0,
                        label=f"plateau band (±{100 * tolerance:.0f} % of early)")  # fmt: skip
    ax.plot(x, pe, "-o", color=colour, lw=2.4, ms=6, mec="black", mew=0.6,
            label=f"most enhancing part ({kinetics['hotspot_voxel_count']} voxels)")  # fmt: skip
    ax.plot(x, mean, "--s", color="#555555", lw=1.4, ms=4,
            label=f"whole lesion ({kinetics['voxel_count']} voxels)")  # fmt: skip
    marks = ((early, "early"), (late, "late")) if late != early else ((early, "early = late"),)
    for k, name in marks:  # one mark when a single post-contrast phase is both (2-phase study)
        ax.axvline(x[k], color="#333333", lw=0.9, ls=":")
        edge = k == x.size - 1  # the last phase's label ends at the axis edge, not beyond it
        ax.text(x[k], 1.01, f"{name} (phase {k})", transform=ax.get_xaxis_transform(),
                ha="right" if edge else "center", va="bottom", fontsize=8)  # fmt: skip
    ax.axhline(0, color="#999999", lw=0.8)
    ax.set_xlabel("time after pre-contrast (s)" if times is not None else "phase index")
    ax.set_ylabel("enhancement (%)")
    ax.set_xticks(x)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right", framealpha=0.9)
    if title:
        name = str(kinetics.get("curve_type_name", "")).upper()
        ax.set_title(f"Kinetic curve — {name}", fontsize=11, color=colour, fontweight="bold",
                     pad=16)  # fmt: skip


def curve_figure(kinetics: Mapping[str, Any]) -> Figure:
    """A single kinetic-curve figure."""
    figure = new_figure(5.6, 4.2)
    ax = figure.add_axes((0.13, 0.12, 0.84, 0.74))
    draw_curve(ax, kinetics)
    return figure
