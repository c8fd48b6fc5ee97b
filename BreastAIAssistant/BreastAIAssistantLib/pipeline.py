"""The main job: one DCE study in, maps + masks + lesions + measurements + report out.

``run_analysis`` is the one API that the CLI (``breast-ai run``), the Slicer module, the tests
and the benchmarks share. Stages, each timed and reported through ``progress(stage, fraction)``:

1. kinetic maps (:mod:`.dce`);
2. whole-breast mask (breast bundle);
3. tumour probability inside the breast (tumour bundle), lesion instances (threshold,
   26-connected components, minimum volume);
4. per-lesion measurements with T category (:mod:`.measure`) and kinetics (mean curves, curve
   type);
5. per-lesion classifiers (:mod:`.classify`: MRSM malignancy, receptors and subtype, DMIF-Net
   from the lesion's box) with Grad-CAM maps;
6. outputs on the pre-contrast grid, each written atomically, ``run.json`` last.

It never prints; ``cancel()`` returning True stops it between stages and between windows.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk
import torch

from BreastAIAssistantLib.bundles import ModelBundle, find_bundle
from BreastAIAssistantLib.dce import DCEMaps, MapSettings, compute_maps, write_maps
from BreastAIAssistantLib.dce.lesion_kinetics import lesion_kinetics
from BreastAIAssistantLib.errors import BreastAIError
from BreastAIAssistantLib.inference import Cancelled
from BreastAIAssistantLib.inference.postprocess import (
    clean_breast_mask,
    lesion_grouping,
    lesion_instances,
    lesion_thresholds,
)
from BreastAIAssistantLib.inference.predictor import BreastPredictor, TumourPredictor
from BreastAIAssistantLib.inference.refine import grow_small_lesions, growth_settings
from BreastAIAssistantLib.io.volumes import write_json, write_volume
from BreastAIAssistantLib.measure import measure_lesions
from BreastAIAssistantLib.provenance import run_record
from BreastAIAssistantLib.study import DCEStudy

logger = logging.getLogger(__name__)

Progress = Callable[[str, float], None]

BREAST_MODEL = "breast-unet-demo"
TUMOUR_MODEL = "tumour-st-demo"
CLASSIFIER_MODELS = ("mrsm-demo", "receptors-demo", "dmif-demo")

#: Stage -> (start, end) fraction of the whole job, for one progress bar.
STAGES = {
    "maps": (0.0, 0.1), "breast": (0.1, 0.25), "tumour": (0.25, 0.75),
    "measure": (0.75, 0.8), "classify": (0.8, 0.9), "write": (0.9, 1.0),
}  # fmt: skip


@dataclass(frozen=True)
class AnalysisSettings:
    """Settings of :func:`run_analysis`.

    Attributes:
        breast_model: Breast bundle id or folder.
        tumour_model: Tumour bundle id or folder.
        tumour_scales: Test-time scales of the tumour model
            (:class:`~BreastAIAssistantLib.inference.predictor.TumourPredictor`); ``None``:
            the manifest's.
        classifiers: Classifier bundle ids or folders run on every lesion (empty: none).
        gradcam: ``"gradcam"``, ``"gradcam++"`` or ``None`` (no heat maps).
        radiomics_model: Folder of a saved radiomics model (``breast-ai radiomics-model``)
            applied to every lesion, or ``None``.
        model_dirs: Extra folders searched for bundles first.
        device: ``auto``, ``cpu`` or ``cuda``.
        batch_size: Windows per network call.
        min_lesion_ml: Smallest reported lesion.
        lesion_gap_mm: Network lesion components at most this far apart are one lesion
            (:func:`~BreastAIAssistantLib.inference.postprocess.lesion_instances`); ``None``:
            the tumour manifest's grouping (``outputs.gap_mm`` and ``merge_below_ml``); a
            number: that gap for every component.
        maps: Kinetic-map settings.
        exports: Extra export formats (:data:`BreastAIAssistantLib.export.FORMATS`);
            ``seg.nrrd`` and ``csv`` are always written.
        report: Write ``report.html``.
        pdf: Also write ``report.pdf``.
        dicom_source: The DICOM folder of a DICOM study, for a DICOM SEG that references it.
    """

    breast_model: str = BREAST_MODEL
    tumour_model: str = TUMOUR_MODEL
    tumour_scales: tuple[float, ...] | None = None
    classifiers: tuple[str, ...] = CLASSIFIER_MODELS
    gradcam: str | None = "gradcam"
    radiomics_model: str | None = None
    model_dirs: tuple[str, ...] = ()
    device: str = "auto"
    batch_size: int = 2
    min_lesion_ml: float = 0.02
    lesion_gap_mm: float | None = None
    maps: MapSettings = field(default_factory=MapSettings)
    exports: tuple[str, ...] = ()
    report: bool = True
    pdf: bool = False
    dicom_source: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class AnalysisResult:
    """Everything the job produced (images on the pre-contrast grid)."""

    maps: DCEMaps
    breast_mask: sitk.Image
    tumour_probability: sitk.Image
    lesion_labels: sitk.Image
    report: dict[str, Any]
    files: dict[str, Path]
    timings_s: dict[str, float]


def _stage_progress(progress: Progress | None, stage: str) -> Progress | None:
    if progress is None:
        return None
    lo, hi = STAGES[stage]
    return lambda name, fraction: progress(f"{stage}: {name}", lo + (hi - lo) * fraction)


def _lesion_records(measured: dict[str, Any], kinetics: dict[int, Any],
                    predictions: dict[int, dict[str, Any]]) -> list[dict[str, Any]]:
    records = []
    for lesion in measured["lesions"]:
        kin = kinetics.get(int(lesion["id"]))
        kin_dict = kin.to_dict() if kin is not None else {}
        records.append({**lesion, "kinetics": kin_dict,
                        "curve_type": kin_dict.get("curve_type_name"),
                        "mean_curve": kin_dict.get("mean_curve"),
                        **predictions.get(int(lesion["id"]), {})})  # fmt: skip
    return records


def _radiomics(applier: Any, study: DCEStudy, labels: sitk.Image, breast: sitk.Image
               ) -> dict[int, dict[str, Any]]:
    """The saved radiomics model's probability for every lesion (the shell kept in the breast)."""
    array = sitk.GetArrayFromImage(labels)
    out: dict[int, dict[str, Any]] = {}
    for lesion_id in (int(v) for v in np.unique(array) if v):
        mask = sitk.GetImageFromArray((array == lesion_id).astype(np.uint8))
        mask.CopyInformation(labels)
        try:
            out[lesion_id] = applier.predict(study, mask, breast)
        except BreastAIError as exc:  # e.g. a lesion too small for its features: say so
            logger.warning("lesion %d: no radiomics prediction: %s", lesion_id, exc)
            out[lesion_id] = {"radiomics_probability": None, "radiomics_error": str(exc)}
    return out


def _write_gradcams(out: Path, classified: dict[int, list[Any]]
                    ) -> tuple[dict[int, dict[str, Any]], dict[str, Path]]:
    """Write ``gradcam_<model>_lesion<k>.nii.gz`` files; per lesion the report.json fields."""
    from BreastAIAssistantLib.classify.lesions import prediction_fields

    predictions: dict[int, dict[str, Any]] = {}
    files: dict[str, Path] = {}
    for lesion_id, results in classified.items():
        fields = prediction_fields(results)
        maps: dict[str, Any] = {}
        for result in results:
            if result.heatmap is None:
                continue
            name = f"gradcam_{result.model}_lesion{lesion_id}.nii.gz"
            files[name] = write_volume(result.heatmap, out / name)
            maps[result.model] = {"path": name, "volumes": result.heatmap_volumes or None}
        fields["gradcam"] = maps
        fields["classifier_models"] = [r.model for r in results]
        predictions[lesion_id] = fields
    return predictions, files


def run_analysis(
    study: DCEStudy,
    out_dir: str | Path,
    settings: AnalysisSettings | None = None,
    progress: Progress | None = None,
    cancel: Callable[[], bool] | None = None,
    arguments: dict[str, Any] | None = None,
) -> AnalysisResult:
    """Analyse ``study`` and write every output to ``out_dir``.

    Raises:
        BundleError: a model is missing, altered or incompatible.
        Cancelled: ``cancel()`` returned True.
    """
    from BreastAIAssistantLib.export import export_all
    from BreastAIAssistantLib.inference.device import describe_device
    from BreastAIAssistantLib.inference.domain import grid_cautions

    settings = settings or AnalysisSettings()
    out = Path(out_dir)
    timings: dict[str, float] = {}

    def check_cancel() -> None:
        if cancel is not None and cancel():
            raise Cancelled("analysis cancelled")

    # models and device first: a missing model or GPU fails before any work is done
    bundles: list[ModelBundle] = [
        find_bundle(settings.breast_model, settings.model_dirs),
        find_bundle(settings.tumour_model, settings.model_dirs),
    ]
    kwargs = {"device": settings.device, "batch_size": settings.batch_size}
    breast_predictor = BreastPredictor(bundles[0], **kwargs)
    tumour_predictor = TumourPredictor(bundles[1], scales=settings.tumour_scales, **kwargs)
    radiomics = None
    if settings.radiomics_model is not None:
        from BreastAIAssistantLib.radiomics.apply import RadiomicsApplier

        radiomics = RadiomicsApplier(settings.radiomics_model)
    classifiers = []
    if settings.classifiers:
        from BreastAIAssistantLib.classify.predictor import load_classifier

        for name in settings.classifiers:
            bundle = find_bundle(name, settings.model_dirs)
            bundles.append(bundle)
            classifiers.append(load_classifier(
                bundle, device=settings.device, explain=settings.gradcam is not None,
                method=settings.gradcam or "gradcam"))

    grids = [(b.manifest.id, b.manifest.inputs.get("spacing_mm")) for b in bundles[:2]]
    cautions = grid_cautions(study.spacing_mm, grids)
    for caution in cautions:
        logger.warning("caution: %s", caution.message)

    clock = time.perf_counter()
    maps = compute_maps(study, settings.maps, progress=_stage_progress(progress, "maps"))
    timings["maps"] = time.perf_counter() - clock
    check_cancel()

    clock = time.perf_counter()
    breast_prob, breast_info = breast_predictor.predict(
        study, _stage_progress(progress, "breast"), cancel
    )
    breast_mask = clean_breast_mask(breast_prob)
    timings["breast"] = time.perf_counter() - clock
    check_cancel()

    clock = time.perf_counter()
    tumour_prob, tumour_info = tumour_predictor.predict(
        study, breast_mask, maps.phases.early, _stage_progress(progress, "tumour"), cancel
    )
    threshold, seed = lesion_thresholds(bundles[1].manifest.outputs)
    gap, merge_below = lesion_grouping(bundles[1].manifest.outputs)
    if settings.lesion_gap_mm is not None:
        gap, merge_below = settings.lesion_gap_mm, None
    labels = lesion_instances(tumour_prob, threshold, settings.min_lesion_ml, seed, gap,
                              merge_below)  # fmt: skip
    labels = grow_small_lesions(labels, study, breast_mask,
                                growth_settings(bundles[1].manifest.outputs))  # fmt: skip
    timings["tumour"] = time.perf_counter() - clock
    check_cancel()

    clock = time.perf_counter()
    measured = measure_lesions(labels, breast_mask, mode="labels", allow_empty=True)
    kinetics = lesion_kinetics(study, labels, maps=maps) if measured.lesions else {}
    timings["measure"] = time.perf_counter() - clock
    check_cancel()

    clock = time.perf_counter()
    classified: dict[int, list[Any]] = {}
    if classifiers and measured.lesions:
        from BreastAIAssistantLib.classify.lesions import classify_lesions

        classified = classify_lesions(study, labels, classifiers,
                                      _stage_progress(progress, "classify"), cancel)
    radiomics_predictions: dict[int, dict[str, Any]] = {}
    radiomics_features: dict[int, dict[str, float]] = {}
    if radiomics is not None and measured.lesions:
        radiomics_predictions = _radiomics(radiomics, study, labels, breast_mask)
        radiomics_features = {k: v.pop("features") for k, v in radiomics_predictions.items()
                              if "features" in v}  # fmt: skip
    timings["classify"] = time.perf_counter() - clock
    check_cancel()

    clock = time.perf_counter()
    if progress is not None:
        progress("write", STAGES["write"][0])
    files: dict[str, Path] = {
        "tumor_mask": write_volume(labels, out / "tumor_mask.nii.gz"),
        "breast_mask": write_volume(breast_mask, out / "breast_mask.nii.gz"),
        "tumor_probability": write_volume(tumour_prob, out / "tumor_probability.nii.gz"),
    }
    files.update({f"maps/{k}": v for k, v in write_maps(maps, out / "maps").items()})
    predictions, gradcam_files = _write_gradcams(out, classified)
    for lesion_id, values in radiomics_predictions.items():
        predictions.setdefault(lesion_id, {}).update(values)
    if radiomics_features:
        from BreastAIAssistantLib.radiomics.apply import LESION_FEATURES_CSV, write_lesion_features

        files["radiomics_features"] = write_lesion_features(radiomics_features,
                                                            out / LESION_FEATURES_CSV)  # fmt: skip
    files.update(gradcam_files)
    formats: Sequence[str] = ("seg.nrrd", "csv", *settings.exports)
    exported = export_all(study, out, breast_mask, labels if measured.lesions else None,
                          measured, tuple(dict.fromkeys(formats)),
                          settings.dicom_source)  # fmt: skip
    for fmt, paths in exported.items():
        for path in paths:
            files[f"{fmt}:{path.name}"] = path
    measured_dict = measured.to_dict()
    models = [b.manifest.summary() for b in bundles]
    device = describe_device(torch.device(tumour_info.device))
    report = {
        "study": study.describe(),
        "research_use_only": "Not for clinical decisions. Models are research demonstrations "
        "trained on a synthetic phantom.",
        "models": models,
        "device": device,
        "cautions": [c.to_dict() for c in cautions],
        "inference": {"breast": breast_info.to_dict(), "tumour": tumour_info.to_dict()},
        "t_stage": measured_dict.get("t_stage"),
        "grouping": {
            "rule": "tumour probability >= threshold (with a seed: components reaching it); "
            "26-connected components; < min_volume_ml dropped; components at most gap_mm apart "
            "merged, if merge_below_ml is set only those smaller than it (gap_mm 0: each "
            "component is a lesion)",
            "threshold": threshold,
            "seed_threshold": seed,
            "min_volume_ml": settings.min_lesion_ml,
            "gap_mm": gap,
            "merge_below_ml": merge_below,
        },
        "lesions": _lesion_records(measured_dict, kinetics, predictions),
        "dce": maps.provenance(),
        "timings_s": {k: round(v, 3) for k, v in timings.items()},
    }
    files["report.json"] = write_json(report, out / "report.json")
    if settings.report:
        from BreastAIAssistantLib.report import write_report

        written = write_report(out, study=study, maps=maps, lesions=measured, tumour_labels=labels,
                               kinetics=kinetics, breast_mask=breast_mask, models=models,
                               timings=timings, pdf=settings.pdf,
                               classified=classified,
                               cautions=[c.message for c in cautions])  # fmt: skip
        files.update({f"report.{k}": v for k, v in written.items()})
    timings["write"] = time.perf_counter() - clock
    record = run_record(
        "run", {**(arguments or {}), "settings": settings.to_dict()}, study=study.describe(),
        outputs={k: str(v.relative_to(out)) for k, v in files.items()}, timings_s=timings,
        extra={"models": models, "device": device},
    )  # fmt: skip
    files["run.json"] = write_json(record, out / "run.json")
    if progress is not None:
        progress("done", 1.0)
    return AnalysisResult(maps, breast_mask, tumour_prob, labels, report, files, timings)
