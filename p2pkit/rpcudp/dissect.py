"""rpcudp datagram dissection, with the Python ``kademlia`` package's RPCs named.

A datagram is taken as rpcudp when its first byte is 0 or 1 and a msgpack array of two
(``0x92``) follows the 20-byte message id (a request), or when it answers a request seen
before (same message id, endpoints swapped): a response's body is any msgpack value, so
nothing else marks it. Responses get the method of their request (at most
``MAX_OPEN_REQUESTS`` remembered, the oldest forgotten first). A request whose body is
not ``[name, args]``, or that breaks off, is an ``undecoded`` record.

Reached through the ``kademlia-rpcudp`` descriptor (:mod:`p2pkit.rpcudp.protocol`).
"""

from __future__ import annotations

from collections import OrderedDict

from p2pkit.capture.packets import Packet
from p2pkit.capture.record import Record, json_value, undecoded
from p2pkit.errors import ParseError
from p2pkit.rpcudp.envelope import MIN_DATAGRAM_SIZE, PROTOCOL, RpcudpDatagram
from p2pkit.rpcudp.rpcs import named_arguments, named_result

__all__ = ["MAX_OPEN_REQUESTS", "RpcudpDecoder", "detect_rpcudp"]

#: Requests remembered to name their responses.
MAX_OPEN_REQUESTS = 4096
#: msgpack's fixarray of two: a request body ``[name, args]``.
_REQUEST_BODY = 0x92


def detect_rpcudp(payload: bytes) -> bool:
    """rpcudp's kind byte (0 request, 1 response) and room for the id and a body."""
    return len(payload) >= MIN_DATAGRAM_SIZE and payload[0] in (0, 1)


class RpcudpDecoder:
    """The ``kademlia-rpcudp`` datagram decoder."""

    def __init__(self) -> None:
        self._open: OrderedDict[tuple[bytes, str, str], str] = OrderedDict()

    def finish(self) -> list[Record]:
        return []

    def datagram(self, pkt: Packet, *, forced: bool = False) -> list[Record] | None:
        payload = pkt.payload
        if not detect_rpcudp(payload):
            return None
        key = (payload[1:21], pkt.dst, pkt.src)
        is_request = payload[0] == 0 and payload[21] == _REQUEST_BODY
        answered = payload[0] == 1 and key in self._open
        if not (is_request or answered or forced):
            return None
        try:
            message = RpcudpDatagram.parse(payload)
            fields: dict = {"message_id": message.message_id.hex()}
            if message.kind == "request":
                body = message.body
                if not (isinstance(body, list) and len(body) == 2 and isinstance(body[0], str)):
                    raise ParseError("a request body is [name, args]", protocol=PROTOCOL,
                                     path="body", offset=21)
                method = body[0]
                fields["method"] = method
                fields.update(json_value(named_arguments(method, body[1])))
                self._open[(payload[1:21], pkt.src, pkt.dst)] = method
                while len(self._open) > MAX_OPEN_REQUESTS:
                    self._open.popitem(last=False)
            else:
                method = self._open.pop(key, None)
                if method is not None:
                    fields["method"] = method
                fields.update(json_value(named_result(method, message.body)))
        except ParseError as e:
            short = "truncated" in e.reason
            return [undecoded(protocol=PROTOCOL, transport="udp", src=pkt.src, dst=pkt.dst,
                              reason="truncated" if short else "malformed",
                              length=len(payload), frames=(pkt.frame, pkt.frame, 1),
                              time=pkt.time, at=e.offset or 0, detail=e.reason)]
        return [Record(frame=pkt.frame, time=pkt.time, transport="udp", src=pkt.src,
                       dst=pkt.dst, protocol=PROTOCOL, message=str(message.kind),
                       fields=fields, length=len(payload), value=message,
                       spans={"kind": (0, 1), "message_id": (1, 21),
                              "body": (21, len(payload))})]
