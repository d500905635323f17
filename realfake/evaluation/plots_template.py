"""Build the offline HTML template for `dvc plots show`: vega, vega-lite and vega-embed inlined from npm.

DVC's default page loads the three libraries from cdn.jsdelivr.net, so the plots are blank offline. This
module fetches the exact versions DVC's renderer asks for (dvc-render's VegaRenderer.SCRIPTS) with
`npm pack`, checks each tarball against its pinned npm integrity hash, and inlines the same files the CDN
serves (each package's `jsdelivr` entry). The template has no `{scripts}` placeholder, so DVC's CDN
tags are dropped. Use it with `dvc config plots.html_template plots/offline.html` (relative to `.dvc/`).

    python -m realfake.evaluation.plots_template [--out .dvc/plots/offline.html] [--tarballs DIR]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import logging
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from realfake.core.atomic import write_text
from realfake.core.errors import UserError
from realfake.core.log import setup_logging

log = logging.getLogger(__name__)

DEFAULT_OUT = Path(".dvc/plots/offline.html")
# dvc-render reserves these placeholders; an inlined library must not contain them or DVC would rewrite it
PLACEHOLDERS = ("{scripts}", "{plot_divs}", "{refresh_tag}")


@dataclass(frozen=True)
class NpmPackage:
    """One pinned npm tarball and the browser bundle inside it."""

    name: str
    version: str
    bundle: str  # path inside the tarball (under package/)
    integrity: str  # npm's sha512 integrity of the tarball

    @property
    def spec(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def tarball(self) -> str:
        return f"{self.name}-{self.version}.tgz"


# The versions dvc-render 1.0.2 loads from the CDN; hashes as published by the npm registry.
PACKAGES = (
    NpmPackage("vega", "5.20.2", "build/vega.min.js",
               "sha512-qmH7aD9GGPpssVdxL1xgcdxTbQzyRUeRR16Os385ymvQhiwCYQNA6+eXUPAZDTVLfk0RXu6Jzj6kUE5jQ80EVw=="),
    NpmPackage("vega-lite", "5.2.0", "build/vega-lite.min.js",
               "sha512-Yxcg8MvYfxHcG6BbkaKT0oVCIMIcE19UvqIsEwBmyd/7h2nzW7oRnID81T8UrY7hpDrIr6wa2JADOT2dhGNErw=="),
    NpmPackage("vega-embed", "6.18.2", "build/vega-embed.min.js",
               "sha512-wcDyQPE4J5aiCDc3/suH5RQDvrKkjuLkhzUcbOLwEkNF8/+pp17tS0JghzEvAPNRg+5aG1/N2ydixq8Lk3dOlg=="),
)

# DVC's own page (dvc-render's PAGE_HTML), read from the installed dvc-render rather than copied: the template
# keeps its {refresh_tag} and {plot_divs} and swaps {scripts} (the CDN tags) for the inlined libraries.
HEAD_EXTRA = """    <!-- realfake offline template: built by `python -m realfake.evaluation.plots_template`; libraries inlined from npm:
{manifest}
    -->
{inline_scripts}"""


def page() -> str:
    """DVC's page with a UTF-8 charset and a slot for the inlined libraries where its CDN tags were."""
    from dvc_render.html import PAGE_HTML

    if "<head>\n" not in PAGE_HTML or PAGE_HTML.count("    {scripts}\n") != 1:
        raise UserError("this dvc-render's PAGE_HTML has no `<head>` / `{scripts}` line to replace: "
                        "update realfake.evaluation.plots_template")
    return (PAGE_HTML.replace("<head>\n", '<head>\n    <meta charset="utf-8">\n', 1)
            .replace("    {scripts}\n", HEAD_EXTRA + "\n") + "\n")


def integrity_of(data: bytes) -> str:
    """npm's Subresource-Integrity string (sha512, base64) of a tarball."""
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def fetch_tarball(pkg: NpmPackage, tarballs: Path) -> Path:
    """The package's tarball from `tarballs/`, fetched there with `npm pack` when absent."""
    path = tarballs / pkg.tarball
    if path.exists():
        return path
    npm = shutil.which("npm")
    if npm is None:
        raise UserError(f"npm not found and {path} is absent: install npm or put the tarball there")
    tarballs.mkdir(parents=True, exist_ok=True)
    log.info("npm pack %s", pkg.spec)
    with tempfile.TemporaryDirectory(dir=tarballs) as tmp:
        subprocess.run([npm, "pack", pkg.spec, "--silent"], cwd=tmp, check=True, stdout=subprocess.DEVNULL)
        Path(tmp, pkg.tarball).replace(path)
    return path


def read_bundle(pkg: NpmPackage, tarball: Path) -> str:
    """The checked browser bundle's JavaScript, made safe to inline in a <script> element."""
    data = tarball.read_bytes()
    got = integrity_of(data)
    if got != pkg.integrity:
        raise UserError(f"{tarball}: integrity {got} does not match the pinned {pkg.integrity}")
    with tarfile.open(tarball, "r:gz") as tar:
        member = tar.extractfile(f"package/{pkg.bundle}")
        if member is None:
            raise UserError(f"{tarball} has no package/{pkg.bundle}")
        js = member.read().decode("utf-8")
    for placeholder in PLACEHOLDERS:
        if placeholder in js:
            raise UserError(f"{pkg.spec} contains the DVC placeholder {placeholder}; it cannot be inlined as is")
    if "<!--" in js:  # would switch the HTML parser into script-data-escaped state; no safe generic rewrite
        raise UserError(f"{pkg.spec} contains '<!--'; it cannot be inlined as is")
    # "</script" would end the element early; "<\/script" means the same inside JS strings and regexes
    js = js.replace("</script", "<\\/script")
    return js.replace("//# sourceMappingURL=", "// (source map not shipped) ")


def build_template(tarballs: Path) -> str:
    """The full template text with the three libraries inlined in load order."""
    manifest, scripts = [], []
    for pkg in PACKAGES:
        js = read_bundle(pkg, fetch_tarball(pkg, tarballs))
        manifest.append(f"      {pkg.spec} {pkg.bundle} {pkg.integrity}")
        scripts.append(f'    <script type="text/javascript" data-package="{pkg.spec}">\n{js}\n    </script>')
    return (page().replace("{manifest}", "\n".join(manifest))
                .replace("{inline_scripts}", "\n".join(scripts)))


def main(argv: list[str] | None = None) -> int:
    """CLI: build the template and write it atomically."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"template path (default {DEFAULT_OUT})")
    parser.add_argument("--tarballs", type=Path, default=None,
                        help="directory holding (or receiving) the npm tarballs (default: a temp dir)")
    args = parser.parse_args(argv)
    setup_logging()
    with tempfile.TemporaryDirectory() as tmp:
        html = build_template(args.tarballs or Path(tmp))
    write_text(args.out, html)
    log.info("wrote %s (%.1f kB)", args.out, len(html.encode()) / 1024)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
