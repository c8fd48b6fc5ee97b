"""Plain label maps as NIfTI or NRRD files (any tool reads them; no segment names or colours).

The label map is written with the smallest unsigned type that holds it (``uint8`` up to 255,
else ``uint16``), compressed (``.nii.gz`` or gzip-encoded ``.nrrd``; ``.nii`` is uncompressed by
definition), on its own grid -- which, for everything this project produces, is the study's
pre-contrast grid; pass ``reference`` to have that checked. NIfTI stores the direction and origin
as 32-bit floats (sform), so an oblique geometry reads back to about 1e-6 mm; NRRD keeps it
exactly. For names, colours and codes use :mod:`.slicer_seg` or :mod:`.dicom_seg`.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import SimpleITK as sitk

from BreastAIAssistantLib.errors import OutputError
from BreastAIAssistantLib.export.segments import layer_array
from BreastAIAssistantLib.io.volumes import volume_suffix, write_volume
from BreastAIAssistantLib.study import same_grid

logger = logging.getLogger(__name__)

#: Suffixes :func:`write_label_map` accepts.
LABEL_MAP_SUFFIXES = (".nii.gz", ".nii", ".nrrd")


def write_label_map(
    labels: sitk.Image,
    path: str | os.PathLike[str],
    reference: sitk.Image | None = None,
) -> Path:
    """Write an integer label map as NIfTI or NRRD, atomically and compressed.

    Args:
        labels: 3-D integer label image (0 = background).
        path: Output file ending in ``.nii.gz``, ``.nii`` or ``.nrrd``.
        reference: When given (e.g. ``study.reference``), the label map must be on its grid.

    Returns:
        The path written.

    Raises:
        OutputError: another suffix, a non-integer image or values outside ``0..65535``, or a
            label map that is not on the reference grid.
    """
    path = Path(path)
    if volume_suffix(path) not in LABEL_MAP_SUFFIXES:
        raise OutputError(
            f"cannot write the label map {path.name}: use one of {', '.join(LABEL_MAP_SUFFIXES)}"
        )
    if reference is not None and not same_grid(labels, reference):
        raise OutputError(
            "the label map is not on the study's pre-contrast grid; resample it with "
            "nearest-neighbour interpolation first"
        )
    array = layer_array(labels)
    image = sitk.GetImageFromArray(array)
    image.CopyInformation(labels)
    write_volume(image, path, compress=True)
    logger.info("wrote a %s label map to %s", array.dtype, path)
    return path
