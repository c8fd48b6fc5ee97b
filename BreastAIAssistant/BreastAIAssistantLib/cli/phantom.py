"""``breast-ai phantom``: write a synthetic DCE-MRI dataset with exact ground truth."""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import click

DICOM_LAYOUTS = {"series": "series-per-phase", "temporal": "multi-temporal"}
#: Fixed acquisition date of phantom DICOM files, so that a seed always gives the same files.
PHANTOM_DATE = datetime.datetime(2026, 1, 1, 9, 0, 0)


@click.command()
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Dataset folder.")
@click.option("--cases", type=click.IntRange(1), default=1, show_default=True)
@click.option(
    "--seed",
    type=click.IntRange(0),
    default=0,
    show_default=True,
    help="Seed of the first case; case i uses seed + i.",
)
@click.option(
    "--size",
    type=click.Choice(["small", "clinical"]),
    default="small",
    show_default=True,
    help="small: 96x96x32 for tests; clinical: 448x448x160.",
)
@click.option(
    "--phases",
    type=click.IntRange(2, 9),
    default=None,
    help="Phase count (default: drawn 2-9 per case).",
)
@click.option(
    "--dicom",
    "dicom",
    type=click.Choice(["none", *DICOM_LAYOUTS, "both"]),
    default="none",
    show_default=True,
    help="Also write the phases as DICOM MR: one series per phase ('series', in "
    "dicom_series/), one series with temporal positions ('temporal', in "
    "dicom_temporal/), or both.",
)
@click.option(
    "--radiomics-cohort",
    is_flag=True,
    help="Write a radiomics cohort instead: 2-4 lesions per case, one cohort.csv row per lesion "
    "with its DCE study and mask plus a 2-D 'mip' modality (for breast-ai features).",
)
@click.option(
    "--matrix",
    default=None,
    help="Explicit matrix x,y,z (e.g. 224,224,80: the clinical field of view at half the "
    "resolution).",
)
def phantom(out: Path, cases: int, seed: int, size: str, phases: int | None, dicom: str,
            radiomics_cohort: bool, matrix: str | None) -> None:
    """Write a synthetic breast DCE-MRI dataset: one folder per case, usable as a STUDY.

    Each case folder holds the phases (NIfTI + study.json), tumour_mask.nii.gz (lesion
    instances), breast_mask.nii.gz, tissue_labels.nii.gz and case.json (per lesion: class,
    receptors, Ki-67, curve type, exact maximum diameter, T category, skin/chest-wall contact;
    acquisition times). Synthetic data: it says nothing about clinical accuracy.
    """
    from tqdm import tqdm

    from BreastAIAssistantLib.io.dicom_write import make_right_handed, write_dicom_study
    from BreastAIAssistantLib.phantom import generate_case, write_case

    size_xyz = tuple(int(v) for v in matrix.split(",")) if matrix else None
    if radiomics_cohort:
        from BreastAIAssistantLib.radiomics.phantom_cohort import write_phantom_cohort

        path = write_phantom_cohort(range(seed, seed + cases), out,
                                    size_xyz if matrix else None)
        click.echo(json.dumps({"cohort": str(path)}))
        return
    layouts = list(DICOM_LAYOUTS) if dicom == "both" else [] if dicom == "none" else [dicom]
    for i in tqdm(range(cases), desc="phantom", unit="case", disable=None):
        case_seed = seed + i
        extra = {"size_xyz": size_xyz} if size_xyz else {}
        case = generate_case(case_seed, size=size, n_phases=phases, **extra)
        folder = out / f"case_{case_seed:05d}"
        write_case(case, folder)
        for name in layouts:
            write_dicom_study(
                make_right_handed(case.study), folder / f"dicom_{name}", DICOM_LAYOUTS[name],
                description=f"BAA phantom {case_seed}", uid_seed=f"phantom-{case_seed}",
                acquired=PHANTOM_DATE, overwrite=True,
            )  # fmt: skip
        lesions = [(les["class"], round(les["max_diameter_mm"], 1), les["t_category"])
                   for les in case.truth["lesions"]]  # fmt: skip
        click.echo(json.dumps({"case": folder.name, "phases": case.study.n_phases,
                               "lesions": lesions}))  # fmt: skip
