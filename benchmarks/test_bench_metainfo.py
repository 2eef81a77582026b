"""Metainfo parse speed (BEP 3 §metainfo files, BEP 52): strict and lenient, large and real.

Run: ``python -m pytest benchmarks/test_bench_metainfo.py --benchmark-enable -p no:doctest``.
The large input is the deterministic 10,000-piece, 100-file v1 torrent of
``test_bench_bencode.py`` (about 205 KB); the real ones are libtorrent's v2 and hybrid
torrents in ``tests/data/torrents``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.test_bench_bencode import DATA, FILES, PIECES
from p2pkit.bittorrent.wire.metainfo import Metainfo

TORRENTS = Path(__file__).parents[1] / "tests" / "data" / "torrents"
CASES = {"large-v1": DATA}
CASES.update({path.stem: path.read_bytes() for path in sorted(TORRENTS.glob("*.torrent"))[:3]})


@pytest.mark.parametrize("name", sorted(CASES))
def test_metainfo_parse(benchmark, name):
    benchmark.group = "metainfo-parse"
    meta = benchmark(Metainfo.parse, CASES[name])
    if name == "large-v1":
        assert (meta.piece_count, len(meta.files)) == (PIECES, FILES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_metainfo_parse_lenient(benchmark, name):
    benchmark.group = "metainfo-parse-lenient"
    result = benchmark(Metainfo.parse_lenient, CASES[name])
    assert result.metainfo == Metainfo.parse(CASES[name])
