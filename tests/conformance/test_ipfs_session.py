"""The harness's own reading of a target's bytes (:mod:`p2pkit.conformance.ipfs.session`):
whatever a target sends, a case gets a line, "not yet", or a
:class:`~p2pkit.conformance.ipfs.session.Deviation`, never a crash of the harness."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from p2pkit.conformance.ipfs.live import IpfsTarget, ipfs_target, parse_target
from p2pkit.conformance.ipfs.session import Deviation, IpfsSession, multistream_line
from p2pkit.conformance.runner import TargetError


def _session() -> IpfsSession:
    return IpfsSession(("127.0.0.1", 9), rng=random.Random(1), timeout=0.1)


def test_lines_are_read_whatever_their_split() -> None:
    s = _session()
    data = multistream_line("/multistream/1.0.0") + multistream_line("na")
    for byte in data[:-1]:
        s._feed(bytes([byte]))
    assert s._first_line() == "/multistream/1.0.0"
    assert s._first_line() is None  # "na" is one byte short
    s._feed(data[-1:])
    assert s._first_line() == "na" and not s.raw


def test_a_line_without_newline_is_a_deviation() -> None:
    s = _session()
    s._feed(b"\x03nax")
    try:
        s._first_line()
    except Deviation as e:
        assert "multistream" in str(e)
    else:
        raise AssertionError("accepted a line without its newline")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64))
def test_any_bytes_give_a_line_nothing_or_a_deviation(data: bytes) -> None:
    s = _session()
    s._feed(data)
    for _ in range(8):
        try:
            line = s._first_line()
        except Deviation:
            return
        if line is None:
            return
        assert isinstance(line, str)


def test_targets() -> None:
    assert parse_target("/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWJ1TsijH7H5F74hfAD5XishQz3sxrmAtVY"
                        "37GtNd9CqYf") == ("127.0.0.1", 4001)
    assert parse_target("[::1]:4001") == ("::1", 4001)
    cid = "bafkreib4vmjuc2jufnf2qjjrmvwneg2mitavwo3v7sqt24hb7ngzqxg23i"
    target = ipfs_target("127.0.0.1:4001", [cid])
    assert isinstance(target, IpfsTarget) and str(target.blocks[0]) == cid
    for bad in ("/ip4/127.0.0.1/udp/4001", "127.0.0.1", "host:99999"):
        try:
            ipfs_target(bad)
        except TargetError:
            continue
        raise AssertionError(bad)
