"""BEP 9 metadata download and service, on real torrents' info dictionaries."""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pkit.bittorrent.peer.metadata import (
    FLOOD_FACTOR,
    MAX_HASH_FAILURES,
    MAX_METADATA_SIZE,
    METADATA_PIECE_SIZE,
    MetadataDownload,
    MetadataServer,
    build,
    parse,
    request_message,
)
from p2pkit.bittorrent.wire.create import create_from_contents
from p2pkit.bittorrent.wire.metainfo import Metainfo
from p2pkit.errors import LimitExceeded, LocalProtocolError, ParseError, RemoteProtocolError
from tests.bittorrent.wire.test_extensions import BT02, BT05, extended_messages

DATA = Path(__file__).parents[3] / "p2pkit" / "data"


def real_info(name: str) -> Metainfo:
    return Metainfo.parse((DATA / name).read_bytes())


def large_info() -> Metainfo:
    """A v1 torrent of 2600 pieces: a 52 KiB ``pieces`` string, so 4 metadata pieces."""
    content = random.Random(7).randbytes(2600 * 16384)
    return Metainfo.parse(create_from_contents("big.bin", content, piece_length=16384))


@pytest.fixture(scope="module")
def big() -> Metainfo:
    return large_info()


def test_receive_message_dispatches_parsed_messages(big):
    server = MetadataServer(big.info_bytes)
    download = MetadataDownload(big.info_hash_v1, server.metadata_size)
    assert download.next_request("A") == 0
    assert download.receive_message("A", parse(b"d8:msg_typei2e5:piecei0ee")) is None
    assert download.next_request("B") == 0  # A rejected it
    out = None
    for piece in (1, 2, 3):
        assert download.next_request("A") == piece
    for piece in (0, 1, 2, 3):
        payload = build(server.answer(parse(request_message(piece))))
        out = download.receive_message("B" if piece == 0 else "A", parse(payload))
    assert out == big.info_bytes


def fetch(download: MetadataDownload, server: MetadataServer, peer, *, corrupt=None):
    """One request/answer round trip through the real BEP 9 bytes; returns receive()'s result."""
    piece = download.next_request(peer)
    if piece is None:
        return "idle"
    answer = parse(build(server.answer(parse(request_message(piece)))))
    data = answer.metadata
    if corrupt is not None and corrupt(peer, piece):
        data = bytes([data[0] ^ 1]) + data[1:]
    return download.receive(peer, answer.piece, data, answer.total_size)


@pytest.mark.parametrize("name", ["libtorrent-magnet-pex.torrent", "libtorrent-utp.torrent"])
def test_real_torrent_single_piece(name):
    meta = real_info(name)
    server = MetadataServer(meta.info_bytes)
    assert server.piece_count == 1
    download = MetadataDownload(meta.info_hash_v1, server.metadata_size)
    assert fetch(download, server, "A") == meta.info_bytes
    assert download.done and download.next_request("B") is None


@pytest.mark.parametrize(("capture", "torrent"), [(BT02, "libtorrent-magnet-pex.torrent"),
                                                  (BT05, "libtorrent-v2.torrent")])
def test_libtorrent_data_messages_complete_a_download(capture, torrent):
    """The ut_metadata data payloads libtorrent 2.0.8 sent (real bytes) verify against the
    info-hash: v1 with SHA-1 (bt-02), v2-only with SHA-256 (bt-05, btmh magnet)."""
    meta = real_info(torrent)
    payloads = [p for n, p, d in extended_messages(capture)
                if n == "ut_metadata" and d.msg_type == "data"]
    assert payloads
    for payload in payloads:
        message = parse(payload)
        download = MetadataDownload(meta.info_hash, message.total_size,
                                    info_hash_v2=meta.info_hash_v2)
        assert download.next_request("libtorrent") == message.piece
        assert download.receive_message("libtorrent", message) == meta.info_bytes
        # the same piece through our server is byte-identical to libtorrent's message
        assert build(MetadataServer(meta.info_bytes).answer(parse(request_message(0)))) == \
            payload


def test_v2_only_torrent_checked_with_sha256():
    meta = real_info("libtorrent-v2.torrent")
    server = MetadataServer(meta.info_bytes)
    download = MetadataDownload(meta.info_hash_v2[:20], server.metadata_size,
                                info_hash_v2=meta.info_hash_v2)
    assert fetch(download, server, "A") == meta.info_bytes
    # The same bytes against a wrong v2 hash fail the check.
    wrong = MetadataDownload(meta.info_hash_v2[:20], server.metadata_size,
                             info_hash_v2=bytes(32))
    assert fetch(wrong, server, "A") is None and wrong.hash_failures == 1


def test_server_splits_in_16k_pieces(big):
    server = MetadataServer(big.info_bytes)
    assert server.piece_count == 4
    pieces = [server.answer(dict(msg_type="request", piece=i)) for i in range(4)]
    assert all(len(p["metadata"]) == METADATA_PIECE_SIZE for p in pieces[:3])
    assert 0 < len(pieces[3]["metadata"]) <= METADATA_PIECE_SIZE
    assert b"".join(p["metadata"] for p in pieces) == big.info_bytes
    assert {p["total_size"] for p in pieces} == {len(big.info_bytes)}
    assert server.answer(dict(msg_type="request", piece=4)) == dict(msg_type="reject", piece=4)
    assert build(server.answer(dict(msg_type="request", piece=-1))) == \
        b"d8:msg_typei2e5:piecei-1ee"
    with pytest.raises(LocalProtocolError):
        server.answer(dict(msg_type="data", piece=0))


def test_server_flood_protection(big):
    server = MetadataServer(big.info_bytes)
    request = dict(msg_type="request", piece=1)
    answers = [server.answer(request, peer="greedy")["msg_type"]
               for _ in range(FLOOD_FACTOR * server.piece_count + 1)]
    assert answers == ["data"] * (FLOOD_FACTOR * server.piece_count) + ["reject"]
    assert server.answer(request, peer="other")["msg_type"] == "data"


@pytest.mark.parametrize("seed", range(5))
def test_two_peers_random_order(big, seed):
    rng = random.Random(seed)
    server = MetadataServer(big.info_bytes)
    download = MetadataDownload(big.info_hash_v1, server.metadata_size)
    # Each peer asks for pieces; the answers arrive in random order.
    pending = []
    for _ in range(2):
        for peer in ("A", "B"):
            piece = download.next_request(peer)
            pending.append((peer, piece))
    assert sorted(p for _, p in pending) == [0, 1, 2, 3]  # spread: no piece asked twice
    # End-game: A may only duplicate what B is busy with.
    assert download.next_request("A") in {p for peer, p in pending if peer == "B"}
    rng.shuffle(pending)
    results = []
    for peer, piece in pending:
        answer = server.answer(dict(msg_type="request", piece=piece))
        results.append(download.receive(peer, piece, answer["metadata"], answer["total_size"]))
    assert results[:-1] == [None] * 3 and results[-1] == big.info_bytes
    assert hashlib.sha1(download.result).digest() == big.info_hash_v1


def test_corrupted_piece_is_retried_from_the_other_peer(big):
    server = MetadataServer(big.info_bytes)
    download = MetadataDownload(big.info_hash_v1, server.metadata_size)

    def b_corrupts_piece_1(peer, piece):
        return peer == "B" and piece == 1

    results = [fetch(download, server, peer, corrupt=b_corrupts_piece_1)
               for peer in ("A", "B", "A", "B")]
    assert results == [None] * 4
    assert download.hash_failures == 1 and download.missing == 4
    assert download.suspects == {"A": 1, "B": 1} and not download.banned
    # On the retry each peer is offered the pieces the other one sent.
    assert download.next_request("A") == 1
    assert download.next_request("B") == 0
    download.peer_lost("A")
    download.peer_lost("B")
    results = [fetch(download, server, peer, corrupt=b_corrupts_piece_1)
               for peer in ("A", "B", "A", "B")]
    assert results[-1] == big.info_bytes and download.hash_failures == 1


def test_lone_liar_is_banned_and_download_gives_up_eventually():
    info = b"d4:name1:ae"
    server = MetadataServer(info)
    download = MetadataDownload(bytes(20), len(info))  # nobody can match this hash
    for n in range(MAX_HASH_FAILURES):
        assert fetch(download, server, f"peer {n}") is None
        assert f"peer {n}" in download.banned
        assert download.next_request(f"peer {n}") is None
    assert download.failed and download.hash_failures == MAX_HASH_FAILURES
    assert download.next_request("someone new") is None


def test_single_corrupt_peer_banned_then_honest_peer_completes(big):
    server = MetadataServer(big.info_bytes)
    download = MetadataDownload(big.info_hash_v1, server.metadata_size)
    results = [fetch(download, server, "liar", corrupt=lambda peer, piece: piece == 2)
               for _ in range(4)]
    assert results == [None] * 4 and download.banned == {"liar"}
    assert download.suspects == {"liar": 1}
    assert fetch(download, server, "liar") == "idle"
    results = [fetch(download, server, "honest") for _ in range(4)]
    assert results[-1] == big.info_bytes


def test_reject_and_peer_lost(big):
    server = MetadataServer(big.info_bytes)
    download = MetadataDownload(big.info_hash_v1, server.metadata_size)
    assert download.next_request("A") == 0
    download.reject("A", 0)
    # BEP 9: reject means A does not have that piece: not asked again, B gets it.
    assert download.next_request("A") == 1
    assert download.next_request("B") == 0
    download.peer_lost("A")  # piece 1 back in the pool
    assert download.next_request("C") == 1
    with pytest.raises(RemoteProtocolError):
        download.receive("A", 1, b"x" * METADATA_PIECE_SIZE, len(big.info_bytes))


def test_end_game_duplicate_request_and_answer(big):
    server = MetadataServer(big.info_bytes)
    download = MetadataDownload(big.info_hash_v1, server.metadata_size)
    assert [download.next_request("A") for _ in range(4)] == [0, 1, 2, 3]
    # B gets the pieces A is still busy with, least-requested first.
    assert download.next_request("B") == 0
    answer = server.answer(dict(msg_type="request", piece=0))
    assert download.receive("B", 0, answer["metadata"], answer["total_size"]) is None
    assert download.receive("A", 0, answer["metadata"], answer["total_size"]) is None
    assert download.missing == 3


@pytest.mark.parametrize(("piece", "size", "total", "why"), [
    (0, METADATA_PIECE_SIZE - 1, None, "not 16 KiB"),
    (3, METADATA_PIECE_SIZE, None, "last piece too long"),
    (0, METADATA_PIECE_SIZE, 1, "total_size lies"),
    (2, METADATA_PIECE_SIZE, None, "not requested"),
])
def test_lying_sizes_raise_remote_protocol_error(big, piece, size, total, why):
    download = MetadataDownload(big.info_hash_v1, len(big.info_bytes))
    download.next_request("A")
    download.next_request("A")
    if piece == 3:
        download.next_request("A")
        download.next_request("A")
    with pytest.raises(RemoteProtocolError):
        download.receive("A", piece, bytes(size), total or len(big.info_bytes))


def test_metadata_size_bounds():
    with pytest.raises(LimitExceeded):
        MetadataDownload(bytes(20), MAX_METADATA_SIZE + 1)
    for bad in (0, -5, "12"):
        with pytest.raises(RemoteProtocolError):
            MetadataDownload(bytes(20), bad)
    with pytest.raises(LocalProtocolError):
        MetadataDownload(bytes(19), 10)
    assert MetadataDownload(bytes(20), MAX_METADATA_SIZE).piece_count == 1024


def test_real_captured_request_parses():
    """libtorrent 2.0.8's request bytes (bt-02 capture) equal ours."""
    assert request_message(0) == b"d8:msg_typei0e5:piecei0ee"
    assert dict(parse(b"d8:msg_typei0e5:piecei0ee")) == dict(msg_type="request", piece=0)


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=64))
def test_random_payloads_raise_only_parse_error(payload):
    try:
        parse(payload)
    except ParseError:
        pass


@settings(max_examples=30, deadline=None)
@given(st.binary(min_size=1, max_size=3 * METADATA_PIECE_SIZE), st.randoms(use_true_random=False))
def test_any_metadata_round_trips(info, rng):
    server = MetadataServer(info)
    download = MetadataDownload(hashlib.sha1(info).digest(), len(info))
    order = list(range(server.piece_count))
    rng.shuffle(order)
    out = None
    for _ in order:
        assert download.next_request("P") is not None
    for piece in order:
        answer = parse(build(server.answer(dict(msg_type="request", piece=piece))))
        out = download.receive("P", answer.piece, answer.metadata, answer.total_size)
    assert out == info
