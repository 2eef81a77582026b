"""UDP tracker protocol packets (BEP 15), with the BEP 41 announce options.

BEP 15 §UDP tracker protocol: "All values are send in network byte order (big endian). Do not
expect packets to be exactly of a certain size." Requests start with a 64-bit connection_id
(the magic ``protocol_id`` 0x41727101980 in a connect request), a 32-bit action and a 32-bit
transaction_id; responses start with the action and the transaction_id. Actions: 0 connect,
1 announce, 2 scrape, 3 error.

BEP 15 §IPv6: "IPv6 announces have the same structure as v4 ones [...] except that the stride
size of <IP address, TCP port> pairs in the response is 18 bytes instead of 6. [...] Which format
is used is determined by the address family of the underlying UDP packet." Hence two response
schemas: :data:`UdpTrackerResponse` (from an IPv4 tracker) and :data:`UdpTrackerResponse6`.

Fixed-size messages keep any bytes after their last field in ``trailing`` (BEP 15: "Future
extensions could increase the size"); lists of peers, info-hashes and scrape entries must fill
the datagram exactly.

BEP 41 appends options to the announce request: ``0x0`` EndOfOptions, ``0x1`` NOP (one byte
each) and ``0x2`` URLData (a length byte, then that many bytes of the announce URL's path and
query). They are parsed into ``options``; anything from an EndOfOptions byte or an unknown
option on is kept verbatim in ``trailing``.

A connect request and an announce request recorded from libtorrent 2.0.8 talking to
opentracker (``tests/data/captures/tracker-01-opentracker-libtorrent-aria2.pcap``):

>>> req = UdpTrackerRequest.parse(bytes.fromhex("00000417271019800000000062876e5a"))
>>> req.action, hex(req.protocol_id), req.transaction_id
('connect', '0x41727101980', 1653042778)
>>> req = UdpTrackerRequest.parse(bytes.fromhex(
...     "ff41290c1cf722fd00000001ed3701c891956f897917588bd1a6dd0486559477eaca9473"
...     "2d4c54323038302d584c6f734e44457a314e774b000000000000000000000000000000000000"
...     "0000000000000000000200000000643df007000000c81ae102092f616e6e6f756e6365"))
>>> req.action, req.event, req.peer_id, req.port, req.num_want, url_data(req)
('announce', 'started', b'-LT2080-XLosNDEz1NwK', 6881, 200, b'/announce')
>>> resp = UdpTrackerResponse.parse(bytes.fromhex(
...     "00000001ed3701c8000006cc00000000000000017f0000021ae1"))
>>> resp.action, resp.interval, resp.leechers, resp.seeders, [str(p.ip) for p in resp.peers]
('announce', 1740, 0, 1, ['127.0.0.2'])
>>> UdpTrackerResponse.build(resp).hex()
'00000001ed3701c8000006cc00000000000000017f0000021ae1'
"""

from __future__ import annotations

import construct
from construct import (
    Const,
    GreedyBytes,
    GreedyRange,
    Int8ub,
    Int16ub,
    Int32sb,
    Int32ub,
    Int64ub,
    Mapping,
    Prefixed,
    Struct,
    Switch,
    Terminated,
    this,
)

from p2pkit.bittorrent.tracker.compact import (
    CompactPeer,
    CompactPeer6,
    InfoHash,
    IPv4Address,
    PeerId,
)
from p2pkit.schema import MessageTable, Schema

__all__ = [
    "PROTOCOL",
    "PROTOCOL_ID",
    "REQUESTS",
    "Action",
    "AnnounceEvent",
    "UdpAnnounceRequest",
    "UdpAnnounceResponse",
    "UdpAnnounceResponse6",
    "UdpConnectRequest",
    "UdpConnectResponse",
    "UdpErrorResponse",
    "UdpScrapeRequest",
    "UdpScrapeResponse",
    "UdpTrackerRequest",
    "UdpTrackerResponse",
    "UdpTrackerResponse6",
    "url_data",
]

PROTOCOL = "bt-tracker"
#: BEP 15 connect request: "protocol_id 0x41727101980 // magic constant".
PROTOCOL_ID = 0x41727101980

# fmt: off
#: BEP 15: "0 // connect", "1 // announce", "2 // scrape", "3 // error".
ACTIONS = {"connect": 0, "announce": 1, "scrape": 2, "error": 3}
Action = Mapping(Int32ub, ACTIONS)
#: BEP 15 announce request: "event 0 // 0: none; 1: completed; 2: started; 3: stopped".
AnnounceEvent = Mapping(Int32ub, {"none": 0, "completed": 1, "started": 2, "stopped": 3})

#: BEP 41: "EndOfOptions 0x0", "NOP 0x1", "URLData 0x2". EndOfOptions ends the list, so it is
#: not a list item (it starts ``trailing``).
OptionType = Mapping(Int8ub, {"nop": 1, "url_data": 2})
#: BEP 41: "URLData [...] Followed by a length byte, then the data."
AnnounceOption = Struct(
    "type" / OptionType,
    "data" / construct.Default(Switch(this.type, {"url_data": Prefixed(Int8ub, GreedyBytes)}), None),
)

#: "connect request": protocol_id, action 0, transaction_id.
UdpConnectRequest = Schema(Struct(
    "protocol_id" / Const(PROTOCOL_ID, Int64ub),
    "action" / Const("connect", Action),
    "transaction_id" / Int32ub,
    "trailing" / construct.Default(GreedyBytes, b""),
), protocol=PROTOCOL, name="UdpConnectRequest")

#: "connect response": action 0, transaction_id, connection_id.
UdpConnectResponse = Schema(Struct(
    "action" / Const("connect", Action),
    "transaction_id" / Int32ub,
    "connection_id" / Int64ub,
    "trailing" / construct.Default(GreedyBytes, b""),
), protocol=PROTOCOL, name="UdpConnectResponse")

#: "IPv4 announce request" (also used over IPv6, where ``ip_address`` should be 0), followed by
#: BEP 41 options.
UdpAnnounceRequest = Schema(Struct(
    "connection_id" / Int64ub,
    "action" / Const("announce", Action),
    "transaction_id" / Int32ub,
    "info_hash" / InfoHash,
    "peer_id" / PeerId,
    "downloaded" / Int64ub,
    "left" / Int64ub,
    "uploaded" / Int64ub,
    "event" / AnnounceEvent,
    "ip_address" / construct.Default(IPv4Address, "0.0.0.0"),
    "key" / Int32ub,
    "num_want" / construct.Default(Int32sb, -1),
    "port" / Int16ub,
    "options" / construct.Default(GreedyRange(AnnounceOption), []),
    "trailing" / construct.Default(GreedyBytes, b""),
), protocol=PROTOCOL, name="UdpAnnounceRequest")

def _announce_response(peer: construct.Construct, name: str) -> Schema:
    """An announce response: interval, leechers, seeders, then <IP address, TCP port> pairs."""
    return Schema(Struct(
        "action" / Const("announce", Action),
        "transaction_id" / Int32ub,
        "interval" / Int32ub,
        "leechers" / Int32ub,
        "seeders" / Int32ub,
        "peers" / GreedyRange(peer),
        Terminated,
    ), protocol=PROTOCOL, name=name)


#: "IPv4 announce response": 6-byte <IP address, TCP port> pairs.
UdpAnnounceResponse = _announce_response(CompactPeer, "UdpAnnounceResponse")
#: The announce response from an IPv6 tracker: "the stride size [...] is 18 bytes instead of 6".
UdpAnnounceResponse6 = _announce_response(CompactPeer6, "UdpAnnounceResponse6")

#: "scrape request": connection_id, action 2, transaction_id, then 20-byte info_hashes.
UdpScrapeRequest = Schema(Struct(
    "connection_id" / Int64ub,
    "action" / Const("scrape", Action),
    "transaction_id" / Int32ub,
    "info_hashes" / GreedyRange(InfoHash),
    Terminated,
), protocol=PROTOCOL, name="UdpScrapeRequest")

#: One torrent in a scrape response: "seeders", "completed", "leechers".
ScrapeEntry = Struct(
    "seeders" / Int32ub,
    "completed" / Int32ub,
    "leechers" / Int32ub,
)

#: "scrape response": action 2, transaction_id, then one 12-byte entry per info_hash asked.
UdpScrapeResponse = Schema(Struct(
    "action" / Const("scrape", Action),
    "transaction_id" / Int32ub,
    "files" / GreedyRange(ScrapeEntry),
    Terminated,
), protocol=PROTOCOL, name="UdpScrapeResponse")

#: "error response": action 3, transaction_id, "string message" (to the end of the datagram;
#: opentracker ends it with a NUL byte, kept as sent).
UdpErrorResponse = Schema(Struct(
    "action" / Const("error", Action),
    "transaction_id" / Int32ub,
    "message" / GreedyBytes,
), protocol=PROTOCOL, name="UdpErrorResponse")
# fmt: on


def _actions(bodies: dict[str, Schema], noun: str) -> MessageTable:
    """The packets of one direction by action (BEP 15 §UDP tracker protocol)."""
    return MessageTable({ACTIONS[name]: (name, body) for name, body in bodies.items()},
                        key="action", what="action", noun=noun,
                        rule=f"bittorrent/udp-tracker/unknown-{noun}-action",
                        spec="BEP 15 §UDP tracker protocol", level="MUST")


#: Client-to-tracker packets by action (the action follows the 8-byte connection id).
REQUESTS = _actions({"connect": UdpConnectRequest, "announce": UdpAnnounceRequest,
                     "scrape": UdpScrapeRequest}, "request")

#: Any client-to-tracker packet; the result is the message itself (``action`` names it).
UdpTrackerRequest = Schema(REQUESTS.switch(Int32ub, strict=True, peek_at=8, label="message"),
                           protocol=PROTOCOL, name="UdpTrackerRequest")


def _response(announce: Schema, name: str) -> Schema:
    """Any tracker-to-client packet; ``announce`` fixes the peer size (BEP 15 §IPv6)."""
    table = _actions({"connect": UdpConnectResponse, "announce": announce,
                      "scrape": UdpScrapeResponse, "error": UdpErrorResponse}, "response")
    return Schema(table.switch(Int32ub, strict=True, peek_at=0, label="message"),
                  protocol=PROTOCOL, name=name)


#: Any tracker-to-client packet from an IPv4 tracker.
UdpTrackerResponse = _response(UdpAnnounceResponse, "UdpTrackerResponse")
#: Any tracker-to-client packet from an IPv6 tracker (18-byte peers in announce responses).
UdpTrackerResponse6 = _response(UdpAnnounceResponse6, "UdpTrackerResponse6")


def url_data(request: construct.Container) -> bytes:
    """The announce URL's path and query carried in BEP 41 URLData options, concatenated.

    BEP 41: "The data field of multiple URLData options must be concatenated".

    >>> url_data(construct.Container(options=[construct.Container(type="url_data", data=b"/a"),
    ...                                       construct.Container(type="nop", data=None),
    ...                                       construct.Container(type="url_data", data=b"?x")]))
    b'/a?x'
    """
    return b"".join(o.data for o in request.get("options") or () if o.type == "url_data")
