"""The built site in a real browser: headless Chromium (Debian ``chromium``, inside
``unshare -n``: loopback only) opens the landing page and the BitTorrent wire-format page,
with no console error, and draws them (the copies in docs/_static/site/).

The site is the one the docs build just wrote: ``P2PKIT_SITE=docs/_build/html`` (``.ci/run``
runs this file right after ``sphinx-build``). Without it the tests are skipped, since building
the site here would double the build's cost. ``P2PKIT_SITE_SCREENSHOTS=DIR`` keeps the shots.
"""

from __future__ import annotations

import os
import shutil
import struct
from pathlib import Path

import pytest

from tests.conformance.reporters.test_html import chromium

SITE = os.environ.get("P2PKIT_SITE")

#: Page of the built site -> (screenshot name, window size).
PAGES = {
    "index.html": ("site-landing", (1200, 800)),
    "protocols/bittorrent.html": ("site-bittorrent", (1200, 1600)),
}


def page_errors(console: list[str]) -> list[str]:
    """Console lines of the page itself: Chromium's own UI (``source: chrome://...``, such as
    its "Slow network is detected" note about its bundled fonts) is not the site's."""
    return [line for line in console if "source: chrome://" not in line]


@pytest.fixture(scope="module")
def site() -> Path:
    if not SITE:
        pytest.skip("P2PKIT_SITE names no built site (run after sphinx-build, as .ci/run does)")
    root = Path(SITE).resolve()
    assert (root / "index.html").is_file(), f"{root} holds no built site"
    return root


@pytest.mark.parametrize("page", sorted(PAGES))
def test_page_loads_without_console_errors_and_draws(site: Path, page: str,
                                                      tmp_path: Path) -> None:
    name, window = PAGES[page]
    shot = tmp_path / f"{name}.png"
    _, console = chromium((site / page).as_uri(), tmp_path / "profile",
                          f"--screenshot={shot}", f"--window-size={window[0]},{window[1]}")
    assert page_errors(console) == []
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", data[16:24]) == window
    assert len(data) > 20_000  # a page drawn, not a blank one
    keep = os.environ.get("P2PKIT_SITE_SCREENSHOTS")
    if keep:
        shutil.copy(shot, Path(keep) / shot.name)


def test_protocol_page_shows_the_generated_diagrams_and_examples(site: Path,
                                                                 tmp_path: Path) -> None:
    dom, console = chromium((site / "protocols" / "bittorrent.html").as_uri(),
                            tmp_path / "profile", "--dump-dom")
    assert page_errors(console) == []
    assert dom.count('class="p2pkit-layout"') >= 10
    assert "Captured: " in dom and "0000  13 42 69 74 54 6f 72 72 65 6e 74" in dom


def test_page_errors_keep_the_pages_own_lines():
    ours = '[1:1:INFO:CONSOLE:3] "Uncaught ReferenceError: x", source: file:///site/index.html (3)'
    theirs = '[1:1:INFO:CONSOLE:574] "Slow network", source: chrome://resources/x.js (574)'
    assert page_errors([ours, theirs]) == [ours]
