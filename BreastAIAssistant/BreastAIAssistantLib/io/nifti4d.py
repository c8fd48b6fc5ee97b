"""A 4-D NIfTI file whose last axis is time (phase 0 = pre-contrast).

Acquisition times come from ``pixdim[4]`` (the interval between volumes) with its unit from
``xyzt_units``, plus ``toffset``. Converters such as dcm2niix put the repetition time (a few
milliseconds) there rather than the phase interval, so an interval under one second is taken to
be a repetition time and the times are left unknown (with a log line); pass ``--times`` then.
"""

from __future__ import annotations

import logging
from pathlib import Path

import SimpleITK as sitk

from BreastAIAssistantLib.errors import ReaderError
from BreastAIAssistantLib.io.volumes import read_volume
from BreastAIAssistantLib.study import DCEStudy

logger = logging.getLogger(__name__)

#: NIfTI ``xyzt_units`` time codes -> seconds per unit.
_TIME_UNITS_S = {8: 1.0, 16: 1e-3, 24: 1e-6}
#: Shortest phase interval believed to be a real DCE interval rather than a repetition time.
MIN_PHASE_INTERVAL_S = 1.0


def _header(path: Path) -> dict[str, str]:
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
    except RuntimeError as exc:
        raise ReaderError(f"cannot read the NIfTI header of {path}") from exc
    return {key: reader.GetMetaData(key) for key in reader.GetMetaDataKeys()}


def detect(path: Path) -> bool:
    """A ``.nii``/``.nii.gz`` file with four dimensions and more than one volume."""
    if not (path.is_file() and path.name.lower().endswith((".nii", ".nii.gz"))):
        return False
    try:
        header = _header(path)
    except ReaderError:
        return False
    return header.get("dim[0]") == "4" and int(header.get("dim[4]", "1")) > 1


def times_from_header(header: dict[str, str], n_phases: int) -> list[float] | None:
    """Phase times in seconds from ``pixdim[4]``/``xyzt_units``/``toffset``, or ``None``."""
    try:
        interval = float(header.get("pixdim[4]", "0"))
        units = int(header.get("xyzt_units", "0")) & 0x38
        offset = float(header.get("toffset", "0"))
    except ValueError:
        return None
    scale = _TIME_UNITS_S.get(units, 1.0)
    interval_s = interval * scale
    if interval_s < MIN_PHASE_INTERVAL_S:
        logger.info(
            "4-D NIfTI time step is %.4g s (a repetition time, not a phase interval); "
            "acquisition times unknown",
            interval_s,
        )
        return None
    return [offset * scale + k * interval_s for k in range(n_phases)]


def read(path: Path) -> DCEStudy:
    """Read a 4-D NIfTI file into a study.

    Raises:
        ReaderError: not 4-D, vector voxels, or unreadable.
    """
    image = read_volume(path)
    if image.GetDimension() != 4:
        raise ReaderError(
            f"{path} is {image.GetDimension()}-D; a single-file study must be a 4-D NIfTI "
            "with time as the last axis"
        )
    size = list(image.GetSize())
    n_phases = size[3]
    phases = [
        sitk.Extract(
            image,
            [*size[:3], 0],
            [0, 0, 0, k],
            sitk.ExtractImageFilter.DIRECTIONCOLLAPSETOSUBMATRIX,
        )
        for k in range(n_phases)
    ]
    times = times_from_header(_header(path), n_phases)
    return DCEStudy.from_images(
        phases,
        times_s=times,
        source=f"{path} (4-D NIfTI)",
        metadata={"format": "nifti4d", "file": path.name},
    )
