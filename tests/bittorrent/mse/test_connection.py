"""The MSE/PE core against the spec byte by byte (fixed keys, an independent RC4 and SHA-1),
between its two ends, and against hostile input: MSE (Vuze wiki)."""

from __future__ import annotations

import hashlib
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pkit.bittorrent.mse.connection import (
    HANDSHAKE_TIMEOUT,
    MseConnection,
    MseEstablished,
    PayloadReceived,
    events,
)
from p2pkit.bittorrent.mse.keys import P
from p2pkit.bittorrent.wire.mse import CRYPTO_PLAINTEXT, CRYPTO_RC4, MAX_PAD
from p2pkit.errors import RemoteProtocolError
from tests.pcap_payloads import tcp_segments

IH = hashlib.sha1(b"a torrent").digest()
XA = 0x8A3F0C2D1B4E5A69788796A5B4C3D2E1F0011223
XB = 0x1C2B3A49586776859493A2B1C0DFEEFD0C1B2A39
HANDSHAKE = b"\x13BitTorrent protocol" + bytes(8) + IH + b"-PK0100-abcdefghijkl"


def rc4_reference(key: bytes, n: int) -> bytes:
    """RC4 written from its definition (KSA + PRGA), to check the core's keystream."""
    s = list(range(256))
    j = 0
    for i in range(256):
        j = (j + s[i] + key[i % len(key)]) & 0xFF
        s[i], s[j] = s[j], s[i]
    out = bytearray()
    i = j = 0
    for _ in range(n):
        i = (i + 1) & 0xFF
        j = (j + s[i]) & 0xFF
        s[i], s[j] = s[j], s[i]
        out.append(s[(s[i] + s[j]) & 0xFF])
    return bytes(out)


def xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b))


def sha1(*parts: bytes) -> bytes:
    return hashlib.sha1(b"".join(parts)).digest()


def pair(*, provide=CRYPTO_RC4 | CRYPTO_PLAINTEXT, accept=CRYPTO_RC4 | CRYPTO_PLAINTEXT,
         pads=(5, 7), legacy=False):
    a = MseConnection.initiator(info_hash=IH, rng=random.Random(1), now=0.0, provide=provide,
                                private_key=XA, pad_length=pads[0])
    b = MseConnection.responder(info_hashes=[b"\x01" * 20, IH], rng=random.Random(2), now=0.0,
                                provide=accept, private_key=XB, pad_length=pads[1],
                                allow_legacy=legacy)
    return a, b


def exchange(a, b, chunk: int | None = None):
    """Move bytes both ways until nothing is left; ``chunk``: deliver that many at a time."""
    for _ in range(10):
        moved = False
        for src, dst in ((a, b), (b, a)):
            data = src.data_to_send()
            moved |= bool(data)
            step = chunk or max(len(data), 1)
            for i in range(0, len(data), step):
                dst.receive_data(data[i:i + step], 0.0)
        if not moved:
            return


def test_initiator_bytes_follow_the_spec():
    a, b = pair(pads=(5, 7))
    a.send_payload(HANDSHAKE)
    ya = pow(2, XA, P).to_bytes(96, "big")
    yb = pow(2, XB, P).to_bytes(96, "big")
    step1 = a.data_to_send()
    assert step1[:96] == ya and len(step1) == 96 + 5  # Ya, PadA
    b.receive_data(step1, 0.0)
    step2 = b.data_to_send()
    assert step2[:96] == yb and len(step2) == 96 + 7  # Yb, PadB
    a.receive_data(step2, 0.0)
    step3 = a.data_to_send()
    s = pow(int.from_bytes(yb, "big"), XA, P).to_bytes(96, "big")
    assert s == pow(int.from_bytes(ya, "big"), XB, P).to_bytes(96, "big")
    assert step3[:20] == sha1(b"req1", s)
    assert step3[20:40] == xor(sha1(b"req2", IH), sha1(b"req3", s))
    plain = (bytes(8) + (3).to_bytes(4, "big") + (0).to_bytes(2, "big")
             + len(HANDSHAKE).to_bytes(2, "big") + HANDSHAKE)
    keystream = rc4_reference(sha1(b"keyA", s, IH), 1024 + len(plain))[1024:]
    assert step3[40:] == xor(plain, keystream)
    b.receive_data(step3, 0.0)
    step4 = b.data_to_send()
    select = bytes(8) + (2).to_bytes(4, "big") + (0).to_bytes(2, "big")  # RC4 chosen
    assert step4 == xor(select, rc4_reference(sha1(b"keyB", s, IH), 1024 + 14)[1024:])
    got = events(b)
    assert got == [MseEstablished(method="rc4", info_hash=IH, secret=s),
                   PayloadReceived(data=HANDSHAKE)]


def test_same_seeds_give_same_bytes():
    runs = []
    for _ in range(2):
        a = MseConnection.initiator(info_hash=IH, rng=random.Random(9), now=0.0)
        runs.append(a.data_to_send())
    assert runs[0] == runs[1] and 96 <= len(runs[0]) <= 96 + MAX_PAD


@pytest.mark.parametrize("chunk", [None, 1, 7, 100])
@pytest.mark.parametrize("pads", [(0, 0), (512, 512), (300, 17)])
def test_both_ends_agree_rc4(chunk, pads):
    a, b = pair(pads=pads)
    a.send_payload(HANDSHAKE)
    exchange(a, b, chunk)
    got_b = events(b)
    assert got_b[0].method == "rc4" and got_b[0].info_hash == IH
    assert b"".join(e.data for e in got_b[1:]) == HANDSHAKE
    assert events(a)[0].method == "rc4"
    big = random.Random(3).randbytes(70_000)
    b.send_payload(big)
    wire = b.data_to_send()
    assert wire != big and len(wire) == len(big)
    a.receive_data(wire, 0.0)
    assert b"".join(e.data for e in events(a)) == big


def test_plaintext_selected_when_only_plaintext_offered():
    a, b = pair(provide=CRYPTO_PLAINTEXT)
    a.send_payload(HANDSHAKE)
    exchange(a, b)
    assert events(b)[0].method == "plaintext" and events(a)[0].method == "plaintext"
    a.send_payload(b"after")
    assert a.data_to_send() == b"after"  # no RC4 after the handshake


def test_payload_queued_before_crypto_select_waits_for_it():
    a, b = pair(provide=CRYPTO_PLAINTEXT)
    a.send_payload(HANDSHAKE)
    b.receive_data(a.data_to_send(), 0.0)
    a.receive_data(b.data_to_send(), 0.0)
    step3 = a.data_to_send()  # IA = HANDSHAKE is out, crypto_select not in yet
    a.send_payload(b"queued")
    assert a.data_to_send() == b""
    b.receive_data(step3, 0.0)
    exchange(a, b)
    assert b"".join(e.data for e in events(b) if isinstance(e, PayloadReceived)) == \
        HANDSHAKE + b"queued"


def test_responder_accepts_a_plain_connection_when_allowed():
    _, b = pair(legacy=True)
    b.receive_data(HANDSHAKE[:10], 0.0)
    assert events(b) == []
    b.receive_data(HANDSHAKE[10:], 0.0)
    assert events(b) == [MseEstablished(method="none"), PayloadReceived(data=HANDSHAKE)]
    b.send_payload(b"x")
    assert b.data_to_send().endswith(b"x")


def test_responder_refuses_a_plain_connection_when_encryption_is_required():
    _, b = pair(legacy=False)
    with pytest.raises(RemoteProtocolError, match="requires encryption"):
        b.receive_data(HANDSHAKE, 0.0)


# -- hostile input ---------------------------------------------------------------------------


def test_padding_over_512_before_req1_drops_the_connection():
    a, b = pair()
    b.receive_data(a.data_to_send()[:96], 0.0)  # Ya
    b.receive_data(bytes(MAX_PAD), 0.0)  # still possible padding
    with pytest.raises(RemoteProtocolError, match="not found within 512"):
        b.receive_data(random.Random(4).randbytes(40), 0.0)


def test_garbage_after_the_key_drops_the_initiator():
    a, _ = pair()
    a.send_payload(HANDSHAKE)
    garbage = random.Random(5).randbytes(96 + MAX_PAD + 8)
    with pytest.raises(RemoteProtocolError, match="ENCRYPT\\(VC\\)"):
        a.receive_data(garbage, 0.0)


def test_unknown_torrent_is_refused():
    a = MseConnection.initiator(info_hash=b"\x09" * 20, rng=random.Random(1), now=0.0)
    b = MseConnection.responder(info_hashes=[IH], rng=random.Random(2), now=0.0)
    with pytest.raises(RemoteProtocolError, match="no torrent"):
        exchange(a, b)


def test_crypto_select_not_offered_drops_the_connection():
    a, b = pair(provide=CRYPTO_RC4)
    b.provide = CRYPTO_PLAINTEXT  # a responder that accepts plaintext only
    a.send_payload(HANDSHAKE)
    b.receive_data(a.data_to_send(), 0.0)
    a.receive_data(b.data_to_send(), 0.0)
    with pytest.raises(RemoteProtocolError, match="offers none"):
        b.receive_data(a.data_to_send(), 0.0)


def test_initiator_refuses_a_select_it_did_not_offer():
    # the responder is built by hand: the same keys, then crypto_select = plaintext
    from p2pkit.bittorrent.mse.keys import Rc4, rc4_key
    from p2pkit.bittorrent.wire.mse import CryptoSelect

    a, b = pair(provide=CRYPTO_RC4)
    a.send_payload(HANDSHAKE)
    b.receive_data(a.data_to_send(), 0.0)
    step2 = b.data_to_send()
    a.receive_data(step2, 0.0)
    select = CryptoSelect.build(dict(crypto_select=CRYPTO_PLAINTEXT, pad_d=b""))
    forged = Rc4(rc4_key(b"keyB", a.secret, IH)).update(select)
    with pytest.raises(RemoteProtocolError, match="not one method offered"):
        a.receive_data(forged, 0.0)


def test_pad_d_over_512_drops_the_initiator():
    from p2pkit.bittorrent.mse.keys import Rc4, rc4_key

    a, b = pair()
    a.send_payload(HANDSHAKE)
    b.receive_data(a.data_to_send(), 0.0)
    a.receive_data(b.data_to_send(), 0.0)
    head = bytes(8) + (2).to_bytes(4, "big") + (MAX_PAD + 1).to_bytes(2, "big")
    with pytest.raises(RemoteProtocolError, match="more than 512"):
        a.receive_data(Rc4(rc4_key(b"keyB", a.secret, IH)).update(head), 0.0)


def test_weak_public_key_is_refused():
    _, b = pair()
    with pytest.raises(RemoteProtocolError, match="out of range"):
        b.receive_data((1).to_bytes(96, "big"), 0.0)


def test_an_exchange_that_never_ends_times_out():
    a, b = pair()
    b.receive_data(a.data_to_send()[:50], 0.0)
    assert b.get_timer() == HANDSHAKE_TIMEOUT
    b.handle_timer(HANDSHAKE_TIMEOUT - 1)
    assert events(b) == []
    b.handle_timer(HANDSHAKE_TIMEOUT)
    with pytest.raises(RemoteProtocolError, match="not complete"):
        b.next_event()


def test_close_during_the_exchange_is_an_error():
    a, _ = pair()
    with pytest.raises(RemoteProtocolError, match="closed"):
        a.receive_data(b"", 0.0)


# -- what libtorrent sent (tests/data/captures/bt-08-libtorrent-mse-rc4.pcap) -----------------


def test_libtorrent_capture_has_the_shape_the_core_expects():
    """Without the keys: each side opens with its 96-byte key and at most 512 bytes of padding
    (one segment each), and the initiator's step 3 is the 40 bytes of hashes plus at least
    the 16 bytes of VC, crypto_provide, len(PadC) and len(IA)."""
    segments = tcp_segments("bt-08-libtorrent-mse-rc4.pcap")
    (a, _, ya_pad_a), (b, _, yb_pad_b), (a3, _, step3) = segments[:3]
    assert a != b and a3 == a
    assert 96 <= len(ya_pad_a) <= 96 + MAX_PAD and 96 <= len(yb_pad_b) <= 96 + MAX_PAD
    assert 40 + 16 <= len(step3) <= 40 + 16 + MAX_PAD + 0xFFFF
    # the public keys are numbers below P, as the responder checks
    assert 1 < int.from_bytes(ya_pad_a[:96], "big") < P - 1
    assert 1 < int.from_bytes(yb_pad_b[:96], "big") < P - 1


# -- fuzzing: random bytes at each side raise only RemoteProtocolError -------------------------


@given(st.binary(max_size=1500), st.integers(1, 200))
@settings(max_examples=200, deadline=None)
def test_random_bytes_to_a_responder(data, chunk):
    b = MseConnection.responder(info_hashes=[IH], rng=random.Random(2), now=0.0,
                                allow_legacy=True)
    try:
        for i in range(0, len(data), chunk):
            b.receive_data(data[i:i + chunk], 0.0)
        events(b)
    except RemoteProtocolError:
        pass


@given(st.binary(max_size=1500), st.integers(1, 200))
@settings(max_examples=200, deadline=None)
def test_random_bytes_to_an_initiator(data, chunk):
    a = MseConnection.initiator(info_hash=IH, rng=random.Random(1), now=0.0)
    a.send_payload(HANDSHAKE)
    try:
        for i in range(0, len(data), chunk):
            a.receive_data(data[i:i + chunk], 0.0)
        events(a)
    except RemoteProtocolError:
        pass


@given(st.integers(0, MAX_PAD), st.integers(0, MAX_PAD), st.binary(max_size=300))
@settings(max_examples=40, deadline=None)
def test_any_pads_and_payload_agree(pad_a, pad_b, payload):
    a, b = pair(pads=(pad_a, pad_b))
    a.send_payload(HANDSHAKE + payload)
    exchange(a, b, 97)
    assert b"".join(e.data for e in events(b)[1:]) == HANDSHAKE + payload


def test_it_is_a_stream_core_and_sends_payload_events():
    from p2pkit.bittorrent.mse.connection import SendPayload
    from p2pkit.core import StreamCore, StreamPair
    from p2pkit.errors import LocalProtocolError

    a, b = pair()
    assert isinstance(a, StreamCore) and isinstance(b, StreamCore)
    link = StreamPair(a, b)
    link.write(0, a.data_to_send())  # Ya + PadA
    link.send(0, SendPayload(data=HANDSHAKE))
    got_a, got_b = link.run()
    assert [type(e).__name__ for e in got_b] == ["MseEstablished", "PayloadReceived"]
    assert got_b[1].data == HANDSHAKE and got_a[0].method == "rc4"
    with pytest.raises(LocalProtocolError):
        a.send(MseEstablished(method="rc4"), 0.0)
