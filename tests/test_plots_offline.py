"""The offline `dvc plots show` template: built right, and drawing plots in headless Chromium with no network."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from realfake.core.errors import UserError
from realfake.evaluation import plots_template as PT

REPO = Path(__file__).resolve().parents[1]
TEMPLATE = REPO / ".dvc" / "plots" / "offline.html"
DVC_YAML = """plots:
  - plots/roc.csv:
      template: simple
      x: fpr
      y: tpr
  - plots/confusion.csv:
      template: confusion
      x: actual
      y: predicted
"""


def committed_template() -> str:
    if not TEMPLATE.exists():
        pytest.skip(f"{TEMPLATE} not built (python -m realfake.evaluation.plots_template)")
    return TEMPLATE.read_text(encoding="utf-8")


def test_template_inlines_the_pinned_libraries_and_drops_the_cdn():
    html = committed_template()
    assert "{plot_divs}" in html and "{refresh_tag}" in html
    assert "{scripts}" not in html  # DVC's CDN <script> tags have nowhere to go
    assert "cdn.jsdelivr" not in html and "<script src" not in html
    for pkg in PT.PACKAGES:
        assert f'data-package="{pkg.spec}"' in html and pkg.integrity in html
    assert html.count("<script") == html.count("</script>") == len(PT.PACKAGES)


def test_tampered_tarball_is_refused(tmp_path):
    pkg = PT.PACKAGES[0]
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w:gz") as tar:
        body = b"window.vega = {};"
        info = tarfile.TarInfo(f"package/{pkg.bundle}")
        info.size = len(body)
        tar.addfile(info, io.BytesIO(body))
    tarball = tmp_path / pkg.tarball
    tarball.write_bytes(data.getvalue())
    with pytest.raises(UserError, match="integrity"):
        PT.read_bundle(pkg, tarball)
    good = PT.NpmPackage(pkg.name, pkg.version, pkg.bundle, PT.integrity_of(data.getvalue()))
    assert PT.read_bundle(good, tarball) == "window.vega = {};"


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    pytest.skip("headless Chromium not installed (apt-get install chromium)")


def render(browser: str, page: Path, tmp: Path, *mode: str) -> subprocess.CompletedProcess:
    """Open a local page in headless Chromium with all network cut off (a dead proxy)."""
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp / 'profile'}",
             "--proxy-server=127.0.0.1:9", "--window-size=1200,900", "--virtual-time-budget=5000"]
    return subprocess.run([browser, *flags, *mode, page.as_uri()], capture_output=True, text=True, timeout=120,
                          check=True)


def dvc_project(tmp: Path, template: str | None) -> Path:
    """A tiny git+DVC project with an ROC line and a confusion plot; returns the `dvc plots show` page."""
    proj = tmp / "proj"
    (proj / "plots").mkdir(parents=True)
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "DVC_NO_ANALYTICS": "1"}
    subprocess.run(["git", "init", "-q"], cwd=proj, check=True, env=env)
    dvc = [sys.executable, "-m", "dvc"]
    subprocess.run([*dvc, "init", "-q"], cwd=proj, check=True, env=env)
    fpr = np.linspace(0, 1, 41)
    (proj / "plots" / "roc.csv").write_text("fpr,tpr\n" + "".join(f"{x:.3f},{x ** 0.3:.4f}\n" for x in fpr))
    rows = [("real", "real")] * 40 + [("real", "fake")] * 5 + [("fake", "fake")] * 30 + [("fake", "real")] * 8
    (proj / "plots" / "confusion.csv").write_text("actual,predicted\n" + "".join(f"{a},{p}\n" for a, p in rows))
    (proj / "dvc.yaml").write_text(DVC_YAML)
    if template is not None:
        (proj / ".dvc" / "plots").mkdir()
        (proj / ".dvc" / "plots" / "offline.html").write_text(template, encoding="utf-8")
        subprocess.run([*dvc, "config", "plots.html_template", "plots/offline.html"], cwd=proj, check=True, env=env)
    subprocess.run([*dvc, "plots", "show", "-o", "out"], cwd=proj, check=True, env=env, capture_output=True)
    return proj / "out" / "index.html"


def non_white_share(png: Path) -> float:
    pixels = np.asarray(Image.open(png).convert("L"))
    return float((pixels < 230).mean())


@pytest.mark.chromium
@pytest.mark.parametrize("offline", [True, False], ids=["offline-template", "dvc-default-control"])
def test_dvc_plots_draw_offline_in_chromium(tmp_path, offline):
    browser = chromium()
    page = dvc_project(tmp_path, committed_template() if offline else None)
    dom = render(browser, page, tmp_path, "--dump-dom").stdout
    shot = tmp_path / "shot.png"
    render(browser, page, tmp_path, f"--screenshot={shot}")
    drawn = dom.count('class="marks"')  # vega-embed's canvas (or svg) holding the drawn marks
    share = non_white_share(shot)
    if offline:
        assert drawn == 2, dom[-2000:]
        assert share > 0.03
    else:  # DVC's own page needs the CDN: with the network cut off, nothing draws
        assert drawn == 0
        assert share < 0.01
