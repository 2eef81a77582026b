"""identify (libp2p-identify.md): the message a host sends and the dialer's reader."""

import pytest

from p2pkit.core import NEED_DATA
from p2pkit.errors import LimitExceeded, RemoteProtocolError
from p2pkit.ipfs.envelope import PEER_RECORD_DOMAIN, PeerRecordMessage, open_envelope
from p2pkit.ipfs.identify import Identified, IdentifyReader, identify_message
from p2pkit.ipfs.identify_messages import MAX_IDENTIFY_LENGTH, IdentifyFrame
from p2pkit.ipfs.keys import Ed25519Identity
from p2pkit.ipfs.multiaddr import Multiaddr
from p2pkit.ipfs.peer_id import PeerId

ME = Ed25519Identity(bytes(range(32)))
OTHER = Ed25519Identity(bytes(32))
LISTEN = Multiaddr.from_text("/ip4/127.0.0.1/tcp/4001")


def test_message_and_signed_record():
    msg = identify_message(ME, protocols=["/ipfs/ping/1.0.0"], listen_addrs=[LISTEN],
                           observed=Multiaddr.from_text("/ip4/127.0.0.9/tcp/5555"), seq=7)
    reader = IdentifyReader(PeerId.from_public_key(ME.public_key))
    frame = IdentifyFrame.build(msg)
    for i in range(0, len(frame), 50):  # arrives in pieces
        reader.receive_data(frame[i:i + 50], 0)
    assert reader.next_event() is NEED_DATA  # complete only when the stream ends
    reader.receive_data(b"", 0)
    event = reader.next_event()
    assert isinstance(event, Identified)
    got = event.message
    assert got.protocolVersion == "ipfs/0.1.0" and got.agentVersion == "p2pkit/0.1.0"
    assert [Multiaddr.from_bytes(a) for a in got.listenAddrs] == [LISTEN]
    envelope = open_envelope(got.signedPeerRecord, PEER_RECORD_DOMAIN)
    assert envelope.payload_type == b"\x03\x01"  # libp2p-peer-record, as go and js write it
    record = PeerRecordMessage.parse(envelope.payload)
    assert record.seq == 7 and record.peer_id == PeerId.from_public_key(ME.public_key).multihash


def test_a_key_of_another_peer_is_refused():
    reader = IdentifyReader(PeerId.from_public_key(OTHER.public_key))
    reader.receive_data(IdentifyFrame.build(identify_message(ME, protocols=[])), 0)
    with pytest.raises(RemoteProtocolError, match="not the connection's peer"):
        reader.receive_data(b"", 0)


def test_truncated_and_oversized():
    reader = IdentifyReader()
    reader.receive_data(IdentifyFrame.build(identify_message(ME, protocols=[]))[:-3], 0)
    with pytest.raises(RemoteProtocolError):
        reader.receive_data(b"", 0)
    reader = IdentifyReader()
    with pytest.raises(LimitExceeded):
        reader.receive_data(bytes(MAX_IDENTIFY_LENGTH + 10), 0)


def test_forged_envelope_is_refused():
    msg = identify_message(ME, protocols=[], listen_addrs=[LISTEN])
    forged = bytearray(msg["signedPeerRecord"])
    forged[-1] ^= 1  # the last byte of the signature
    with pytest.raises(Exception, match="does not verify"):
        open_envelope(bytes(forged), PEER_RECORD_DOMAIN)
