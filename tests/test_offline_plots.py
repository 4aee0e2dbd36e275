"""`dvc plots show` without the network (tsblib/offline_plots.py)."""
import importlib.util
import json
import shutil
import subprocess
import sys

import pytest

from tsblib import offline_plots

FAKE = {n: f"window.{n.replace('-', '_')} = 1; // </script> inside" for n in offline_plots.RELEASES}


def test_the_template_inlines_the_scripts_and_fits_images_to_the_page():
    html = offline_plots.page(FAKE)
    assert "{plot_divs}" in html and "{refresh_tag}" in html
    assert "{scripts}" not in html  # DVC's CDN script tags have nowhere to go
    assert "cdn" not in html.lower() and "http" not in html.split("<body>")[0].split("<title>")[0]
    order = [html.index(f"window.{n.replace('-', '_')}") for n in offline_plots.RELEASES]
    assert order == sorted(order)
    assert "<\\/script> inside" in html and "img { max-width: 100%; height: auto; }" in html


@pytest.mark.skipif(importlib.util.find_spec("dvc") is None or shutil.which("git") is None,
                    reason="needs dvc and git")
def test_dvc_plots_show_uses_the_offline_template(tmp_path, monkeypatch):
    monkeypatch.setattr(offline_plots, "fetch", lambda name, version: FAKE[name])
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run([sys.executable, "-m", "dvc", "init", "-q"], cwd=tmp_path, check=True)
    (tmp_path / "m.json").write_text(json.dumps([{"x": 1, "y": 2}, {"x": 2, "y": 3}]))
    (tmp_path / "dvc.yaml").write_text("plots:\n  - m.json:\n      x: x\n      y: y\n")
    template = offline_plots.install(tmp_path)
    assert template.is_file()
    assert "offline_plots.html" in (tmp_path / ".dvc" / "config.local").read_text()
    subprocess.run([sys.executable, "-m", "dvc", "plots", "show", "-o", "out"], cwd=tmp_path,
                   check=True, capture_output=True)
    page = (tmp_path / "out" / "index.html").read_text()
    assert "window.vega_embed = 1" in page and "jsdelivr" not in page


def test_a_tarball_that_does_not_match_the_registry_is_refused(monkeypatch):
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        data = b"js"
        info = tarfile.TarInfo("package/build/vega.min.js")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    responses = {"meta": json.dumps({"dist": {"tarball": "tgz", "integrity": "sha512-AAAA"}}).encode(),
                 "tgz": buf.getvalue()}

    class Response(io.BytesIO):
        def __enter__(self):
            return self

        def __exit__(self, *a):
            return False

    monkeypatch.setattr(offline_plots.urllib.request, "urlopen",
                        lambda url, timeout: Response(responses["tgz" if url == "tgz" else "meta"]))
    with pytest.raises(RuntimeError, match="does not match the registry"):
        offline_plots.fetch("vega", "5.20.2")
