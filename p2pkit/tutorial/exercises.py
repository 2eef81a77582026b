"""The exercises of the course, by chapter, and how each is checked.

An :class:`Exercise` names the function the learner writes, a hint, and a check that calls it
on inputs whose answer p2pkit knows (real files shipped in ``p2pkit/data``, seeded random
inputs) and raises :class:`ExerciseFailed` with a sentence saying what differs. Nothing here
parses a byte layout by hand: the expected answers come from p2pkit's schemas and codecs.

>>> sorted(CHAPTERS)
[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13]
>>> [e.function for e in CHAPTERS[2]]
['info_hash', 'merkle_root']
"""

from __future__ import annotations

import hashlib
import importlib.util
import ipaddress
import random
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from p2pkit import bencode
from p2pkit.bittorrent.tracker.compact import CompactPeers
from p2pkit.bittorrent.wire.messages import PeerMessage
from p2pkit.bittorrent.wire.metainfo import Metainfo
from p2pkit.bittorrent.wire.metainfo import merkle_root as reference_merkle_root
from p2pkit.ipfs.cid import Cid
from p2pkit.ipfs.varint import encode_uvarint as reference_uvarint
from p2pkit.kademlia.ids import distance
from p2pkit.tutorial import (
    capture_exercises,
    conformance_exercises,
    network_exercises,
    peer_exercises,
)
from p2pkit.tutorial.exercise import CASES, Exercise, ExerciseFailed, Outcome
from p2pkit.tutorial.exercise import expect as _expect

__all__ = ["CHAPTERS", "Exercise", "ExerciseFailed", "Outcome", "check_file", "load"]

DATA = Path(__file__).resolve().parent.parent / "data"


# -- chapter 1: bytes on the wire (BEP 3 §peer messages) -----------------------------------------

def _check_request(build_request: Callable[..., bytes]) -> None:
    rng = random.Random(1)
    for _ in range(CASES):
        index, begin, length = rng.randrange(1 << 20), rng.randrange(1 << 24), 16384
        want = PeerMessage.build({"type": "request", "index": index, "begin": begin,
                                  "length": length})
        _expect(build_request(index, begin, length), want,
                f"build_request({index}, {begin}, {length})")


def _check_port(build_port: Callable[[int], bytes]) -> None:
    for port in (1, 6881, 51413, 65535):
        _expect(build_port(port), PeerMessage.build({"type": "port", "port": port}),
                f"build_port({port})")


# -- chapter 2: bencode and metainfo (BEP 3 §metainfo files, BEP 52 §infohash) -------------------

def _check_info_hash(info_hash: Callable[[bytes], bytes]) -> None:
    for name in ("libtorrent-magnet-pex.torrent", "libtorrent-utp.torrent"):
        data = (DATA / name).read_bytes()
        _expect(info_hash(data), Metainfo.parse(data).info_hash, f"info_hash(<{name}>)")
    # a file whose info dictionary is not canonical (keys out of order): re-encoding a decoded
    # dictionary would sort them, hence other bytes and another hash than every peer computes
    odd = b"d4:infod4:name1:x6:lengthi1eee"
    start, end = bencode.top_level_spans(odd)[b"info"]
    _expect(info_hash(odd), hashlib.sha1(odd[start:end]).digest(),
            "info_hash of a file whose info dictionary is not canonical (hash the bytes as found)")


def _check_merkle_root(merkle_root: Callable[[list[bytes]], bytes]) -> None:
    rng = random.Random(2)
    for n in list(range(1, 10)) + [rng.randrange(10, 300) for _ in range(10)]:
        leaves = [rng.randbytes(32) for _ in range(n)]
        _expect(merkle_root(leaves), reference_merkle_root(leaves), f"merkle_root of {n} leaves")


# -- chapter 3: trackers (BEP 23 compact peers) -------------------------------------------------

def _check_compact(decode_compact: Callable[[bytes], list[tuple[str, int]]]) -> None:
    rng = random.Random(3)
    for n in (0, 1, 2, 7, 50):
        data = rng.randbytes(6 * n)
        want = [(str(p.ip), p.port) for p in CompactPeers.parse(data)]
        got = decode_compact(data)
        _expect([(str(ipaddress.ip_address(ip)), int(port)) for ip, port in got], want,
                f"decode_compact of {n} peers ({data[:12].hex()}...)")


# -- chapter 7: Kademlia (BEP 5 §Routing Table) --------------------------------------------------

def _check_bucket_depth(bucket_depth: Callable[[bytes, bytes], int]) -> None:
    rng = random.Random(7)
    for _ in range(CASES):
        a = rng.randbytes(20)
        b = bytearray(a)
        bit = rng.randrange(160)
        b[bit // 8] ^= 0x80 >> (bit % 8)  # first difference at `bit`
        for i in range(bit // 8 + 1, 20):
            b[i] = rng.randrange(256)
        _expect(bucket_depth(a, bytes(b)), 160 - distance(a, bytes(b)).bit_length(),
                f"bucket_depth({a.hex()}, {bytes(b).hex()})")


def _check_closest(closest: Callable[[list[bytes], bytes, int], list[bytes]]) -> None:
    rng = random.Random(8)
    for _ in range(20):
        ids = [rng.randbytes(20) for _ in range(200)]
        target = rng.randbytes(20)
        want = sorted(ids, key=lambda i: distance(i, target))[:8]
        _expect(list(closest(ids, target, 8)), want, f"closest(<200 ids>, {target.hex()}, 8)")


# -- chapter 12: merkle proofs (BEP 52 §hashes) ---------------------------------------------------

def _check_proof(verify_proof: Callable[[bytes, int, list[bytes], bytes], bool]) -> None:
    rng = random.Random(12)
    for n in (2, 5, 8, 11, 33):
        leaves = [rng.randbytes(32) for _ in range(n)]
        width = 1 << (n - 1).bit_length()
        level = leaves + [bytes(32)] * (width - n)
        index = rng.randrange(n)
        uncles, i = [], index
        while len(level) > 1:
            uncles.append(level[i ^ 1])
            level = [hashlib.sha256(level[j] + level[j + 1]).digest()
                     for j in range(0, len(level), 2)]
            i //= 2
        root = reference_merkle_root(leaves)
        _expect(bool(verify_proof(leaves[index], index, uncles, root)), True,
                f"verify_proof of leaf {index} of {n} with a correct proof")
        _expect(bool(verify_proof(rng.randbytes(32), index, uncles, root)), False,
                f"verify_proof of a forged leaf {index} of {n}")
        if n > 2:
            _expect(bool(verify_proof(leaves[index], index ^ 1, uncles, root)), False,
                    f"verify_proof of leaf {index} of {n} claimed at index {index ^ 1}")


# -- chapter 13: multiformats (unsigned-varint, CID) ----------------------------------------------

def _check_uvarint(encode_uvarint: Callable[[int], bytes]) -> None:
    rng = random.Random(13)
    for n in [0, 1, 127, 128, 300, 16383, 16384, (1 << 63) - 1] + \
            [rng.randrange(1 << rng.randrange(1, 63)) for _ in range(CASES)]:
        _expect(bytes(encode_uvarint(n)), reference_uvarint(n), f"encode_uvarint({n})")


def _check_raw_cid(raw_cid: Callable[[bytes], str]) -> None:
    rng = random.Random(131)
    for data in [b"", b"hello world\n"] + [rng.randbytes(rng.randrange(1, 3000))
                                            for _ in range(CASES)]:
        _expect(raw_cid(data), str(Cid.of(data, codec="raw", version=1)),
                f"raw_cid of {len(data)} bytes ({data[:8].hex()}...)")


#: chapter -> its exercises, in order.
CHAPTERS: dict[int, list[Exercise]] = {
    1: [Exercise(1, 1, "build_request", "a request message, by hand",
                 "4-byte big-endian length prefix (13), id 6, then index, begin, length as 4-byte "
                 "big-endian integers (struct.pack('>IBIII', ...))", _check_request),
        Exercise(1, 2, "build_port", "BEP 5's port message",
                 "prefix 3, id 9, then the port as a 2-byte big-endian integer", _check_port)],
    2: [Exercise(2, 1, "info_hash", "the v1 info-hash of a .torrent file",
                 "SHA-1 of the info value's bytes as found in the file: "
                 "p2pkit.bencode.top_level_spans(data)[b'info'] gives where they are",
                 _check_info_hash),
        Exercise(2, 2, "merkle_root", "a BEP 52 merkle root",
                 "pad the leaves with 32 zero bytes to a power of two, then hash pairs "
                 "(sha256(left + right)) up to one node; a single leaf is its own root",
                 _check_merkle_root)],
    3: [Exercise(3, 2, "decode_compact", "BEP 23 compact peers",
                 "6 bytes per peer: 4 bytes of IPv4 address, 2 bytes of port, big-endian; "
                 "return a list of (ip_text, port)", _check_compact)],
    7: [Exercise(7, 1, "bucket_depth", "leading bits two ids share",
                 "XOR the ids as integers (int.from_bytes(..., 'big')); the answer is "
                 "160 minus the bit length of the XOR", _check_bucket_depth),
        Exercise(7, 4, "closest", "the k ids closest to a target",
                 "sort by the XOR of each id with the target, as integers, and keep k",
                 _check_closest)],
    12: [Exercise(12, 4, "verify_proof", "check a merkle proof",
                  "walk up: at each level, hash (node + sibling) when the index is even, "
                  "(sibling + node) when odd, then halve the index; compare with the root",
                  _check_proof)],
    13: [Exercise(13, 5, "encode_uvarint", "a multiformats unsigned varint",
                  "7 bits at a time, least significant group first; set the high bit (0x80) "
                  "of every byte but the last; 0 is the single byte 00", _check_uvarint),
         Exercise(13, 1, "raw_cid", "the text CIDv1 of raw bytes",
                  "varint 1 (version), varint 0x55 (raw), then the multihash: 0x12 (sha2-256), "
                  "0x20 (32 bytes), the digest; write it in base32, lower case, no padding, "
                  "after the multibase prefix 'b'", _check_raw_cid)],
    **peer_exercises.EXERCISES,
    **network_exercises.EXERCISES,
    **capture_exercises.EXERCISES,
    **conformance_exercises.EXERCISES,
}
CHAPTERS = dict(sorted(CHAPTERS.items()))


def load(path: str | Path) -> ModuleType:
    """Import the learner's file (it runs: it is their code, on their machine)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(2, "no such file", str(path))
    spec = importlib.util.spec_from_file_location(f"p2pkit_exercise_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise ExerciseFailed(f"{path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as e:  # the learner's file may fail in any way; say how, in one line
        raise ExerciseFailed(f"{path}: importing it failed: {type(e).__name__}: {e}") from None
    finally:
        sys.modules.pop(spec.name, None)
    return module


class _LearnerError(Exception):
    """An exception raised inside the learner's function (its ``__cause__``)."""


def _attributed(function: Callable[..., Any]) -> Callable[..., Any]:
    """``function``, with what it raises told apart from what the checker raises: its own
    exceptions come out as :class:`_LearnerError`; ``NotImplementedError`` (the starting code)
    and :class:`ExerciseFailed` (raised by a callback the checker gave it) pass through."""
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except (NotImplementedError, ExerciseFailed):
            raise
        except Exception as e:
            raise _LearnerError() from e
    return call


def check_file(chapter: int, path: str | Path) -> list[Outcome]:
    """Run every exercise of ``chapter`` against the functions defined in ``path``."""
    if chapter not in CHAPTERS:
        raise ExerciseFailed(f"chapter {chapter} has no checked exercises "
                             f"(chapters with some: {', '.join(map(str, sorted(CHAPTERS)))})")
    module = load(path)
    outcomes = []
    for exercise in CHAPTERS[chapter]:
        function = getattr(module, exercise.function, None)
        if not callable(function):
            outcomes.append(Outcome(exercise, False, f"{path} defines no function "
                                                     f"{exercise.function}()"))
            continue
        try:
            exercise.check(_attributed(function))
        except ExerciseFailed as e:
            outcomes.append(Outcome(exercise, False, str(e)))
        except NotImplementedError:
            outcomes.append(Outcome(exercise, False, f"{exercise.function}() is not written yet"))
        except _LearnerError as e:  # the learner's function raised: say so, never a traceback
            error = e.__cause__
            outcomes.append(Outcome(exercise, False, f"{exercise.function}() raised "
                                                     f"{type(error).__name__}: {error}"))
        except Exception as e:  # noqa: BLE001 - the checker itself failed: not the learner's fault
            outcomes.append(Outcome(exercise, False, f"the checker of {exercise.function}() "
                                                     f"failed ({type(e).__name__}: {e}): a bug in "
                                                     "p2pkit, not in your code; please report it"))
        else:
            outcomes.append(Outcome(exercise, True))
    return outcomes
