"""Peer connection hot path (BEP 3 request/piece): the sans-I/O core without sockets.

Two established :class:`~p2pkit.bittorrent.peer.connection.PeerConnection` ends; one round is
what a download pipeline does: 64 requests out (``send_requests``), the seeder reads them and
answers 64 16 KiB ``piece`` messages (``send(Piece(...))``), the downloader reads the blocks.
``send_side`` times only the two sending calls (what ``connection.send`` costs per message).

Run: ``python -m pytest -o addopts="" -p no:cacheprovider benchmarks/test_bench_peer_connection.py
--benchmark-only``. No timing asserts.
"""

from __future__ import annotations

from p2pkit.bittorrent.peer import events as ev
from p2pkit.bittorrent.peer.connection import NEED_DATA, PeerConnection

PIECE_LENGTH = 1 << 20
PIECES = 64
BLOCK = 16384
BLOCKS = [(i % PIECES, (i // PIECES) * BLOCK, BLOCK) for i in range(64)]
DATA = bytes(BLOCK)


def _pair() -> tuple[PeerConnection, PeerConnection]:
    a = PeerConnection(piece_count=PIECES, piece_length=lambda i: PIECE_LENGTH)
    b = PeerConnection(piece_count=PIECES, piece_length=lambda i: PIECE_LENGTH)
    b.receive_data(a.send(ev.Handshake(info_hash=bytes(20), peer_id=b"A" * 20), 0.0), 0.0)
    a.receive_data(b.send(ev.Handshake(info_hash=bytes(20), peer_id=b"B" * 20), 0.0), 0.0)
    b.receive_data(a.send(ev.HaveNone(), 0.0) + a.send(ev.Interested(), 0.0), 0.0)
    a.receive_data(b.send(ev.HaveAll(), 0.0) + b.send(ev.Unchoke(), 0.0), 0.0)
    for conn in (a, b):
        while conn.next_event() is not NEED_DATA:
            pass
    return a, b


def _drain(conn: PeerConnection) -> list:
    out = []
    while (event := conn.next_event()) is not NEED_DATA:
        out.append(event)
    return out


def test_request_piece_round(benchmark):
    a, b = _pair()

    def round_trip() -> int:
        b.receive_data(a.send_requests(BLOCKS, 1.0), 1.0)
        answer = b"".join(b.send(ev.Piece(index=r.index, begin=r.begin, data=DATA), 1.0)
                          for r in _drain(b))
        a.receive_data(answer, 1.0)
        return len(_drain(a))

    assert benchmark(round_trip) == len(BLOCKS)


def test_send_side(benchmark):
    a, b = _pair()
    pieces = [ev.Piece(index=i, begin=s, data=DATA) for i, s, _ in BLOCKS]

    def send_only() -> int:
        b.receive_data(a.send_requests(BLOCKS, 1.0), 1.0)
        _drain(b)
        sent = 0
        for piece in pieces:
            sent += len(b.send(piece, 1.0))
        a._sent.clear()  # the blocks never reach a: forget them so the next round may ask again
        return sent

    assert benchmark(send_only) == len(BLOCKS) * (BLOCK + 13)
