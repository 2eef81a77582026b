"""The HTML report in a real browser: headless Chromium (Debian ``chromium``) opens a report
of a real multi-target run (p2pkit's DHT node and a mutant of it, on loopback), with no
console error, and its DOM holds the matrix, every case, the side-by-side trees and the
highlighted difference. Chromium runs inside ``unshare -n`` (loopback only; the page is
self-contained and needs no network). Skipped when chromium is missing, outside CI only."""

from __future__ import annotations

import asyncio
import os
import shutil
import struct
from html.parser import HTMLParser
from pathlib import Path

import pytest

from p2pkit.conformance.case import select
from p2pkit.conformance.matrix import MatrixReport
from p2pkit.conformance.reporters import html
from p2pkit.conformance.runner import run_cases
from tests.conformance.helpers import SILENCE
from tests.conformance.matrix_helpers import MUTANT_FAILS, cases, two_nodes
from tests.interop.conftest import _can_unshare, require, require_executable, run_in_netns

#: Seconds a chromium run may take (it starts in about 2 s here).
CHROMIUM_TIMEOUT = 90


def chromium(url: str, profile: Path, *args: str) -> tuple[str, list[str]]:
    """Headless chromium on ``url`` inside a loopback-only network namespace: its standard
    output (``--dump-dom``: the DOM after load) and the console lines of its log that come
    from the page (not from Chromium's own ``chrome://`` UI)."""
    exe = require_executable("chromium")
    require(_can_unshare(), "unshare -n and ip (root or user namespaces)")
    argv = [exe, "--headless", "--disable-gpu", "--no-first-run", "--no-default-browser-check",
            "--disable-extensions", "--disable-background-networking", "--disable-sync",
            "--disable-component-update", f"--user-data-dir={profile}",
            "--enable-logging=stderr", "--v=0", "--hide-scrollbars",
            *(["--no-sandbox"] if os.geteuid() == 0 else []), *args, url]
    done = run_in_netns(argv, timeout=CHROMIUM_TIMEOUT)
    assert done.returncode == 0, done.stderr[-2000:]
    # Chromium's own UI (``source: chrome://…``, such as its "Slow network is detected" note
    # about its bundled fonts on a loaded machine) is not the page's
    console = [line for line in done.stderr.splitlines()
               if (":CONSOLE" in line or "Uncaught" in line or "ERR_" in line)
               and "source: chrome://" not in line]
    return done.stdout, console


class _Dom(HTMLParser):
    """What the test reads in the dumped DOM: ids, classes, the marked lines' text."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.classes: list[str] = []
        self.marked: list[str] = []
        self.matrix_rows = 0
        self._in_marked = 0

    def handle_starttag(self, tag: str, attrs: list) -> None:
        a = dict(attrs)
        if "id" in a:
            self.ids.add(a["id"])
        cls = a.get("class") or ""
        self.classes += cls.split()
        if tag == "span" and "diff" in cls.split():
            self._in_marked += 1
            self.marked.append("")
        if tag == "tr" and "differs" in cls.split():
            self.matrix_rows += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "span" and self._in_marked:
            self._in_marked -= 1

    def handle_data(self, data: str) -> None:
        if self._in_marked:
            self.marked[-1] += data


@pytest.fixture(scope="module")
def pages(tmp_path_factory) -> dict[str, Path]:
    """``matrix``: both nodes, the same cases; ``difference``: one failing case of the
    mutant alone (its trees at the top of the page, for the docs' second screenshot)."""
    async def run(targets):
        good = await run_cases(cases(), targets[0], silence=SILENCE)
        bad = await run_cases(cases(), targets[1], silence=SILENCE)
        one = await run_cases(select(cases(), ["t-echo-2-bytes"]), targets[1],
                              silence=SILENCE)
        good.label, bad.label = "p2pkit", "mutant"
        return MatrixReport([good, bad]), one

    with two_nodes() as addresses:
        targets = [(h, int(p)) for h, _, p in (a.rpartition(":") for a in addresses)]
        matrix, one = asyncio.run(run(targets))
    directory = tmp_path_factory.mktemp("html")
    html.write(matrix, directory / "matrix.html")
    html.write(one, directory / "difference.html")
    return {"matrix": directory / "matrix.html", "difference": directory / "difference.html"}


@pytest.fixture
def report_page(pages) -> Path:
    return pages["matrix"]


def test_report_renders_in_chromium(report_page: Path, tmp_path: Path) -> None:
    dom, console = chromium(report_page.as_uri(), tmp_path / "profile", "--dump-dom")
    assert console == []
    page = _Dom()
    page.feed(dom)
    for case in cases():
        assert f"p2pkit/{case.id}" in page.ids and f"mutant/{case.id}" in page.ids
    assert "matrix" in page.ids and page.matrix_rows == len(MUTANT_FAILS) == 6
    # the highlighted difference: the mutant's transaction id, in the received tree
    assert len(page.marked) == 6
    assert all("transaction_id" in text for text in page.marked)
    assert page.classes.count("v-fail") >= 12  # six matrix cells and six case verdicts


def test_console_errors_are_caught(tmp_path: Path) -> None:
    """The check above can fail: a page that logs an error is caught."""
    page = tmp_path / "broken.html"
    page.write_text('<!DOCTYPE html><html><body><script>console.error("boom"); nosuch();'
                    "</script></body></html>")
    _, console = chromium(page.as_uri(), tmp_path / "profile", "--dump-dom")
    assert any("boom" in line for line in console)
    assert any("nosuch is not defined" in line for line in console)


@pytest.mark.parametrize(("name", "window"), [("matrix", (1200, 700)),
                                            ("difference", (1200, 760))])
def test_screenshot(pages, name: str, window: tuple[int, int], tmp_path: Path) -> None:
    """With ``P2PKIT_REPORT_SCREENSHOTS=DIR`` the shots are kept there as
    ``report-NAME.png`` (docs/_static/conformance holds the docs' copies)."""
    shot = tmp_path / f"report-{name}.png"
    _, console = chromium(pages[name].as_uri(), tmp_path / "profile",
                          f"--screenshot={shot}", f"--window-size={window[0]},{window[1]}")
    assert console == []
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", data[16:24]) == window
    assert len(data) > 20_000  # a page drawn, not a blank one (a blank one is ~5 kB)
    keep = os.environ.get("P2PKIT_REPORT_SCREENSHOTS")
    if keep:
        shutil.copy(shot, Path(keep) / shot.name)
