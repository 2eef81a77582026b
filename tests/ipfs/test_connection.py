"""The whole stack in memory: multistream → Noise → multistream → yamux → multistream → ping,
two p2pkit connections joined by :class:`p2pkit.core.StreamPair`."""

import random

import pytest

from p2pkit.core import MemoryNetwork, StreamPair
from p2pkit.errors import RemoteProtocolError
from p2pkit.ipfs import ping, yamux
from p2pkit.ipfs.connection import (
    ConnectionEstablished,
    ConnectionFailed,
    Libp2pConnection,
    StreamData,
    StreamNegotiated,
    StreamRefused,
)
from p2pkit.ipfs.keys import Ed25519Identity
from p2pkit.ipfs.multistream import MultistreamMessage
from p2pkit.ipfs.peer_id import PeerId

ALICE = Ed25519Identity(bytes(range(32)))
BOB = Ed25519Identity(bytes(range(1, 33)))


def connected(seed=1, alice_offers_muxers=True, **bob_options):
    a = Libp2pConnection(initiator=True, identity=ALICE, rng=random.Random(seed),
                         offer_muxers=alice_offers_muxers)
    b = Libp2pConnection(initiator=False, identity=BOB, rng=random.Random(seed + 1),
                         protocols=[ping.PROTOCOL_ID], **bob_options)
    pair = StreamPair(a, b, net=MemoryNetwork(seed=seed, latency=(0.01, 0.01)))
    pair.write(0, a.data_to_send())
    return pair


@pytest.mark.parametrize("inlined", [True, False], ids=["muxer-in-noise", "muxer-by-multistream"])
def test_upgrade_then_ping(inlined):
    pair = connected(alice_offers_muxers=inlined)
    got_a, got_b = pair.run()
    assert pair.ends[0].muxer_inlined is inlined and pair.ends[1].muxer_inlined is inlined
    assert got_a == [ConnectionEstablished(remote_peer_id=PeerId.from_public_key(BOB.public_key),
                                           remote_public_key=BOB.public_key)]
    assert got_b[0].remote_peer_id == PeerId.from_public_key(ALICE.public_key)
    a, b = pair.ends
    sid = a.open_stream(["/ipfs/nosuch/1.0.0", ping.PROTOCOL_ID], pair.net.now)
    pair.write(0, a.data_to_send())
    got_a, got_b = pair.run()
    assert got_a == [StreamNegotiated(stream_id=sid, protocol=ping.PROTOCOL_ID, local=True)]
    assert got_b == [StreamNegotiated(stream_id=sid, protocol=ping.PROTOCOL_ID, local=False)]
    dialer, responder = ping.PingDialer(), ping.PingResponder()
    payload = random.Random(5).randbytes(32)
    pair.send(0, yamux.SendData(stream_id=sid, data=dialer.ping(payload, pair.net.now)))
    _, got_b = pair.run()
    assert got_b == [StreamData(stream_id=sid, data=payload)]
    responder.receive_data(got_b[0].data, pair.net.now)
    pair.send(1, yamux.SendData(stream_id=sid, data=responder.data_to_send()))
    got_a, _ = pair.run()
    dialer.receive_data(got_a[0].data, pair.net.now)
    result = dialer.next_event()
    assert result == ping.PingResult(rtt=pytest.approx(0.02))  # two one-way latencies


def test_the_wire_starts_in_clear_then_is_encrypted():
    a = Libp2pConnection(initiator=True, identity=ALICE, rng=random.Random(1))
    first = a.data_to_send()
    assert first == MultistreamMessage.build("/multistream/1.0.0") + \
        MultistreamMessage.build("/noise")


def test_unsupported_stream_protocol_is_refused():
    pair = connected()
    pair.run()
    a, _ = pair.ends
    sid = a.open_stream(["/ipfs/kad/1.0.0"], pair.net.now)
    pair.write(0, a.data_to_send())
    got_a, got_b = pair.run()
    assert [type(e) for e in got_a] == [StreamRefused] and got_a[0].stream_id == sid
    # the dialer resets the stream it could not use; the listener sees that
    assert got_b == [StreamRefused(stream_id=sid, reason="reset while negotiating")]


def test_no_common_security_protocol():
    a = Libp2pConnection(initiator=True, identity=ALICE, rng=random.Random(1))
    from p2pkit.ipfs.multistream import MultistreamNegotiation

    tls_only = MultistreamNegotiation(dialer=False, protocols=["/tls/1.0.0"])
    tls_only.receive_data(a.data_to_send(), 0)
    a.receive_data(tls_only.data_to_send(), 0)
    assert isinstance(a.next_event(), ConnectionFailed)


def test_wrong_peer_is_refused():
    a = Libp2pConnection(initiator=True, identity=ALICE, rng=random.Random(1),
                         expected_peer=PeerId.from_public_key(ALICE.public_key))
    b = Libp2pConnection(initiator=False, identity=BOB, rng=random.Random(2))
    b.receive_data(a.data_to_send(), 0)
    a.receive_data(b.data_to_send(), 0)
    b.receive_data(a.data_to_send(), 0)
    with pytest.raises(RemoteProtocolError, match="not the dialed"):
        a.receive_data(b.data_to_send(), 0)


def test_large_transfer_through_windows():
    pair = connected()
    pair.run()
    a, b = pair.ends
    b.protocols = ("/test/bulk",)
    sid = a.open_stream(["/test/bulk"], pair.net.now)
    pair.write(0, a.data_to_send())
    pair.run()
    blob = random.Random(3).randbytes(1_000_000)
    pair.send(0, yamux.SendData(stream_id=sid, data=blob))
    _, got_b = pair.run()
    assert b"".join(e.data for e in got_b if isinstance(e, StreamData)) == blob
