"""The kad-dht value validators (/pk/, /ipns/), selection, the bounded record store, and the
server's PUT_VALUE/GET_VALUE answers (ipfs-kad-dht §Value Storage and Retrieval)."""

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pkit.errors import LimitExceeded
from p2pkit.ipfs.dht_records import (
    RecordRejected,
    RecordStore,
    pk_key,
    select_value,
    validate_value,
)
from p2pkit.ipfs.ipns import create_record, routing_key
from p2pkit.ipfs.kad_dht import KadDhtServer, KadStream, RequestRefused
from p2pkit.ipfs.kad_dht_messages import KadMessage, KadMessageFrame
from p2pkit.ipfs.keys import Ed25519Identity
from p2pkit.ipfs.peer_id import PeerId

ALICE = Ed25519Identity(bytes(range(32)))
BOB = Ed25519Identity(bytes(32))
A = PeerId.from_public_key(ALICE.public_key)
B = PeerId.from_public_key(BOB.public_key)
HOUR = 3600 * 10**9


def ipns(seq, eol_from_now=HOUR, value=b"/ipfs/v"):
    return create_record(ALICE, value, seq, time.time_ns() + eol_from_now)


def test_pk_records():
    assert validate_value(pk_key(A), ALICE.public_key) == ALICE.public_key
    with pytest.raises(RecordRejected, match="peer id"):
        validate_value(pk_key(A), BOB.public_key)
    with pytest.raises(RecordRejected):
        validate_value(b"/pk/" + b"\x00\x01", ALICE.public_key)  # not a peer id


def test_other_namespaces_and_oversize_refused():
    with pytest.raises(RecordRejected, match="only /pk/ and /ipns/"):
        validate_value(b"/v/anything", b"value")
    with pytest.raises(LimitExceeded):
        validate_value(routing_key(A), bytes(17 * 1024))


def test_select_prefers_the_higher_sequence_and_skips_invalid():
    key = routing_key(A)
    values = [b"junk", ipns(1), ipns(5), ipns(3)]
    assert select_value(key, values) == 2
    with pytest.raises(RecordRejected):
        select_value(key, [b"junk"])
    assert select_value(pk_key(A), [b"junk", ALICE.public_key, ALICE.public_key]) == 1


def test_store_keeps_the_best_and_is_bounded_and_expiring():
    store = RecordStore(max_records=2, max_age=100.0)
    key = routing_key(A)
    store.put(key, ipns(2), 0.0)
    with pytest.raises(RecordRejected, match="better record"):
        store.put(key, ipns(1), 1.0)
    newer = ipns(3)
    store.put(key, newer, 2.0)
    assert store.get(key, 3.0) == newer
    store.put(pk_key(A), ALICE.public_key, 4.0)
    store.put(pk_key(B), BOB.public_key, 5.0)
    assert len(store) == 2 and store.get(key, 6.0) is None  # the oldest key went first
    assert store.get(pk_key(B), 105.0) is None  # 100 s old: expired
    # a record whose EOL passes while stored is dropped when read
    clock = [time.time_ns()]
    timed = RecordStore(wall_clock=lambda: clock[0])
    timed.put(key, ipns(1, eol_from_now=2 * 10**9), 0.0)
    assert timed.get(key, 1.0) is not None
    clock[0] += 3 * 10**9
    assert timed.get(key, 1.0) is None and len(timed) == 0


def _ask(server, request, sender=B, now=0.0):
    stream = KadStream(server, sender)
    stream.receive_data(KadMessageFrame.build(request), now)
    out = stream.data_to_send()
    return KadMessageFrame.parse(out) if out else stream.next_event()


def test_server_put_then_get():
    server = KadDhtServer(PeerId.from_public_key(Ed25519Identity(bytes([9]) * 32).public_key))
    key = routing_key(A)
    record = ipns(4)
    put = {"type": "PUT_VALUE", "key": key, "record": {"key": key, "value": record}}
    echo = _ask(server, put)
    assert echo.type == "PUT_VALUE" and echo.record.value == record  # "echoes the request"
    got = _ask(server, {"type": "GET_VALUE", "key": key})
    assert got.record.key == key and got.record.value == record
    assert got.record.timeReceived.endswith("Z")
    assert _ask(server, {"type": "GET_VALUE", "key": pk_key(B)}).record is None
    # refused: an older record, a forged one, key mismatch, no record, foreign namespace
    forged = bytearray(ipns(9))
    forged[-70] ^= 1
    for bad in [{"type": "PUT_VALUE", "key": key, "record": {"key": key, "value": ipns(1)}},
                {"type": "PUT_VALUE", "key": key, "record": {"key": key, "value": bytes(forged)}},
                {"type": "PUT_VALUE", "key": pk_key(A),
                 "record": {"key": key, "value": ipns(9)}},
                {"type": "PUT_VALUE", "key": key},
                {"type": "PUT_VALUE", "key": b"/v/x", "record": {"key": b"/v/x", "value": b"1"}}]:
        assert isinstance(_ask(server, bad), RequestRefused), bad
    assert server.stats["rejected_values"] == 3
    assert server.handle(KadMessage.parse(KadMessage.build({"type": "GET_VALUE", "key": key})),
                         B, 1.0)["record"]["value"] == record


@settings(max_examples=150, deadline=None)
@given(st.sampled_from([routing_key(A), pk_key(A), b"/ipns/", b"/pk/\x00"]),
       st.binary(max_size=400))
def test_random_put_values_are_refused_without_raising(key, value):
    server = KadDhtServer(B)
    put = {"type": "PUT_VALUE", "key": key, "record": {"key": key, "value": value}}
    assert server.handle(KadMessage.parse(KadMessage.build(put)), A, 0.0) is None
    assert len(server.values) == 0
