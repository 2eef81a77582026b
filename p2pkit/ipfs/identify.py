"""The identify protocol, ``/ipfs/id/1.0.0`` (libp2p identify spec), sans-I/O.

"The peer being identified responds by sending an Identify message and closing the stream";
the message is length-prefixed with an unsigned varint (``IdentifyFrame``). The listener
side builds its message with :func:`identify_message` (its listen addresses, the address it sees
the dialer at, its protocols and a signed peer record, RFC 0003); the dialer collects the stream
until the end with :class:`IdentifyReader`.

>>> from p2pkit.ipfs.keys import Ed25519Identity
>>> me = Ed25519Identity(bytes(32))
>>> frame = IdentifyFrame.build(identify_message(me, protocols=["/ipfs/ping/1.0.0"]))
>>> reader = IdentifyReader()
>>> reader.receive_data(frame, 0.0); reader.receive_data(b"", 0.0)
>>> reader.next_event().message.protocols
ListContainer(['/ipfs/ping/1.0.0'])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from p2pkit.core import NEED_DATA, Event, NeedData
from p2pkit.errors import LimitExceeded, ParseError, RemoteProtocolError
from p2pkit.ipfs.envelope import PEER_RECORD_DOMAIN, PEER_RECORD_PAYLOAD_TYPE, peer_record, seal
from p2pkit.ipfs.identify_messages import MAX_IDENTIFY_LENGTH, IdentifyFrame
from p2pkit.ipfs.keys import Ed25519Identity
from p2pkit.ipfs.multiaddr import Multiaddr
from p2pkit.ipfs.peer_id import PeerId

__all__ = ["PROTOCOL_ID", "PROTOCOL_VERSION", "IdentifyReader", "Identified",
           "identify_message"]

PROTOCOL_ID = "/ipfs/id/1.0.0"
#: identify's ``protocolVersion`` (what go-libp2p and js-libp2p send).
PROTOCOL_VERSION = "ipfs/0.1.0"


def identify_message(identity: Ed25519Identity, *, protocols: Sequence[str],
                     listen_addrs: Sequence[Multiaddr] = (), observed: Multiaddr | None = None,
                     agent: str = "p2pkit/0.1.0", seq: int = 1) -> dict[str, Any]:
    """The identify message a host sends about itself (with a signed peer record of its
    listen addresses, sequence number ``seq``)."""
    addrs = [bytes(a) for a in listen_addrs]
    peer = PeerId.from_public_key(identity.public_key)
    record = peer_record(peer.multihash, seq, addrs)
    return {
        "protocolVersion": PROTOCOL_VERSION, "agentVersion": agent,
        "publicKey": identity.public_key, "listenAddrs": addrs,
        "observedAddr": bytes(observed) if observed is not None else None,
        "protocols": list(protocols),
        "signedPeerRecord": seal(identity, PEER_RECORD_DOMAIN, PEER_RECORD_PAYLOAD_TYPE, record),
    }


@dataclass(frozen=True, kw_only=True)
class Identified(Event):
    """The peer's identify message (``message``: the parsed ``Identify``)."""

    message: Any


class IdentifyReader:
    """The dialer's side: bytes until the peer closes the stream, then one :class:`Identified`.

    ``expected_peer``: the connection's authenticated peer; a ``publicKey`` of another peer is
    a :class:`~p2pkit.errors.RemoteProtocolError` (js-libp2p: "public key did not match remote
    PeerId").
    """

    def __init__(self, expected_peer: PeerId | None = None) -> None:
        self.expected_peer = expected_peer
        self._buffer = bytearray()
        self._event: Event | None = None
        self._done = False

    def receive_data(self, data: bytes, now: float) -> None:
        if self._done:
            return
        if data:
            if len(self._buffer) + len(data) > MAX_IDENTIFY_LENGTH + 4:
                raise LimitExceeded(f"identify message over {MAX_IDENTIFY_LENGTH} bytes",
                                    protocol="identify")
            self._buffer += data
            return
        self._done = True
        try:
            message = IdentifyFrame.parse(bytes(self._buffer))
        except ParseError as e:
            raise RemoteProtocolError(f"identify: {e}") from None
        if message.publicKey and self.expected_peer is not None and \
                PeerId.from_public_key(message.publicKey) != self.expected_peer:
            raise RemoteProtocolError("identify: the public key is not the connection's peer")
        self._event = Identified(message=message)

    def next_event(self) -> Event | NeedData:
        event, self._event = self._event, None
        return event if event is not None else NEED_DATA
