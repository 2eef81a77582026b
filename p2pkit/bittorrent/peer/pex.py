"""Peer exchange, sans-I/O: what to tell one peer about our connections, and what it told us
(BEP 11).

BEP 11: "A peer must only be included in an ``added`` field once a connection is successfully
established and included in the ``dropped`` field once it is disconnected. [...] Clients must
batch updates to send no more than 1 PEX message per minute. [...] Added or removed contacts
must not contain duplicates. [...] An added contact must not be dropped in the same message.
Except for the initial PEX message the combined amount of added v4/v6 contacts should not
exceed 50 entries. The same applies to dropped entries. Messages must contain at least one of
the following fields: ``added, added6, dropped, dropped6``."

One :class:`PexMessageBuilder` per connection remembers what that peer was told; given the
current connections and ``now`` it returns the next ``ut_pex`` payload, built with
:data:`p2pkit.bittorrent.wire.extensions.UtPex`, or ``None``. :func:`parse_pex` reads a received one.

>>> import ipaddress
>>> builder = PexMessageBuilder()
>>> peer = PexPeer(ip=ipaddress.ip_address("127.0.0.2"), port=6881, flags=PeerFlags(seed=True))
>>> payload = builder.next_message([peer], now=0.0)
>>> payload
b'd5:added6:\\x7f\\x00\\x00\\x02\\x1a\\xe17:added.f1:\\x026:added60:8:added6.f0:7:dropped0:8:dropped60:e'
>>> builder.next_message([], now=30.0) is None  # not a minute yet
True
>>> update = parse_pex(builder.next_message([], now=60.0))
>>> update.added, [(str(p.ip), p.port) for p in update.dropped]
((), [('127.0.0.2', 6881)])
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field

from construct import Container

from p2pkit.bittorrent.wire.extensions import UtPex
from p2pkit.bittorrent.wire.messages import PROTOCOL
from p2pkit.errors import LimitExceeded, LocalProtocolError

__all__ = [
    "MAX_ADDED",
    "MAX_DROPPED",
    "MAX_INITIAL_ADDED",
    "MAX_PEX_PAYLOAD_SIZE",
    "PEX_INTERVAL",
    "PeerFlags",
    "PexMessageBuilder",
    "PexPeer",
    "PexUpdate",
    "parse_pex",
]

#: BEP 11: "Clients must batch updates to send no more than 1 PEX message per minute."
PEX_INTERVAL = 60.0
#: BEP 11: "the combined amount of added v4/v6 contacts should not exceed 50 entries".
MAX_ADDED = 50
#: BEP 11: "The same applies to dropped entries."
MAX_DROPPED = 50
#: The initial message is exempt from the 50 (BEP 11); libtorrent caps it at 200 too.
MAX_INITIAL_ADDED = 200
#: Largest ut_pex payload parsed: far above what a compliant peer sends (an initial message of
#: 200 IPv6 contacts with flags is under 4 KiB), checked before decoding.
MAX_PEX_PAYLOAD_SIZE = 64 * 1024

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True, kw_only=True)
class PeerFlags:
    """BEP 11 ``added.f`` bit-flags of one contact (unnamed bits kept in ``unknown``)."""

    #: 0x01 "prefers encryption, as indicated by e field in extension handshake"
    encryption: bool = False
    #: 0x02 "seed/upload_only"
    seed: bool = False
    #: 0x04 "supports uTP"
    utp: bool = False
    #: 0x08 "peer indicated ut_holepunch support in extension handshake"
    holepunch: bool = False
    #: 0x10 "outgoing connection, peer is reachable"
    outgoing: bool = False
    #: "Other bits are reserved for future use."
    unknown: int = 0

    @classmethod
    def from_container(cls, flags: Container) -> PeerFlags:
        return cls(encryption=flags.encryption, seed=flags.seed, utp=flags.utp,
                   holepunch=flags.holepunch, outgoing=flags.outgoing, unknown=flags.unknown)

    def as_container(self) -> Container:
        return Container(encryption=self.encryption, seed=self.seed, utp=self.utp,
                         holepunch=self.holepunch, outgoing=self.outgoing, unknown=self.unknown)


@dataclass(frozen=True, kw_only=True)
class PexPeer:
    """A contact: address, listen port and (for ``added``) flags.

    For a connection the peer opened to us, ``port`` is its listen port from the BEP 10
    handshake ``p``, not the connection's source port.
    """

    ip: IPAddress
    port: int
    flags: PeerFlags = field(default=PeerFlags(), compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.ip, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
            object.__setattr__(self, "ip", _address(self.ip))
        if not 0 <= self.port <= 0xFFFF:
            raise LocalProtocolError(f"port {self.port} out of range")

    @property
    def endpoint(self) -> tuple[IPAddress, int]:
        return (self.ip, self.port)


def _address(value: object) -> IPAddress:
    try:
        return ipaddress.ip_address(value)  # type: ignore[arg-type]
    except ValueError as e:
        raise LocalProtocolError(f"not an IP address: {value!r}") from e


@dataclass(frozen=True, kw_only=True)
class PexUpdate:
    """A received ``ut_pex`` message: contacts added (with flags) and dropped, v4 and v6."""

    added: tuple[PexPeer, ...] = ()
    dropped: tuple[PexPeer, ...] = ()


class PexMessageBuilder:
    """The ``ut_pex`` messages for one connection (BEP 11), batched to one per ``interval``.

    ``next_message(connected, now=...)`` compares the connections we have now with what this
    peer was last told: new contacts (or contacts whose flags changed) are ``added``, gone ones
    ``dropped``. Nothing changed, or less than ``interval`` seconds since the last message:
    ``None``. What does not fit under the 50/50 limits waits for the next message.
    """

    def __init__(self, *, interval: float = PEX_INTERVAL) -> None:
        self.interval = interval
        self._told: dict[tuple[IPAddress, int], PeerFlags] = {}
        self._last_sent: float | None = None

    def next_message(self, connected: Iterable[PexPeer], *, now: float,
                     exclude: PexPeer | None = None) -> bytes | None:
        """The next payload to send, or ``None``.

        ``connected`` is every peer we have a fully handshaken connection with; ``exclude``
        (the recipient itself) is left out.
        """
        if self._last_sent is not None and now < self._last_sent + self.interval:
            return None
        current: dict[tuple[IPAddress, int], PeerFlags] = {}
        for peer in connected:
            if exclude is not None and peer.endpoint == exclude.endpoint:
                continue
            current[peer.endpoint] = peer.flags  # "must not contain duplicates"
        initial = self._last_sent is None
        added = [(key, flags) for key, flags in current.items() if self._told.get(key) != flags]
        added = added[: MAX_INITIAL_ADDED if initial else MAX_ADDED]
        # "An added contact must not be dropped in the same message": a re-flagged contact is
        # only re-added.
        dropped = [key for key in self._told if key not in current][:MAX_DROPPED]
        if not added and not dropped:
            return None
        for key in dropped:
            del self._told[key]
        for key, flags in added:
            self._told[key] = flags
        self._last_sent = now
        return UtPex.build(_message(added, dropped))


def _message(added: list[tuple[tuple[IPAddress, int], PeerFlags]],
             dropped: list[tuple[IPAddress, int]]) -> dict:
    def peers(items, version):
        return [Container(ip=ip, port=port) for ip, port in items if ip.version == version]

    added_keys = [key for key, _ in added]
    # libtorrent sends all six keys, empty strings included; so do we.
    return {
        "added": peers(added_keys, 4),
        "added.f": [f.as_container() for (ip, _), f in added if ip.version == 4],
        "added6": peers(added_keys, 6),
        "added6.f": [f.as_container() for (ip, _), f in added if ip.version == 6],
        "dropped": peers(dropped, 4),
        "dropped6": peers(dropped, 6),
    }


def parse_pex(payload: bytes) -> PexUpdate:
    """Decode a received ``ut_pex`` payload (strict bencoding) into a :class:`PexUpdate`.

    Duplicates are dropped ("Added or removed contacts must not contain duplicates") and a
    contact both added and dropped counts as neither. Missing ``added.f`` bytes mean no flags.
    BEP 11 §Security Considerations: "Data exchanged via PEX messages should be considered
    untrusted"; what to connect to is the caller's choice.

    >>> update = parse_pex(bytes.fromhex("64353a616464656431323a7f0000021ae17f0000041ae3373a61"
    ...     "646465642e66323a0a08363a616464656436303a383a616464656436"
    ...     "2e66303a373a64726f70706564303a383a64726f7070656436303a65"))
    >>> [(str(p.ip), p.port, p.flags.seed) for p in update.added]
    [('127.0.0.2', 6881, True), ('127.0.0.4', 6883, False)]
    """
    if len(payload) > MAX_PEX_PAYLOAD_SIZE:
        raise LimitExceeded(f"ut_pex payload over {MAX_PEX_PAYLOAD_SIZE} bytes",
                            protocol=PROTOCOL, path="ut_pex")
    message = UtPex.parse(payload)
    dropped_raw = {(p.ip, p.port) for key in ("dropped", "dropped6")
                   for p in message.get(key) or ()}
    added: dict[tuple[IPAddress, int], PexPeer] = {}
    for key in ("added", "added6"):
        flags = list(message.get(f"{key}.f") or ())
        for i, p in enumerate(message.get(key) or ()):
            peer_flags = PeerFlags.from_container(flags[i]) if i < len(flags) else PeerFlags()
            added.setdefault((p.ip, p.port), PexPeer(ip=p.ip, port=p.port, flags=peer_flags))
    both = dropped_raw & added.keys()
    dropped = tuple(PexPeer(ip=ip, port=port) for ip, port in
                    dict.fromkeys((p.ip, p.port) for key in ("dropped", "dropped6")
                                  for p in message.get(key) or ())
                    if (ip, port) not in both)
    return PexUpdate(added=tuple(peer for key, peer in added.items() if key not in both),
                     dropped=dropped)
