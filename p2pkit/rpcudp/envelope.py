"""The rpcudp datagram (PyPI ``rpcudp`` 5.0, ``rpcudp/protocol.py``), as the Python
``kademlia`` package sends it.

``RPCProtocol.func``: ``txdata = b"\\x00" + msg_id + umsgpack.packb([name, args])`` (a request:
the remote method's name and its arguments); ``_accept_request``: ``txdata = b"\\x01" + msg_id
+ umsgpack.packb(response)`` (a response: whatever the method returned). ``msg_id`` is
``sha1(os.urandom(32)).digest()``: 20 bytes. "if len(datagram) < 22: [...] ignoring".

msgpack is not a construct-native format: :data:`MsgpackBody` is a construct whose parse and
build are the ``msgpack`` package's, bounded by :data:`MAX_BODY_SIZE` and msgpack's own
per-object limits, so the envelope stays one construct schema.

A ping request and its response recorded from kademlia 2.2.3
(``tests/data/captures/kademlia-py-rpcudp.pcap``):

>>> m = RpcudpDatagram.parse(bytes.fromhex(
...     "00" "8a0bf0d5f7f0d0e8f4ef5b0b1a1c3f0b9f4c2b1d" "92a470696e6791c414" + "44" * 20))
>>> str(m.kind), m.body[0], m.body[1][0].hex()[:8]
('request', 'ping', '44444444')
>>> RpcudpDatagram.build(m)[:2].hex()
'008a'
"""

from __future__ import annotations

import construct
import msgpack
from construct import Bytes, Int8ub, Struct

from p2pkit.errors import LimitExceeded, ParseError
from p2pkit.schema import Schema

__all__ = ["MAX_BODY_SIZE", "MIN_DATAGRAM_SIZE", "PROTOCOL", "MsgpackBody", "RpcudpDatagram"]

#: The registry name.
PROTOCOL = "kademlia-rpcudp"
#: The largest msgpack body accepted: a UDP datagram's payload (rpcudp refuses to send a
#: request body over 8 KiB, but responses have no bound of their own).
MAX_BODY_SIZE = 65_507
#: ``_solve_datagram``: "if len(datagram) < 22: [...] ignoring".
MIN_DATAGRAM_SIZE = 22


class _Msgpack(construct.Construct):
    """The rest of the datagram, one msgpack object (bounded; trailing bytes are an error)."""

    def _parse(self, stream, context, path):
        start = construct.stream_tell(stream, path)
        data = stream.read(MAX_BODY_SIZE + 1)
        if len(data) > MAX_BODY_SIZE:
            raise LimitExceeded(f"msgpack body over {MAX_BODY_SIZE} bytes", protocol=PROTOCOL,
                                path=path, offset=start)
        unpacker = msgpack.Unpacker(raw=False, strict_map_key=False,
                                    max_buffer_size=MAX_BODY_SIZE, unicode_errors="surrogateescape")
        unpacker.feed(data)
        try:
            value = unpacker.unpack()
        except msgpack.OutOfData:
            raise ParseError("truncated: the msgpack body breaks off", protocol=PROTOCOL,
                             path=path, offset=start + len(data)) from None
        except (ValueError, TypeError, msgpack.ExtraData, msgpack.FormatError,
                msgpack.StackError) as e:
            raise ParseError(f"not msgpack: {e}", protocol=PROTOCOL, path=path,
                             offset=start + unpacker.tell()) from None
        used = unpacker.tell()
        if used != len(data):
            raise ParseError(f"{len(data) - used} bytes after the msgpack body",
                             protocol=PROTOCOL, path=path, offset=start + used)
        return value

    def _build(self, obj, stream, context, path):
        data = msgpack.packb(obj, use_bin_type=True)
        construct.stream_write(stream, data, len(data), path)
        return obj

    def _sizeof(self, context, path):
        raise construct.SizeofError("msgpack has no fixed size", path=path)


#: One msgpack object: the rest of the datagram.
MsgpackBody = _Msgpack()

# fmt: off
#: ``<kind 1><msg_id 20><msgpack body>``: kind 0 a request, 1 a response.
RpcudpDatagram = Schema(Struct(
    "kind" / construct.Enum(Int8ub, request=0, response=1),
    "message_id" / Bytes(20),
    "body" / MsgpackBody,
), protocol=PROTOCOL, name="RpcudpDatagram")
# fmt: on
