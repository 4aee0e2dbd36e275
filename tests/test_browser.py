"""An executed figure notebook as a reader sees it: JupyterLab (on a free local port, with a token,
in a temporary folder holding a copy of the notebook) opened in headless Chromium through
Playwright. The figure is shown as an image at its own size (never scaled down, so its text is
readable at 100 % zoom), every table fits its output area, the claims table is an HTML table whose
numbers do not wrap, and opening the notebook, letting its kernel start and saving it changes
nothing.

Needs the optional `browser` extra (`pip install -e ".[browser]"`, which brings Playwright) and
a Chromium: Playwright's own (`playwright install chromium`, where its download site is
reachable), a system one (Debian: `apt-get install chromium`), or the one named by $TSB_CHROMIUM.
Skipped, with the reason, where either is missing; it takes about 20 s where both are present.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import pytest

pytestmark = pytest.mark.browser

sync_api = pytest.importorskip(
    "playwright.sync_api", reason="Playwright is not installed (pip install -e '.[browser]')")

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "results" / "embedded" / "notebooks" / "accuracy_gap.ipynb"
SYSTEM_CHROMIUMS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def _chromium(playwright: Any) -> str | None:
    """The Chromium to launch: $TSB_CHROMIUM, Playwright's own when installed, else a system
    one on PATH; None when there is none."""
    if os.environ.get("TSB_CHROMIUM"):
        return os.environ["TSB_CHROMIUM"]
    own = Path(playwright.chromium.executable_path)
    if own.is_file():
        return str(own)
    return next((found for name in SYSTEM_CHROMIUMS if (found := shutil.which(name))), None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as reply:
        return json.loads(reply.read())


class Lab:
    """A JupyterLab server for one test module."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder / "lab"
        self.folder.mkdir()
        self.token = secrets.token_hex(16)
        self.url = f"http://127.0.0.1:{_free_port()}"
        env = dict(os.environ, JUPYTER_CONFIG_DIR=str(folder / "config"),
                   JUPYTER_RUNTIME_DIR=str(folder / "runtime"),
                   JUPYTERLAB_SETTINGS_DIR=str(folder / "settings"),
                   JUPYTERLAB_WORKSPACES_DIR=str(folder / "workspaces"),
                   PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH"))
                                              if p))
        self.log = folder / "jupyterlab.log"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", "--ip=127.0.0.1",
             f"--port={self.url.rsplit(':', 1)[1]}", "--ServerApp.port_retries=0",
             f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={self.folder}",
             "--NotebookNotary.db_file=:memory:", f"--NotebookNotary.secret_file={folder / 'secret'}"],
            env=env, stdout=self.log.open("w"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 90
        while True:
            try:
                _get(self.api("status"))
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    pytest.fail(f"JupyterLab did not start:\n{self.log.read_text()[-3000:]}")
                time.sleep(0.3)

    def api(self, path: str) -> str:
        return f"{self.url}/api/{path}?token={self.token}"

    def wait_for_idle_kernels(self, path: str | None = None, timeout: float = 60) -> None:
        """Wait until the kernels (of notebook `path`'s sessions, when given) are idle."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            kernels = [s["kernel"] for s in _get(self.api("sessions"))
                       if path is None or s.get("path") == path]
            if kernels and all(k["execution_state"] == "idle" for k in kernels):
                return
            time.sleep(0.3)
        pytest.fail(f"the notebook's kernel did not become idle in {timeout} s")

    def close_sessions(self, path: str) -> None:
        """Shut down the kernels of notebook `path` (a closed tab leaves them running)."""
        for session in _get(self.api("sessions")):
            if session.get("path") == path:
                request = urllib.request.Request(self.api(f"sessions/{session['id']}"),
                                                 method="DELETE")
                urllib.request.urlopen(request, timeout=10).close()

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


VIEWPORT = {"width": 1400, "height": 1000}
"""The browser window: a laptop-sized screen at 100 % zoom."""


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Lab]]:
    """A headless Chromium and a JupyterLab server holding copies of every executed notebook of
    the embedded profile."""
    with sync_api.sync_playwright() as playwright:
        executable = _chromium(playwright)
        if executable is None:
            pytest.skip("no Chromium: install Debian's `chromium` package, run `playwright "
                        "install chromium`, or set TSB_CHROMIUM to a Chromium executable")
        browser = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        lab = Lab(tmp_path_factory.mktemp("jupyterlab"))
        try:
            for notebook in NOTEBOOK.parent.glob("*.ipynb"):
                shutil.copy(notebook, lab.folder / notebook.name)
            yield browser, lab
        finally:
            browser.close()
            lab.stop()


def _open(session: tuple[Any, Lab], name: str) -> Any:
    """A new tab showing notebook `name` once its figure is drawn."""
    browser, lab = session
    tab = browser.new_page(viewport=VIEWPORT)
    tab.set_default_timeout(90_000)
    tab.goto(f"{lab.url}/lab/tree/{name}?token={lab.token}&reset")
    tab.wait_for_selector(".jp-Notebook .jp-OutputArea-output img")
    return tab


@pytest.fixture(scope="module")
def page(session: tuple[Any, Lab]) -> Iterator[tuple[Any, Lab]]:
    tab = _open(session, NOTEBOOK.name)
    yield tab, session[1]
    tab.close()


NOTEBOOKS = sorted(p.name for p in NOTEBOOK.parent.glob("*.ipynb"))


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_tables_fit_and_figures_are_shown_at_their_own_size(session: tuple[Any, Lab],
                                                           name: str) -> None:
    """Every table fits the width of its output area (no sideways scrolling for a table), and
    every figure is shown at its own pixel size, never scaled down (its text stays readable at
    100 % zoom), inside an output area that scrolls sideways where the figure is wider."""
    tab = _open(session, name)
    try:
        tables = tab.evaluate(
            "() => Array.from(document.querySelectorAll('.jp-OutputArea-output table')).map(t => "
            "[t.getBoundingClientRect().width, t.closest('.jp-OutputArea-output').clientWidth,"
            " Array.from(t.querySelectorAll('th')).map(h => h.textContent).join(' | ')])")
        wide = [f"{width:.0f} px in {room} px: {head[:120]}" for width, room, head in tables
                if width > room + 1]
        assert not wide, "tables wider than their output area:\n" + "\n".join(wide)
        images = tab.evaluate(
            "() => Array.from(document.querySelectorAll('.jp-OutputArea-output img')).map(i => {"
            " const area = i.closest('.jp-OutputArea-output');"
            " return [i.naturalWidth, i.getBoundingClientRect().width, area.clientWidth,"
            " getComputedStyle(area).overflowX]; })")
        assert images
        for natural, shown, room, overflow in images:
            assert abs(shown - natural) <= 1, f"figure {natural} px wide shown at {shown:.0f} px"
            if natural > room:
                assert overflow in ("auto", "scroll"), f"a {natural} px figure clipped at {room} px"
    finally:
        tab.close()
        session[1].close_sessions(name)


def test_figure_is_an_image(page: tuple[Any, Lab]) -> None:
    tab, _ = page
    images = tab.locator(".jp-OutputArea-output img")
    assert images.count() == 1
    size = images.first.evaluate("img => [img.naturalWidth, img.naturalHeight, img.complete]")
    assert size[0] > 1000 and size[1] > 500 and size[2]  # decoded, full size


def test_claims_table_is_an_html_table_with_numbers_on_one_line(page: tuple[Any, Lab]) -> None:
    tab, _ = page
    table = tab.locator(".jp-OutputArea-output table").filter(
        has_text="accuracy-gap improvement (own gap)", has=tab.locator("th", has_text="meets?"))
    assert table.count() == 1  # the claims table (the definitions table names the claims too)
    headers = table.locator("th").all_inner_texts()
    assert headers[:4] == ["claim", "model", "compared with", "paper's claim"]
    assert "meets?" in headers
    cells = table.first.evaluate(  # each cell's text, white-space and number of line boxes
        "t => Array.from(t.querySelectorAll('td')).map(td => {"
        " const r = document.createRange(); r.selectNodeContents(td);"
        " return [td.innerText, getComputedStyle(td).whiteSpace, r.getClientRects().length]; })")
    intervals = [c for c in cells if c[0].endswith("]") and "x [" in c[0]]
    from tsblib.figures import accuracy_gap, loader

    measured = accuracy_gap.claims_table(loader.load_results("embedded", NOTEBOOK.parents[1]))
    expected = [v for v in measured["our measured value [95 % interval]"]
                if v.endswith("]") and "x [" in v]
    assert [c[0] for c in intervals] == expected and len(expected) >= 4  # ratios with intervals
    for text, white_space, lines in intervals:
        assert white_space == "nowrap" and lines == 1, (text, white_space, lines)
    assert max(lines for _, _, lines in cells) > 1  # while long text still wraps between words


def test_opening_and_saving_changes_nothing(page: tuple[Any, Lab]) -> None:
    tab, lab = page
    lab.wait_for_idle_kernels(NOTEBOOK.name)  # JupyterLab writes the kernel's metadata then
    tab.wait_for_timeout(2000)
    dirty = tab.evaluate("() => Array.from(document.querySelectorAll('.lm-TabBar-tab.jp-mod-dirty'))"
                         ".map(t => t.innerText)")
    assert dirty == [], "JupyterLab marked the notebook modified on opening"
    copy = lab.folder / NOTEBOOK.name
    before = copy.stat().st_mtime_ns
    tab.keyboard.press("Control+s")
    deadline = time.monotonic() + 30
    while copy.stat().st_mtime_ns == before:
        assert time.monotonic() < deadline, "JupyterLab did not save the notebook"
        time.sleep(0.2)
    time.sleep(0.5)  # let the write finish
    assert copy.read_bytes() == NOTEBOOK.read_bytes(), "saving unchanged rewrote the notebook"
