"""multistream-select 1.0 (multistream-select.md): the spec's bytes, negotiation as dialer and
listener, na, ls, limits."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from p2pkit.core import NEED_DATA
from p2pkit.errors import LimitExceeded, P2PKitError, ParseError, RemoteProtocolError
from p2pkit.ipfs.multistream import (
    MAX_PROPOSALS,
    LsResponse,
    MultistreamMessage,
    MultistreamNegotiation,
    NegotiationFailed,
    ProtocolAgreed,
    ProtocolList,
    ProtocolRefused,
)


def events(core):
    return list(iter(core.next_event, NEED_DATA))


def test_spec_bytes():
    # "na\n # in hex (note the varint prefix = 3) # 0x036e610a", and "ls" 0x036c730a
    assert MultistreamMessage.build("na") == bytes.fromhex("036e610a")
    assert MultistreamMessage.build("ls") == bytes.fromhex("036c730a")
    with pytest.raises(ParseError):
        MultistreamMessage.parse(b"\x02na")  # no newline
    with pytest.raises(LimitExceeded):
        MultistreamMessage.parse(b"\xff\x7f" + b"a" * 10)


def test_header_and_proposal_in_one_write():
    dialer = MultistreamNegotiation(dialer=True, protocols=["/ipfs/kad/1.0.0"])
    # §Implementation Recommendations: "> /multistream/1.0.0\n/ipfs/kad/1.0.0\n"
    assert dialer.data_to_send() == (MultistreamMessage.build("/multistream/1.0.0")
                                     + MultistreamMessage.build("/ipfs/kad/1.0.0"))


def test_na_then_fallback_and_trailing_data():
    dialer = MultistreamNegotiation(dialer=True, protocols=["/ipfs/kad/1.0.0", "/ipfs/kad/0.2.3"])
    listener = MultistreamNegotiation(dialer=False, protocols=["/ipfs/kad/0.2.3"])
    listener.receive_data(dialer.data_to_send(), 0)
    assert events(listener) == []
    answer = listener.data_to_send()
    assert answer == MultistreamMessage.build("/multistream/1.0.0") + MultistreamMessage.build("na")
    dialer.receive_data(answer, 0)
    assert events(dialer) == [ProtocolRefused(protocol="/ipfs/kad/1.0.0")]
    listener.receive_data(dialer.data_to_send() + b"kad bytes", 0)
    assert events(listener) == [ProtocolAgreed(protocol="/ipfs/kad/0.2.3", rest=b"kad bytes")]
    dialer.receive_data(listener.data_to_send() + b"answer", 0)
    assert events(dialer) == [ProtocolAgreed(protocol="/ipfs/kad/0.2.3", rest=b"answer")]


def test_nothing_in_common():
    dialer = MultistreamNegotiation(dialer=True, protocols=["/a"])
    listener = MultistreamNegotiation(dialer=False, protocols=["/b"])
    listener.receive_data(dialer.data_to_send(), 0)
    dialer.receive_data(listener.data_to_send(), 0)
    assert isinstance(events(dialer)[-1], NegotiationFailed)


def test_ls():
    dialer = MultistreamNegotiation(dialer=True, protocols=["/b"], list_first=True)
    listener = MultistreamNegotiation(dialer=False, protocols=["/a", "/b"])
    listener.receive_data(dialer.data_to_send(), 0)
    out = listener.data_to_send()
    listed = LsResponse.parse(out[len(MultistreamMessage.build("/multistream/1.0.0")):])
    assert listed == ["/a", "/b"]
    dialer.receive_data(out, 0)
    assert events(dialer) == [ProtocolList(protocols=("/a", "/b"))]
    listener.receive_data(dialer.data_to_send(), 0)
    dialer.receive_data(listener.data_to_send(), 0)
    assert events(dialer) == [ProtocolAgreed(protocol="/b")]


def test_byte_at_a_time():
    dialer = MultistreamNegotiation(dialer=True, protocols=["/noise"])
    listener = MultistreamNegotiation(dialer=False, protocols=["/noise"])
    for byte in dialer.data_to_send():
        listener.receive_data(bytes([byte]), 0)
    assert events(listener) == [ProtocolAgreed(protocol="/noise")]


def test_wrong_header_and_proposal_floods():
    listener = MultistreamNegotiation(dialer=False, protocols=["/x"])
    with pytest.raises(RemoteProtocolError):
        listener.receive_data(MultistreamMessage.build("/multistream/2.0.0"), 0)
    listener = MultistreamNegotiation(dialer=False, protocols=["/x"])
    flood = MultistreamMessage.build("/multistream/1.0.0") + MultistreamMessage.build("/y") * (
        MAX_PROPOSALS + 5)
    listener.receive_data(flood, 0)
    assert isinstance(events(listener)[-1], NegotiationFailed)


@given(st.lists(st.text(st.characters(blacklist_characters="\n", blacklist_categories=("Cs",)),
                        min_size=1, max_size=30), min_size=1, max_size=5))
def test_line_round_trip(lines):
    for line in lines:
        assert MultistreamMessage.parse(MultistreamMessage.build(line)) == line
    assert LsResponse.parse(LsResponse.build(lines)) == lines


@given(st.binary(max_size=60))
def test_random_bytes_raise_only_p2pkit_errors(data):
    listener = MultistreamNegotiation(dialer=False, protocols=["/x"])
    try:
        listener.receive_data(data, 0)
    except P2PKitError:
        pass
