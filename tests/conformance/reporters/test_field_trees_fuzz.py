"""Whatever a target sends, the report's trees are built without an exception: arbitrary
bytes as the answer (and as what was sent) of a KRPC, BEP 15, HTTP tracker and peer-wire step
give decoded records or hex, and a failing field is always marked on a line."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from p2pkit.conformance import catalog
from p2pkit.conformance.bittorrent import BitTorrentWire, TorrentFacts
from p2pkit.conformance.reporters.field_trees import MAX_HEX_BYTES, case_trees
from p2pkit.conformance.runner import Exchange, Result
from p2pkit.conformance.stream_runner import Session, StreamAnswer, StreamExchange
from p2pkit.conformance.tracker._common import HttpTrackerAnswer, UdpTrackerAnswer
from p2pkit.conformance.verifiers import Answer, Check

CASE = catalog("dht")[0]
WIRE = BitTorrentWire(TorrentFacts.from_magnet("magnet:?xt=urn:btih:" + "ab" * 20))
paths = st.sampled_from(["t", "y", "r.id", "e.code", "peers", "interval", "type", "closed",
                         "no.such.field", ""])


def _check_trees(result: Result) -> None:
    for trees, exchange in zip(case_trees(result), result.exchanges, strict=True):
        assert all(isinstance(line.text, str) for line in trees.sent + trees.received)
        for lines in (trees.sent, trees.received):
            hex_rows = [line for line in lines if line.path == "raw"]
            assert len(hex_rows) <= 2 + MAX_HEX_BYTES // 32
        if exchange.check is not None and not exchange.check.ok:
            assert trees.difference is not None
            if trees.received:
                assert trees.marked is not None or any(
                    t.marked is not None for t in case_trees(result))


@settings(max_examples=150, deadline=None)
@given(sent=st.binary(max_size=300), got=st.one_of(st.none(), st.binary(max_size=600)),
       kind=st.sampled_from([Answer, UdpTrackerAnswer, HttpTrackerAnswer]), path=paths)
def test_datagram_and_http_answers(sent: bytes, got: bytes | None, kind: type,
                                   path: str) -> None:
    answer = kind.of(got, elapsed=0.01)
    exchange = Exchange(step=0, source="a", sent=sent, count=1, expect="x", answer=answer,
                        check=Check(False, "differs", path, expected="e", got="g"))
    _check_trees(Result(CASE, "fail", exchanges=[exchange], failed_step=0, path=path))


@settings(max_examples=150, deadline=None)
@given(sent=st.lists(st.binary(max_size=200), min_size=1, max_size=3),
       received=st.binary(max_size=800), cuts=st.lists(st.integers(0, 800), max_size=2),
       closed=st.sampled_from([None, "eof", "reset"]), path=paths,
       index=st.one_of(st.none(), st.integers(0, 5)))
def test_stream_answers(sent: list[bytes], received: bytes, cuts: list[int],
                        closed: str | None, path: str, index: int | None) -> None:
    session = Session(received=bytearray(received), closed=closed)
    offsets = sorted({0, *(min(c, len(received)) for c in cuts)})[:len(sent)]
    offsets += [len(received)] * (len(sent) - len(offsets))
    exchanges = []
    for step, (data, at) in enumerate(zip(sent, offsets, strict=True)):
        answer = StreamAnswer(bytes(received[at:]) or None, [], session, offset=at)
        check = Check(False, "differs", path, index=index) if step == len(sent) - 1 else None
        exchanges.append(StreamExchange(step=step, source="tcp", sent=data, count=1,
                                        expect="x", answer=answer, check=check,
                                        protocol=WIRE))
    _check_trees(Result(CASE, "fail", exchanges=exchanges, failed_step=len(sent) - 1))


def test_a_handshake_and_garbage_decode_then_hex() -> None:
    """The control: real bytes decode, garbage after them is shown as hex."""
    from p2pkit.bittorrent.wire.messages import Handshake
    from p2pkit.conformance.bittorrent._common import _handshake_fields

    hello = Handshake.build(_handshake_fields(b"\xab" * 20, b"p" * 20))
    session = Session(received=bytearray(hello + b"\xff\xff\xff\xf0garbage"))
    answer = StreamAnswer(bytes(session.received), [], session)
    exchange = StreamExchange(step=0, source="tcp", sent=hello, count=1, expect="x",
                              answer=answer, check=None, protocol=WIRE)
    (trees,) = case_trees(Result(CASE, "pass", exchanges=[exchange]))
    assert trees.sent[0].text.startswith("  bittorrent handshake")
    assert trees.received[0].text.startswith("  bittorrent handshake")
    # an impossible length: those bytes, and only those, as hex under their record
    raw = [line.text for line in trees.received if line.path == "raw"]
    assert raw == ["  raw (11 bytes, not bittorrent)", "    0000  fffffff067617262 616765"]
