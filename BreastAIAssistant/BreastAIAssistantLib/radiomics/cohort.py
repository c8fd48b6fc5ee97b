"""Cohort feature extraction: a CSV of cases in, one feature row per case out.

Cohort CSV (UTF-8, header row):

* ``case_id`` (required, unique);
* per modality ``M``: ``M_image`` and ``M_mask`` (paths, relative to the CSV's folder or
  absolute), optionally ``M_label`` (the mask value of the lesion; default: every non-zero
  voxel). ``M_image`` is either a **DCE study** (a study folder, a 4-D NIfTI or a DICOM folder:
  anything ``breast-ai run`` reads; features from the images the settings name: pre, post<k>,
  sub<k>, kinetic maps) or a **single image** (2-D or 3-D NIfTI/NRRD/MHA, PNG, or a DICOM file:
  ultrasound, mammography, T2W...; image name ``image``). Masks must be on their image's grid;
- any other column (labels, clinical data) is copied to the output unchanged.

Output columns: ``case_id``, the copied columns, then ``M:<image>_<region>_<family>_<feature>``
for every modality (so modalities stay apart for fusion), sorted. Extraction runs over studies in
parallel processes (the rows of one study go to one worker, which loads it once); the output is
rewritten atomically every few seconds as cases finish and at the end, so an interrupted run keeps
its work and a rerun skips the cases already in the output (resumable).
A case that fails is logged with its error in ``<out>.failures.log`` and left out.
"""

from __future__ import annotations

import csv
import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk

from BreastAIAssistantLib.errors import BreastAIError
from BreastAIAssistantLib.radiomics.settings import RadiomicsSettings

logger = logging.getLogger(__name__)

Progress = Callable[[int, int, str], None]


class CohortError(BreastAIError):
    """A cohort CSV that cannot be used."""


@dataclass
class CohortCase:
    """One row of the cohort CSV."""

    case_id: str
    modalities: dict[str, tuple[Path, Path, int | None]]
    extra: dict[str, str] = field(default_factory=dict)


def read_cohort(path: str | Path) -> list[CohortCase]:
    """Parse a cohort CSV (see the module docstring).

    Raises:
        CohortError: No ``case_id`` column, duplicate ids, no modality, a missing file.
    """
    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    except OSError as exc:
        raise CohortError(f"cannot read the cohort CSV {path}: {exc}") from None
    if not rows or "case_id" not in rows[0]:
        raise CohortError(f"{path} needs a header with a case_id column and at least one row")
    columns = list(rows[0])
    modalities = sorted(c[: -len("_image")] for c in columns if c.endswith("_image"))
    if not modalities:
        raise CohortError(f"{path} has no <modality>_image / <modality>_mask column pair")
    for m in modalities:
        if f"{m}_mask" not in columns:
            raise CohortError(f"{path}: column {m}_image has no matching {m}_mask column")
        if "_" in m or ":" in m:
            raise CohortError(f"modality name {m!r} may not contain '_' or ':'")
    used = {"case_id"} | {f"{m}_{s}" for m in modalities for s in ("image", "mask", "label")}
    cases, seen = [], set()
    for number, row in enumerate(rows, start=2):
        case_id = (row.get("case_id") or "").strip()
        if not case_id or case_id in seen:
            raise CohortError(f"{path} line {number}: empty or duplicate case_id {case_id!r}")
        seen.add(case_id)
        entries = {}
        for m in modalities:
            image, mask = row.get(f"{m}_image") or "", row.get(f"{m}_mask") or ""
            if not image and not mask:
                continue  # this case lacks the modality: its features stay empty
            files = []
            for value in (image, mask):
                p = Path(value)
                p = p if p.is_absolute() else path.parent / p
                if not p.exists():
                    raise CohortError(f"{path} line {number}: {p} does not exist")
                files.append(p)
            label = (row.get(f"{m}_label") or "").strip()
            entries[m] = (files[0], files[1], int(label) if label else None)
        extra = {k: v for k, v in row.items() if k not in used and k is not None}
        cases.append(CohortCase(case_id, entries, extra))
    return cases


def _binary(mask: sitk.Image, label: int | None) -> sitk.Image:
    array = sitk.GetArrayFromImage(mask)
    binary = array == label if label is not None else array != 0
    if not binary.any():
        raise BreastAIError("the lesion mask is empty" + (f" for label {label}" if label else ""))
    image = sitk.GetImageFromArray(binary.astype(np.uint8))
    image.CopyInformation(mask)
    return image


def _is_study(path: Path) -> bool:
    if path.is_dir():
        return True
    if path.name.endswith((".nii", ".nii.gz")):
        reader = sitk.ImageFileReader()
        reader.SetFileName(str(path))
        reader.ReadImageInformation()
        return reader.GetDimension() == 4
    return False


def _single_image(path: Path) -> sitk.Image:
    image = sitk.ReadImage(str(path))
    if image.GetNumberOfComponentsPerPixel() > 1:  # RGB PNG / ultrasound: luminance
        channels = [sitk.VectorIndexSelectionCast(image, i, sitk.sitkFloat32) for i in range(3)]
        image = 0.299 * channels[0] + 0.587 * channels[1] + 0.114 * channels[2]
    image = sitk.Cast(image, sitk.sitkFloat32)
    if image.GetDimension() == 2:
        image = sitk.JoinSeries([image])
    return image


_LAST_STUDY: dict[str, Any] = {}


def case_features(case: CohortCase, settings: RadiomicsSettings) -> dict[str, Any]:
    """Every modality's features of one case (runs in a worker process)."""
    from BreastAIAssistantLib.io import load_study
    from BreastAIAssistantLib.radiomics.features import dce_images, lesion_features

    row: dict[str, Any] = {"case_id": case.case_id, **case.extra}
    for modality, (image_path, mask_path, label) in case.modalities.items():
        mask = sitk.ReadImage(str(mask_path))
        if mask.GetDimension() == 2:
            mask = sitk.JoinSeries([mask])
        lesion = _binary(mask, label)
        if _is_study(image_path):
            # lesions of one study follow each other in a cohort: keep the last study's images
            key = (str(image_path.resolve()), tuple(settings.images))
            if _LAST_STUDY.get("key") != key:
                study = load_study(image_path)
                _LAST_STUDY.update(key=key, study=study, images=dce_images(study,
                                                                           settings.images))
            study, images = _LAST_STUDY["study"], _LAST_STUDY["images"]
            on_grid = _on_grid(lesion, study.reference)
            features = lesion_features(images, on_grid, settings)
            if settings.deep and settings.deep_weights:
                deep_image = images.get(settings.deep_image)
                if deep_image is None:
                    deep_image = dce_images(study, [settings.deep_image])[settings.deep_image]
                features.update(_imagenet(deep_image, on_grid, settings))
            elif settings.deep:
                from BreastAIAssistantLib.radiomics.deep import deep_features

                features.update(deep_features(study, on_grid))
        else:
            image = _single_image(image_path)
            features = lesion_features({"image": image}, _on_grid(lesion, image), settings)
            if settings.deep and settings.deep_weights:
                features.update(_imagenet(image, _on_grid(lesion, image), settings))
        row.update({f"{modality}:{k}": v for k, v in features.items()})
    return row


def _imagenet(image: sitk.Image, lesion: sitk.Image, settings: RadiomicsSettings
              ) -> dict[str, float]:
    from BreastAIAssistantLib.radiomics.imagenet import imagenet_features

    return imagenet_features(image, lesion, settings.deep_weights or "")


def _on_grid(mask: sitk.Image, reference: sitk.Image) -> sitk.Image:
    """The mask on the image grid: as is when the grids agree, else an error (never guess)."""
    from BreastAIAssistantLib.study import same_grid

    if mask.GetDimension() == reference.GetDimension() and same_grid(mask, reference):
        out = sitk.Image(mask)
        out.CopyInformation(reference)
        return out
    raise BreastAIError(
        f"mask grid {mask.GetSize()} does not match its image {reference.GetSize()}; "
        "resample the mask onto the image first")


def read_rows(path: Path) -> list[dict[str, str]]:
    """Rows of an existing output CSV (empty when there is none)."""
    if not path.is_file():
        return []
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def write_rows(rows: list[Mapping[str, Any]], path: Path) -> None:
    """Write rows atomically with the union of their columns (features sorted last)."""
    from BreastAIAssistantLib.io.volumes import atomic_path

    first: list[str] = ["case_id"]
    features: set[str] = set()
    for row in rows:
        for key in row:
            if ":" in key:
                features.add(key)
            elif key not in first:
                first.append(key)
    columns = first + sorted(features)
    with atomic_path(path) as tmp, tmp.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, columns, restval="", extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: ("" if isinstance(v, float) and np.isnan(v) else v)
                             for k, v in row.items()})


def extract_cohort(cohort: str | Path, out: str | Path, settings: RadiomicsSettings | None = None,
                   jobs: int = 1, progress: Progress | None = None,
                   save_every_s: float = 10.0) -> dict[str, Any]:
    """Extract every case of ``cohort`` into ``out`` (resumable, parallel; module docstring).

    The output is rewritten (atomically) when a case finishes and ``save_every_s`` seconds have
    passed since the last write, and at the end: an interrupted run loses at most that much
    work, and a large cohort is not rewritten once per case (quadratic in its size).

    Returns:
        Counts: ``cases``, ``skipped`` (already in ``out``), ``extracted``, ``failed``.
    """
    settings = settings or RadiomicsSettings()
    cases = read_cohort(cohort)
    out = Path(out)
    rows = read_rows(out)
    done = {row["case_id"] for row in rows}
    todo = [c for c in cases if c.case_id not in done]
    failures_path = out.with_name(out.name + ".failures.log")
    failed: list[str] = []
    counts = {"cases": len(cases), "skipped": len(cases) - len(todo), "extracted": 0,
              "failed": 0}
    if not todo:
        return counts

    last_write = [time.monotonic()]
    unsaved = [0]

    def finished(case: CohortCase, result: dict[str, Any] | None, error: str | None) -> None:
        if result is not None:
            rows.append(result)
            unsaved[0] += 1
            if time.monotonic() - last_write[0] >= save_every_s:
                write_rows(rows, out)
                last_write[0], unsaved[0] = time.monotonic(), 0
            counts["extracted"] += 1
        else:
            failed.append(f"{case.case_id}\t{error}")
            counts["failed"] += 1
            logger.warning("case %s failed: %s", case.case_id, error)
        if progress is not None:
            progress(counts["extracted"] + counts["failed"], len(todo), case.case_id)

    try:
        for case, result, error in _run_all(todo, settings, jobs):
            finished(case, result, error)
    finally:  # also on Ctrl-C: keep what finished
        if unsaved[0]:
            write_rows(rows, out)
    if failed:
        from BreastAIAssistantLib.io.volumes import atomic_path

        with atomic_path(failures_path) as tmp:
            tmp.write_text("\n".join(failed) + "\n", encoding="utf-8")
    return counts


def _safe_case(case: CohortCase, settings: RadiomicsSettings
               ) -> tuple[dict[str, Any] | None, str | None]:
    try:
        return case_features(case, settings), None
    except Exception as exc:
        return None, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"


def _safe_group(group: list[CohortCase], settings: RadiomicsSettings
                ) -> list[tuple[dict[str, Any] | None, str | None]]:
    return [_safe_case(case, settings) for case in group]


def _groups(todo: list[CohortCase]) -> list[list[CohortCase]]:
    """Rows that share a DCE study (lesions of one study) stay together, so that one worker
    loads each study and computes its maps once; single images (a lesion's own ultrasound or
    projection) are cheap and do not bind rows together."""
    studies: dict[Path, bool] = {}
    groups: dict[tuple[str, ...], list[CohortCase]] = {}
    for case in todo:
        paths = [files[0] for files in case.modalities.values()]
        for path in paths:
            if path not in studies:
                studies[path] = path.exists() and _is_study(path)
        key = tuple(str(p) for p in paths if studies[p]) or (f"row:{case.case_id}",)
        groups.setdefault(key, []).append(case)
    return list(groups.values())


def single_threaded() -> None:
    """Limit this process to one thread in every library that would start more (SimpleITK/ITK,
    torch, OpenMP/BLAS): the initializer of the cohort's worker processes, where studies, not
    voxels, are parallel. Without it each worker's ITK filters start a thread per core and
    ``--jobs N`` workers fight over the same cores."""
    os.environ["OMP_NUM_THREADS"] = "1"
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    except ImportError:  # pragma: no cover - comes with scikit-learn
        pass
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover - torch is a core dependency
        pass


def _run_all(todo: list[CohortCase], settings: RadiomicsSettings, jobs: int
             ) -> Iterator[tuple[CohortCase, dict[str, Any] | None, str | None]]:
    if jobs <= 1:
        for case in todo:
            yield (case, *_safe_case(case, settings))
        return
    # import the extraction code once here: forked workers inherit it instead of each paying the
    # imports before its first case
    from radiomics import featureextractor  # noqa: F401

    from BreastAIAssistantLib.io import load_study  # noqa: F401
    from BreastAIAssistantLib.radiomics.features import dce_images  # noqa: F401

    with ProcessPoolExecutor(max_workers=jobs, initializer=single_threaded) as pool:
        pending: dict[Future, list[CohortCase]] = {}
        queue = _groups(todo)
        while queue or pending:
            while queue and len(pending) < 2 * jobs:
                group = queue.pop(0)
                pending[pool.submit(_safe_group, group, settings)] = group
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                group = pending.pop(future)
                for case, (result, error) in zip(group, future.result(), strict=True):
                    yield case, result, error


def reduce_deep(rows: list[dict[str, Any]], n_components: int) -> list[dict[str, Any]]:
    """Replace each modality's ``deep_*`` columns by their first ``n_components`` principal
    components (``<modality>:deep_lesion_pca_c<k>``), fitted on all rows. PCA sees no labels, so
    this unsupervised step does not leak the outcome into later cross-validation."""
    deep_cols = sorted({k for row in rows for k in row if ":deep_lesion_" in k})
    if not deep_cols or n_components <= 0:
        return rows
    by_modality: dict[str, list[str]] = {}
    for col in deep_cols:
        by_modality.setdefault(col.split(":", 1)[0], []).append(col)
    for modality, cols in by_modality.items():
        x = np.array([[float(row.get(c, "nan") or "nan") for c in cols] for row in rows])
        ok = ~np.isnan(x).any(axis=1)
        if ok.sum() < 2:
            continue
        mean = x[ok].mean(axis=0)
        _, _, vt = np.linalg.svd(x[ok] - mean, full_matrices=False)
        k = min(n_components, vt.shape[0])
        scores = (np.where(np.isnan(x), mean, x) - mean) @ vt[:k].T
        for i, row in enumerate(rows):
            for c in cols:
                row.pop(c, None)
            for j in range(k):
                row[f"{modality}:deep_lesion_pca_c{j:02d}"] = float(scores[i, j]) if ok[i] \
                    else float("nan")
    return rows
