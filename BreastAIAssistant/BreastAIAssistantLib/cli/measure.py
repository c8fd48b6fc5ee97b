"""``breast-ai measure``: lesion measurements and AJCC T stage of any lesion mask file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

#: Shown in --help only (the measure package is imported lazily to keep the CLI start fast);
#: the values used are GroupingSettings' defaults, and a test checks that the two agree.
HELP_DEFAULT_GAP_MM = 5.0
HELP_DEFAULT_MIN_VOLUME_ML = 0.065


def _number(value: Any, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _print_table(report: dict[str, Any]) -> None:
    """The report as a fixed-width table plus summary lines."""
    header = ("id", "vol ml", "max mm", "axial mm", "perp mm", "skin mm", "chest mm", "T (range)")
    rows = []
    for lesion in report["lesions"]:
        perp = lesion["perpendicular_diameters_mm"]
        t_range = lesion["t_category_range"]
        t_text = lesion["t_category"] or "-"
        if t_range and t_range[0] != t_range[1]:
            t_text += f" ({t_range[0]}-{t_range[1]})"
        rows.append(
            (
                str(lesion["id"]),
                _number(lesion["volume_ml"], 3),
                _number(lesion["max_diameter_mm"]),
                _number(lesion["axial_diameter_mm"]),
                f"{_number(perp[0])} x {_number(perp[1])}",
                _number(lesion["distance_to_skin_mm"]),
                _number(lesion["distance_to_chest_wall_mm"]),
                t_text,
            )
        )
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        click.echo("  ".join(cell.rjust(w) for cell, w in zip(row, widths, strict=True)))
    for lesion in report["lesions"]:
        for flag in lesion["flags"]:
            click.echo(f"lesion {lesion['id']}: {flag}")
    grouping = report["grouping"]
    if report["mode"] == "binary":
        click.echo(
            f"grouping: {grouping['components']} components -> {grouping['lesions']} lesion(s); "
            f"{grouping['fragments_ignored']} fragments < {grouping['min_volume_ml']:g} ml ignored "
            f"({grouping['fragments_ignored_volume_ml']:g} ml); gap <= {grouping['gap_mm']:g} mm "
            f"merged; {grouping['connectivity']}-connectivity"
        )
    else:
        click.echo(f"grouping: {grouping['rule']}")
    stage = report["t_stage"] or "none"
    click.echo(f"T stage (AJCC 8th, imaging size only): {stage}")
    for flag in report["flags"]:
        click.echo(f"  {flag}")


@click.command()
@click.argument("mask", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--breast",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Whole-breast mask on the same grid: distances to skin and chest wall, possible-T4 flags.",
)
@click.option(
    "--lesions",
    "mode",
    type=click.Choice(["auto", "binary", "labels"]),
    default="auto",
    show_default=True,
    help="'binary': non-zero voxels grouped into lesions; 'labels': each value one lesion; "
    "'auto': binary when the mask has one non-zero value.",
)
@click.option(
    "--min-volume-ml",
    type=click.FloatRange(min=0),
    default=None,
    help=f"Binary masks: components smaller than this are ignored fragments "
    f"[default: {HELP_DEFAULT_MIN_VOLUME_ML:g}, a 5 mm sphere].",
)
@click.option(
    "--gap-mm",
    type=click.FloatRange(min=0),
    default=None,
    help=f"Binary masks: components at most this far apart are one lesion "
    f"[default: {HELP_DEFAULT_GAP_MM:g}].",
)
@click.option(
    "--touch-tolerance-mm",
    type=click.FloatRange(min=0),
    default=None,
    help="Distance to skin/chest wall that counts as touching [default: one voxel diagonal].",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON on stdout.")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write the JSON report to this file.",
)
def measure(
    mask: Path,
    breast: Path | None,
    mode: str,
    min_volume_ml: float | None,
    gap_mm: float | None,
    touch_tolerance_mm: float | None,
    as_json: bool,
    out: Path | None,
) -> None:
    """Measure the lesions of MASK: volume, exact maximum diameter, AJCC T category.

    MASK is a binary tumour mask (lesions found by grouping: 26-connected components, fragments
    below --min-volume-ml ignored, components within --gap-mm merged) or an instance label map
    (each value one lesion). Diameters are between voxel centres (as ITK's Feret diameter), in
    mm; points in LPS mm. T4 is never assigned: lesions touching skin or chest wall are flagged.
    """
    from BreastAIAssistantLib.io.volumes import read_volume, write_json
    from BreastAIAssistantLib.measure import GroupingSettings, measure_lesions
    from BreastAIAssistantLib.measure.masks import mask_array, resolve_mode

    image = read_volume(mask)
    breast_image = read_volume(breast) if breast is not None else None
    defaults = GroupingSettings()
    grouping = GroupingSettings(
        gap_mm=defaults.gap_mm if gap_mm is None else gap_mm,
        min_volume_ml=defaults.min_volume_ml if min_volume_ml is None else min_volume_ml,
    )
    resolved = resolve_mode(mask_array(image, "the lesion mask"), mode)  # type: ignore[arg-type]
    if resolved == "labels" and (gap_mm is not None or min_volume_ml is not None):
        click.echo(
            "breast-ai: warning: --gap-mm/--min-volume-ml are ignored for an instance label map; "
            "use --lesions binary to group its voxels",
            err=True,
        )
    report = measure_lesions(
        image,
        breast_image,
        grouping if resolved == "binary" else None,
        mode=resolved,
        touch_tolerance_mm=touch_tolerance_mm,
    )
    data = {"mask": str(mask), "breast_mask_file": str(breast) if breast else None}
    data.update(report.to_dict())
    if out is not None:
        protect = tuple(p for p in (mask, breast) if p is not None)
        if any(out.resolve() == p.resolve() for p in protect):
            from BreastAIAssistantLib.errors import OutputError

            raise OutputError(f"refusing to overwrite the input {out}; choose another --out")
        write_json(data, out)
    if as_json:
        click.echo(json.dumps(data, indent=2))
    else:
        _print_table(data)
        if out is not None:
            click.echo(f"report written to {out}")
