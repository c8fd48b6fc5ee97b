"""Shared CLI pieces: option types, logging set-up, progress bars, the output-folder guard."""

from __future__ import annotations

import json
import logging
import math
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

import click
from tqdm import tqdm

from BreastAIAssistantLib.errors import OutputError
from BreastAIAssistantLib.io import FORMATS


def parse_floats(text: object, skip_empty: bool = False) -> tuple[float, ...] | None:
    """``"1, 1.25"`` -> ``(1.0, 1.25)``; ``None`` when an item is not a finite number.

    The one parser behind every comma-separated option (times, scales, spacing, ranges), so that
    they all accept spaces and refuse ``nan``/``inf`` alike. ``skip_empty`` drops empty items
    (``"0,90,"``).
    """
    items = str(text).replace(" ", "").split(",")
    if skip_empty:
        items = [v for v in items if v]
    try:
        values = tuple(float(v) for v in items)
    except ValueError:
        return None
    return values if all(math.isfinite(v) for v in values) else None


class TimesType(click.ParamType):
    """Comma-separated acquisition times in seconds: ``0,90,180``."""

    name = "times"

    def convert(self, value, param, ctx):
        if isinstance(value, list):
            return value
        times = parse_floats(value, skip_empty=True)
        if times is None:
            self.fail(
                f"{value!r} is not a comma-separated list of seconds, e.g. 0,90,180", param, ctx
            )
        return list(times)


class ScalesType(click.ParamType):
    """Comma-separated test-time scales of the tumour model: ``1,1.25``."""

    name = "scales"

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        scales = parse_floats(value) or ()
        if not scales or not all(0.25 <= v <= 4.0 for v in scales):
            self.fail(f"{value!r} is not a list of scales 0.25-4, e.g. 1,1.25", param, ctx)
        return scales


study_argument = click.argument(
    "study", type=click.Path(exists=True, path_type=Path), metavar="STUDY"
)
format_option = click.option(
    "--input-format",
    "input_format",
    type=click.Choice(["auto", *FORMATS]),
    default="auto",
    show_default=True,
    help="How to read STUDY; 'auto' detects it.",
)
times_option = click.option(
    "--times",
    type=TimesType(),
    default=None,
    help="Acquisition times in seconds, one per phase (e.g. 0,90,180,270); overrides the files.",
)


tumour_scales_option = click.option(
    "--tumour-scales",
    type=ScalesType(),
    default=None,
    metavar="S1,S2,...",
    help="Run the tumour model on its grid divided by each scale and average the "
    "probabilities (e.g. 1,1.25; about 1 + 1.25³ times the work); default: the model's "
    "manifest (1).",
)


def echo_cautions(report: dict[str, Any]) -> None:
    """Print the cautions of a ``report.json`` (a study outside what the models were built for)."""
    for caution in report.get("cautions") or []:
        click.echo(f"  caution: {caution['message']}")


def configure_logging(verbosity: int) -> None:
    """Log to stderr: warnings by default, info with -v, debug with -vv."""
    level = logging.WARNING - 10 * min(verbosity, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", force=True)


@contextmanager
def stage_progress(
    description: str, enabled: bool = True
) -> Iterator[Callable[[str, float], None]]:
    """A progress bar driven by a ``progress(stage, fraction)`` callback from the core."""
    # disable=None: the bar shows on a terminal only, so logs and CI output stay clean
    bar = tqdm(
        total=100,
        desc=description,
        unit="%",
        disable=None if enabled else True,
        leave=False,
        bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}",
    )

    def update(stage: str, fraction: float) -> None:
        bar.set_description_str(f"{description} ({stage})", refresh=False)
        bar.n = round(100 * max(0.0, min(1.0, fraction)))
        bar.refresh()

    try:
        yield update
    finally:
        bar.close()


@contextmanager
def json_progress(
    stages: Mapping[str, tuple[float, float]] | None = None, stream: TextIO | None = None
) -> Iterator[Callable[[str, float], None]]:
    """A ``progress(stage, fraction)`` callback that writes one JSON line per update.

    Made for a parent process that runs the CLI and shows its own progress bars (the Slicer
    module reads it through ``QProcess``). Each line is one JSON object (log lines on the same
    stream never start with ``{``):
    ``{"stage": ..., "fraction": ..., "stage_fraction": ..., "message": ...}``, where ``stage`` is
    the part of the core's stage name before ``":"`` (``maps``, ``breast``, ``tumour``, ...),
    ``fraction`` the whole job's progress in ``[0, 1]``, ``stage_fraction`` the progress inside
    that stage (``null`` for a stage not in ``stages``) and ``message`` the core's full stage
    text. Lines are flushed at once; repeated identical updates are skipped.

    Args:
        stages: Stage name -> (start, end) fraction of the whole job, e.g.
            :data:`BreastAIAssistantLib.pipeline.STAGES`.
        stream: Where to write (default ``sys.stderr``, which keeps stdout for results).
    """
    out = stream if stream is not None else sys.stderr
    last: list[tuple[str, int]] = []

    def update(stage: str, fraction: float) -> None:
        fraction = max(0.0, min(1.0, float(fraction)))
        name = stage.split(":", 1)[0].strip()
        stage_fraction = None
        if stages and name in stages:
            lo, hi = stages[name]
            stage_fraction = max(0.0, min(1.0, (fraction - lo) / (hi - lo))) if hi > lo else 1.0
        key = (stage, round(1000 * fraction))
        if last and last[0] == key:
            return
        last[:] = [key]
        record = {"stage": name, "fraction": round(fraction, 4),
                  "stage_fraction": None if stage_fraction is None else round(stage_fraction, 4),
                  "message": stage}  # fmt: skip
        out.write(json.dumps(record) + "\n")
        out.flush()

    yield update


def check_output_folder(out: Path, study: Path) -> Path:
    """Refuse an output folder that is, or lies inside, an input study folder.

    Writing there would mix results into the study, and a later read of the folder would take
    the maps for phases.
    """
    if study.is_dir():
        out_resolved, study_resolved = out.resolve(), study.resolve()
        if out_resolved == study_resolved or study_resolved in out_resolved.parents:
            raise OutputError(
                f"the output folder {out} is inside the input study {study}; "
                "choose a folder outside it"
            )
    if out.exists() and not out.is_dir():
        raise OutputError(f"--out {out} exists and is not a folder")
    return out


def apply_options(options):
    """Apply a list of click options as one decorator (shared option groups)."""

    def decorate(func):
        for option in reversed(options):
            func = option(func)
        return func

    return decorate
