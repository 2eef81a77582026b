"""The layering rules of DESIGN.md, checked on the imports the architecture page draws."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "docs" / "_ext"))

import p2pkit_layout  # noqa: E402

UNITS = p2pkit_layout.read_layout(ROOT / "p2pkit")
ROWS = p2pkit_layout.layers(UNITS)


def test_no_import_runs_sideways_or_up():
    bad = [(name, dep) for name, u in UNITS.items() for dep in u.imports
           if ROWS[dep] >= ROWS[name]]
    assert bad == []


def test_ground_floor_imports_nothing_of_p2pkit():
    for name in ("errors", "deviations", "core"):
        assert UNITS[name].imports == set(), name


def test_kademlia_is_an_algorithm_with_no_wire():
    # DESIGN.md: "kademlia/ the ALGORITHM, no wire"; deployments (dht/) sit on top of it.
    assert UNITS["kademlia"].imports <= {"errors", "core"}
    assert "kademlia" in UNITS["dht"].imports


def test_bittorrent_parts_are_layered():
    assert "bittorrent.peer" not in UNITS["bittorrent.wire"].imports
    assert "bittorrent.peer" not in UNITS["bittorrent.tracker"].imports


def test_svg_draws_every_unit():
    svg = p2pkit_layout.render_svg(UNITS, ROWS)
    assert svg.startswith("<svg") and svg.count("<rect") == len(UNITS)
    for name in UNITS:
        assert f">{name}</text>" in svg


def test_capture_is_protocol_blind():
    # DESIGN.md: "capture/ ... protocol-blind: it asks the registry who decodes a stream or
    # datagram"; protocols bring their dissectors, capture/ names none of them.
    protocols = {"bittorrent.wire", "bittorrent.peer", "bittorrent.tracker", "dht", "gnutella",
                 "kademlia"}
    assert UNITS["capture"].imports & protocols == set()
    assert "registry" in UNITS["capture"].imports
