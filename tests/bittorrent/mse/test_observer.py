"""Decrypting both directions of an MSE connection from its key log entry (MSE (Vuze wiki)),
as ``dissect --keylog`` does: RC4 and plaintext, any chunking, gaps, wrong keys."""

from __future__ import annotations

import hashlib
import random

import pytest

from p2pkit.bittorrent.mse.connection import MseConnection, MseEstablished, events
from p2pkit.bittorrent.mse.keylog import KeyLogEntry
from p2pkit.bittorrent.mse.observer import MseObserver
from p2pkit.bittorrent.wire.mse import CRYPTO_PLAINTEXT, CRYPTO_RC4
from p2pkit.errors import ParseError

IH = hashlib.sha1(b"observed").digest()
HANDSHAKE = b"\x13BitTorrent protocol" + bytes(8) + IH + b"-PK0100-abcdefghijkl"


def session(provide: int, pads=(100, 200)):
    """A full connection between two cores; the wire bytes of each direction and the entry."""
    a = MseConnection.initiator(info_hash=IH, rng=random.Random(1), now=0.0, provide=provide,
                                pad_length=pads[0])
    b = MseConnection.responder(info_hashes=[IH], rng=random.Random(2), now=0.0,
                                pad_length=pads[1])
    wire_a, wire_b = bytearray(), bytearray()
    a.send_payload(HANDSHAKE)
    for _ in range(4):
        out = a.data_to_send()
        wire_a += out
        b.receive_data(out, 0.0) if out else None
        out = b.data_to_send()
        wire_b += out
        a.receive_data(out, 0.0) if out else None
    est = [e for e in events(b) if isinstance(e, MseEstablished)][0]
    payload_a = random.Random(3).randbytes(5000)
    payload_b = random.Random(4).randbytes(9000)
    a.send_payload(payload_a)
    b.send_payload(HANDSHAKE + payload_b)
    wire_a += a.data_to_send()
    wire_b += b.data_to_send()
    entry = KeyLogEntry(initiator="10.0.0.1:1", responder="10.0.0.2:2", info_hash=IH,
                        secret=est.secret, method=est.method)
    return bytes(wire_a), bytes(wire_b), entry, payload_a, payload_b


@pytest.mark.parametrize("provide,method", [(CRYPTO_RC4 | CRYPTO_PLAINTEXT, "rc4"),
                                            (CRYPTO_PLAINTEXT, "plaintext")])
@pytest.mark.parametrize("chunk", [1, 13, 1 << 20])
def test_both_directions_decrypt(provide, method, chunk):
    wire_a, wire_b, entry, payload_a, payload_b = session(provide)
    assert entry.method == method
    for side, wire, expected in (("initiator", wire_a, HANDSHAKE + payload_a),
                                 ("responder", wire_b, HANDSHAKE + payload_b)):
        observer = MseObserver(entry, side)
        got = b"".join(observer.feed(wire[i:i + chunk]) for i in range(0, len(wire), chunk))
        assert got == expected
        assert observer.preamble + len(expected) == len(wire)
        assert observer.pads[0] == (100 if side == "initiator" else 200)


def test_a_gap_after_the_handshake_keeps_rc4_in_step():
    wire_a, _, entry, payload_a, _ = session(CRYPTO_RC4)
    observer = MseObserver(entry, "initiator")
    head = len(wire_a) - len(payload_a)
    assert observer.feed(wire_a[:head + 1000]) == HANDSHAKE + payload_a[:1000]
    observer.skip(500)
    assert observer.feed(wire_a[head + 1500:]) == payload_a[1500:]


def test_wrong_secret_is_a_parse_error():
    wire_a, wire_b, entry, _, _ = session(CRYPTO_RC4)
    wrong = KeyLogEntry(initiator=entry.initiator, responder=entry.responder, info_hash=IH,
                        secret=bytes(96), method="rc4")
    with pytest.raises(ParseError, match="not found within 512"):
        MseObserver(wrong, "initiator").feed(wire_a)
    with pytest.raises(ParseError, match="not found within 512"):
        MseObserver(wrong, "responder").feed(wire_b)
