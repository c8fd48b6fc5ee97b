"""report.write_report: a self-contained HTML report (and PDF), checked as text and in Chromium."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from BreastAIAssistantLib.dce.lesion_kinetics import lesion_kinetics
from BreastAIAssistantLib.dce.maps import compute_maps
from BreastAIAssistantLib.measure import MaskError, measure_lesions
from BreastAIAssistantLib.phantom import SimpleStudySpec, make_simple_study
from BreastAIAssistantLib.report import html as report_html
from BreastAIAssistantLib.report import write_report

from conftest import OBLIQUE

DISCLAIMER = (
    "Research use only — not for clinical decisions; models are research demonstrations "
    "trained on a synthetic phantom"
)
MODELS = [{"id": "tumour-seg-demo", "version": "0.1.0", "sha256": "ab" * 32, "research_demo": True}]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
IMG_SRC = re.compile(r'<img[^>]*\bsrc="([^"]*)"')
CHROMIUM = shutil.which("chromium")


@pytest.fixture(scope="module")
def case():
    """The simple phantom with its two lesions, breast mask, maps, measurements and kinetics."""
    study = make_simple_study(seed=0)
    tissue = study.metadata["labels_zyx"]
    names = study.metadata["tissues"]
    lesions = np.zeros(tissue.shape, np.uint8)
    lesions[tissue == names.index("malignant")] = 1
    lesions[tissue == names.index("benign")] = 2
    breast_tissues = [names.index(n) for n in ("fat", "gland", "malignant", "benign")]
    labels = study.image_like(lesions)
    breast = study.image_like(np.isin(tissue, breast_tissues).astype(np.uint8))
    maps = compute_maps(study)
    return {
        "study": study,
        "maps": maps,
        "lesions": measure_lesions(labels, breast_mask=breast),
        "tumour_labels": labels,
        "kinetics": lesion_kinetics(study, labels, maps=maps),
        "breast_mask": breast,
        "models": MODELS,
        "timings": {"maps": 0.21, "segmentation": 1.5},
    }


@pytest.fixture(scope="module")
def written(case, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    paths = write_report(out, pdf=True, **case)
    return out, paths, paths["html"].read_text(encoding="utf-8")


def test_files_are_written_completely(written):
    out, paths, page = written
    assert set(paths) == {"html", "pdf"}
    assert sorted(p.name for p in out.iterdir()) == ["report.html", "report.pdf"]  # no temp files
    assert page.rstrip().endswith("</html>")
    assert paths["html"].stat().st_mode & 0o777 == 0o644
    pdf = paths["pdf"].read_bytes()
    assert pdf.startswith(b"%PDF") and len(re.findall(rb"/Type\s*/Page\b", pdf)) == 3


def test_page_is_self_contained(written):
    page = written[2]
    assert "http://" not in page and "https://" not in page
    assert not re.search(r"<(script|link|iframe|object|embed)\b", page, re.IGNORECASE)
    assert "url(" not in page and "@import" not in page
    assert not re.search(r'\b(src|href)="(?!data:)', page)
    sources = IMG_SRC.findall(page)
    assert len(sources) == 8  # 2 lesions x (MIP, axial, diameter plane, curve)
    for source in sources:
        assert source.startswith("data:image/png;base64,")
        assert base64.b64decode(source.split(",", 1)[1]).startswith(PNG_SIGNATURE)


def test_page_content(written, case):
    page = written[2]
    assert DISCLAIMER in page
    assert 'id="disclaimer"' in page
    assert re.search(r'id="t-stage".*?<span class="value">T2\(m\)</span>', page, re.DOTALL)
    for lesion_id in (1, 2):
        assert f'<section class="lesion" id="lesion-{lesion_id}">' in page
        assert f'id="lesion-{lesion_id}-measurements"' in page
        assert f'id="lesion-{lesion_id}-kinetics"' in page
    assert ">washout<" in page and ">persistent<" in page
    assert "T2 (range T1c–T2)" in page  # T category with its one-voxel range
    assert "tumour-seg-demo" in page and "ab" * 32 in page
    assert "simple synthetic study (seed 0)" in page
    assert "segmentation" in page and "1.50 s" in page
    assert "maximum diameter" in page and "slice" in page  # captions explain the planes


def test_dict_inputs_and_missing_kinetics(case, tmp_path):
    inputs = dict(case)
    inputs["lesions"] = case["lesions"].to_dict()
    inputs["kinetics"] = {str(k): v.to_dict() for k, v in case["kinetics"].items() if k == 1}
    inputs["breast_mask"] = None
    inputs["models"] = []
    page = write_report(tmp_path, **inputs)["html"].read_text(encoding="utf-8")
    assert 'id="lesion-1"' in page and 'id="lesion-2"' in page
    assert "No kinetics computed for this lesion." in page
    assert 'id="models-none"' in page
    assert len(IMG_SRC.findall(page)) == 7


def test_failed_write_keeps_the_previous_report(case, tmp_path, monkeypatch):
    inputs = {**case, "kinetics": None}
    first = write_report(tmp_path, **inputs)["html"]
    before = first.read_bytes()

    def broken(page):
        raise RuntimeError("disk full")

    monkeypatch.setattr("BreastAIAssistantLib.report.writer.render_page", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        write_report(tmp_path, **inputs)
    assert first.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]


def test_labels_on_another_grid_are_refused(case, tmp_path):
    moved = sitk.Image(case["tumour_labels"])
    moved.SetOrigin((0.0, 0.0, 0.0))
    with pytest.raises(MaskError, match="not on the study grid"):
        write_report(tmp_path, **{**case, "tumour_labels": moved})


def test_no_lesion(case, tmp_path):
    empty = sitk.Image(case["tumour_labels"])
    empty *= 0
    report = measure_lesions(empty, allow_empty=True)
    inputs = {**case, "lesions": report, "tumour_labels": empty, "kinetics": {}}
    page = write_report(tmp_path, **inputs)["html"].read_text(encoding="utf-8")
    assert 'id="no-lesion"' in page and "no lesion" in page
    assert DISCLAIMER in page


def test_cautions_are_shown_above_the_summary(case, tmp_path, written):
    assert 'id="cautions"' not in written[2]  # none given, no box
    caution = "voxels <4 mm> are coarse"
    paths = write_report(tmp_path, pdf=True, cautions=[caution], **case)
    page = paths["html"].read_text(encoding="utf-8")
    box = re.search(r'<div class="caution" id="cautions" role="note">(.*?)</div>', page, re.DOTALL)
    assert box and "<li>voxels &lt;4 mm&gt; are coarse</li>" in box.group(1)
    assert page.index('id="cautions"') < page.index('id="summary"')
    assert paths["pdf"].read_bytes().startswith(b"%PDF")


def test_escaping():
    assert report_html.kv_table([("a<b", 'x"&')]).count("&lt;") == 1
    assert "&quot;" in report_html.kv_table([("a", 'x"')])


# --- headless Chromium -------------------------------------------------------------------------

CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
)  # fmt: skip
DECODE_CHECK = (
    '<script>window.addEventListener("load", function () {'
    "var images = document.images, ok = 0;"
    "for (var i = 0; i < images.length; i++) {"
    "  if (images[i].complete && images[i].naturalWidth > 0) { ok++; } }"
    'var p = document.createElement("pre"); p.id = "decode-check";'
    'p.textContent = "decoded " + ok + " of " + images.length; document.body.appendChild(p);'
    "});</script>"
)


def _chromium(tmp_path: Path, url: str, *extra: str) -> subprocess.CompletedProcess:
    profile = tmp_path / "profile"
    return subprocess.run(
        [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *extra, url],
        capture_output=True,
        timeout=90,
        check=True,
        cwd=tmp_path,
    )


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_chromium_renders_the_report(written, tmp_path):
    from PIL import Image  # installed with matplotlib

    html_path = written[1]["html"]
    dom = _chromium(tmp_path, html_path.as_uri(), "--dump-dom").stdout.decode("utf-8")
    assert 'id="lesion-summary"' in dom and dom.count('<section class="lesion"') == 2
    assert dom.count("<img") == 8 and DISCLAIMER in dom
    assert re.search(r'<span class="value">T2\(m\)</span>', dom)

    screenshot = tmp_path / "report.png"
    _chromium(tmp_path, html_path.as_uri(), f"--screenshot={screenshot}", "--window-size=1200,2400")
    pixels = np.asarray(Image.open(screenshot).convert("L"), dtype=float)
    assert pixels.shape == (2400, 1200)
    # the key images have black backgrounds: decoded images darken a good part of the page
    assert (pixels < 40).mean() > 0.05
    assert (pixels > 230).mean() > 0.3  # and the page itself is white

    harness = tmp_path / "harness.html"
    harness.write_text(written[2].replace("</body>", DECODE_CHECK + "</body>"), encoding="utf-8")
    checked = _chromium(tmp_path, harness.as_uri(), "--dump-dom").stdout.decode("utf-8")
    assert 'id="decode-check">decoded 8 of 8<' in checked


def test_oblique_study(tmp_path):
    spec = SimpleStudySpec(size_xyz=(96, 72, 20), spacing_mm=(3.0, 3.0, 5.0), direction=OBLIQUE)
    study = make_simple_study(spec, seed=4)
    tissue = study.metadata["labels_zyx"]
    names = study.metadata["tissues"]
    lesions = np.zeros(tissue.shape, np.uint8)
    lesions[tissue == names.index("malignant")] = 1
    lesions[tissue == names.index("benign")] = 2
    labels = study.image_like(lesions)
    maps = compute_maps(study)
    paths = write_report(
        tmp_path,
        study=study,
        maps=maps,
        lesions=measure_lesions(labels),
        tumour_labels=labels,
        kinetics=lesion_kinetics(study, labels, maps=maps),
    )
    page = paths["html"].read_text(encoding="utf-8")
    assert len(IMG_SRC.findall(page)) == 8
    assert "(oblique)" in page and "from true axial" in page


@pytest.mark.parametrize(("early", "late", "marks"),
                         [(1, 2, ["early (phase 1)", "late (phase 2)"]),
                          (1, 1, ["early = late (phase 1)"])])  # fmt: skip
def test_curve_marks_the_early_and_late_phases_once_each(early, late, marks):
    from BreastAIAssistantLib.report.figures import curve_figure

    n = late + 1
    kinetics = {"times_s": [0.0, 90.0, 180.0][:n], "pe_curve_pct": [0.0, 120.0, 110.0][:n],
                "mean_pe_curve_pct": [0.0, 80.0, 75.0][:n], "early": early, "late": late,
                "curve_type": 2, "curve_type_name": "plateau", "hotspot_voxel_count": 10,
                "voxel_count": 100}  # fmt: skip
    figure = curve_figure(kinetics)
    texts = [t.get_text() for t in figure.axes[0].texts]
    assert [t for t in texts if "phase" in t] == marks
    legend = [t.get_text() for t in figure.axes[0].get_legend().get_texts()]
    assert any("plateau band" in t for t in legend) is (early != late)
