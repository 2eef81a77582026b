"""Gnutella descriptors: the 23-byte header and every payload a 0.6 servent sends.

Specs (under ``specs/gnutella/``): the Gnutella 0.4 protocol's descriptor header (16-byte
descriptor ID, payload descriptor, TTL, hops, little-endian payload length) and payloads as GGEP
§Usage restates them (Ping, Pong, Query, QueryHit with its result set and QHD trailer, Push),
each with its extension block (GGEP §Extension Block, HUGE §3); min_speed § and
udp_transceiver §3 (the query flags, a *big-endian* 16-bit field); bye §2 (Bye, 0x02: code and
NUL-terminated string); QRP §"Gnutella Protocol Changes" (ROUTE_TABLE_UPDATE, 0x30: RESET and
PATCH variants); vendor_msg §2 and §4 (vendor messages 0x31 and 0x32, "null/0v0" Messages
Supported); HSEP §"message format" (0xCD, triples of little-endian 64-bit integers).

A descriptor parses to one flat ``Container``: the header's ``guid``, ``ttl`` and ``hops``, the
payload's name in ``type`` and its fields beside it (the payload descriptor -> body switch is
the shared :class:`~p2pkit.schema.MessageTable` shape). A payload type this module does not know
is framed by its length and kept whole (``type="unknown"``, ``payload_type``, ``payload``, and a
Deviation in ``_deviations``): the stream never loses sync. :data:`DescriptorLenient` also keeps
a known payload that does not parse (its own name in ``type``, the raw ``payload``, a Deviation
``gnutella/<name>/payload``); read deviations with :func:`~p2pkit.deviations.deviations_of`. The
payload length is checked against :data:`MAX_PAYLOAD_LENGTH` before a byte of the payload is
read.

The first descriptor a gtk-gnutella 1.2.3 leaf sent its ultrapeer (tests/data/captures/gtkg123…),
a QRP RESET:

>>> d = Descriptor.parse(bytes.fromhex(
...     "6cf73102930159f83f73d42bfc799c41" "30" "01" "00" "06000000" "00" "00400000" "02"))
>>> d.type, d.ttl, d.hops, d.variant, d.table_length, d.infinity
('route_table_update', 1, 0, 'reset', 16384, 2)
>>> Descriptor.build(d).hex()[32:]
'30010006000000000040000002'

A query the ultrapeer forwarded over the ultrapeer link, a QueryHit for it (same capture), and an
HSEP message and an unknown payload type, both framed:

>>> q = Descriptor.parse(bytes.fromhex("17cb2e343102a9584dbd4dd9ad4d15bf" "80" "04" "01" "0d000000"
...                                    "b900" "616c70686100" "c382505240"))
>>> q.search_criteria, q.ttl, q.hops, q.min_speed.mark, q.min_speed.ggep_h
('alpha', 4, 1, True, True)
>>> [(p.kind, [e.id for e in p.extensions]) for p in q.extensions]
[('ggep', ['PR'])]
>>> hit = Descriptor.parse(bytes.fromhex(
...     "17cb2e343102a9584dbd4dd9ad4d15bf8107009800000001ce187f00000e1000000001000000701700"
...     "00616c7068615f7365636f6e645f756c7472612e74787400c341486e2002862feb8bdc7a1b0fe810a9"
...     "34539f0d069c80e16d2722374398b1eaa3a5e50ec6888af5e983cb109ff08b3d4a82435444dbc5e766"
...     "0047544b47022c21c30547544b475650010102030065e3bd800000000005000382424840df573102af"
...     "1394450dcdb4c8c36ee9a9"))
>>> [r.file_name for r in hit.results], hit.ip_address, hit.port
(['alpha_second_ultra.txt'], '127.0.0.14', 6350)
>>> hit.trailer.vendor_code, [e.id for e in hit.trailer.private_extensions[0].extensions]
('GTKG', ['GTKGV', 'BH'])
>>> Descriptor.parse(bytes(16) + bytes.fromhex("cd0100" "18000000") + bytes(24)).triples
ListContainer([Container(nodes=0, files=0, kibibytes=0)])
>>> u = Descriptor.parse(bytes(16) + bytes.fromhex("7f0100" "02000000" "abcd"))
>>> u.type, u.payload_type, u.payload
('unknown', 127, b'\\xab\\xcd')
"""

from __future__ import annotations

import io
import struct
from typing import Any

import construct
from construct import (
    Array,
    Container,
    GreedyBytes,
    GreedyRange,
    Int8ul,
    Int16ub,
    Int16ul,
    Int32ul,
    Int64ul,
    ListContainer,
    NullTerminated,
    Rebuild,
    Struct,
    len_,
    this,
)

from p2pkit.deviations import Deviation, deviations_of, with_deviations
from p2pkit.errors import LimitExceeded, ParseError
from p2pkit.gnutella.fields import Guid, IPv4, Text, VendorCode
from p2pkit.gnutella.ggep import ExtensionBlock
from p2pkit.gnutella.ggep import _fast_extension_block as fast_extension_block
from p2pkit.gnutella.vendor import (
    BODIES,
    VENDOR_MESSAGES,
    FeaturesSupported,
    MessagesSupported,
)
from p2pkit.schema import (
    FixedLayout,
    MessageTable,
    NamedBits,
    Schema,
    clean_path,
    failure_offset,
)

__all__ = [
    "HEADER_LENGTH",
    "MAX_PAYLOAD_LENGTH",
    "PAYLOADS",
    "PAYLOAD_SPECS",
    "PAYLOAD_TABLE",
    "PAYLOAD_TYPES",
    "Descriptor",
    "DescriptorHeader",
    "DescriptorLenient",
    "QueryFlags",
    "VENDOR_MESSAGES",
    "counted_vector_parser",
    "payload_rule",
    "unparsed_payload",
]

PROTOCOL = "gnutella"
#: 16-byte descriptor ID, payload descriptor, TTL, hops, 4-byte payload length.
HEADER_LENGTH = 23
#: Bound on a payload's length, checked before the payload is buffered. gtk-gnutella and
#: LimeWire drop descriptors above 64 KiB (a query hit of many results, a QRP patch chunk,
#: a deflated PHC list all stay far below); bye §2 code 400: "packets deemed too big".
MAX_PAYLOAD_LENGTH = 64 * 1024

_Extensions = ExtensionBlock.subcon

# fmt: off
DescriptorHeader = Struct(
    "guid" / Guid,
    "payload_type" / Int8ul,
    "ttl" / Int8ul,
    "hops" / Int8ul,
    "payload_length" / Int32ul,
)

#: GGEP §Ping Message: "The payload of the ping message is now defined to be: Extension_Block".
Ping = Struct("extensions" / _Extensions)
#: GGEP §Pong Message: "Port, IP_Address, Num_Files_Shared, Num_KBytes_Shared, Extension_Block".
Pong = Struct(
    "port" / Int16ul,
    "ip_address" / IPv4,
    "files_shared" / Int32ul,
    "kilobytes_shared" / Int32ul,
    "extensions" / _Extensions,
)
#: bye §2: "Code is a 2-byte error code, encoded in little endian [...] The remaining is a
#: NUL-terminated String".
Bye = Struct("code" / Int16ul, "message" / NullTerminated(Text))
#: GGEP §Push Message: "Servent_ID, File_Index, IP_Address, Port, Extension_Block".
Push = Struct(
    "servent_id" / Guid,
    "file_index" / Int32ul,
    "ip_address" / IPv4,
    "port" / Int16ul,
    "extensions" / _Extensions,
)
#: min_speed § and udp_transceiver §3: "the field is now read as a big-endian number, with bit
#: 15 being set to mark the field as being a 'modern' one"; bits without a name (0-7, the
#: legacy speed or a hit count) stay in ``unknown``.
QueryFlags = NamedBits(
    Int16ub,
    mark=0x8000, firewalled=0x4000, xml=0x2000, leaf_guided=0x1000,
    ggep_h=0x0800, oob_reply=0x0400, fw_to_fw=0x0200, sr_udp=0x0100,
)
#: GGEP §Query Message: "MinSpeed, Criteria, 0x0, Extension_Block" (HUGE urns, GGEP, XML).
Query = Struct(
    "min_speed" / QueryFlags,
    "search_criteria" / NullTerminated(Text),
    "extensions" / _Extensions,
)
#: GGEP §Query Hit Result: "File_Index, File_Size, File_Name, 0x0, Extension_Block" and the
#: NUL that ends the result (HUGE §3: "extension1[0x1C]extension2[0x00]").
Result = Struct(
    "file_index" / Int32ul,
    "file_size" / Int32ul,
    "file_name" / NullTerminated(Text),
    "extensions" / NullTerminated(_Extensions),
)
#: HSEP: "n_max triples (nodes, files, kibibytes) [...] in little-endian byte-order".
HsepTriple = Struct("nodes" / Int64ul, "files" / Int64ul, "kibibytes" / Int64ul)
#: QRP: "VARIANT [...] Always 0x0 for RESET", "TABLE_LENGTH [...] Little endian", "INFINITY".
Reset = Struct("table_length" / Int32ul, "infinity" / Int8ul)
#: QRP: "SEQ_NO, SEQ_SIZE, COMPRESSOR (0x0 none, 0x1 ZLIB), ENTRY_BITS, DATA".
Patch = Struct(
    "seq_no" / Int8ul,
    "seq_size" / Int8ul,
    "compressor" / Int8ul,
    "entry_bits" / Int8ul,
    "data" / GreedyBytes,
)
# fmt: on


def counted_vector_parser(schema: construct.Struct, items: Any = None) -> Any:
    """A fast parser for ``Struct("count" / Rebuild(Int, …), key / Array(this.count, Item))``
    with a fixed-size ``Item``, derived from the schema objects: the count's struct format
    from the ``Rebuild``'s field, the items' from :class:`~p2pkit.schema.FixedLayout`. It
    returns the items as a ``ListContainer``, or None when the bytes do not hold exactly
    ``count`` items (the generic parser then raises the precise error). Tests compare it
    with the schema's own parse on random inputs.

    >>> parse = counted_vector_parser(FeaturesSupported)
    >>> [dict(f) for f in parse(bytes.fromhex("0100") + b"TLS!" + bytes.fromhex("0100"))]
    [{'feature': 'TLS!', 'version': 1}]

    ``items`` (optional): what makes, from the item's schema, the function that reads the
    items' bytes into something else than Containers (the JSON readers of
    :mod:`p2pkit.gnutella.descriptor_json`).
    """
    count_field, array = (sub.subcon for sub in schema.subcons)
    if not (isinstance(count_field, construct.Rebuild)
            and isinstance(count_field.subcon, construct.FormatField)
            and isinstance(array, construct.Array)):
        raise TypeError(f"not a counted vector: {schema!r}")
    counter = struct.Struct(count_field.subcon.fmtstr)
    item = FixedLayout(array.subcon)
    unpack = item.many_unpacker(ListContainer) if items is None else items(array.subcon)
    size, first = item.size, counter.size

    def parse(data: bytes) -> Any:
        if len(data) < first:
            return None
        (count,) = counter.unpack_from(data)
        if len(data) != first + count * size:
            return None
        return unpack(data[first:])

    return parse


class _Vendor(construct.Construct):
    """vendor_msg §2: "Bytes 0-3: Vendor ID", "Bytes 4-5: Sub-selector", "Bytes 6-7: Version
    number", "The remainder of the payload is defined by the message type".

    Parses to ``vendor``, ``selector``, ``version``, ``payload`` and, when known, ``name``
    (from :data:`~p2pkit.gnutella.vendor.VENDOR_MESSAGES`), the decoded vector of Messages
    Supported (``messages``) or Features Supported (``features``), or the ``body`` of a
    message :data:`~p2pkit.gnutella.vendor.BODIES` knows at that version. The build writes
    ``payload``, or, when ``payload`` is absent, the vector or the ``body``.
    """

    vectors = {"messages_supported": (MessagesSupported, "messages"),
               "features_supported": (FeaturesSupported, "features")}

    head = Struct("vendor" / VendorCode, "selector" / Int16ul, "version" / Int16ul)
    #: Every top-level field a parsed vendor message may have (what the dissector's deferred
    #: records rely on, :mod:`p2pkit.gnutella.deferred`; a test checks it).
    top_level_fields = frozenset((*(sc.name for sc in head.subcons), "payload", "name",
                                  *(field for _, field in vectors.values()), "body"))
    # fast paths derived from the same schema objects (FixedLayout): one unpack per item
    _head = FixedLayout(head)
    _fast_head = staticmethod(_head.unpacker())
    _fast_vectors = {name: counted_vector_parser(schema)
                     for name, (schema, _) in vectors.items()}

    def parse_fast(self, data: bytes, body: Any = None, vectors: Any = None
                   ) -> Container | None:
        """The whole payload ``data`` as :meth:`_parse` reads it, from the fast paths alone;
        None when the generic parse must run (something it would refuse, or a body without
        ``body``: ``body(key, version, payload)`` reads a body, None where it cannot).
        ``vectors``: other parsers of the vectors, by name (the dissector's, giving their
        JSON; None where ``counted_vector_parser``'s give None)."""
        fields = self._fast_head(data)
        if fields is None:
            return None
        vendor, selector, version = fields["vendor"], fields["selector"], fields["version"]
        payload = data[self._head.size:]
        message = Container(vendor=vendor, selector=selector, version=version, payload=payload)
        key = (vendor, selector)
        name = VENDOR_MESSAGES.get(key)
        if name in self.vectors:
            vector = (vectors or self._fast_vectors)[name](payload)
            if vector is not None:
                message["name"] = name
                message[self.vectors[name][1]] = vector
                return message
            return None
        if version in BODIES.get(key, ()):
            if body is None:
                return None
            value = body(key, version, payload)
            if value is None:
                return None
            if name is not None:
                message["name"] = name
            message["body"] = value
            return message
        # no vector and no body at this version: the head is all there is to parse
        if name is not None:
            message["name"] = name
        return message

    def _parse(self, stream: Any, context: Any, path: str) -> Container:
        start = construct.stream_tell(stream, path)
        data = construct.stream_read_entire(stream, path)
        message = self.parse_fast(data)
        if message is not None:
            return message
        construct.stream_seek(stream, start, 0, path)  # the generic parse says what is wrong
        fields = self.head._parsereport(stream, context, path)
        start = construct.stream_tell(stream, path)
        payload = construct.stream_read_entire(stream, path)
        message = Container(vendor=fields.vendor, selector=fields.selector,
                            version=fields.version, payload=payload)
        key = (fields.vendor, fields.selector)
        name = VENDOR_MESSAGES.get(key)
        if name is not None:
            message.name = name
        if name in self.vectors:
            schema, vector = self.vectors[name]
            body = construct.BytesIOWithOffsets(payload, stream, start)
            message[vector] = schema._parsereport(body, context, path)[vector]
            if body.read():
                raise construct.ExplicitError(f"bytes after the {name} vector", path=path)
        elif fields.version in BODIES.get(key, {}):
            body = construct.BytesIOWithOffsets(payload, stream, start)
            message.body = BODIES[key][fields.version]._parsereport(body, context, path)
        return message

    def _build(self, obj: Any, stream: Any, context: Any, path: str) -> Any:
        self.head._build(obj, stream, context, path)
        payload = obj.get("payload")
        if payload is None:
            key = (obj["vendor"], obj["selector"])
            name = VENDOR_MESSAGES.get(key)
            if name in self.vectors:
                schema, vector = self.vectors[name]
                payload = schema.build({vector: obj[vector]})
            elif obj.get("body") is not None and obj["version"] in BODIES.get(key, {}):
                payload = BODIES[key][obj["version"]].build(obj["body"])
            else:
                raise construct.ExplicitError("vendor message without a payload", path=path)
        construct.stream_write(stream, bytes(payload), len(payload), path)
        return obj

    def _sizeof(self, context: Any, path: str) -> int:
        raise construct.SizeofError("vendor messages have no fixed size", path=path)


class _Trailer(construct.Construct):
    """The QueryHit trailer: optional QHD, then the servent ID in the last 16 bytes.

    GGEP §QHD Private Data and the 0.4 protocol: "Vendor Code" (4 bytes), "Open data size",
    "Open data" (``flags`` and ``flags2``: "bit 5 of the Flags and Flag2 fields" says the private
    area holds GGEP; one byte says which flags are meaningful, the other their values, the push
    flag having them the other way round), the "Private data" (parsed as an extension block
    when it is one: ``private_extensions``), and LimeWire's XML (its size in open-data bytes
    2-3, the XML after the private data). Then "Servent Identifier" (16 bytes).
    """

    def _parse(self, stream: Any, context: Any, path: str) -> Container:
        return self.parse_bytes(construct.stream_read_entire(stream, path), path)

    @staticmethod
    def parse_bytes(data: bytes, path: str = "", check: bool = False,
                    read_private: Any = None) -> Container | None:
        """The trailer ``data`` (the rest of the payload); ``ExplicitError`` when it breaks
        the layout. ``check=True`` only checks it (None where it holds: what is left cannot
        fail, the private area read as an extension block, the XML text).
        ``read_private``: what reads the private area instead of
        :func:`_extension_block_or_none` (the dissector's, giving its JSON)."""
        if len(data) < 16:
            raise construct.ExplicitError(f"{len(data)} bytes left for the 16-byte servent ID",
                                          path=path)
        qhd, servent_id = data[:-16], data[-16:]
        if not qhd:
            return None if check else Container(vendor_code=None, servent_id=servent_id)
        if len(qhd) < 5 or len(qhd) < 5 + qhd[4]:
            raise construct.ExplicitError("QHD shorter than its open data", path=path)
        open_data = qhd[5 : 5 + qhd[4]]
        private = qhd[5 + len(open_data) :]
        xml = b""
        if len(open_data) >= 4:
            xml_size = int.from_bytes(open_data[2:4], "little")
            if xml_size > len(private):
                raise construct.ExplicitError("XML size beyond the QHD", path=path)
            private, xml = private[: len(private) - xml_size], private[len(private)
                                                                        - xml_size :]
        if check:
            return None
        out = Container(vendor_code=qhd[:4].decode("latin-1"), open_data=open_data)
        if len(open_data) >= 2:
            out["flags"] = open_data[0]
            out["flags2"] = open_data[1]
        out["private_data"] = private
        out["private_extensions"] = (_extension_block_or_none if read_private is None
                                     else read_private)(private)
        out["xml"] = Text.parse(xml) if xml else None
        out["servent_id"] = servent_id
        return out

    def _build(self, obj: Any, stream: Any, context: Any, path: str) -> Any:
        out = bytearray()
        if obj.get("vendor_code") is not None:
            out += VendorCode.build(obj["vendor_code"])
            open_data = obj.get("open_data")
            if open_data is None:
                open_data = bytes([obj["flags"], obj["flags2"]])
            out.append(len(open_data))
            out += open_data
            extensions = obj.get("private_extensions")
            if extensions is not None:
                out += ExtensionBlock.build(extensions)
            else:
                out += bytes(obj.get("private_data") or b"")
            if obj.get("xml") is not None:
                out += Text.build(obj["xml"])
        servent_id = bytes(obj["servent_id"])
        if len(servent_id) != 16:
            raise construct.ExplicitError("servent_id must be 16 bytes", path=path)
        out += servent_id
        construct.stream_write(stream, bytes(out), len(out), path)
        return obj

    def _sizeof(self, context: Any, path: str) -> int:
        raise construct.SizeofError("the trailer has no fixed size", path=path)


def _extension_block_or_none(data: bytes) -> Any:
    """The private area as an extension block, if it is one that re-builds to the same bytes.

    GGEP §QHD Private Data: BearShare "sends encrypted data [...] It is possible that this data
    could start with bytes that would pass for a valid Extension Prefix".
    """
    if not data or data[0] != 0xC3:
        return None
    parts = fast_extension_block(data)
    if parts is not None:  # what this reads builds back to its bytes (tests check)
        return parts
    try:
        parts = ExtensionBlock.parse(data)
    except ParseError:
        return None
    return parts if ExtensionBlock.build(parts) == data else None


# fmt: off
#: GGEP §Query Hit Message and the 0.4 protocol: "Number of Hits, Port, IP Address, Speed,
#: Result Set, [QHD], Servent Identifier".
QueryHit = Struct(
    "number_of_hits" / Rebuild(Int8ul, len_(this.results)),
    "port" / Int16ul,
    "ip_address" / IPv4,
    "speed" / Int32ul,
    "results" / Array(this.number_of_hits, Result),
    "trailer" / _Trailer(),
)
Hsep = Struct("triples" / GreedyRange(HsepTriple))
Vendor = _Vendor()
# fmt: on


#: QRP §"Gnutella Protocol Changes": "The first byte of the payload determines the message's
#: variant. [...] RESET (0x0) and PATCH (0x1)."
RouteTableUpdate = MessageTable(
    {0: ("reset", Reset), 1: ("patch", Patch)}, key="variant", what="variant", noun="variant",
    rule="gnutella/qrp/unknown-variant", spec='QRP §"Gnutella Protocol Changes"',
).switch(Int8ul, strict=True)

#: Payload descriptor -> (name, body). The one table every other view derives from.
PAYLOADS: dict[int, tuple[str, construct.Construct]] = {
    0x00: ("ping", Ping),
    0x01: ("pong", Pong),
    0x02: ("bye", Bye),
    0x30: ("route_table_update", RouteTableUpdate),
    0x31: ("vendor_message", Vendor),
    0x32: ("standard_vendor_message", Vendor),
    0x40: ("push", Push),
    0x80: ("query", Query),
    0x81: ("query_hit", QueryHit),
    0xCD: ("hsep", Hsep),
}
#: The payloads as a :class:`~p2pkit.schema.MessageTable`. An unknown payload descriptor is
#: never an error (the payload length frames it, and bye §2 lets a servent count "unknown
#: messages"): both schemas keep it, noting a Deviation.
PAYLOAD_TABLE = MessageTable(PAYLOADS, id_key="payload_type", what="payload descriptor",
                             noun="payload", rule="gnutella/descriptor/unknown-payload-type",
                             spec="bye §2 (code 404)", level="MAY", compiled=True)
#: Payload name -> payload descriptor (``PAYLOAD_TYPES["query"] == 0x80``).
PAYLOAD_TYPES: dict[str, int] = PAYLOAD_TABLE.ids

_HEADER_LAYOUT = FixedLayout(DescriptorHeader)
_HEADER = _HEADER_LAYOUT.struct
#: Gnutella 0.4 §2.2: the header after the 16-byte GUID (payload descriptor, TTL, hops,
#: payload length), derived from :data:`DescriptorHeader`; read at offset 16 of a descriptor.
HEADER_AFTER_GUID = struct.Struct(_HEADER_LAYOUT.byte_order + "".join(_HEADER_LAYOUT.codes[1:]))

#: Where each payload is specified, for the deviation of a payload that does not parse.
PAYLOAD_SPECS: dict[str, str] = {
    "ping": "GGEP §Ping Message",
    "pong": "GGEP §Pong Message",
    "bye": "bye §2",
    "route_table_update": 'QRP §"Gnutella Protocol Changes"',
    "vendor_message": "vendor_msg §2",
    "standard_vendor_message": "vendor_msg §2",
    "push": "GGEP §Push Message",
    "query": "GGEP §Query Message",
    "query_hit": "GGEP §Query Hit Result",
    "hsep": "HSEP §Normal operation for ultrapeers",
}


def payload_rule(name: str) -> str:
    """The rule id of a ``name`` payload that does not parse (``gnutella/pong/payload``)."""
    return f"gnutella/{name}/payload"


def unparsed_payload(out: Container, payload_type: int, payload: bytes, error: Exception,
                     payload_start: int) -> Container:
    """The lenient value of a known payload that does not parse: its name in ``type``, the
    raw ``payload`` and a :class:`~p2pkit.deviations.Deviation` at the offset where parsing
    stopped (``payload_start`` when it is not known)."""
    name = PAYLOAD_TABLE.names[payload_type]
    if isinstance(error, ParseError):
        reason, offset, where = error.reason, error.offset, error.path
    else:  # construct's message is the last line, under "Error in path …"
        lines = str(error).strip().splitlines()
        reason = lines[-1] if lines else type(error).__name__
        if isinstance(error, construct.StreamError):
            reason = f"truncated: {reason}"
        offset, where = failure_offset(error), clean_path(getattr(error, "path", None))
    if offset is None or not payload_start <= offset <= payload_start + len(payload):
        offset = payload_start
    where = where.split(" -> ", 1)[-1] if where.startswith(name) else where
    field = f" ({where})" if where and where != name else ""
    out["type"] = name
    out["payload"] = payload
    return with_deviations(out, [Deviation(
        offset=offset, rule=payload_rule(name), spec=PAYLOAD_SPECS.get(name, "Gnutella 0.4"),
        message=f"{name} payload does not parse{field}: {reason}")])


def _is_unparsed(obj: Any) -> bool:
    """Whether ``obj`` is a payload kept raw by :func:`unparsed_payload` (its deviation says
    so), to be built back as its ``payload`` bytes."""
    name = obj.get("type")
    if name not in PAYLOAD_TYPES or "payload" not in obj:
        return False
    rule = payload_rule(name)
    return any(d.rule == rule for d in deviations_of(obj))



class _Descriptor(construct.Construct):
    """Header, then the payload its descriptor names, delimited by its length.

    ``strict=False`` (dissection) keeps a known payload that does not parse: the value keeps
    the payload's name in ``type``, holds the raw ``payload`` and carries a
    :class:`~p2pkit.deviations.Deviation` (rule ``gnutella/<name>/payload``, at the offset
    where parsing stopped) in its hidden ``_deviations``; it builds back to the same bytes.
    """

    def __init__(self, *, strict: bool, max_payload_length: int = MAX_PAYLOAD_LENGTH) -> None:
        super().__init__()
        self.strict = strict
        self.max_payload_length = max_payload_length

    def _parse(self, stream: Any, context: Any, path: str) -> Container:
        start = construct.stream_tell(stream, path)
        header = construct.stream_read(stream, HEADER_LENGTH, path)
        guid, ptype, ttl, hops, length = _HEADER.unpack(header)
        if length > self.max_payload_length:
            raise LimitExceeded(
                f"payload length {length} above MAX_PAYLOAD_LENGTH ({self.max_payload_length})",
                path="payload_length", offset=start + 19)
        out = Container(guid=guid, type=None, ttl=ttl, hops=hops)  # type: the table names it
        payload_start = start + HEADER_LENGTH
        raw = construct.stream_read(stream, length, path)
        sub = construct.BytesIOWithOffsets(raw, stream, payload_start)
        try:
            return PAYLOAD_TABLE.parse_body(ptype, sub, context, path, strict=False,
                                            offset=start + 16, into=out)
        except (construct.ConstructError, ParseError) as e:
            if self.strict or isinstance(e, LimitExceeded):
                raise
            out = Container(guid=guid, type=None, ttl=ttl, hops=hops)
            return unparsed_payload(out, ptype, raw, e, payload_start)

    def _build(self, obj: Any, stream: Any, context: Any, path: str) -> Any:
        if _is_unparsed(obj):
            ptype = PAYLOAD_TYPES[obj["type"]]
            payload = bytes(obj["payload"])
        else:
            body_stream = io.BytesIO()
            ptype = PAYLOAD_TABLE.build_body(obj, body_stream, context, path)
            payload = body_stream.getvalue()
        if len(payload) > self.max_payload_length:
            raise construct.ExplicitError(
                f"payload of {len(payload)} bytes above MAX_PAYLOAD_LENGTH", path=path)
        guid = bytes(obj["guid"])
        if len(guid) != 16:
            raise construct.ExplicitError("guid must be 16 bytes", path=path)
        try:
            header = _HEADER.pack(guid, ptype, obj["ttl"], obj["hops"], len(payload))
        except struct.error as e:
            raise construct.ExplicitError(f"header: {e}", path=path) from None
        construct.stream_write(stream, header + payload, len(header) + len(payload), path)
        return obj

    def _sizeof(self, context: Any, path: str) -> int:
        raise construct.SizeofError("descriptors have no fixed size", path=path)


#: A descriptor, strict (inside a servent): a payload that does not parse is a ParseError.
Descriptor = Schema(_Descriptor(strict=True), protocol=PROTOCOL, name="descriptor")
#: The same for dissection: a known payload that does not parse is kept raw (``payload``) under
#: its own name, with a Deviation (:func:`unparsed_payload`).
DescriptorLenient = Schema(_Descriptor(strict=False), protocol=PROTOCOL, name="descriptor")


def _first_fast_parse(data: bytes) -> Container | None:
    """:data:`DescriptorLenient` parses without construct's streams first
    (:func:`p2pkit.gnutella.descriptor_fast_path.fast_descriptor`, derived from the
    declarations above; it gives way to the schema wherever the schema would not simply
    succeed). That module reads this one: it is put in place on first use."""
    from p2pkit.gnutella.descriptor_fast_path import fast_descriptor

    DescriptorLenient.fast_parse = fast_descriptor
    return fast_descriptor(data)


DescriptorLenient.fast_parse = _first_fast_parse
