"""``breast-ai run``: the main job on one study."""

from __future__ import annotations

from pathlib import Path

import click

from BreastAIAssistantLib.cli.common import (
    check_output_folder,
    echo_cautions,
    format_option,
    json_progress,
    stage_progress,
    study_argument,
    times_option,
    tumour_scales_option,
)


@click.command()
@study_argument
@format_option
@times_option
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    required=True,
    help="Output folder (created if needed; never inside the input study).",
)
@click.option(
    "--device",
    type=click.Choice(["auto", "cpu", "cuda"]),
    default="auto",
    show_default=True,
    help="Where the networks run; auto = CUDA when available.",
)
@click.option(
    "--models",
    "model_dirs",
    type=click.Path(exists=True, file_okay=False),
    multiple=True,
    help="Folder with model bundles, searched before the built-in ones.",
)
@click.option(
    "--breast-model",
    default="breast-unet-demo",
    show_default=True,
    help="Breast model: bundle id or folder.",
)
@click.option(
    "--tumour-model",
    default="tumour-st-demo",
    show_default=True,
    help="Tumour model: bundle id or folder.",
)
@tumour_scales_option
@click.option(
    "--classifier",
    "classifier_models",
    multiple=True,
    help="Classifier bundle run on every lesion (repeatable; default: mrsm-demo, "
    "receptors-demo, dmif-demo).",
)
@click.option("--no-classify", is_flag=True, help="Skip the lesion classifiers.")
@click.option(
    "--gradcam",
    type=click.Choice(["gradcam", "gradcam++", "none"]),
    default="gradcam",
    show_default=True,
    help="Heat maps of the classifiers (gradcam_<model>_lesion<k>.nii.gz).",
)
@click.option(
    "--radiomics-model",
    type=click.Path(exists=True, file_okay=False),
    default=None,
    help="Saved radiomics model folder (breast-ai radiomics-model) applied to every lesion.",
)
@click.option(
    "--export",
    "exports",
    type=click.Choice(["nrrd", "dicom-seg"]),
    multiple=True,
    help="Extra exports (repeatable): NRRD label maps, DICOM SEG.",
)
@click.option("--pdf", is_flag=True, help="Also write report.pdf.")
@click.option("--no-report", is_flag=True, help="Skip report.html.")
@click.option("--no-progress", is_flag=True, help="Hide the progress bar.")
@click.option(
    "--progress-json",
    is_flag=True,
    help="Instead of the bar, print one JSON line per progress update to stderr: "
    '{"stage": ..., "fraction": ..., "stage_fraction": ..., "message": ...} '
    "(for programs that run breast-ai, e.g. the Slicer module).",
)
def run(study: Path, input_format: str, times: list[float] | None, out: Path, device: str,
        model_dirs: tuple[str, ...], breast_model: str, tumour_model: str,
        tumour_scales: tuple[float, ...] | None, classifier_models: tuple[str, ...],
        no_classify: bool, gradcam: str,
        radiomics_model: str | None,
        exports: tuple[str, ...], pdf: bool, no_report: bool,
        no_progress: bool, progress_json: bool) -> None:  # fmt: skip
    """Analyse STUDY: maps, breast mask, tumour segmentation, lesions, T stage, lesion
    classifiers with Grad-CAM, report.

    Writes to --out, on the pre-contrast grid: tumor_mask.nii.gz (lesions 1..n),
    breast_mask.nii.gz, tumor_probability.nii.gz, maps/, gradcam_<model>_lesion<k>.nii.gz,
    segmentation.seg.nrrd (Slicer), measurements.csv, report.json, report.html and run.json.
    The bundled models are research demonstrations trained on a synthetic phantom: not for
    clinical use.
    """
    from BreastAIAssistantLib.io import load_study
    from BreastAIAssistantLib.pipeline import (
        CLASSIFIER_MODELS,
        STAGES,
        AnalysisSettings,
        run_analysis,
    )

    check_output_folder(out, study)
    loaded = load_study(study, input_format, times)
    is_dicom = loaded.metadata.get("reader") in ("dicom", "breastdm")
    settings = AnalysisSettings(
        breast_model=breast_model, tumour_model=tumour_model, tumour_scales=tumour_scales,
        model_dirs=model_dirs,
        classifiers=() if no_classify else (classifier_models or CLASSIFIER_MODELS),
        gradcam=None if gradcam == "none" else gradcam, radiomics_model=radiomics_model,
        device=device, exports=exports, report=not no_report, pdf=pdf,
        dicom_source=str(study) if is_dicom and "dicom-seg" in exports else None,
    )  # fmt: skip
    arguments = {"study": str(study), "out": str(out), "input_format": input_format,
                 "times": times}  # fmt: skip
    reporter = (json_progress(STAGES) if progress_json
                else stage_progress("run", enabled=not no_progress))  # fmt: skip
    with reporter as progress:
        result = run_analysis(loaded, out, settings, progress, arguments=arguments)
    lesions = result.report["lesions"]
    click.echo(f"{len(lesions)} lesion(s); T stage {result.report['t_stage'] or 'none'} "
               "(research demo models, not for clinical use)")  # fmt: skip
    echo_cautions(result.report)
    for lesion in lesions:
        click.echo(f"  lesion {lesion['id']}: {lesion['volume_ml']:.2f} ml, max diameter "
                   f"{lesion['max_diameter_mm']:.1f} mm, {lesion['t_category']}, "
                   f"curve {lesion['curve_type']}")  # fmt: skip
        predicted = [f"{key} {lesion[key]:.2f}" for key in
                     ("malignancy_probability", "dmif_malignancy_probability", "er", "pr", "her2",
                      "radiomics_probability")
                     if lesion.get(key) is not None]
        if lesion.get("ki67") is not None:
            predicted.append(f"Ki-67 {lesion['ki67']:.0f}%, {lesion['subtype']}")
        if predicted:
            click.echo("    " + ", ".join(predicted))
    click.echo(f"outputs in {out} (report: {out / 'report.html'})")
