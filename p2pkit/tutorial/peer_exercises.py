"""Exercises of chapters 4, 5 and 6: the peer wire, a whole peer, magnet links.

Checked on real bytes and on p2pkit's own peer: chapter 4 on the libtorrent download in capture
bt-02 (framed by ``MessageFramer``, pieces verified against
the torrent the capture downloads), chapter 5 against :class:`~p2pkit.bittorrent.peer.picker.PiecePicker` and
:class:`~p2pkit.bittorrent.peer.choker.Choker`, chapter 6 against the
``ut_metadata`` requests libtorrent sent in bt-02 and :mod:`p2pkit.bittorrent.peer.metadata`.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from pathlib import Path

from p2pkit.bittorrent.peer.choker import Choker
from p2pkit.bittorrent.peer.metadata import METADATA_PIECE_SIZE, request_message
from p2pkit.bittorrent.peer.picker import PiecePicker
from p2pkit.bittorrent.wire.create import create_from_contents
from p2pkit.bittorrent.wire.extensions import decode_extended
from p2pkit.bittorrent.wire.framer import MessageFramer
from p2pkit.bittorrent.wire.metainfo import Metainfo
from p2pkit.tutorial.course_data import BT02_LEECH, BT02_SEED, bt02_streams
from p2pkit.tutorial.exercise import CASES, Exercise, ExerciseFailed, expect

__all__ = ["EXERCISES"]

DATA = Path(__file__).resolve().parent.parent / "data"
HANDSHAKE = 68  # BEP 3 §handshake: 1 + 19 + 8 + 20 + 20 bytes


def _bt02_frames(sender: str) -> list[bytes]:
    return [f.data for f in MessageFramer().feed(bt02_streams()[sender])[1:]]


# -- chapter 4: the peer wire (BEP 3 §peer messages) ----------------------------------------------

def _check_split(split_messages: Callable[[bytes], list[bytes]]) -> None:
    for sender, who in ((BT02_LEECH, "the leecher"), (BT02_SEED, "the seeder")):
        stream = bt02_streams()[sender][HANDSHAKE:]
        want = _bt02_frames(sender)
        got = [bytes(m) for m in split_messages(stream)]
        if got != want:
            at = next((i for i, (g, w) in enumerate(zip(got, want)) if g != w), min(len(got),
                                                                                    len(want)))
            raise ExerciseFailed(
                f"split_messages(<bt-02, what {who} sent after its handshake>): expected "
                f"{len(want)} messages, got {len(got)}; the first difference is message {at} "
                f"(expected it to start {want[at][:9].hex() if at < len(want) else 'nothing'})")
        cut = len(stream) - 5  # the stream stops inside the last message: it is not complete
        expect(len(split_messages(stream[:cut])), len(want) - 1,
               f"number of messages in what {who} sent, cut 5 bytes before its end "
               "(an incomplete message is not a message yet)")
    expect([bytes(m) for m in split_messages(bytes(4) + bytes(4))], [bytes(4)] * 2,
           "split_messages of two keep-alives (length prefix 0)")


def _check_piece_verifies(piece_verifies: Callable[[bytes, int, bytes], bool]) -> None:
    torrent = (DATA / "libtorrent-magnet-pex.torrent").read_bytes()
    meta = Metainfo.parse(torrent)
    blocks: dict[tuple[int, int], bytes] = {}
    for frame in MessageFramer().feed(bt02_streams()[BT02_SEED])[1:]:
        if frame.message.get("type") == "piece":
            blocks[(frame.message.index, frame.message.begin)] = frame.message.piece
    rng = random.Random(4)
    checked = 0
    for index in sorted({i for i, _ in blocks}):
        size = min(meta.piece_length, meta.total_length - index * meta.piece_length)
        if any((index, begin) not in blocks for begin in range(0, size, 16384)):
            continue
        piece = b"".join(blocks[(index, begin)] for begin in range(0, size, 16384))
        expect(bool(piece_verifies(torrent, index, piece)), True,
               f"piece_verifies(<the torrent>, {index}, <piece {index} as libtorrent sent it>)")
        bad = bytearray(piece)
        bad[rng.randrange(len(bad))] ^= 1 << rng.randrange(8)
        expect(bool(piece_verifies(torrent, index, bytes(bad))), False,
               f"piece_verifies of piece {index} with one bit flipped")
        other = (index + 1) % meta.piece_count
        expect(bool(piece_verifies(torrent, other, piece)), False,
               f"piece_verifies of piece {index}'s bytes claimed as piece {other}")
        checked += 1
    if not checked:  # the capture is what it is: never a check that cannot fail
        raise ExerciseFailed("no complete piece found in bt-02 (the capture changed?)")


# -- chapter 5: a whole peer (BEP 3; Cohen 2003 §2.2 piece selection, §2.3 choking) -----------

def _bitfield(have: list[bool]) -> bytes:
    out = bytearray((len(have) + 7) // 8)
    for i, bit in enumerate(have):
        if bit:
            out[i // 8] |= 0x80 >> (i % 8)
    return bytes(out)


def _check_rarest(rarest_missing: Callable[[list[bytes], bytes, int], set[int]]) -> None:
    rng = random.Random(5)
    for case in range(CASES):
        count = rng.randrange(1, 120)
        peers = [[rng.random() < rng.random() for _ in range(count)]
                 for _ in range(rng.randrange(1, 10))]
        mine = [rng.random() < 0.3 for _ in range(count)]
        picker = PiecePicker([16384] * count, rng=random.Random(case), random_first=0)
        for i, have in enumerate(peers):
            picker.add_peer(i)
            picker.peer_bitfield(i, have)
        candidates = [i for i in range(count) if not mine[i] and picker.availability(i) > 0]
        least = min((picker.availability(i) for i in candidates), default=0)
        want = {i for i in candidates if picker.availability(i) == least}
        got = rarest_missing([_bitfield(p) for p in peers], _bitfield(mine), count)
        expect(set(got), want, f"rarest_missing of {len(peers)} peers' bitfields, {count} pieces, "
                               f"ours {_bitfield(mine).hex()}")


def _check_unchoke(regular_unchokes: Callable[[dict[str, float], set[str], int], set[str]]
                   ) -> None:
    rng = random.Random(55)
    for case in range(CASES):
        slots = rng.randrange(1, 6)
        names = [f"peer{i}" for i in range(rng.randrange(1, 12))]
        choker = Choker(slots=slots, rng=random.Random(case))
        interested = {n for n in names if rng.random() < 0.6}
        for n in names:
            choker.add_peer(n, now=0.0)
        amounts = rng.sample(range(1000, 10_000_000), len(names))  # distinct: no ties
        for n, amount in zip(names, amounts, strict=True):
            choker.record(n, downloaded=amount, now=1.0)
        for n in interested:
            choker.set_interested(n, True)
        choker.run(2.0, seeding=False)
        rates = {n: choker.download_rate(n, 2.0) for n in names}
        optimistic = choker.optimistic
        want = set(choker.unchoked) - {optimistic}
        quota = slots - (optimistic in interested)
        others = {n: r for n, r in rates.items() if n != optimistic}
        got = regular_unchokes(others, interested - {optimistic}, quota)
        expect(set(got), want, f"regular_unchokes(<rates of {len(others)} peers>, "
                               f"{len(interested - {optimistic})} interested, slots={quota})")


# -- chapter 6: magnet links and metadata exchange (BEP 9) -----------------------------------------

def _extended(sender: str) -> list[tuple[int, bytes]]:
    out = []
    for frame in _bt02_frames(sender):
        message = MessageFramer(handshake=False).feed(frame)[0].message
        if message.get("type") == "extended":
            out.append((message.extended_id, message.payload))
    return out


def _check_metadata_request(metadata_request: Callable[[int], bytes]) -> None:
    # BEP 10: the leecher sends ut_metadata under the id the seeder's handshake gave it
    seed_handshake = next(p for i, p in _extended(BT02_SEED) if i == 0)
    ut_metadata = decode_extended("handshake", seed_handshake).m["ut_metadata"]
    real = [(decode_extended("ut_metadata", payload).piece, payload)
            for i, payload in _extended(BT02_LEECH) if i == ut_metadata
            and decode_extended("ut_metadata", payload).msg_type == "request"]
    if not real:
        raise ExerciseFailed("no ut_metadata request found in bt-02 (the capture changed?)")
    for piece, payload in real:
        expect(bytes(metadata_request(piece)), payload,
               f"metadata_request({piece}) (libtorrent's own request in bt-02)")
    for piece in (1, 7, 42, 1000):
        expect(bytes(metadata_request(piece)), request_message(piece),
               f"metadata_request({piece})")


def _check_assemble(assemble_metadata: Callable[[list[bytes], bytes], bytes | None]) -> None:
    rng = random.Random(6)
    infos = [Metainfo.parse((DATA / n).read_bytes()).info_bytes
             for n in ("libtorrent-magnet-pex.torrent", "libtorrent-utp.torrent")]
    for size in (40_000, 200_000):  # many pieces: an info dictionary of 2 or 10 16 KiB pieces
        torrent = create_from_contents("many.bin", rng.randbytes(size * 2), piece_length=16384)
        infos.append(Metainfo.parse(torrent).info_bytes)
    for info in infos:
        info_hash = hashlib.sha1(info).digest()
        pieces = [info[i:i + METADATA_PIECE_SIZE]
                  for i in range(0, len(info), METADATA_PIECE_SIZE)]
        what = f"assemble_metadata(<{len(pieces)} pieces of a {len(info)}-byte info dictionary>"
        expect(assemble_metadata(list(pieces), info_hash), info, what + ", its info-hash)")
        bad = list(pieces)
        k = rng.randrange(len(bad))
        flipped = bytearray(bad[k])
        flipped[rng.randrange(len(flipped))] ^= 0xFF
        bad[k] = bytes(flipped)
        expect(assemble_metadata(bad, info_hash), None,
               what + f" with a byte of piece {k} changed)")


EXERCISES: dict[int, list[Exercise]] = {
    4: [Exercise(4, 4, "split_messages", "frame a peer-wire stream",
                 "after the handshake every message is a 4-byte big-endian length, then that "
                 "many bytes (0: a keep-alive); keep the prefix with each message and stop "
                 "when the rest is shorter than its length says", _check_split),
        Exercise(4, 5, "piece_verifies", "check a piece against its torrent",
                 "Metainfo.parse(torrent).pieces[index] is the SHA-1 the piece must have "
                 "(BEP 3 §info dictionary: 'pieces'): hashlib.sha1(piece).digest() == it",
                 _check_piece_verifies)],
    5: [Exercise(5, 4, "rarest_missing", "the rarest pieces we still need",
                 "count, for each piece we lack, how many peers have it (bit i of a bitfield "
                 "is byte i // 8, mask 0x80 >> i % 8); keep the pieces with the smallest "
                 "count above zero", _check_rarest),
        Exercise(5, 5, "regular_unchokes", "BEP 3's reciprocation",
                 "walk the peers from the best rate down: unchoke each; stop once `slots` "
                 "interested peers are unchoked (peers that are not interested do not use a "
                 "slot)", _check_unchoke)],
    6: [Exercise(6, 4, "metadata_request", "a ut_metadata request",
                 "a bencoded dictionary, keys sorted: d8:msg_typei0e5:piecei<n>ee "
                 "(BEP 9 §request: msg_type 0)", _check_metadata_request),
        Exercise(6, 5, "assemble_metadata", "trust metadata only if it hashes right",
                 "join the pieces in order; return them if hashlib.sha1(joined).digest() is "
                 "the info-hash, else None (BEP 9: 'validated by the info-hash')",
                 _check_assemble)],
}
