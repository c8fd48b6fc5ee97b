"""All DCE maps of a study in one call: settings, catalogue, result object, writer.

``compute_maps(study)`` returns a :class:`DCEMaps` of named ``SimpleITK.Image`` objects, all on the
pre-contrast grid (the MIP excepted, which is one voxel thick, see :mod:`.subtraction`):

``sub_<k>`` for every post-contrast phase, ``pe``, ``ser``, ``peak_enhancement``,
``time_to_peak``, ``wash_in``, ``washout``, ``curve_type`` (uint8) and ``mip``.
:data:`MAP_CATALOGUE` gives the unit and meaning of each; the formulas and guards are in
:mod:`.enhancement`, :mod:`.curves` and :mod:`.subtraction`, the phase choice in :mod:`.timing`.
The computation is fused and slab-parallel (:mod:`.kernel`); it never prints and reports through
an optional ``progress(stage, fraction)`` callback.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk

from BreastAIAssistantLib.dce import kernel
from BreastAIAssistantLib.dce.curves import DEFAULT_MIN_ENHANCEMENT_PCT, DEFAULT_TOLERANCE
from BreastAIAssistantLib.dce.enhancement import (
    DEFAULT_FLOOR_FRACTION,
    DEFAULT_FLOOR_PERCENTILE,
    s0_floor,
)
from BreastAIAssistantLib.dce.subtraction import maximum_intensity_projection
from BreastAIAssistantLib.dce.timing import PhaseChoice, get_preset, select_phases
from BreastAIAssistantLib.study import DCEStudy

logger = logging.getLogger(__name__)

Progress = Callable[[str, float], None]


@dataclass(frozen=True)
class MapInfo:
    """Catalogue entry: unit (with times known) and one-line description."""

    unit: str
    description: str


#: Map name -> unit and meaning. ``sub_k`` stands for ``sub_1 .. sub_N``.
MAP_CATALOGUE: dict[str, MapInfo] = {
    "sub_k": MapInfo("signal", "subtraction S_k - S0 of post-contrast phase k"),
    "pe": MapInfo("%", "early percent enhancement 100 (S_early - S0) / S0 (Hylton 2012)"),
    "ser": MapInfo(
        "ratio", "signal enhancement ratio (S_early - S0) / (S_late - S0) (Hylton 2012)"
    ),
    "peak_enhancement": MapInfo("%", "peak percent enhancement 100 (max_k S_k - S0) / S0"),
    "time_to_peak": MapInfo(
        "s", "time of the first phase reaching the peak (phase index without times)"
    ),
    "wash_in": MapInfo("%/min", "peak enhancement / time to peak (%/phase without times)"),
    "washout": MapInfo(
        "%", "100 (S_peak - S_last) / S_peak, positive = signal lost after the peak"
    ),
    "curve_type": MapInfo(
        "label",
        "BI-RADS curve type: 0 not assessed, 1 persistent, 2 plateau, 3 washout (Kuhl 1999)",
    ),
    "mip": MapInfo("signal", "maximum-intensity projection of the early subtraction (S-I axis)"),
}


def describe_map(name: str) -> MapInfo:
    """Catalogue entry of a map name (``sub_3`` resolves to the ``sub_k`` entry)."""
    if name.startswith("sub_") and name[4:].isdigit():
        return MAP_CATALOGUE["sub_k"]
    try:
        return MAP_CATALOGUE[name]
    except KeyError:
        raise KeyError(f"unknown map {name!r}; known: {', '.join(MAP_CATALOGUE)}") from None


@dataclass(frozen=True)
class MapSettings:
    """Settings of :func:`compute_maps` (all have documented defaults).

    Attributes:
        preset: Timing preset name (:data:`.timing.TIMING_PRESETS`).
        early: Explicit early phase index (overrides the preset).
        late: Explicit late phase index (overrides the preset).
        s0_floor_fraction: ``S0`` floor as a fraction of the ``s0_floor_percentile`` of S0.
        s0_floor_percentile: Robust high percentile of S0 the floor is relative to.
        s0_floor: Absolute ``S0`` floor in signal units; overrides the relative rule.
        ser_max: Upper clip of SER (``None`` = no clip). Default 3: above it the late enhancement
            is noise-sized; UCSF's FTV tools treat 1.1 < SER <= 3 as the high (washout) range.
        curve_min_enhancement_pct: Early PE (%) needed for a curve type (BI-RADS medium rise).
        curve_tolerance: ± relative change between plateau and persistent/washout (Kuhl 1999).
        mip_axis: SimpleITK index axis of the MIP; ``None`` = closest to patient S-I.
    """

    preset: str = "default"
    early: int | None = None
    late: int | None = None
    s0_floor_fraction: float = DEFAULT_FLOOR_FRACTION
    s0_floor_percentile: float = DEFAULT_FLOOR_PERCENTILE
    s0_floor: float | None = None
    ser_max: float | None = 3.0
    curve_min_enhancement_pct: float = DEFAULT_MIN_ENHANCEMENT_PCT
    curve_tolerance: float = DEFAULT_TOLERANCE
    mip_axis: int | None = None

    def __post_init__(self) -> None:
        get_preset(self.preset)  # raises PhaseSelectionError for an unknown name
        if self.ser_max is not None and not self.ser_max > 0:
            raise ValueError(f"ser_max must be > 0 or None, got {self.ser_max}")
        if not self.curve_min_enhancement_pct > 0:
            raise ValueError("curve_min_enhancement_pct must be > 0")
        if not 0 <= self.curve_tolerance < 1:
            raise ValueError("curve_tolerance must be in [0, 1)")
        if self.mip_axis not in (None, 0, 1, 2):
            raise ValueError(f"mip_axis must be None, 0, 1 or 2, got {self.mip_axis}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


@dataclass(frozen=True)
class DCEMaps:
    """The maps of one study, with what produced them.

    Attributes:
        images: Map name -> image (float32, ``curve_type`` uint8), in catalogue order.
        phases: The early/late phase choice.
        settings: The settings used.
        s0_floor: The ``S0`` floor actually used (signal units).
        times_s: The study's acquisition times, or ``None``.
        timings_s: Seconds spent per stage (``floor``, ``kinetics``, ``mip``, ``images``).
    """

    images: Mapping[str, sitk.Image]
    phases: PhaseChoice
    settings: MapSettings
    s0_floor: float
    times_s: tuple[float, ...] | None
    timings_s: Mapping[str, float] = field(default_factory=dict)

    def __getitem__(self, name: str) -> sitk.Image:
        try:
            return self.images[name]
        except KeyError:
            raise KeyError(f"no map {name!r}; available: {', '.join(self.images)}") from None

    def __contains__(self, name: object) -> bool:
        return name in self.images

    def __iter__(self) -> Iterator[str]:
        return iter(self.images)

    @property
    def names(self) -> tuple[str, ...]:
        """Map names in catalogue order."""
        return tuple(self.images)

    def array(self, name: str) -> np.ndarray:
        """Read-only ``(z, y, x)`` view of a map (valid while this object lives)."""
        return sitk.GetArrayViewFromImage(self[name])

    def unit(self, name: str) -> str:
        """Unit of a map for this study (time-based units become per-phase without times)."""
        if self.times_s is None and name == "time_to_peak":
            return "phase index"
        if self.times_s is None and name == "wash_in":
            return "%/phase"
        return describe_map(name).unit

    def provenance(self) -> dict[str, Any]:
        """JSON-ready record: maps with units, phases, settings, floor, times and timings."""
        return {
            "maps": {n: {"unit": self.unit(n), "description": describe_map(n).description}
                     for n in self.images},
            "phases": self.phases.to_dict(),
            "settings": self.settings.to_dict(),
            "s0_floor": self.s0_floor,
            "times_s": list(self.times_s) if self.times_s is not None else None,
            "timings_s": dict(self.timings_s),
        }  # fmt: skip


def _wrap(
    arrays: dict[str, np.ndarray], reference: sitk.Image, n_threads: int
) -> dict[str, sitk.Image]:
    """Turn arrays into images on the reference grid, freeing each array once copied."""
    names = list(arrays)

    def one(name: str) -> sitk.Image:
        image = sitk.GetImageFromArray(arrays.pop(name))
        image.CopyInformation(reference)
        return image

    if n_threads <= 1:
        return {name: one(name) for name in names}
    with ThreadPoolExecutor(max_workers=n_threads, thread_name_prefix="dce-wrap") as pool:
        return dict(zip(names, pool.map(one, names), strict=True))


def compute_maps(
    study: DCEStudy,
    settings: MapSettings | None = None,
    progress: Progress | None = None,
    n_threads: int | None = None,
) -> DCEMaps:
    """Compute every DCE map of a study.

    Args:
        study: The study (phases on the pre-contrast grid).
        settings: Map settings; ``None`` = :class:`MapSettings` defaults.
        progress: Optional ``progress(stage, fraction)`` callback, called from this thread with
            ``fraction`` in ``[0, 1]`` over the whole computation; stages are ``phases``,
            ``kinetics`` (once per slab), ``images`` and ``done``.
        n_threads: Worker threads; ``None`` = :func:`.kernel.default_threads`. Results do not
            depend on it.

    Returns:
        The :class:`DCEMaps`.

    Raises:
        PhaseSelectionError: the early/late phases cannot be chosen from the settings.

    Memory: the maps are computed into NumPy arrays, then copied into SimpleITK images one by
    one, each array freed once copied, so the peak is the study plus every map plus
    ``n_threads`` maps in flight (about 2.4 GiB in all for a 448 x 448 x 160, 6-phase study).
    """
    settings = settings or MapSettings()
    n_threads = kernel.default_threads() if n_threads is None else max(1, int(n_threads))
    timings: dict[str, float] = {}

    def report(stage: str, fraction: float) -> None:
        if progress is not None:
            progress(stage, min(1.0, max(0.0, fraction)))

    clock = time.perf_counter()
    choice = select_phases(
        study.times_s, study.n_phases, settings.preset, settings.early, settings.late
    )
    phases = [study.phase_zyx(k) for k in range(study.n_phases)]
    floor = s0_floor(
        phases[0], settings.s0_floor_fraction, settings.s0_floor_percentile, settings.s0_floor
    )
    at = study.times_s if study.times_s is not None else tuple(range(study.n_phases))
    params = kernel.KernelParams(
        early=choice.early, late=choice.late, at=tuple(float(t) for t in at),
        per_minute=study.times_s is not None, floor=floor, ser_max=settings.ser_max,
        min_enhancement_pct=settings.curve_min_enhancement_pct, tolerance=settings.curve_tolerance,
    )  # fmt: skip
    logger.info("DCE maps: %s; S0 floor %.4g; %d thread(s)", choice.reason, floor, n_threads)
    timings["floor"] = time.perf_counter() - clock
    report("phases", 0.02)

    clock = time.perf_counter()
    shape = phases[0].shape
    outputs = kernel.allocate_outputs(shape, study.n_phases - 1)
    parts = kernel.slabs(shape[0], shape[1] * shape[2])
    kernel.run_slabs(
        lambda zs: kernel.compute_slab(phases, outputs, zs, params),
        parts,
        n_threads,
        lambda f: report("kinetics", 0.02 + 0.68 * f),
    )
    timings["kinetics"] = time.perf_counter() - clock

    clock = time.perf_counter()
    mip = maximum_intensity_projection(
        study.reference, settings.mip_axis, array_zyx=outputs[f"sub_{choice.early}"]
    )
    timings["mip"] = time.perf_counter() - clock
    report("images", 0.72)

    clock = time.perf_counter()
    images = _wrap(outputs, study.reference, n_threads)
    images["mip"] = mip
    timings["images"] = time.perf_counter() - clock
    report("done", 1.0)
    return DCEMaps(
        images=images,
        phases=choice,
        settings=settings,
        s0_floor=floor,
        times_s=study.times_s,
        timings_s=timings,
    )


def write_maps(
    maps: DCEMaps,
    out_dir: str | os.PathLike[str],
    fmt: str = ".nii.gz",
    prefix: str = "",
    compress: bool = True,
) -> dict[str, Path]:
    """Write every map as ``<out_dir>/<prefix><name><fmt>``, each atomically.

    Args:
        maps: The maps.
        out_dir: Output folder (created if needed).
        fmt: File suffix: ``.nii.gz``, ``.nii``, ``.nrrd`` or ``.mha``.
        prefix: File name prefix (e.g. a case id and ``_``).
        compress: Compress where the format allows it.

    Returns:
        Map name -> written path.

    Raises:
        OutputError: unsupported suffix.
    """
    # imported here: the io package pulls in the study readers (pydicom), which the maps do not need
    from BreastAIAssistantLib.io.volumes import write_volume

    out = Path(out_dir)
    written: dict[str, Path] = {}
    for name, image in maps.images.items():
        written[name] = write_volume(image, out / f"{prefix}{name}{fmt}", compress=compress)
    logger.info("wrote %d DCE maps to %s", len(written), out)
    return written
