"""Lesion grouping: how the voxels of a binary tumour mask become lesions.

Threshold-derived masks (FTV, a network's thresholded output) come as one or a few real lesions
plus hundreds of fragments: enhancing vessels, parenchyma, noise. Measuring "the mask" as one
object gives a diameter across all fragments (a speck becomes a T3); measuring every connected
component gives a lesion split by a vessel as two T1s. The rule here:

1. **Components**: connected components of the non-zero voxels with ``connectivity`` 26 (voxels
   touching by a face, an edge or a corner belong together; 6 and 18 are accepted too).
2. **Fragments**: components smaller than ``min_volume_ml`` are ignored: they are not lesions and
   they neither bridge nor extend lesions. They are counted (``fragments_ignored``, with their total
   volume) so a report can say what was left out. The default, 0.065 ml, is the volume of a 5 mm
   sphere: the BI-RADS MRI lexicon calls enhancement smaller than 5 mm a *focus*, not a mass,
   and a 5 mm sphere sits at the T1a/T1b boundary.
3. **Merging**: the remaining components whose gap is at most ``gap_mm`` are one lesion
   (single linkage, so A-B and B-C merge A, B and C). The gap between two components is the
   shortest distance between their voxel *boxes* (not centres): two components with two empty
   1 mm voxels between them are 2 mm apart on any grid orientation. It is computed exactly, with
   anisotropic spacing, as the Euclidean distance transform of the complement of one component
   dilated by one voxel (26-neighbourhood), which subtracts one voxel per axis from the
   centre-to-centre offset. The default, 5 mm, joins a tumour split by a vessel or a thin
   non-enhancing septum, and keeps foci a centimetre apart separate (multifocal disease).
   A merged lesion is the union of its components' voxels (the gap is not filled).
   With ``merge_below_ml`` set, only components smaller than that volume take part in merging
   (a larger component stays its own lesion however close it is): the network's output uses
   this to gather the pieces of clumped non-mass enhancement into one lesion without joining
   neighbouring masses (:mod:`BreastAIAssistantLib.inference.postprocess`).

Instance label maps (values 1..n, e.g. a user's or a network's lesion labels) skip this rule: each
label is one lesion (see :func:`~BreastAIAssistantLib.measure.report.measure_lesions`).
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import ndimage

logger = logging.getLogger(__name__)

#: Volume (ml) of a sphere of 5 mm diameter: the default minimum lesion volume.
FOCUS_VOLUME_ML = math.pi / 6.0 * 5.0**3 / 1000.0

_STRUCTURES = {
    6: ndimage.generate_binary_structure(3, 1),
    18: ndimage.generate_binary_structure(3, 2),
    26: ndimage.generate_binary_structure(3, 3),
}


@dataclass(frozen=True)
class GroupingSettings:
    """Parameters of the lesion grouping rule (see the module docstring).

    Attributes:
        gap_mm: Components whose voxel boxes are at most this far apart are one lesion (mm);
            0 disables merging.
        min_volume_ml: Components smaller than this are fragments and ignored (ml); 0 keeps all.
        connectivity: 6, 18 or 26: which neighbours make voxels one component.
        merge_below_ml: If given, only components smaller than this (ml) are merged; larger
            ones are lesions on their own. ``None``: every kept component may merge.
    """

    gap_mm: float = 5.0
    min_volume_ml: float = round(FOCUS_VOLUME_ML, 3)
    connectivity: int = 26
    merge_below_ml: float | None = None

    def __post_init__(self) -> None:
        if not (math.isfinite(self.gap_mm) and self.gap_mm >= 0):
            raise ValueError(f"gap_mm must be a finite number >= 0, got {self.gap_mm}")
        if not (math.isfinite(self.min_volume_ml) and self.min_volume_ml >= 0):
            raise ValueError(
                f"min_volume_ml must be a finite number >= 0, got {self.min_volume_ml}"
            )
        if self.connectivity not in _STRUCTURES:
            raise ValueError(f"connectivity must be 6, 18 or 26, got {self.connectivity}")
        if self.merge_below_ml is not None and not (
            math.isfinite(self.merge_below_ml) and self.merge_below_ml > 0
        ):
            raise ValueError(
                f"merge_below_ml must be a finite number > 0 or None, got {self.merge_below_ml}"
            )

    def to_dict(self) -> dict[str, Any]:
        """The settings as a JSON-ready dict."""
        return asdict(self)


@dataclass(frozen=True)
class Grouping:
    """The result of grouping a binary mask.

    Attributes:
        labels_zyx: int32 array, 0 = background or ignored fragment, 1..n = lesion, numbered by
            decreasing volume.
        n_lesions: Number of lesions.
        n_components: Number of connected components before grouping.
        fragments_ignored: Components dropped as smaller than ``min_volume_ml``.
        fragments_ignored_volume_ml: Their total volume.
        components_per_lesion: Number of components merged into each lesion (index 0 = lesion 1).
        settings: The settings used.
    """

    labels_zyx: np.ndarray
    n_lesions: int
    n_components: int
    fragments_ignored: int
    fragments_ignored_volume_ml: float
    components_per_lesion: tuple[int, ...]
    settings: GroupingSettings

    def summary(self) -> dict[str, Any]:
        """JSON-ready summary: counts, ignored volume and the settings."""
        only = "" if self.settings.merge_below_ml is None else " (those < merge_below_ml only)"
        return {
            "rule": "components; fragments < min_volume_ml ignored; gap <= gap_mm merged" + only,
            **self.settings.to_dict(),
            "components": self.n_components,
            "lesions": self.n_lesions,
            "components_per_lesion": list(self.components_per_lesion),
            "fragments_ignored": self.fragments_ignored,
            "fragments_ignored_volume_ml": round(self.fragments_ignored_volume_ml, 4),
        }


def _find(parent: np.ndarray, i: int) -> int:
    root = i
    while parent[root] != root:
        root = int(parent[root])
    while parent[i] != root:  # path compression
        parent[i], i = root, int(parent[i])
    return root


def _merge_close(
    labels: np.ndarray, mergeable: np.ndarray, spacing_zyx: np.ndarray, gap_mm: float
) -> np.ndarray:
    """Union-find parents of components (index = label) after single-linkage merging by gap.

    Only components flagged in ``mergeable`` (index = label) merge.
    """
    n = len(mergeable)
    parent = np.arange(n)
    if gap_mm <= 0:
        return parent
    objects = ndimage.find_objects(labels)
    margin = [math.floor(gap_mm / s) + 2 for s in spacing_zyx]
    cube = _STRUCTURES[26]
    for label in np.nonzero(mergeable)[0]:
        box = objects[label - 1]
        crop = tuple(
            slice(max(0, sl.start - m), min(size, sl.stop + m))
            for sl, m, size in zip(box, margin, labels.shape, strict=True)
        )
        sub = labels[crop]
        grown = ndimage.binary_dilation(sub == label, structure=cube)
        distance = ndimage.distance_transform_edt(~grown, sampling=spacing_zyx)
        near = np.unique(sub[(distance <= gap_mm + 1e-6) & (sub > 0)])
        for other in near:
            if other != label and mergeable[other]:
                ra, rb = _find(parent, int(label)), _find(parent, int(other))
                if ra != rb:
                    parent[max(ra, rb)] = min(ra, rb)
    return parent


def group_lesions(
    mask_zyx: np.ndarray, spacing_zyx: np.ndarray, settings: GroupingSettings | None = None
) -> Grouping:
    """Group the non-zero voxels of a mask into lesions by the documented rule.

    Args:
        mask_zyx: 3-D array; non-zero voxels are lesion voxels.
        spacing_zyx: Voxel size along the array axes (z, y, x) in mm.
        settings: Grouping parameters; defaults to :class:`GroupingSettings` ().

    Returns:
        The lesion labels and the grouping summary.
    """
    settings = settings or GroupingSettings()
    spacing_zyx = np.asarray(spacing_zyx, dtype=float)
    voxel_ml = float(np.prod(spacing_zyx)) / 1000.0
    labels, n = ndimage.label(mask_zyx != 0, structure=_STRUCTURES[settings.connectivity])
    sizes = np.bincount(labels.ravel(), minlength=n + 1)
    volumes = sizes * voxel_ml
    # a relative epsilon keeps a component of exactly min_volume_ml (e.g. 65 voxels of 1 mm³)
    kept = volumes >= settings.min_volume_ml * (1 - 1e-9)
    kept[0] = False
    mergeable = kept if settings.merge_below_ml is None else kept & (
        volumes < settings.merge_below_ml)  # fmt: skip
    parent = _merge_close(labels, mergeable, spacing_zyx, settings.gap_mm)
    roots = np.array([_find(parent, i) if kept[i] else 0 for i in range(n + 1)])
    group_ids = np.unique(roots[roots > 0])
    group_volume = np.array([volumes[roots == g].sum() for g in group_ids])
    order = group_ids[np.argsort(-group_volume, kind="stable")]
    lesion_of_root = np.zeros(n + 1, dtype=np.int32)
    lesion_of_root[order] = np.arange(1, len(order) + 1, dtype=np.int32)
    lookup = lesion_of_root[roots]
    lookup[0] = 0
    ignored = np.nonzero(~kept[1:])[0] + 1
    grouping = Grouping(
        labels_zyx=lookup[labels],
        n_lesions=len(order),
        n_components=int(n),
        fragments_ignored=len(ignored),
        fragments_ignored_volume_ml=float(volumes[ignored].sum()),
        components_per_lesion=tuple(int(np.count_nonzero(roots == g)) for g in order),
        settings=settings,
    )
    logger.info(
        "grouping: %d components -> %d lesions, %d fragments ignored (%.3f ml)",
        n,
        grouping.n_lesions,
        grouping.fragments_ignored,
        grouping.fragments_ignored_volume_ml,
    )
    return grouping
