"""Cautions about a study that lies outside what a model was built for.

A segmentation model runs on its own grid (``inputs.spacing_mm`` in its manifest): the study is
resampled to it, so a study acquired at finer voxels loses nothing it would have seen in
training. A study acquired at much *coarser* voxels is another matter: upsampled, a 7 mm lesion
that spans two of its voxels is a blur the network never saw, and what it draws there (and the
diameters and T categories measured on it) cannot be trusted: on a ``--size small`` phantom
(about 4 mm voxels in-plane, 6 mm slices) ``breast-ai demo`` reports a dozen "lesions", some
of them 60-100 mm long, where the truth is three of 18-34 mm.

Nothing here stops the analysis: the result is still written, with the caution in ``report.json``
(``cautions``), the HTML/PDF report, the command line and the Slicer panel, so that a reader
knows why the numbers may be wrong.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

#: A study is "coarser than the model" when a voxel side exceeds the model's spacing on that
#: axis by more than this factor. 2 leaves room for the acquisitions the demo models were trained
#: on (0.63-1.69 mm in-plane, 1.0-2.6 mm slices, against the 1.2 x 1.2 x 1.6 mm grid of the tumour
#: model 0.3.0) and for common clinical protocols (slices up to 3 mm), and catches the about 4 mm
#: voxels of the small demo phantom. (It was 1.5 for the 1.5 x 1.5 x 2 mm grid of 0.2.0: the bound
#: is meant to stay above the training acquisitions when a model moves to a finer grid.)
COARSE_FACTOR = 2.0

_AXES = ("x", "y", "z")


@dataclass(frozen=True)
class Caution:
    """One reason to distrust part of a result.

    Attributes:
        code: Stable machine-readable name (``"coarse-voxels"``).
        model: Id of the model it concerns.
        message: One sentence for the reader.
    """

    code: str
    model: str
    message: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def grid_cautions(
    study_spacing_xyz: Sequence[float],
    models: Iterable[tuple[str, Sequence[float] | None]],
    factor: float = COARSE_FACTOR,
) -> list[Caution]:
    """Cautions for models whose grid is much finer than the study's voxels.

    Args:
        study_spacing_xyz: The study's voxel spacing (x, y, z) in mm.
        models: ``(model id, model spacing (x, y, z) in mm or None)``; ``None`` (a model that
            does not resample the study) is skipped.
        factor: How much coarser than the model a voxel side may be before it is cautioned.

    Returns:
        One :class:`Caution` per model concerned, in the order given.
    """
    if not factor >= 1.0:
        raise ValueError(f"factor must be >= 1, got {factor}")
    study = [float(v) for v in study_spacing_xyz]
    if len(study) != 3 or not all(v > 0 for v in study):
        raise ValueError(f"study spacing must be three positive numbers, got {study_spacing_xyz}")
    out = []
    for model_id, spacing in models:
        if spacing is None:
            continue
        grid = [float(v) for v in spacing]
        if len(grid) != 3:
            raise ValueError(f"{model_id}: model spacing must be three numbers, got {spacing}")
        coarse = [axis for axis, s, m in zip(_AXES, study, grid, strict=True) if s > factor * m]
        if not coarse:
            continue
        voxel = " x ".join(f"{v:.3g}" for v in study)
        model = " x ".join(f"{v:.3g}" for v in grid)
        out.append(Caution(
            code="coarse-voxels",
            model=model_id,
            message=(
                f"the study's voxels ({voxel} mm) are more than {factor:g} times coarser along "
                f"{', '.join(coarse)} than the {model} mm grid {model_id} works on: its "
                "segmentation, and the sizes and T categories measured on it, are unreliable"
            ),
        ))  # fmt: skip
    return out
