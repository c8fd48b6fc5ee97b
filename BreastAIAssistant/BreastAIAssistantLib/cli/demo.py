"""``breast-ai demo``: the main job on a phantom case generated on the fly."""

from __future__ import annotations

from pathlib import Path

import click

from BreastAIAssistantLib.cli.common import check_output_folder, echo_cautions, stage_progress

#: Default demo seed: a clinical-size 6-phase case with a malignant and a benign lesion.
DEMO_SEED = 6


@click.command()
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=Path("demo-out"),
    show_default=True,
    help="Output folder.",
)
@click.option(
    "--seed",
    type=click.IntRange(0),
    default=DEMO_SEED,
    show_default=True,
    help="Seed of the synthetic example case.",
)
@click.option(
    "--size",
    type=click.Choice(["clinical", "small"]),
    default="clinical",
    show_default=True,
    help="Matrix of the example case (clinical: 448x448x160).",
)
@click.option(
    "--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True
)
@click.option("--no-progress", is_flag=True, help="Hide the progress bar.")
def demo(out: Path, seed: int, size: str, device: str, no_progress: bool) -> None:
    """Run the main job on a built-in synthetic example case (no download, no data needed).

    Generates a phantom case into OUT/example_case (phases + study.json, readable by every
    command, with its ground truth: tumour_mask.nii.gz, breast_mask.nii.gz, case.json), then
    runs `breast-ai run` on it into OUT/results and compares the lesions found with the truth.
    Synthetic data and research-demo models: nothing here says anything about clinical accuracy.
    """
    from BreastAIAssistantLib.io import load_study
    from BreastAIAssistantLib.phantom import generate_case, write_case
    from BreastAIAssistantLib.pipeline import AnalysisSettings, run_analysis

    check_output_folder(out, out / "example_case")
    case = generate_case(seed, size=size, n_phases=6 if seed == DEMO_SEED else None)
    case_dir = out / "example_case"
    write_case(case, case_dir)
    study = load_study(case_dir)
    settings = AnalysisSettings(device=device)
    with stage_progress("demo", enabled=not no_progress) as progress:
        arguments = {"command": "demo", "seed": seed, "size": size}
        result = run_analysis(study, out / "results", settings, progress, arguments=arguments)
    click.echo(f"example case: {case_dir} ({study.n_phases} phases, synthetic)")
    click.echo("truth:")
    for lesion in case.truth["lesions"]:
        click.echo(f"  {lesion['class']:<9} max diameter {lesion['max_diameter_mm']:.1f} mm, "
                   f"{lesion['t_category']}, curve {lesion['curve_type']}")  # fmt: skip
    click.echo(f"found (research demo models), T stage {result.report['t_stage'] or 'none'}:")
    echo_cautions(result.report)
    for lesion in result.report["lesions"]:
        click.echo(f"  lesion {lesion['id']}: max diameter {lesion['max_diameter_mm']:.1f} mm, "
                   f"{lesion['t_category']}, curve {lesion['curve_type']}")  # fmt: skip
    click.echo(f"report: {out / 'results' / 'report.html'}")
