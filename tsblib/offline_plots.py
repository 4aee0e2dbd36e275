"""`dvc plots show` without the network.

DVC's HTML page loads Vega, Vega-Lite and Vega-Embed from a CDN, so offline it draws no line
chart. `python -m tsblib offline-plots` fetches the same three releases once from the npm
registry (a package registry; each tarball checked against the registry's sha512), writes an
HTML template with the scripts inlined and the figure images scaled to the page width
(`.dvc/tmp/offline_plots.html`, not committed), and points DVC at it in the repository's local
DVC config (`plots.html_template`). From then on `dvc plots show` needs no network.
"""
from __future__ import annotations

import base64
import hashlib
import io as _io
import json
import subprocess
import sys
import tarfile
import urllib.request
from pathlib import Path

from tsblib import io

RELEASES = {"vega": "5.20.2", "vega-lite": "5.2.0", "vega-embed": "6.18.2"}
"""The releases DVC's own page loads (dvc_render.vega), in loading order."""
REGISTRY = "https://registry.npmjs.org"
TEMPLATE = Path(".dvc") / "tmp" / "offline_plots.html"
"""Where the template is written, relative to the repository root (git-ignored)."""

PAGE = """<!DOCTYPE html>
<html>
<head>
    {{refresh_tag}}
    <title>DVC Plot (offline: {versions} inlined from the npm registry)</title>
{inlined}
    <style>
        table {{ border-spacing: 15px; }}
        img {{ max-width: 100%; height: auto; }}
        body {{ max-width: 100vw; overflow-x: hidden; }}
    </style>
</head>
<body>
    {{plot_divs}}
</body>
</html>"""
"""DVC's page (dvc_render.html.PAGE_HTML) with the scripts inlined instead of `{scripts}` (so
that DVC's CDN script tags are left out) and images no wider than the window."""


def fetch(name: str, version: str, timeout: float = 60.0) -> str:
    """The minified browser build of npm package `name`@`version`, checked against the
    registry's sha512 integrity."""
    with urllib.request.urlopen(f"{REGISTRY}/{name}/{version}", timeout=timeout) as r:
        dist = json.load(r)["dist"]
    with urllib.request.urlopen(dist["tarball"], timeout=timeout) as r:
        data = r.read()
    algo, _, expected = dist["integrity"].partition("-")
    if algo != "sha512" or base64.b64encode(hashlib.sha512(data).digest()).decode() != expected:
        raise RuntimeError(f"{name}@{version}: the tarball does not match the registry's "
                           f"{dist['integrity'][:20]}...; try again later")
    with tarfile.open(fileobj=_io.BytesIO(data)) as tar:
        member = tar.extractfile(f"package/build/{name}.min.js")
        if member is None:
            raise RuntimeError(f"{name}@{version} has no build/{name}.min.js")
        return member.read().decode()


def page(scripts: dict[str, str]) -> str:
    """The HTML template with `scripts` ({name: JavaScript}) inlined, in `RELEASES` order."""
    safe = {n: js.replace("</script", "<\\/script") for n, js in scripts.items()}
    inlined = "\n".join(f"    <script>/* {n}@{RELEASES[n]} */\n{safe[n]}\n    </script>"
                        for n in RELEASES)
    versions = ", ".join(f"{n} {v}" for n, v in RELEASES.items())
    return PAGE.format(inlined=inlined, versions=versions)


def install(root: Path) -> Path:
    """Fetch the scripts, write the template and set `plots.html_template` in the local DVC
    config of the repository at `root`; returns the template's path."""
    target = root / TEMPLATE
    io.write_text(target, page({n: fetch(n, v) for n, v in RELEASES.items()}))
    rel = target.relative_to(root / ".dvc").as_posix()  # DVC reads it relative to .dvc/
    subprocess.run([sys.executable, "-m", "dvc", "config", "--local", "plots.html_template", rel],
                   cwd=root, check=True)
    return target
