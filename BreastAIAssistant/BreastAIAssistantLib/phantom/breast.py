"""Analytic chest wall and breast shapes of the phantom (body coordinates, millimetres).

Body coordinates: ``X`` to the patient's left, ``Y`` posterior, ``Z`` superior (LPS axes), with
the origin on the midline at the anterior surface of the chest wall, at nipple level.

**Chest wall.** The rib cage is an elliptic cylinder with half-width ``W`` and half-depth ``D``,
centred at ``Y = D``; its anterior surface is ``Y_rib(X) = D - D sqrt(1 - (X / W)^2)``. The
pectoralis major lies in front of it with thickness ``t_pec(X) = t_pec * sin(pi u)^0.7`` for
``u = (|X| - 20) / (0.8 W - 20)`` in ``[0, 1]`` (none over the sternum), so the breast base is
``Y_front(X) = Y_rib(X) - t_pec(X)`` and ``d = Y_front(X) - Y`` is the depth in front of it.

**Breast** (prone, pendant). With the lateral sign ``l`` (-1 right breast, +1 left) and the
normalised coordinates::

    eta  = d / p                                  (0 at the chest wall, 1 at the nipple)
    xi   = l (X - cx - l tx d) / a,     a = a_lat if lateral of the axis else a_med
    zeta = (Z - cz - tz d) / h,         h = h_sup if superior of the axis else h_inf

the breast is ``G = xi^2 + zeta^2 + eta^n <= 1`` with ``d >= 0``: a half-ellipsoid for
``n = 2``, more conical for ``n < 2``, fuller for ``n > 2``; ``tx, tz`` tilt the nipple axis
laterally and cranio-caudally, and the four half-widths make it asymmetric (axillary tail).
Depth below the surface uses the first-order (Sampson) distance ``(1 - G) / |grad G|``, exact for
planes and accurate within a few millimetres of a smooth surface, which is where it is used
(skin thickness, subcutaneous fat, placement margins).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Thorax:
    """Chest wall geometry (mm). See module docstring.

    Attributes:
        half_width: Rib-cage half-width ``W``.
        half_depth: Rib-cage half-depth ``D``.
        pectoral_mm: Largest pectoralis thickness.
        chest_wall_mm: Rib and intercostal layer thickness.
        subcutaneous_mm: Subcutaneous fat over the chest.
        skin_mm: Skin thickness.
    """

    half_width: float
    half_depth: float
    pectoral_mm: float
    chest_wall_mm: float
    subcutaneous_mm: float
    skin_mm: float

    def rib_front(self, x: np.ndarray) -> np.ndarray:
        """``Y`` of the anterior rib-cage surface at ``X``."""
        u = np.clip(1.0 - (np.asarray(x) / self.half_width) ** 2, 0.0, 1.0)
        return self.half_depth - self.half_depth * np.sqrt(u)

    def pectoral_thickness(self, x: np.ndarray) -> np.ndarray:
        """Pectoralis thickness at ``X`` (0 over the sternum and far laterally)."""
        lo, hi = 20.0, 0.8 * self.half_width
        u = np.clip((np.abs(np.asarray(x)) - lo) / (hi - lo), 0.0, 1.0)
        return self.pectoral_mm * np.clip(np.sin(math.pi * u), 0.0, 1.0) ** 0.7

    def chest_front(self, x: np.ndarray) -> np.ndarray:
        """``Y`` of the breast base (anterior pectoral or rib surface) at ``X``."""
        return self.rib_front(x) - self.pectoral_thickness(x)


@dataclass(frozen=True)
class Breast:
    """One breast (mm, body coordinates). See module docstring.

    Attributes:
        side: ``"right"`` or ``"left"``.
        cx: Base centre ``X``.
        cz: Base centre ``Z``.
        a_med: Medial half-width.
        a_lat: Lateral half-width.
        h_sup: Superior half-height.
        h_inf: Inferior half-height.
        projection: Depth ``p`` from chest wall to nipple.
        exponent: Profile exponent ``n``.
        tilt_x: Lateral tilt ``tx`` of the nipple axis (mm per mm of depth).
        tilt_z: Cranio-caudal tilt ``tz``.
        nipple_radius: Nipple radius.
        nipple_length: Nipple protrusion.
    """

    side: str
    cx: float
    cz: float
    a_med: float
    a_lat: float
    h_sup: float
    h_inf: float
    projection: float
    exponent: float
    tilt_x: float
    tilt_z: float
    nipple_radius: float
    nipple_length: float

    @property
    def lateral(self) -> float:
        """+1 if lateral is towards +X (left breast), -1 otherwise."""
        return 1.0 if self.side == "left" else -1.0

    def local(
        self, x: np.ndarray, d: np.ndarray, z: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Normalised ``(xi, eta, zeta)`` and the half-widths ``a``, ``h`` in use."""
        lat = self.lateral
        xi_mm = lat * (x - self.cx - lat * self.tilt_x * d)
        a = np.where(xi_mm > 0, self.a_lat, self.a_med).astype(np.float32)
        zeta_mm = z - self.cz - self.tilt_z * d
        h = np.where(zeta_mm > 0, self.h_sup, self.h_inf).astype(np.float32)
        return xi_mm / a, d / self.projection, zeta_mm / h, a, h

    def implicit(
        self, x: np.ndarray, d: np.ndarray, z: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """``G`` and the Sampson depth ``(1 - G) / |grad G|`` in mm (positive inside)."""
        return self.implicit_local(*self.local(x, d, z))

    def implicit_local(
        self, xi: np.ndarray, eta: np.ndarray, zeta: np.ndarray, a: np.ndarray, h: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`implicit` from the output of :meth:`local`."""
        eta_pos = np.maximum(eta, 0.0)
        n = self.exponent
        g = xi * xi + eta_pos**n + zeta * zeta
        gx = 2.0 * xi / a
        gz = 2.0 * zeta / h
        gd = n * eta_pos ** (n - 1.0) / self.projection - 2.0 * xi * self.tilt_x / a
        gd = gd - 2.0 * zeta * self.tilt_z / h
        grad = np.sqrt(gx * gx + gz * gz + gd * gd) + np.float32(1e-6)
        return g, (1.0 - g) / grad

    def point(self, xi: float, eta: float, zeta: float) -> tuple[float, float, float]:
        """Body ``(X, d, Z)`` of normalised coordinates (inverse of :meth:`local`)."""
        d = eta * self.projection
        a = self.a_lat if xi > 0 else self.a_med
        h = self.h_sup if zeta > 0 else self.h_inf
        x = self.cx + self.lateral * (xi * a + self.tilt_x * d)
        z = self.cz + zeta * h + self.tilt_z * d
        return x, d, z

    def bounds(self, thorax: Thorax, margin: float) -> tuple[np.ndarray, np.ndarray]:
        """Body-coordinate box ``(lo, hi)`` of (X, Y, Z) that holds the breast and nipple."""
        p = self.projection
        xs = [
            self.cx - self.a_med,
            self.cx + self.a_med,
            self.cx - self.a_lat,
            self.cx + self.a_lat,
            self.cx + self.lateral * self.tilt_x * p,
        ]
        x_lo, x_hi = min(xs) - margin, max(xs) + margin
        x_tip = self.cx + self.lateral * self.tilt_x * p
        y_tip = float(thorax.chest_front(np.array(x_tip))) - p - self.nipple_length
        xs_grid = np.linspace(x_lo, x_hi, 64)
        y_hi = float(thorax.chest_front(xs_grid).max()) + margin
        z_lo = self.cz - self.h_inf + min(0.0, self.tilt_z * p) - margin
        z_hi = self.cz + self.h_sup + max(0.0, self.tilt_z * p) + margin
        lo = np.array([x_lo, min(y_tip, -p) - margin, z_lo])
        hi = np.array([x_hi, y_hi, z_hi])
        return lo, hi

    def tip(self, thorax: Thorax) -> tuple[float, float, float]:
        """Body ``(X, Y, Z)`` of the nipple base (the breast apex)."""
        x, d, z = self.point(0.0, 1.0, 0.0)
        return x, float(thorax.chest_front(np.array(x))) - d, z

    def quadrant(self, x: float, d: float, z: float) -> str:
        """BI-RADS location of a point: ``UOQ``, ``UIQ``, ``LOQ``, ``LIQ`` or ``central``.

        Relative to the nipple axis at the point's depth; ``central`` within 10 mm of it in
        the front half of the breast (subareolar).
        """
        lat = self.lateral
        off_x = lat * (x - self.cx - lat * self.tilt_x * d)
        off_z = z - self.cz - self.tilt_z * d
        if math.hypot(off_x, off_z) < 10.0 and d > 0.5 * self.projection:
            return "central"
        return ("U" if off_z >= 0 else "L") + ("O" if off_x >= 0 else "I") + "Q"

    def to_dict(self) -> dict[str, float | str]:
        """JSON-ready form (mm)."""
        return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in self.__dict__.items()}
