"""Vendor message bodies: what follows the 8-byte vendor header of a 0x31/0x32 descriptor.

Specs (under ``specs/gnutella/``): vendor_msg §4 (``null/0v0`` Messages Supported: a
little-endian count, then 8-byte items vendor, sub-selector, version) and §5 (``BEAR/4v1`` Hops
Flow: "unsigned byte: hop value"); msg/connect_back (``BEAR/7v1`` TCP Connect Back and
``GTKG/7v2`` UDP Connect Back: "unsigned short: port number (little-endian)"; ``GTKG/7v1``
adds "16 byte guid"); push_proxy §3 (``LIME/21`` PushProxyRequest: "Payload: Empty", the GUID
is the servent ID; ``LIME/22v2`` PushProxyAcknowledgement: "a 4 byte address followed by a 2
byte port", ``LIME/22v1`` the port alone); leaf_guided_queries §"New Vendor Messages"
(``BEAR/11v1`` Query Status Request, no payload; ``BEAR/12v1`` Query Status Response: "Hit
Count [...] Little-Endian", ``0xFFFF`` ends the query); out-of-band §C-§E (``LIME/12`` Reply
Number, ``LIME/11`` Ack, one byte each, v2 of LIME/12 one more); LimeWire's and gtk-gnutella's
``null/10v0`` Features Supported (count, then 4-letter feature and version).

:data:`BODIES` maps ``(vendor, selector)`` to the body schema per version; the descriptor's
vendor schema (:mod:`p2pkit.gnutella.descriptors`) parses the body into ``body`` (or the vectors
into ``messages``/``features``) and rebuilds the payload from it. A gtk-gnutella 1.2.3 leaf's
TCP Connect Back (tests/data/captures/gtkg123…, port 6347):

>>> body = TcpConnectBack.parse(bytes.fromhex("cb18"))
>>> body.port, TcpConnectBack.build(body).hex()
(6347, 'cb18')
>>> PushProxyAcknowledgement.build(dict(ip_address="127.0.0.10", port=6346)).hex()
'7f00000aca18'
"""

from __future__ import annotations

import construct
from construct import Array, Int8ul, Int16ul, Rebuild, Struct, Terminated, len_, this

from p2pkit.gnutella.fields import Guid, IPv4, VendorCode

__all__ = [
    "BODIES",
    "FeaturesSupported",
    "HopsFlow",
    "MessagesSupported",
    "OobProxyControl",
    "OobReplyAck",
    "OobReplyIndication",
    "OobReplyIndicationV1",
    "PushProxyAcknowledgement",
    "PushProxyAcknowledgementV1",
    "QUERY_STATUS_STOP",
    "QueryStatusResponse",
    "SupportedFeature",
    "SupportedMessage",
    "TcpConnectBack",
    "UdpConnectBack",
    "UdpConnectBackV1",
    "VENDOR_MESSAGES",
    "Empty",
]

#: leaf_guided_queries: "0xFFFF should be used to indicate that the query should be terminated".
QUERY_STATUS_STOP = 0xFFFF

# fmt: off
#: vendor_msg §4: the "null/0v0" Messages Supported vector, "8 bytes each".
SupportedMessage = Struct("vendor" / VendorCode, "selector" / Int16ul, "version" / Int16ul)
MessagesSupported = Struct(
    "count" / Rebuild(Int16ul, len_(this.messages)),
    "messages" / Array(this.count, SupportedMessage),
)
#: "null/10v0" Features Supported (LimeWire, gtk-gnutella): the same count, then 6-byte items:
#: a 4-letter feature name and its little-endian version.
SupportedFeature = Struct("feature" / VendorCode, "version" / Int16ul)
FeaturesSupported = Struct(
    "count" / Rebuild(Int16ul, len_(this.features)),
    "features" / Array(this.count, SupportedFeature),
)
#: BEAR/11v1 Query Status Request and LIME/21 PushProxyRequest: no payload.
Empty = Struct(Terminated)
#: vendor_msg §5, BEAR/4v1: "unsigned byte: hop value".
HopsFlow = Struct("hops" / Int8ul, Terminated)
#: msg/connect_back, BEAR/7v1: "unsigned short: port number (little-endian)".
TcpConnectBack = Struct("port" / Int16ul, Terminated)
#: msg/connect_back, GTKG/7v2: the same port; the descriptor's GUID is the ping's GUID.
UdpConnectBack = Struct("port" / Int16ul, Terminated)
#: msg/connect_back, GTKG/7v1: "port number", then "16 byte guid".
UdpConnectBackV1 = Struct("port" / Int16ul, "guid" / Guid, Terminated)
#: push_proxy §3.1, LIME/22v2: "a 4 byte address followed by a 2 byte port".
PushProxyAcknowledgement = Struct("ip_address" / IPv4, "port" / Int16ul, Terminated)
#: LIME/22v1 (LimeWire's first version): the port alone.
PushProxyAcknowledgementV1 = Struct("port" / Int16ul, Terminated)
#: leaf_guided_queries, BEAR/12v1: "Hit Count: The number of hits that the client's filters
#: allowed through [...] Little-Endian".
QueryStatusResponse = Struct("hits" / Int16ul, Terminated)
#: out-of-band §C.2, LIME/12v1 Reply Number: "a 1 byte payload [...] the number of hits the
#: servent has for the query"; LIME/12v2 "an additionnal byte, containing 0x1 if the servent
#: can receive unsollicited UDP traffic".
OobReplyIndicationV1 = Struct("hits" / Int8ul, Terminated)
OobReplyIndication = Struct("hits" / Int8ul, "can_receive_unsolicited" / Int8ul, Terminated)
#: out-of-band §D.2, LIME/11v1 and v2 Ack ("completely identical"): "the number of query hits
#: that the servent wants".
OobReplyAck = Struct("wanted" / Int8ul, Terminated)
#: out-of-band-v3 §"OOB Proxy Veto", LIME/13v1: "an optional single byte, indicating the highest
#: version of the OOB protocol that should not be proxied. If that byte is missing, it is to be
#: interpreted that all proxying is vetoed".
OobProxyControl = Struct("version" / construct.Optional(Int8ul), Terminated)
# fmt: on

#: vendor_msg §2 names, plus gtk-gnutella's list (msg/GTKG.lst) and messages seen in captures.
VENDOR_MESSAGES: dict[tuple[str, int], str] = {
    ("\0\0\0\0", 0): "messages_supported",
    ("\0\0\0\0", 10): "features_supported",
    ("BEAR", 4): "hops_flow",
    ("BEAR", 7): "tcp_connect_back",
    ("BEAR", 11): "query_status_request",
    ("BEAR", 12): "query_status_response",
    ("GTKG", 7): "udp_connect_back",
    ("GTKG", 9): "time_sync_request",
    ("GTKG", 10): "time_sync_reply",
    ("GTKG", 21): "push_proxy_cancel",
    ("GTKG", 22): "node_info_request",
    ("GTKG", 23): "node_info_reply",
    ("LIME", 11): "oob_reply_ack",
    ("LIME", 12): "oob_reply_indication",
    ("LIME", 13): "oob_proxy_control",
    ("LIME", 21): "push_proxy_request",
    ("LIME", 22): "push_proxy_acknowledgement",
}

#: (vendor, selector) -> version -> body schema. A version not listed keeps its raw payload.
BODIES: dict[tuple[str, int], dict[int, construct.Construct]] = {
    ("BEAR", 4): {1: HopsFlow},
    ("BEAR", 7): {1: TcpConnectBack},
    ("BEAR", 11): {1: Empty},
    ("BEAR", 12): {1: QueryStatusResponse},
    ("GTKG", 7): {1: UdpConnectBackV1, 2: UdpConnectBack},
    ("LIME", 11): {1: OobReplyAck, 2: OobReplyAck},
    ("LIME", 12): {1: OobReplyIndicationV1, 2: OobReplyIndication},
    ("LIME", 13): {1: OobProxyControl},
    ("LIME", 21): {1: Empty, 2: Empty},
    ("LIME", 22): {1: PushProxyAcknowledgementV1, 2: PushProxyAcknowledgement},
}
