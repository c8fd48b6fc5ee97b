"""HTML markup of the report: one self-contained page, inline CSS, images as ``data:`` URIs.

No script, no external stylesheet, font or image: the file can be mailed, archived or opened
offline and shows the same thing everywhere. Every text that comes from data is escaped.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from dataclasses import dataclass, field

from BreastAIAssistantLib.report.tables import Rows

DISCLAIMER = (
    "Research use only — not for clinical decisions; models are research demonstrations "
    "trained on a synthetic phantom."
)

_CSS = """
:root { --ink: #1d2430; --muted: #5b6575; --line: #d5dae2; --accent: #0b5394; }
* { box-sizing: border-box; }
body { margin: 0; background: #eef1f5; color: var(--ink);
  font: 14px/1.45 "Helvetica Neue", Helvetica, Arial, "DejaVu Sans", sans-serif; }
main { max-width: 1180px; margin: 0 auto; padding: 18px 20px 40px; background: #fff; }
header.top { display: flex; justify-content: space-between; align-items: baseline;
  border-bottom: 3px solid var(--accent); padding-bottom: 8px; }
h1 { font-size: 22px; margin: 0; color: var(--accent); }
h2 { font-size: 18px; margin: 26px 0 10px; padding-bottom: 4px;
  border-bottom: 1px solid var(--line); }
h3 { font-size: 14px; margin: 14px 0 6px; color: var(--muted); text-transform: uppercase;
  letter-spacing: .04em; }
.meta { color: var(--muted); font-size: 12px; }
.disclaimer { margin: 14px 0; padding: 10px 14px; border: 2px solid #c62828; background: #fdecea;
  color: #8e1b1b; border-radius: 4px; font-size: 14px; }
.caution { margin: 10px 0; padding: 8px 14px; border: 2px solid #b26a00; background: #fff4e0;
  color: #6b4000; border-radius: 4px; }
.caution ul { margin: 4px 0 0; padding-left: 20px; }
.stage { display: inline-block; padding: 10px 18px; border: 1px solid var(--line);
  border-left: 6px solid var(--accent); background: #f5f8fc; margin: 4px 0 10px; }
.stage .label { display: block; color: var(--muted); font-size: 12px; }
.stage .value { font-size: 26px; font-weight: bold; }
table { border-collapse: collapse; margin: 6px 0 12px; font-size: 13px; }
th, td { border: 1px solid var(--line); padding: 5px 9px; text-align: left; vertical-align: top; }
th { background: #f1f4f8; font-weight: 600; }
table.grid { width: 100%; }
table.kv th { width: 38%; white-space: nowrap; }
table.kv { width: 100%; }
td.mono, .mono { font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 11px;
  word-break: break-all; }
.badge { display: inline-block; padding: 1px 9px; margin-left: 8px; border-radius: 10px;
  font-size: 13px; color: #fff; background: #546e7a; vertical-align: middle; }
.badge.persistent { background: #1e64d2; } .badge.plateau { background: #b38f00; }
.badge.washout { background: #c62828; } .badge.tcat { background: var(--accent); }
.lesion-tables { display: grid; grid-template-columns: 1fr 1fr; gap: 18px; }
.figures { display: grid; grid-template-columns: 1fr 1fr; gap: 14px; margin-top: 6px; }
figure { margin: 0; border: 1px solid var(--line); padding: 6px; background: #fafbfc; }
figure img { display: block; width: 100%; height: auto; }
figcaption { font-size: 12px; color: var(--muted); margin-top: 4px; }
ul.flags { margin: 4px 0 10px; }
footer { margin-top: 30px; padding-top: 8px; border-top: 1px solid var(--line);
  color: var(--muted); font-size: 12px; }
@media print { body { background: #fff; } main { max-width: none; padding: 0; }
  section.lesion { break-before: page; } figure { break-inside: avoid; } }
"""


def esc(text: object) -> str:
    """HTML-escaped text."""
    return html.escape(str(text), quote=True)


def kv_table(rows: Rows, css_class: str = "kv", table_id: str = "") -> str:
    """A two-column (label, value) table."""
    attribute = f' id="{esc(table_id)}"' if table_id else ""
    body = "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in rows)
    return f'<table class="{esc(css_class)}"{attribute}><tbody>{body}</tbody></table>'


def grid_table(
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    table_id: str = "",
    mono_columns: Sequence[int] = (),
) -> str:
    """A table with a header row."""
    attribute = f' id="{esc(table_id)}"' if table_id else ""
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="mono">{esc(c)}</td>' if i in mono_columns else f"<td>{esc(c)}</td>"
            for i, c in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return (
        f'<table class="grid"{attribute}><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table>"
    )


def png_data_uri(png: bytes) -> str:
    """A ``data:image/png;base64,...`` URI."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def figure_html(png: bytes, alt: str, caption: str, css_class: str = "") -> str:
    """A figure with an inline PNG and its caption."""
    return (
        f'<figure class="{esc(css_class)}"><img src="{png_data_uri(png)}" alt="{esc(alt)}">'
        f"<figcaption>{esc(caption)}</figcaption></figure>"
    )


@dataclass
class LesionSection:
    """What one lesion's section shows."""

    lesion_id: int
    t_category: str
    curve_type: str
    measurements: Rows
    kinetics: Rows
    figures: list[tuple[bytes, str, str, str]] = field(default_factory=list)
    predictions: Rows = field(default_factory=list)


@dataclass
class ReportPage:
    """Everything the page shows, already formatted as text."""

    title: str
    created: str
    t_stage: str
    t_stage_note: str
    flags: list[str]
    summary_header: Sequence[str]
    summary_rows: list[tuple[str, ...]]
    study: Rows
    lesions: list[LesionSection]
    models: list[tuple[str, ...]]
    versions: Rows
    timings: Rows
    conventions: Rows
    cautions: list[str] = field(default_factory=list)


def _lesion_html(section: LesionSection) -> str:
    badge = section.curve_type.replace(" ", "-")
    figures = "".join(
        figure_html(png, alt, caption, css) for png, alt, caption, css in section.figures
    )
    kinetics = (
        kv_table(section.kinetics, table_id=f"lesion-{section.lesion_id}-kinetics")
        if section.kinetics
        else "<p>No kinetics computed for this lesion.</p>"
    )
    predictions = (
        "</div><div><h3>AI predictions <small>(research demo models, not for clinical use)"
        "</small></h3>"
        + kv_table(section.predictions, table_id=f"lesion-{section.lesion_id}-predictions")
        if section.predictions
        else ""
    )
    return (
        f'<section class="lesion" id="lesion-{section.lesion_id}">'
        f"<h2>Lesion {section.lesion_id}"
        f'<span class="badge tcat">{esc(section.t_category)}</span>'
        f'<span class="badge {esc(badge)}">{esc(section.curve_type)}</span></h2>'
        '<div class="lesion-tables"><div><h3>Measurements</h3>'
        + kv_table(section.measurements, table_id=f"lesion-{section.lesion_id}-measurements")
        + "</div><div><h3>Kinetics</h3>"
        + kinetics
        + predictions
        + '</div></div><h3>Key images</h3><div class="figures">'
        + figures
        + "</div></section>"
    )


def render_page(page: ReportPage) -> str:
    """The complete HTML document."""
    flags = (
        '<ul class="flags">' + "".join(f"<li>{esc(f)}</li>" for f in page.flags) + "</ul>"
        if page.flags
        else ""
    )
    models = (
        grid_table(
            ("Model", "Version", "SHA-256 of weights", "Research demo"),
            page.models,
            "models",
            mono_columns=(2,),
        )
        if page.models
        else '<p id="models-none">No model was used for this report.</p>'
    )
    cautions = (
        '<div class="caution" id="cautions" role="note"><strong>Caution: this study lies outside '
        "what the models were built for.</strong><ul>"
        + "".join(f"<li>{esc(c)}</li>" for c in page.cautions)
        + "</ul></div>"
        if page.cautions
        else ""
    )
    lesions = "".join(_lesion_html(s) for s in page.lesions) or (
        '<p id="no-lesion">No lesion in the tumour mask.</p>'
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(page.title)}</title><style>{_CSS}</style></head>
<body><main>
<header class="top"><h1>{esc(page.title)}</h1><div class="meta">{esc(page.created)}</div></header>
<div class="disclaimer" id="disclaimer" role="note"><strong>{esc(DISCLAIMER)}</strong>
Measurements, stages and curve types are computed automatically and must be checked by a
qualified reader.</div>
{cautions}
<section id="summary"><h2>Summary</h2>
<div class="stage" id="t-stage"><span class="label">Overall T stage (AJCC 8th edition, imaging
size only)</span><span class="value">{esc(page.t_stage)}</span>
<span class="meta">{esc(page.t_stage_note)}</span></div>
{flags}
{grid_table(page.summary_header, page.summary_rows, "lesion-summary")}
</section>
<section id="study"><h2>Study</h2>{kv_table(page.study, table_id="study-table")}</section>
{lesions}
<section id="models-section"><h2>Models</h2>{models}</section>
<section id="provenance"><h2>Provenance</h2>
<div class="lesion-tables"><div><h3>Software</h3>{kv_table(page.versions, table_id="versions")}
</div><div><h3>Timings</h3>{kv_table(page.timings, table_id="timings")}</div></div>
<h3>Conventions</h3>{kv_table(page.conventions, table_id="conventions")}
</section>
<footer>{esc(DISCLAIMER)}</footer>
</main></body></html>
"""
