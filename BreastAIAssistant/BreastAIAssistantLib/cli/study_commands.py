"""Study commands: ``info`` and ``maps``."""

from __future__ import annotations

import json
from pathlib import Path

import click

from BreastAIAssistantLib.cli.common import (
    apply_options,
    check_output_folder,
    format_option,
    stage_progress,
    study_argument,
    times_option,
)


@click.command()
@study_argument
@format_option
@times_option
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def info(study: Path, input_format: str, times: list[float] | None, as_json: bool) -> None:
    """Show a study's phases, acquisition times, grid size, spacing and orientation."""
    from BreastAIAssistantLib.io import load_study

    summary = load_study(study, input_format, times).describe()
    if as_json:
        click.echo(json.dumps(summary, indent=2))
        return
    times_text = (
        ", ".join(f"{t:g}" for t in summary["times_s"]) + " s"
        if summary["times_s"] is not None
        else "unknown (phase order only)"
    )
    rows = [
        ("source", summary["source"]),
        ("phases", f"{summary['n_phases']} (0 = pre-contrast)"),
        ("times", times_text),
        ("size (x, y, z)", " x ".join(map(str, summary["size_xyz"])) + " voxels"),
        ("spacing (x, y, z)", " x ".join(f"{s:g}" for s in summary["spacing_mm"]) + " mm"),
        ("origin (LPS)", ", ".join(f"{o:.2f}" for o in summary["origin_lps_mm"]) + " mm"),
        ("orientation", summary["orientation"] + (" (oblique)" if summary["oblique"] else "")),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        click.echo(f"{key:<{width}}  {value}")


MAP_FORMATS = {"nii.gz": ".nii.gz", "nii": ".nii", "nrrd": ".nrrd", "mha": ".mha"}

map_options = [
    click.option(
        "--out",
        type=click.Path(path_type=Path),
        required=True,
        help="Output folder (created if needed; never inside the input study).",
    ),
    click.option(
        "--format",
        "out_format",
        type=click.Choice(list(MAP_FORMATS)),
        default="nii.gz",
        show_default=True,
        help="File format of the maps.",
    ),
    click.option(
        "--preset",
        type=click.Choice(["default", "ispy"]),
        default="default",
        show_default=True,
        help="Early/late phases: 'default' ~90 s and the last phase; "
        "'ispy' ~150 s and ~450 s (I-SPY 2).",
    ),
    click.option(
        "--early",
        type=int,
        default=None,
        help="Early phase index (1 = first post-contrast); overrides --preset.",
    ),
    click.option("--late", type=int, default=None, help="Late phase index; overrides --preset."),
    click.option("--no-progress", is_flag=True, help="Hide the progress bar."),
]


def _map_settings(preset: str, early: int | None, late: int | None):
    from BreastAIAssistantLib.dce import MapSettings

    return MapSettings(preset=preset, early=early, late=late)


def _print_outputs(written: dict[str, Path], maps) -> None:
    click.echo(
        f"early phase {maps.phases.early}, late phase {maps.phases.late} ({maps.phases.reason})"
    )
    for name, path in written.items():
        click.echo(f"  {name:<18} {path}")


@click.command()
@study_argument
@format_option
@times_option
@apply_options(map_options)
def maps(
    study: Path,
    input_format: str,
    times: list[float] | None,
    out: Path,
    out_format: str,
    preset: str,
    early: int | None,
    late: int | None,
    no_progress: bool,
) -> None:
    """Compute subtraction and kinetic maps of STUDY and write them to --out.

    Writes, on the pre-contrast grid: sub_<k> (phase k minus pre-contrast), pe (early percent
    enhancement), ser (signal enhancement ratio), peak_enhancement, time_to_peak, wash_in,
    washout, curve_type (0 none, 1 persistent, 2 plateau, 3 washout) and mip (maximum-intensity
    projection of the early subtraction), plus run.json with the settings and versions.
    """
    from BreastAIAssistantLib.io import load_study
    from BreastAIAssistantLib.workflows import run_maps

    check_output_folder(out, study)
    settings = _map_settings(preset, early, late)
    loaded = load_study(study, input_format, times)
    arguments = {
        "study": str(study),
        "input_format": input_format,
        "times": times,
        "out": str(out),
        "format": out_format,
        **settings.to_dict(),
    }
    with stage_progress("maps", enabled=not no_progress) as progress:
        result, written = run_maps(
            loaded, out, settings, MAP_FORMATS[out_format], progress, arguments
        )
    _print_outputs(written, result)
