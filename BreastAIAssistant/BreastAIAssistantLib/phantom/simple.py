"""A small, fast synthetic DCE study: two breasts, a heart, one malignant and one benign lesion.

This is the example study of the foundation (``breast-ai demo``) and a fixture for end-to-end
tests. It uses simple parametric enhancement curves, not a pharmacokinetic model:

    S(t) = S0 · (1 + A · (1 − exp(−t / τ_in)) · (1 − w · t / t_end))

with amplitude ``A``, wash-in constant ``τ_in`` and washout fraction ``w`` per tissue
(``w < 0`` gives a persistent rise). Fat barely enhances, glandular tissue enhances slowly, the
malignant lesion washes in fast and washes out (BI-RADS type 3), the benign lesion rises
persistently (type 1), and the heart enhances early and strongly. Rician-like noise is added.
The full physically based phantom (Tofts kinetics, anatomy, labels) replaces it for training.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import SimpleITK as sitk

from BreastAIAssistantLib.study import DCEStudy

#: Tissue name -> (S0, A, tau_in_s, washout fraction w).
TISSUES: dict[str, tuple[float, float, float, float]] = {
    "air": (0.0, 0.0, 1.0, 0.0),
    "fat": (300.0, 0.05, 200.0, 0.0),
    "gland": (150.0, 0.35, 240.0, -0.3),
    "muscle": (120.0, 0.25, 120.0, 0.0),
    "heart": (180.0, 2.5, 25.0, 0.25),
    "malignant": (160.0, 2.0, 45.0, 0.35),
    "benign": (160.0, 1.1, 200.0, -0.4),
}


@dataclass(frozen=True)
class SimpleStudySpec:
    """Size and timing of the simple synthetic study.

    Args:
        size_xyz: Grid size in voxels (x = right→left, y = anterior→posterior,
            z = inferior→superior).
        spacing_mm: Voxel spacing (x, y, z) in mm.
        times_s: Acquisition times; phase 0 is pre-contrast at 0 s.
        noise_sigma: Standard deviation of the Gaussian noise on the real and imaginary channels.
        origin_lps_mm: Physical position of voxel (0, 0, 0).
        direction: Row-major 3×3 direction cosines (LPS).
    """

    size_xyz: tuple[int, int, int] = (128, 96, 32)
    spacing_mm: tuple[float, float, float] = (2.5, 2.5, 4.0)
    times_s: tuple[float, ...] = (0.0, 90.0, 180.0, 270.0, 360.0, 450.0)
    noise_sigma: float = 6.0
    origin_lps_mm: tuple[float, float, float] = (-160.0, -120.0, -64.0)
    direction: tuple[float, ...] = field(default=(1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0))


def _signal(tissue: str, t_s: float, t_end_s: float) -> tuple[float, float]:
    s0, amplitude, tau_s, washout = TISSUES[tissue]
    uptake = amplitude * (1.0 - np.exp(-t_s / tau_s)) * (1.0 - washout * t_s / t_end_s)
    return s0, s0 * (1.0 + uptake)


def _label_map(spec: SimpleStudySpec, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    nx, ny, nz = spec.size_xyz
    sx, sy, sz = spec.spacing_mm
    z, y, x = np.meshgrid(
        (np.arange(nz) - nz / 2) * sz,
        np.arange(ny) * sy,
        (np.arange(nx) - nx / 2) * sx,
        indexing="ij",
    )
    labels = np.zeros((nz, ny, nx), dtype=np.uint8)
    names = list(TISSUES)
    chest_y = 0.55 * ny * sy
    labels[y > chest_y] = names.index("muscle")
    heart = ((x / 60.0) ** 2 + ((y - chest_y - 45.0) / 35.0) ** 2 + (z / 60.0) ** 2) <= 1.0
    labels[heart] = names.index("heart")
    half_width = 0.22 * nx * sx
    for side in (-1.0, 1.0):
        cx = side * half_width
        r = 0.2 * nx * sx * rng.uniform(0.9, 1.1)
        breast = ((x - cx) / r) ** 2 + ((y - chest_y) / (0.5 * ny * sy)) ** 2 + (z / (r * 1.1)) ** 2
        inside = (breast <= 1.0) & (y <= chest_y)
        labels[inside] = names.index("fat")
        gland = (
            inside
            & (breast <= 0.55)
            & (np.sin(x / 7.0 + rng.uniform(0, 6)) * np.cos(y / 9.0) + np.sin(z / 11.0) > -0.2)
        )
        labels[gland] = names.index("gland")
    lesions = {}
    for tissue, side, radius_mm in (("malignant", 1.0, 11.0), ("benign", -1.0, 7.0)):
        centre = (side * half_width, chest_y - 0.2 * ny * sy, 0.0)
        d2 = ((x - centre[0]) ** 2 + (y - centre[1]) ** 2 + (z - centre[2]) ** 2) / radius_mm**2
        if tissue == "malignant":  # lobulated margin
            d2 = d2 * (1.0 + 0.25 * np.sin(3.0 * np.arctan2(y - centre[1], x - centre[0])))
        labels[d2 <= 1.0] = names.index(tissue)
        lesions[tissue] = {"centre_mm": centre, "radius_mm": radius_mm}
    return labels, lesions


def make_simple_study(spec: SimpleStudySpec | None = None, seed: int = 0) -> DCEStudy:
    """Generate the simple synthetic study (deterministic for a seed).

    Returns:
        A :class:`DCEStudy` whose ``metadata["labels_zyx"]`` is the tissue label map
        (indices into :data:`TISSUES`) and ``metadata["tissues"]`` their names.
    """
    spec = spec or SimpleStudySpec()
    rng = np.random.default_rng(seed)
    labels, lesions = _label_map(spec, rng)
    names = list(TISSUES)
    t_end = spec.times_s[-1]
    bias = 1.0 + 0.1 * np.linspace(-1.0, 1.0, labels.shape[1], dtype=np.float32)[None, :, None]
    images = []
    for t in spec.times_s:
        lut = np.array([_signal(n, t, t_end)[1] for n in names], dtype=np.float32)
        clean = lut[labels] * bias
        real = clean + rng.normal(0.0, spec.noise_sigma, clean.shape).astype(np.float32)
        imag = rng.normal(0.0, spec.noise_sigma, clean.shape).astype(np.float32)
        image = sitk.GetImageFromArray(np.hypot(real, imag).astype(np.float32))
        image.SetSpacing(spec.spacing_mm)
        image.SetOrigin(spec.origin_lps_mm)
        image.SetDirection(spec.direction)
        images.append(image)
    return DCEStudy.from_images(
        images,
        times_s=spec.times_s,
        source=f"simple synthetic study (seed {seed})",
        metadata={
            "format": "synthetic",
            "seed": seed,
            "labels_zyx": labels,
            "tissues": names,
            "lesions": lesions,
        },
    )
