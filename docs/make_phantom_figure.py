"""Draw the documentation figure of one synthetic clinical-size phantom case.

Regenerate ``docs/phantom_case.png`` from the repository root (with the package installed)::

    python docs/make_phantom_figure.py                  # seed 27 -> docs/phantom_case.png
    python docs/make_phantom_figure.py --seed 6 --out /tmp/phantom_seed6.png

It generates ``generate_case(seed, size="clinical", n_phases=6)`` (448 x 448 x 160 voxels; about
10-20 s and 3 GiB of memory on two cores), computes the DCE maps with
:func:`BreastAIAssistantLib.dce.compute_maps` and draws one 1600 x 1000 pixel sheet of the axial
slice through the centre of the largest malignant lesion: pre-contrast, early subtraction, the
ground truth on the subtraction (lesion outlines coloured by class, whole-breast mask, the
fibroglandular and blood-pool regions of the curves), PE and SER maps in the breast, and the mean
time-intensity curves of the largest malignant lesion, the largest enhancing benign lesion (if
any), the heart's blood pool and the fibroglandular tissue, each with its BI-RADS kinetics.

Images are shown radiologically (anterior up, patient right on the image left) with
:func:`BreastAIAssistantLib.report.orientation.display_axes`. Windows: pre-contrast from the
0.5-99.5th percentiles inside the body, subtraction from 0 to the 99.5th percentile of the breast,
both on the slice shown. The case is synthetic: it is no patient's data.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk
from matplotlib import patheffects
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colorbar import Colorbar
from matplotlib.colors import ListedColormap, TwoSlopeNorm
from matplotlib.figure import Figure
from matplotlib.image import AxesImage
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from scipy import ndimage

from BreastAIAssistantLib.dce import compute_maps
from BreastAIAssistantLib.dce.curves import CURVE_TYPE_LABELS, classify_curve
from BreastAIAssistantLib.dce.maps import DCEMaps
from BreastAIAssistantLib.phantom import PhantomCase, generate_case
from BreastAIAssistantLib.phantom import tissues as T
from BreastAIAssistantLib.report.orientation import display_axes

DEFAULT_SEED = 27
DEFAULT_OUT = Path(__file__).resolve().parent / "phantom_case.png"
#: Sheet size in inches at :data:`DPI` (1600 x 1000 pixels).
SHEET_IN = (16.0, 10.0)
DPI = 100
#: Outline colours of the ground truth.
CLASS_COLOURS = {"malignant": "#ff3b30", "benign": "#2ee6ff"}
BREAST_COLOUR = "#ffd60a"
FGT_COLOUR = "#34c759"
BLOOD_COLOUR = "#ff5ee1"
#: Curve colours of the time-intensity panel.
CURVE_COLOURS = {
    "malignant": "#d62728",
    "benign": "#1f77b4",
    "heart": "#9467bd",
    "fibroglandular": "#2ca02c",
}
#: Blood voxels within this distance of the heart centre count as the heart's blood pool.
HEART_RADIUS_MM = 70.0
#: Colour scales: PE (%) and SER (ratio, centred on 1 = plateau).
PE_RANGE_PCT = (0.0, 250.0)
SER_RANGE = (0.0, 2.0)
#: PE (%) a voxel needs for its SER to be shown (Hylton's FTV threshold).
SER_PE_THRESHOLD_PCT = 70.0
_OUTLINE = [patheffects.withStroke(linewidth=2.5, foreground="black")]


@dataclass
class Region:
    """One curve of the time-intensity panel (``key`` picks its colour)."""

    key: str
    label: str
    enhancement_pct: np.ndarray


@dataclass
class SheetData:
    """Everything the sheet draws, as display-oriented 2-D arrays (rows down, columns right)."""

    seed: int
    title: str
    subtitle: str
    slice_label: str
    spacing_rc_mm: tuple[float, float]
    letters: dict[str, str]
    pre: np.ndarray
    sub: np.ndarray
    pe: np.ndarray
    ser: np.ndarray
    body: np.ndarray
    breast: np.ndarray
    fgt: np.ndarray
    blood: np.ndarray
    lesions: np.ndarray
    lesion_names: dict[int, str]
    lesion_classes: dict[int, str]
    pre_window: tuple[float, float]
    sub_window: tuple[float, float]
    times_s: np.ndarray
    early: int
    late: int
    injection_s: float
    regions: list[Region]


def _initial_rise(pe_early: float) -> str:
    """BI-RADS initial phase of an early enhancement (slow < 50 %, medium <= 100 %, fast)."""
    if pe_early < 50.0:
        return "slow"
    return "medium" if pe_early <= 100.0 else "fast"


def _curve_label(curve: np.ndarray, early: int, late: int) -> str:
    """``"fast rise, washout"``: BI-RADS initial and delayed phase of a mean signal curve."""
    pe_early = 100.0 * (curve[early] - curve[0]) / curve[0]
    # the delayed descriptor is given for every curve, slow ones included (tiny threshold)
    delayed = classify_curve(curve, early, late, min_enhancement_pct=1e-6)
    return f"{_initial_rise(pe_early)} rise, {CURVE_TYPE_LABELS[int(delayed)]['name']}"


def _mean_curves(case: PhantomCase, masks: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    study = case.study
    curves = {key: np.zeros(study.n_phases) for key in masks}
    for k in range(study.n_phases):
        phase = study.phase_zyx(k)
        for key, mask in masks.items():
            curves[key][k] = float(phase[mask].mean(dtype=np.float64))
    return curves


def _heart_blood(case: PhantomCase, tissue: np.ndarray) -> np.ndarray:
    """Blood within 70 mm of the heart centre (chambers, roots of the great vessels), eroded.

    The one-voxel erosion keeps partial volume with the myocardium and lung out of the mean.
    """
    reference = case.study.reference
    centre_xyz = reference.TransformPhysicalPointToContinuousIndex(
        [float(v) for v in case.truth["anatomy"]["heart_centre_lps_mm"]]
    )
    spacing = np.asarray(reference.GetSpacing())[::-1]
    reach = np.ceil(HEART_RADIUS_MM / spacing).astype(int)
    centre = np.asarray(centre_xyz)[::-1]
    lo = np.maximum(np.floor(centre).astype(int) - reach, 0)
    hi = np.minimum(np.ceil(centre).astype(int) + reach + 1, tissue.shape)
    box = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
    grids = np.ogrid[box]
    dist2 = sum(((g - c) * s) ** 2 for g, c, s in zip(grids, centre, spacing, strict=True))
    near = (tissue[box] == T.BLOOD) & (dist2 <= HEART_RADIUS_MM**2)
    blood = np.zeros(tissue.shape, bool)
    blood[box] = ndimage.binary_erosion(near)
    return blood


def _lesion_name(record: dict[str, Any]) -> str:
    """``"round mass, irregular margin, 44 mm"`` from a case.json lesion record."""
    if record["kind"] == "cyst":
        what = "cyst"
    elif record["kind"] == "non_mass":
        what = f"non-mass, {record['distribution']}"
    else:
        what = f"{record['shape']} mass, {record['margin']} margin"
    return f"{what}, {record['max_diameter_mm']:.0f} mm"


def _pick_lesions(case: PhantomCase) -> dict[str, int]:
    """Label of the largest malignant and the largest enhancing benign lesion (cysts last)."""
    picks: dict[str, int] = {}
    records = case.truth["lesions"]
    for cls in ("malignant", "benign"):
        ranked = sorted(
            (r for r in records if r["class"] == cls),
            key=lambda r: (r["kind"] == "cyst", -r["max_diameter_mm"]),
        )
        if ranked:
            picks[cls] = int(ranked[0]["label"])
    if "malignant" not in picks:
        raise ValueError(f"seed {case.seed} has no malignant lesion; pick another seed")
    return picks


def _regions(
    case: PhantomCase, picks: dict[str, int], masks: dict[str, np.ndarray], early: int, late: int
) -> list[Region]:
    """The curves: chosen lesions, heart blood pool and fibroglandular tissue."""
    curves = _mean_curves(case, masks)
    names = {f"lesion{label}": f"{label} {cls} lesion" for cls, label in picks.items()}
    names["heart"] = "heart blood pool"
    names["fibroglandular"] = "fibroglandular tissue"
    keys = {f"lesion{label}": cls for cls, label in picks.items()}
    regions = []
    for key, curve in curves.items():
        regions.append(
            Region(
                key=keys.get(key, key),
                label=f"{names[key]} — {_curve_label(curve, early, late)}",
                enhancement_pct=100.0 * (curve / curve[0] - 1.0),
            )
        )
    return regions


def collect(case: PhantomCase, maps: DCEMaps) -> SheetData:
    """Slices, windows and curves of the sheet from a case and its maps."""
    study = case.study
    reference = study.reference
    axes = display_axes(reference.GetDirection(), "axial")
    tumour = sitk.GetArrayViewFromImage(case.tumour_labels)
    tissue = sitk.GetArrayViewFromImage(case.tissue_labels)
    breast = sitk.GetArrayViewFromImage(case.breast_mask) > 0
    picks = _pick_lesions(case)
    # the axial plane through the centre of the malignant lesion
    where = np.nonzero(tumour == picks["malignant"])[2 - axes.slice_axis]
    index = round(float(where.mean()))

    masks = {f"lesion{label}": tumour == label for label in picks.values()}
    masks["heart"] = _heart_blood(case, tissue)
    masks["fibroglandular"] = (tissue == T.FIBROGLANDULAR) & breast & (tumour == 0)
    early, late = maps.phases.early, maps.phases.late
    regions = _regions(case, picks, masks, early, late)

    def plane(array: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(axes.slice_zyx(array, index))

    pre = plane(study.phase_zyx(0))
    body = plane(tissue) != T.AIR
    sub = plane(maps.array(f"sub_{early}"))
    breast_plane = plane(breast)
    # pre-contrast window from robust percentiles inside the body, subtraction 0..p99.5 of the
    # breast, both on this slice
    low, high = np.percentile(pre[body], (0.5, 99.5))
    sub_high = float(np.percentile(sub[breast_plane], 99.5))

    acquisition = case.truth["acquisition"]
    anatomy = case.truth["anatomy"]
    fat = "fat-suppressed" if acquisition["fat_suppressed"] else "non-fat-suppressed"
    sx, sy, sz = reference.GetSpacing()
    subtitle = (
        f"{acquisition['field_strength_t']:g} T {fat} 3-D T1-weighted spoiled gradient echo, "
        f"{study.n_phases} phases every {acquisition['temporal_resolution_s']:.0f} s, "
        f"{sx:.2f} × {sy:.2f} × {sz:.2f} mm voxels; BI-RADS density {anatomy['density']}, "
        f"{anatomy['bpe']} background parenchymal enhancement"
    )
    spacing = reference.GetSpacing()
    return SheetData(
        seed=case.seed,
        title=(
            f"Synthetic breast DCE-MRI phantom case (seed {case.seed}) — "
            "generated by BreastAIAssistant, not patient data"
        ),
        subtitle=subtitle,
        slice_label=f"{index + 1}/{reference.GetSize()[axes.slice_axis]}",
        spacing_rc_mm=(float(spacing[axes.row_axis]), float(spacing[axes.col_axis])),
        letters=axes.letters(reference.GetDirection()),
        pre=pre,
        sub=sub,
        pe=plane(maps.array("pe")),
        ser=plane(maps.array("ser")),
        body=body,
        breast=breast_plane,
        fgt=plane(masks["fibroglandular"]),
        blood=plane(masks["heart"]),
        lesions=plane(tumour),
        lesion_classes={r["label"]: r["class"] for r in case.truth["lesions"]},
        lesion_names={r["label"]: _lesion_name(r) for r in case.truth["lesions"]},
        pre_window=(float(low), float(high)),
        sub_window=(0.0, sub_high),
        times_s=np.asarray(study.times_s, dtype=float),
        early=early,
        late=late,
        injection_s=float(acquisition["injection_time_s"]),
        regions=regions,
    )


# --- drawing ------------------------------------------------------------------------------------


def _crop(data: SheetData, margin_mm: float = 6.0) -> tuple[slice, slice]:
    """Rows and columns of the body's bounding box on the slice, plus a margin."""
    rows, cols = np.nonzero(data.body | data.breast)
    mr = round(margin_mm / data.spacing_rc_mm[0])
    mc = round(margin_mm / data.spacing_rc_mm[1])
    h, w = data.body.shape
    return (
        slice(max(rows.min() - mr, 0), min(rows.max() + mr + 1, h)),
        slice(max(cols.min() - mc, 0), min(cols.max() + mc + 1, w)),
    )


class _Panel:
    """An image panel: a cropped display plane drawn in millimetres."""

    def __init__(self, ax: Axes, data: SheetData, crop: tuple[slice, slice]) -> None:
        self.ax, self.data, self.crop = ax, data, crop
        self.row_mm, self.col_mm = data.spacing_rc_mm
        self.height = (crop[0].stop - crop[0].start) * self.row_mm
        self.width = (crop[1].stop - crop[1].start) * self.col_mm
        ax.set_facecolor("black")
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_visible(False)

    def image(self, array: np.ndarray, **kw: Any) -> AxesImage:
        extent = (0.0, self.width, self.height, 0.0)
        return self.ax.imshow(array[self.crop], extent=extent, interpolation="nearest",
                              aspect="equal", **kw)  # fmt: skip

    def grey(self, array: np.ndarray, window: tuple[float, float]) -> AxesImage:
        return self.image(array, cmap="gray", vmin=window[0], vmax=window[1])

    def contour(self, mask: np.ndarray, **kw: Any) -> None:
        part = mask[self.crop].astype(np.float32)
        if part.max() < 0.5:
            return
        xs = (np.arange(part.shape[1]) + 0.5) * self.col_mm
        ys = (np.arange(part.shape[0]) + 0.5) * self.row_mm
        self.ax.contour(xs, ys, part, levels=[0.5], **kw)

    def lesion_outlines(self, numbers: bool = False) -> None:
        for label, cls in self.data.lesion_classes.items():
            mask = self.data.lesions == label
            self.contour(mask, colors=[CLASS_COLOURS[cls]], linewidths=1.8)
            rows, cols = np.nonzero(mask[self.crop])
            if numbers and rows.size:
                self.ax.text((cols.max() + 3) * self.col_mm, (rows.min() + 2) * self.row_mm,
                             str(label), color=CLASS_COLOURS[cls], fontsize=12,
                             fontweight="bold", va="bottom", path_effects=_OUTLINE)  # fmt: skip

    def decorate(self, title: str) -> None:
        """Orientation letters, a 50 mm scale bar and the title."""
        ax, w, h, letters = self.ax, self.width, self.height, self.data.letters
        style = {"color": "white", "fontsize": 11, "fontweight": "bold", "path_effects": _OUTLINE}
        ax.text(0.015 * w, h / 2, letters["left"], ha="left", va="center", **style)
        ax.text(0.985 * w, h / 2, letters["right"], ha="right", va="center", **style)
        ax.text(w / 2, 0.02 * h, letters["top"], ha="center", va="top", **style)
        ax.text(w / 2, 0.98 * h, letters["bottom"], ha="center", va="bottom", **style)
        x1, y = 0.965 * w, 0.95 * h
        ax.plot([x1 - 50, x1], [y, y], color="white", lw=2.5, solid_capstyle="butt",
                path_effects=_OUTLINE)  # fmt: skip
        ax.text(x1 - 25, y - 0.015 * h, "50 mm", color="white", ha="center", va="bottom",
                fontsize=9, path_effects=_OUTLINE)  # fmt: skip
        ax.set_xlim(0, w)
        ax.set_ylim(h, 0)
        ax.set_title(title, fontsize=12, pad=5)


def _rgba(colour: str, alpha: float) -> tuple[float, float, float, float]:
    value = colour.lstrip("#")
    r, g, b = (int(value[i : i + 2], 16) / 255 for i in (0, 2, 4))
    return (r, g, b, alpha)


def draw_sheet(data: SheetData) -> Figure:
    """The sheet as a figure on its own Agg canvas (no pyplot)."""
    figure = Figure(figsize=SHEET_IN, dpi=DPI)
    FigureCanvasAgg(figure)
    figure.suptitle(data.title, fontsize=16, fontweight="bold", y=0.985)
    figure.text(0.5, 0.94, data.subtitle, ha="center", fontsize=11, color="#333333")
    rows = figure.add_gridspec(2, 1, left=0.01, right=0.99, top=0.895, bottom=0.06, hspace=0.1)
    top = rows[0].subgridspec(1, 3, wspace=0.03)
    # bottom row: image, gap, colour bar, room for its labels, image, ..., curves
    ratios = [1, 0.015, 0.03, 0.13, 1, 0.015, 0.03, 0.27, 1.1]
    bottom = rows[1].subgridspec(1, len(ratios), wspace=0.0, width_ratios=ratios)
    crop = _crop(data)
    early_s = data.times_s[data.early]

    panel = _Panel(figure.add_subplot(top[0]), data, crop)
    panel.grey(data.pre, data.pre_window)
    panel.decorate(f"Pre-contrast T1-weighted, axial slice {data.slice_label}")

    panel = _Panel(figure.add_subplot(top[1]), data, crop)
    panel.grey(data.sub, data.sub_window)
    panel.decorate(f"Subtraction: phase {data.early} ({early_s:.0f} s) − pre-contrast")

    panel = _Panel(figure.add_subplot(top[2]), data, crop)
    _draw_truth(panel)

    panel = _Panel(figure.add_subplot(bottom[0]), data, crop)
    panel.grey(data.pre, data.pre_window)
    pe = np.where(data.breast, data.pe, np.nan)
    artist = panel.image(pe, cmap="inferno", vmin=PE_RANGE_PCT[0], vmax=PE_RANGE_PCT[1])
    panel.decorate(f"Percent enhancement PE, phase {data.early} (in the breast)")
    _colour_bar(figure, figure.add_subplot(bottom[2]), artist, "PE (%)")

    panel = _Panel(figure.add_subplot(bottom[4]), data, crop)
    panel.grey(data.pre, data.pre_window)
    shown = data.breast & (data.pe >= SER_PE_THRESHOLD_PCT)
    ser = np.where(shown, data.ser, np.nan)
    norm = TwoSlopeNorm(vcenter=1.0, vmin=SER_RANGE[0], vmax=SER_RANGE[1])
    artist = panel.image(ser, cmap="RdYlBu_r", norm=norm)
    panel.decorate(f"SER, phases {data.early}/{data.late}, where PE ≥ {SER_PE_THRESHOLD_PCT:.0f} %")
    bar = _colour_bar(figure, figure.add_subplot(bottom[6]), artist, "SER")
    bar.set_ticks([0.0, 0.5, 0.9, 1.1, 1.5, 2.0])
    for y, text in ((0.22, "persistent"), (0.78, "washout")):
        bar.ax.text(0.5, y, text, transform=bar.ax.transAxes, rotation=90, ha="center",
                    va="center", fontsize=8.5, color="white", path_effects=_OUTLINE)  # fmt: skip

    _draw_curves(figure.add_subplot(bottom[8]), data)
    return figure


def _colour_bar(figure: Figure, cax: Axes, artist: AxesImage, label: str) -> Colorbar:
    # the bar spans the middle of its column, like the image beside it
    box = cax.get_position()
    cax.set_position((box.x0, box.y0 + 0.12 * box.height, box.width, 0.72 * box.height))
    bar = figure.colorbar(artist, cax=cax)
    bar.set_label(label, fontsize=10)
    bar.ax.tick_params(labelsize=9)
    return bar


def _draw_truth(panel: _Panel) -> None:
    """Ground truth: lesion outlines by class, breast mask, and the curves' tissue regions."""
    data = panel.data
    panel.grey(data.sub, data.sub_window)
    tint = np.zeros(data.fgt.shape, np.uint8)
    tint[data.fgt] = 1
    tint[data.blood] = 2
    colours = [(0, 0, 0, 0), _rgba(FGT_COLOUR, 0.35), _rgba(BLOOD_COLOUR, 0.5)]
    panel.image(tint, cmap=ListedColormap(colours), vmin=-0.5, vmax=2.5)
    panel.contour(data.breast, colors=[BREAST_COLOUR], linewidths=1.1, linestyles="--")
    panel.lesion_outlines(numbers=True)
    panel.decorate("Ground truth on the subtraction")
    handles = [
        Line2D([], [], color=CLASS_COLOURS[cls], lw=2,
               label=f"{label} {cls}: {data.lesion_names[label]}")
        for label, cls in data.lesion_classes.items()
        if (data.lesions == label).any()
    ]  # fmt: skip
    handles += [
        Line2D([], [], color=BREAST_COLOUR, lw=1.2, ls="--", label="whole-breast mask"),
        Patch(color=FGT_COLOUR, alpha=0.6, label="fibroglandular tissue"),
        Patch(color=BLOOD_COLOUR, alpha=0.7, label="heart blood pool"),
    ]
    panel.ax.legend(handles=handles, loc="lower left", fontsize=8, framealpha=0.85)


def _draw_curves(ax: Axes, data: SheetData) -> None:
    t = data.times_s
    top = max(float(np.nanmax(r.enhancement_pct)) for r in data.regions)
    for region in data.regions:
        ax.plot(t, region.enhancement_pct, "-o", color=CURVE_COLOURS[region.key], lw=2.2, ms=5,
                mec="black", mew=0.5, label=region.label)  # fmt: skip
    for k, name in ((data.early, "early"), (data.late, "late")):
        ax.axvline(t[k], color="#444444", lw=0.9, ls=":")
        ax.text(t[k], 1.01, name, transform=ax.get_xaxis_transform(), ha="center", va="bottom",
                fontsize=9)  # fmt: skip
    ax.axvline(data.injection_s, color="#888888", lw=0.9, ls="--")
    ax.text(data.injection_s, 1.27 * top, "contrast injection ", rotation=90, ha="right",
            va="top", fontsize=8.5, color="#555555")  # fmt: skip
    ax.axhline(0, color="#999999", lw=0.8)
    ax.set_ylim(-0.05 * top, 1.3 * top)
    ax.set_xlim(-0.03 * t[-1], 1.03 * t[-1])
    ax.set_xticks(t)
    ax.set_xticklabels([f"{v:.0f}" for v in t])
    ax.tick_params(labelsize=9)
    ax.set_xlabel("time after the pre-contrast scan (s)", fontsize=10)
    ax.set_ylabel("mean signal enhancement (%)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8.5, loc="upper right", framealpha=0.92)
    ax.set_title("Time–intensity curves (mean over each region)", fontsize=12, pad=18)


def render(seed: int, out: Path) -> Path:
    """Generate the case, draw the sheet and write the PNG."""
    case = generate_case(seed, size="clinical", n_phases=6)
    maps = compute_maps(case.study)
    data = collect(case, maps)
    del maps, case
    figure = draw_sheet(data)
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=DPI, facecolor="white")
    return out


def main(argv: list[str] | None = None) -> int:
    """Command line: ``python docs/make_phantom_figure.py [--seed N] [--out PATH]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="phantom seed (27)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="PNG to write")
    args = parser.parse_args(argv)
    try:
        path = render(args.seed, args.out)
    except ValueError as exc:
        parser.error(str(exc))
    print(f"wrote {path} ({path.stat().st_size / 1024:.0f} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
