"""MSE/PE handshake fields (MSE (Vuze wiki)): round trips, the 512-byte padding bound, fuzzing."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pkit.bittorrent.wire.mse import (
    MAX_PAD,
    CryptoHead,
    CryptoProvide,
    CryptoSelect,
    KeyExchange,
    SyncHashes,
)
from p2pkit.errors import BuildError, LimitExceeded, ParseError


def common(schema, data: bytes, fields: dict):
    obj = schema.parse(data)
    for name, value in fields.items():
        assert obj[name] == value, name
    assert schema.build(obj) == data
    return obj


def test_key_exchange_is_key_then_padding():
    key = bytes(range(96))
    obj = common(KeyExchange, key + b"\xaa" * 7, dict(public_key=key, pad=b"\xaa" * 7))
    assert len(obj.pad) == 7
    common(KeyExchange, key, dict(pad=b""))


def test_key_exchange_padding_over_512_is_a_limit():
    with pytest.raises(LimitExceeded) as e:
        KeyExchange.parse(bytes(96 + MAX_PAD + 1))
    assert e.value.protocol == "mse" and e.value.offset == 96 + MAX_PAD
    KeyExchange.parse(bytes(96 + MAX_PAD))
    with pytest.raises(BuildError):
        KeyExchange.build(dict(public_key=bytes(96), pad=bytes(MAX_PAD + 1)))


def test_short_key_is_a_parse_error_at_its_offset():
    with pytest.raises(ParseError) as e:
        KeyExchange.parse(bytes(95))
    assert e.value.path == "public_key" and e.value.offset == 0


def test_sync_hashes():
    obj = common(SyncHashes, b"\x01" * 20 + b"\x02" * 20,
                 dict(req1=b"\x01" * 20, req2_xor_req3=b"\x02" * 20))
    assert SyncHashes.sizeof() == 40 and obj


def test_crypto_provide_fields_by_byte():
    data = (bytes(8) + bytes.fromhex("00000003") + bytes.fromhex("0002") + b"pp"
            + bytes.fromhex("0003") + b"IA!")
    obj = common(CryptoProvide, data, dict(pad_c=b"pp", initial_payload=b"IA!"))
    assert obj.crypto_provide.rc4 and obj.crypto_provide.plaintext
    assert obj.crypto_provide.unknown == 0


def test_crypto_select_and_head():
    data = bytes(8) + bytes.fromhex("00000002") + bytes.fromhex("0000")
    obj = common(CryptoSelect, data, dict(pad_d=b""))
    assert obj.crypto_select.rc4 and not obj.crypto_select.plaintext
    head = CryptoHead.parse(data)
    assert head.pad_length == 0 and head.methods.rc4


def test_wrong_vc_and_long_padding():
    with pytest.raises(ParseError) as e:
        CryptoSelect.parse(b"\x01" + bytes(7) + bytes(6))
    assert e.value.path == "vc"
    with pytest.raises(LimitExceeded) as e:
        CryptoHead.parse(bytes(8) + bytes.fromhex("00000002") + (MAX_PAD + 1).to_bytes(2, "big"))
    assert e.value.offset == 12
    with pytest.raises(BuildError):
        CryptoSelect.build(dict(crypto_select=2, pad_d=bytes(MAX_PAD + 1)))


@given(st.binary(max_size=800))
@settings(max_examples=300, deadline=None)
def test_random_bytes_raise_only_parse_errors(data):
    for schema in (KeyExchange, SyncHashes, CryptoHead, CryptoProvide, CryptoSelect):
        try:
            obj = schema.parse(data)
        except ParseError:
            continue
        assert schema.build(obj) == data[:len(schema.build(obj))]


@given(st.binary(max_size=MAX_PAD), st.binary(max_size=300), st.integers(0, 2**32 - 1))
@settings(max_examples=100, deadline=None)
def test_round_trip(pad, initial, bits):
    data = CryptoProvide.build(dict(crypto_provide=bits, pad_c=pad, initial_payload=initial))
    obj = CryptoProvide.parse(data)
    assert (obj.pad_c, obj.initial_payload) == (pad, initial)
    assert CryptoProvide.build(obj) == data
