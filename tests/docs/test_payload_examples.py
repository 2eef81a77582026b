"""The KRPC and uTP-carried examples of the wire-format pages
(docs/_ext/p2pkit_payload_examples.py): real datagrams of the committed captures."""

from __future__ import annotations

import sys
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from p2pkit import bencode
from p2pkit.bittorrent.wire.messages import Handshake, PeerMessage
from p2pkit.bittorrent.wire.utp import HEADER_SIZE, UtpPacket
from p2pkit.dht.krpc import KrpcMessageLenient

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "docs" / "_ext"))

import p2pkit_payload_examples as payload  # noqa: E402


def test_krpc_examples_cover_every_method_and_kind():
    examples = payload.bencoded_examples("bt-dht")
    titles = {e.title for e in examples}
    for method in ("ping", "find_node", "get_peers", "announce_peer", "get", "put"):
        assert {f"{method} query", f"{method} response"} <= titles
    assert any(t.endswith(" error") for t in titles)
    for e in examples:
        message = KrpcMessageLenient.parse(e.data)  # the whole datagram is one KRPC message
        kind = {"q": "query", "r": "response", "e": "error"}[str(message.y)]
        assert e.title.endswith(kind)
        if kind == "query":
            assert e.title == f"{message.method} query"


def test_decoded_column_shows_text_as_text_and_binary_as_length():
    ping = next(e for e in payload.bencoded_examples("bt-dht") if e.title == "ping query")
    text = payload.readable(bencode.decode(ping.data))
    assert "'q': 'ping'," in text and "'y': 'q'," in text
    assert "'id': <20 bytes " in text


@given(st.recursive(st.binary(max_size=30) | st.integers(),
                    lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.binary(max_size=8), inner, max_size=4), max_leaves=20))
def test_readable_never_fails(value):
    assert isinstance(payload.readable(value), str)


def test_utp_examples_are_whole_datagrams_carrying_one_message():
    examples = payload.carried_examples("bt-04-libtorrent-utp-only.pcap")
    names = {e.title for e in examples}
    assert {"handshake", "extended", "unchoke", "request", "have"} <= names
    for e in examples:
        utp = UtpPacket.parse(e.data)
        assert str(utp.type) == "st_data" and e.start >= HEADER_SIZE
        message = e.data[e.start:e.end]
        assert bytes(utp.payload).find(message) == e.start - (len(e.data) - len(utp.payload))
        if e.title == "handshake":
            assert Handshake.parse(message).peer_id.startswith(b"-LT")
        else:
            assert PeerMessage.parse(message).type == e.title
            assert int.from_bytes(message[:4], "big") == len(message) - 4
