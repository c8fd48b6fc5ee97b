"""Shared fixtures: tiny studies built in code, with oblique geometry where it matters."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


def rotation_zyx_deg(ax: float, ay: float, az: float) -> tuple[float, ...]:
    """Row-major 3×3 direction matrix from rotations about x, y and z (degrees)."""
    a, b, c = (math.radians(v) for v in (ax, ay, az))
    rx = np.array([[1, 0, 0], [0, math.cos(a), -math.sin(a)], [0, math.sin(a), math.cos(a)]])
    ry = np.array([[math.cos(b), 0, math.sin(b)], [0, 1, 0], [-math.sin(b), 0, math.cos(b)]])
    rz = np.array([[math.cos(c), -math.sin(c), 0], [math.sin(c), math.cos(c), 0], [0, 0, 1]])
    return tuple((rz @ ry @ rx).ravel().tolist())


OBLIQUE = rotation_zyx_deg(12.0, -7.0, 20.0)


def make_image(
    array_zyx: np.ndarray,
    spacing=(0.8, 0.7, 2.0),
    origin=(-31.5, 12.25, 40.0),
    direction=OBLIQUE,
) -> sitk.Image:
    """An image with the given (anisotropic, oblique, off-origin by default) geometry."""
    image = sitk.GetImageFromArray(np.asarray(array_zyx, dtype=np.float32))
    image.SetSpacing(spacing)
    image.SetOrigin(origin)
    image.SetDirection(direction)
    return image


def enhancing_phases(shape_zyx=(5, 6, 7), n_phases=4, hot_zyx=(2, 3, 4)) -> list[np.ndarray]:
    """Phases: a 100-signal background plus one voxel that enhances then washes out."""
    phases = []
    for k in range(n_phases):
        arr = np.full(shape_zyx, 100.0, dtype=np.float32)
        arr[hot_zyx] = 100.0 + (300.0 if k == 1 else 250.0 * (k > 0))
        phases.append(arr)
    return phases


@pytest.fixture
def phase_images() -> list[sitk.Image]:
    return [make_image(a) for a in enhancing_phases()]


@pytest.fixture
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip("../shared is not present in this checkout")
    return SHARED
