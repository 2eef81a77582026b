"""bencode decode/encode speed on a large metainfo (BEP 3 §bencoding), p2pkit against PyPI.

Run: ``python -m pytest benchmarks/test_bench_bencode.py --benchmark-enable -p no:doctest``.
The groups ``bencode-decode`` and ``bencode-encode`` put every implementation side by side, so
the ratio to p2pkit is read off one table (figures: docs/performance.md).

The input is a deterministic v1 multi-file metainfo with 10,000 pieces (``pieces`` is 200,000
bytes), 100 files in nested directories and a 3-tier announce-list: about 205 KB, the size of a
real 10,000-piece torrent.

Competitors (each checked to decode to the same value and to re-encode to the same bytes
before it is timed):

* ``bencode.py`` (PyPI ``bencode.py`` 4.x): its raw-bytes API is the ``bencodepy`` module it
  installs (``bencodepy.bdecode``); its ``bencode`` module decodes strings to UTF-8 text and
  dictionaries to sorted ``OrderedDict`` (timed too, as ``bencode.py-text``).
* ``bencodepy`` (PyPI ``bencodepy`` 0.9.x): also a top-level ``bencodepy`` package, so installing
  it next to ``bencode.py`` overwrites one with the other; it is timed only when the
  ``bencodepy`` module found is that distribution, skipped otherwise.
* ``fastbencode``: the pure-Python fallback module (``fastbencode._bencode_py``, from Bazaar),
  and its compiled Rust extension, shown as a reference for what a C-speed codec gives.
"""

from __future__ import annotations

import hashlib
import importlib
from collections.abc import Callable
from typing import Any

import pytest

from p2pkit import bencode

PIECES = 10_000
PIECE_LENGTH = 256 * 1024
FILES = 100


def make_metainfo() -> dict[bytes, Any]:
    """A v1 multi-file metainfo dictionary with 10,000 pieces, built deterministically."""
    total = PIECES * PIECE_LENGTH
    sizes = [total // FILES] * FILES
    sizes[-1] += total - sum(sizes)
    files = [
        {b"length": size, b"path": [b"disc-%d" % (i // 25), b"track-%03d.flac" % i]}
        for i, size in enumerate(sizes)
    ]
    pieces = b"".join(hashlib.sha1(b"piece %d" % i).digest() for i in range(PIECES))
    return {
        b"announce": b"http://tracker.example.org:6969/announce",
        b"announce-list": [
            [b"http://tracker.example.org:6969/announce"],
            [b"udp://tracker.example.net:1337/announce", b"udp://tracker.example.com:80"],
            [b"https://backup.example.org/announce"],
        ],
        b"comment": b"benchmark input: 10,000 pieces, 100 files",
        b"created by": b"p2pkit benchmarks",
        b"creation date": 1_700_000_000,
        b"info": {
            b"files": files,
            b"name": b"p2pkit-benchmark-album",
            b"piece length": PIECE_LENGTH,
            b"pieces": pieces,
        },
    }


METAINFO = make_metainfo()
DATA = bencode.encode(METAINFO)


def _plain(value: Any) -> Any:
    """The value with OrderedDicts and tuples as dicts and lists (for equality checks)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _bencode_py_raw() -> tuple[Callable[[bytes], Any], Callable[[Any], bytes]]:
    bencodepy = importlib.import_module("bencodepy")
    if not hasattr(bencodepy, "Bencode"):
        raise ImportError("the bencodepy module found is not the one bencode.py installs")
    return bencodepy.bdecode, bencodepy.bencode


def _bencode_py_text() -> tuple[Callable[[bytes], Any], Callable[[Any], bytes]]:
    module = importlib.import_module("bencode")
    if not hasattr(module, "bdecode") or not hasattr(module, "BTFailure"):
        raise ImportError("the bencode module found is not the one bencode.py installs")
    return module.bdecode, module.bencode


def _bencodepy_095() -> tuple[Callable[[bytes], Any], Callable[[Any], bytes]]:
    bencodepy = importlib.import_module("bencodepy")
    if hasattr(bencodepy, "Bencode") or not hasattr(bencodepy, "decode_from_file"):
        raise ImportError("bencodepy is shadowed by bencode.py (both install 'bencodepy')")
    return bencodepy.decode, bencodepy.encode


def _fastbencode_py() -> tuple[Callable[[bytes], Any], Callable[[Any], bytes]]:
    module = importlib.import_module("fastbencode._bencode_py")
    return module.bdecode, module.bencode


def _fastbencode_rust() -> tuple[Callable[[bytes], Any], Callable[[Any], bytes]]:
    module = importlib.import_module("fastbencode._bencode_rs")
    return module.bdecode, module.bencode


IMPLEMENTATIONS: dict[str, Callable[[], tuple[Callable[[bytes], Any], Callable[[Any], bytes]]]] = {
    "p2pkit": lambda: (bencode.decode, bencode.encode),
    "bencode.py": _bencode_py_raw,
    "bencode.py-text": _bencode_py_text,
    "bencodepy": _bencodepy_095,
    "fastbencode-pure-python": _fastbencode_py,
    "fastbencode-rust-compiled": _fastbencode_rust,
}


def _load(name: str) -> tuple[Callable[[bytes], Any], Callable[[Any], bytes]]:
    try:
        return IMPLEMENTATIONS[name]()
    except ImportError as e:
        pytest.skip(f"{name}: {e}")


def test_input_is_a_10000_piece_metainfo():
    info = bencode.decode(DATA)[b"info"]
    assert len(info[b"pieces"]) == 20 * PIECES
    assert len(info[b"files"]) == FILES
    assert sum(f[b"length"] for f in info[b"files"]) == PIECES * PIECE_LENGTH


@pytest.mark.parametrize("name", list(IMPLEMENTATIONS))
def test_decode(benchmark, name):
    decode, _ = _load(name)
    benchmark.group = "bencode-decode"
    value = benchmark(decode, DATA)
    if name == "bencode.py-text":  # strings come back as text where they are UTF-8
        assert value["info"]["pieces"] == METAINFO[b"info"][b"pieces"]
    else:
        assert _plain(value) == METAINFO


@pytest.mark.parametrize("name", list(IMPLEMENTATIONS))
def test_encode(benchmark, name):
    decode, encode = _load(name)
    benchmark.group = "bencode-encode"
    value = decode(DATA)
    assert benchmark(encode, value) == DATA
