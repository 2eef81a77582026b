"""The internal link check run at the end of the docs build (docs/_ext/p2pkit_link_check.py)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "docs" / "_ext"))

import p2pkit_link_check  # noqa: E402


def _site(tmp_path: Path) -> Path:
    (tmp_path / "guide").mkdir()
    (tmp_path / "index.html").write_text(
        '<html><body><h1 id="top">p2pkit</h1>'
        '<a href="guide/peer.html#download">ok</a>'
        '<a href="guide/peer.html#nowhere">bad anchor</a>'
        '<a href="guide/missing.html">bad file</a>'
        '<a href="#top">self</a><a href="https://example.org/x">external</a>'
        '<img src="_static/shot.png"></body></html>')
    (tmp_path / "guide" / "peer.html").write_text(
        '<html><body><section id="download"><a href="../index.html#top">up</a>'
        '<a href="../">dir</a></section></body></html>')
    return tmp_path


def test_reports_missing_files_and_anchors_only(tmp_path):
    broken = p2pkit_link_check.broken_links(_site(tmp_path))
    assert broken == [
        ("index.html", "guide/peer.html#nowhere", "no id 'nowhere' in peer.html"),
        ("index.html", "guide/missing.html", "no such file"),
        ("index.html", "_static/shot.png", "no such file"),
    ]


def test_a_complete_site_is_clean(tmp_path):
    site = _site(tmp_path)
    (site / "_static").mkdir()
    (site / "_static" / "shot.png").write_bytes(b"\x89PNG")
    (site / "guide" / "missing.html").write_text("<html></html>")
    (site / "guide" / "peer.html").write_text(
        '<html><body><p id="download"></p><p id="nowhere"></p></body></html>')
    assert p2pkit_link_check.broken_links(site) == []
