"""GGEP blocks and the extension blocks that carry them.

Spec: GGEP (Gnutella Generic Extension Protocol 0.51): §GGEP Block, §GGEP Extension Prefix
(magic 0xC3), §GGEP Extension Header (flags, 1-15 byte ID, 1-3 byte length), §GGEP Extension
Header Flags (bit 7 last extension, bit 6 COBS encoding, bit 5 deflate compression, bit 4
reserved, bits 3-0 ID length), the length encoding ("MLxxxxxx" chunks), §Extension Block and
§Appendix B "Peaceful Co-Existence" (GGEP blocks mixed with legacy extensions such as HUGE
``urn:`` strings and XML, separated by 0x1C). HUGE §3 ("file separator", 0x1C).

A parsed extension keeps its wire bytes (``data``) so a block always re-builds byte-identically,
and shows what they mean: ``payload`` (after COBS decoding and inflating, "the encoding AFTER the
optional compression step") and ``value`` (the extension decoded by its registered name: ``H``,
``ALT``, ``DU``, ``UP``, ``IP``, ``IPP``, ``LF``, ``PHC``, ``VC``, ``LOC``, ``GUE``, ``CT``,
``HNAME`` …; ``None`` for an ID this module does not know, whose bytes stay raw).

A pong's extension block as gtk-gnutella 1.2.3 sent it (tests/data/captures/gtkg123…):

>>> block = GgepBlock.parse(bytes.fromhex("c3 02 5643 45 47544b4783 02 5550 43 02ff31 82 4455 41 05"))
>>> [e.id for e in block], block[0].value.vendor, block[1].value.leaf_slots, block[2].value
(['VC', 'UP', 'DU'], 'GTKG', 255, 5)
>>> GgepBlock.build(block).hex()
'c30256434547544b47830255504302ff318244554105'

An extension block as HUGE §3 and Appendix B mix them (a URN, 0x1C, then a GGEP block):

>>> parts = ExtensionBlock.parse(b"urn:sha1:PLSTHIPQGSSZTS5FJUPAKUZWUGYQYPFB\\x1c\\xc3\\x82DU\\x41\\x01")
>>> [(p.kind, p.separator) for p in parts], parts[1].extensions[0].value
([('urn', 28), ('ggep', None)], 1)
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import construct
from construct import Container, GreedyBytes, GreedyRange, Int8ub, ListContainer, Struct

from p2pkit.errors import BuildError, LimitExceeded, ParseError
from p2pkit.gnutella.fields import IPv4Endpoint, IPv6, Text, VarIntLE, VendorCode
from p2pkit.schema import FixedLayout, Schema

__all__ = [
    "EXTENSIONS",
    "JsonOutput",
    "GGEP_MAGIC",
    "MAX_EXTENSIONS",
    "MAX_INFLATED_SIZE",
    "ExtensionBlock",
    "GgepBlock",
    "cobs_decode",
    "check_extension_block",
    "cobs_encode",
    "extension",
]

PROTOCOL = "gnutella"
#: §GGEP Extension Prefix: "It must be set to the value 0xC3."
GGEP_MAGIC = 0xC3
#: HUGE §3 and GGEP Appendix B: the separator between legacy extensions.
FILE_SEPARATOR = 0x1C
#: Bound on the extensions of one block (a 64 KiB payload of empty 3-byte extensions would be
#: 21,845; real blocks carry fewer than 20).
MAX_EXTENSIONS = 256
#: Bound on an inflated extension (GGEP allows 262,143 wire bytes; deflate could grow them
#: 1000-fold). Checked while inflating, before the output is allocated.
MAX_INFLATED_SIZE = 1 << 18

_LAST, _COBS, _DEFLATE, _RESERVED, _ID_LENGTH = 0x80, 0x40, 0x20, 0x10, 0x0F


def cobs_decode(data: bytes) -> bytes:
    """Undo COBS (GGEP §Encoding Types, value 1: "encoded using the COBS scheme").

    >>> cobs_decode(bytes.fromhex("0311220233"))
    b'\\x11"\\x003'
    """
    out = bytearray()
    pos = 0
    while pos < len(data):
        code = data[pos]
        if code == 0:
            raise construct.ExplicitError("COBS data contains a zero byte")
        end = pos + code
        if end > len(data):
            raise construct.ExplicitError("COBS block runs past the end of the data")
        out += data[pos + 1 : end]
        pos = end
        if code < 0xFF and pos < len(data):
            out.append(0)
    return bytes(out)


def cobs_encode(data: bytes) -> bytes:
    """COBS-encode ``data`` so that it contains no zero byte.

    >>> cobs_encode(b'\\x11"\\x003').hex()
    '0311220233'
    """
    out = bytearray()
    block = bytearray()
    for byte in data:
        if byte == 0:
            out.append(len(block) + 1)
            out += block
            block.clear()
            continue
        block.append(byte)
        if len(block) == 0xFE:
            out.append(0xFF)
            out += block
            block.clear()
    out.append(len(block) + 1)
    out += block
    return bytes(out)


def _inflate(data: bytes) -> bytes:
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(data, MAX_INFLATED_SIZE)
    except zlib.error as e:
        raise construct.ExplicitError(f"deflate data: {e}") from None
    if inflater.unconsumed_tail:
        raise LimitExceeded(f"extension inflates beyond MAX_INFLATED_SIZE ({MAX_INFLATED_SIZE})",
                            protocol=PROTOCOL)
    return out


def _payload(ext: Any) -> bytes:
    data = bytes(ext["data"])
    if ext.get("cobs"):
        data = cobs_decode(data)
    if ext.get("deflate"):
        data = _inflate(data)
    return data


# fmt: off
#: GDF "H": "the hash type byte (0x01 SHA1, 0x02 bitprint = SHA1 + Tiger tree root)" + digest.
HashValue = Struct("hash_type" / Int8ub, "digest" / GreedyBytes)
#: "UP": ultrapeer version and free slots (ping-pong §, ultra-peers §).
UltrapeerValue = Struct("version" / Int8ub, "leaf_slots" / Int8ub, "ultrapeer_slots" / Int8ub)
#: "VC": vendor code (4 letters, as in the QueryHit trailer) and a version byte.
VendorCodeValue = Struct("vendor" / VendorCode, "version" / Int8ub)
Endpoints = GreedyRange(IPv4Endpoint)
#: "6": the servent's IPv6 address (IPv6 §); empty when it only says "I speak IPv6".
IPv6Value = construct.Select(construct.Struct("ip" / IPv6), construct.Struct())
# fmt: on


class _Endpoints(construct.Adapter):
    """A run of 6-byte IPv4 endpoints ("IPP", "ALT", "PUSH" proxies); no bytes left over."""

    def __init__(self) -> None:
        super().__init__(GreedyBytes)

    def _decode(self, obj: bytes, context: Any, path: str) -> ListContainer:
        if len(obj) % 6:
            raise construct.ExplicitError(f"{len(obj)} bytes is not a multiple of 6", path=path)
        return Endpoints.parse(obj)

    def _encode(self, obj: Any, context: Any, path: str) -> bytes:
        return Endpoints.build(obj)


class _Address(construct.Adapter):
    """"IP" in a pong: an IPv4 (6 bytes) or IPv6 (18 bytes) endpoint; empty in a ping."""

    def __init__(self) -> None:
        super().__init__(GreedyBytes)

    def _decode(self, obj: bytes, context: Any, path: str) -> Container | None:
        if not obj:
            return None
        if len(obj) == 6:
            return IPv4Endpoint.parse(obj)
        if len(obj) == 18:
            return Container(ip=IPv6.parse(obj[:16]), port=int.from_bytes(obj[16:], "little"))
        raise construct.ExplicitError(f"{len(obj)}-byte address", path=path)

    def _encode(self, obj: Any, context: Any, path: str) -> bytes:
        if obj is None:
            return b""
        if ":" in obj["ip"]:
            return IPv6.build(obj["ip"]) + obj["port"].to_bytes(2, "little")
        return IPv4Endpoint.build(obj)


class _Flag(construct.Construct):
    """An extension whose presence is its meaning (empty data, e.g. "SCP" in a ping)."""

    def _parse(self, stream: Any, context: Any, path: str) -> bytes:
        return construct.stream_read_entire(stream, path)

    def _build(self, obj: Any, stream: Any, context: Any, path: str) -> Any:
        data = bytes(obj or b"")
        construct.stream_write(stream, data, len(data), path)
        return obj


#: Registered extensions decoded by name; any other ID keeps only its raw payload.
EXTENSIONS: dict[str, construct.Construct] = {
    "H": HashValue,
    "ALT": _Endpoints(),
    "IPP": _Endpoints(),
    "PUSH": _Endpoints(),
    "DU": VarIntLE,
    "LF": VarIntLE,
    "CT": VarIntLE,
    "UP": UltrapeerValue,
    "IP": _Address(),
    "VC": VendorCodeValue,
    "GUE": Int8ub,
    "LOC": Text,
    "HNAME": Text,
    "PHC": Text,
    "DHTIPP": _Endpoints(),
    "6": IPv6Value,
    "SCP": _Flag(),
    "BH": _Flag(),
    "TLS": _Flag(),
    "CHAT": _Flag(),
    "PR": _Flag(),
    "SO": _Flag(),
    "M": VarIntLE,
}


def _value(ext_id: str, payload: bytes) -> Any:
    """The registered meaning of ``payload``; ``None`` for an unknown ID or an unexpected shape
    (the raw ``payload`` stays, so a servent's private variant never breaks the descriptor)."""
    fast = _FAST_VALUES.get(ext_id)
    if fast is not None:
        try:
            value = fast(payload)
        except Exception:  # noqa: BLE001 - the declaration says what it makes of them
            value = None
        if value is not None:
            return value
    decoder = EXTENSIONS.get(ext_id)
    if decoder is None:
        return None
    try:
        return decoder.parse(payload)
    except (construct.ConstructError, ParseError):
        return None


def value_fast_path(decoder: construct.Construct) -> Callable[[bytes], Any] | None:
    """A function decoding an extension's payload as ``decoder.parse`` does, derived from the
    decoder object itself, or None when its kind has no fast path. It returns None (or
    raises) where the decoder's own parse must say what it makes of the bytes; tests compare
    both on random payloads for every registered ID.

    The kinds: a ``Struct`` of fixed-size fields (:class:`~p2pkit.schema.FixedLayout`, extra
    bytes ignored as ``parse`` ignores them) or of fixed-size fields and then ``GreedyBytes``, an ``Adapter`` over ``GreedyBytes`` (its
    ``_decode`` on the whole payload), an unsigned ``FormatField`` byte, ``VarIntLE`` and
    the presence flags (the payload itself).

    >>> value_fast_path(UltrapeerValue)(bytes([1, 30, 2]))
    Container(version=1, leaf_slots=30, ultrapeer_slots=2)
    """
    if isinstance(decoder, construct.Struct):
        try:
            return FixedLayout(decoder).unpacker()
        except TypeError:
            pass
        *fixed, last = decoder.subcons  # fixed fields, then the rest of the bytes ("H")
        if not fixed or last.name is None or getattr(last, "subcon", None) is not GreedyBytes:
            return None
        try:
            layout = FixedLayout(construct.Struct(*fixed))
        except TypeError:
            return None
        head, size, name = layout.unpacker(), layout.size, last.name

        def parse(payload: bytes) -> Any:
            value = head(payload)
            if value is not None:
                value[name] = payload[size:]
            return value

        return parse
    if isinstance(decoder, construct.Adapter) and decoder.subcon is GreedyBytes:
        adapt = decoder._decode
        return lambda payload: adapt(payload, None, "")
    if decoder is Int8ub:
        return lambda payload: payload[0]
    if isinstance(decoder, _Flag):
        return lambda payload: payload
    if decoder is VarIntLE:
        return lambda payload: (int.from_bytes(payload, "little") if 1 <= len(payload) <= 8
                                else None)
    return None


#: Extension ID -> the fast path of its decoder (:func:`value_fast_path`).
_FAST_VALUES: dict[str, Callable[[bytes], Any]] = {
    ext_id: fast for ext_id, decoder in EXTENSIONS.items()
    if (fast := value_fast_path(decoder)) is not None}


def extension(ext_id: str, payload: bytes = b"", *, value: Any = None, cobs: bool = False,
              deflate: bool = False) -> Container:
    """An extension ready to build: from its ``payload`` bytes or its decoded ``value``.

    >>> ext = extension("DU", value=3600)
    >>> ext.data, ext.payload
    (b'\\x10\\x0e', b'\\x10\\x0e')
    >>> GgepBlock.build([ext]).hex()
    'c382445542100e'
    """
    if value is not None:
        try:
            payload = EXTENSIONS[ext_id].build(value)
        except (construct.ConstructError, KeyError, TypeError, ValueError) as e:
            raise BuildError(f"GGEP {ext_id!r} value: {e}", protocol=PROTOCOL) from None
    data = payload
    if deflate:
        data = zlib.compress(data)
    if cobs:
        data = cobs_encode(data)
    return Container(id=ext_id, cobs=cobs, deflate=deflate, data=data, payload=payload,
                     value=_value(ext_id, payload))


def _length_chunk(length: int, count: int, byte: int, path: str = "") -> tuple[int, bool]:
    """§length encoding, one chunk (the ``count``-th, from 0): 6-bit chunks, big-endian, "M" =
    more chunks, "L" = last chunk. The length so far and whether this chunk was the last;
    ``ExplicitError`` for a leading zero chunk, a chunk with neither flag, or a fourth chunk."""
    if count == 0 and byte == 0x80:
        raise construct.ExplicitError("length with a leading zero chunk", path=path)
    length = (length << 6) | (byte & 0x3F)
    if byte & 0xC0 == 0x40:
        return length, True
    if byte & 0xC0 != 0x80:
        raise construct.ExplicitError(f"length chunk {byte:#04x} has neither M nor L set",
                                      path=path)
    if count == 2:
        raise construct.ExplicitError("length longer than 3 chunks", path=path)
    return length, False


def _read_length(stream: Any, path: str) -> int:
    """§length encoding, read from a stream (:func:`_length_chunk` for each byte)."""
    length = 0
    for count in range(3):
        length, last = _length_chunk(length, count,
                                     construct.stream_read(stream, 1, path)[0], path)
        if last:
            break
    return length


def _length_bytes(length: int) -> bytes:
    if not 0 <= length <= 0x3FFFF:
        raise construct.ExplicitError(f"extension data of {length} bytes (at most 262143)")
    chunks = [length & 0x3F]
    length >>= 6
    while length:
        chunks.append(length & 0x3F)
        length >>= 6
    out = [0x80 | c for c in reversed(chunks[1:])] + [0x40 | chunks[0]]
    return bytes(out)


class _GgepBlock(construct.Construct):
    """One GGEP block: the magic byte and extensions up to the one flagged last.

    Parses to a list of ``Container(id, cobs, deflate, data, payload, value)``. The builder sets
    the "last" flag on the final extension and computes every ID and data length.
    """

    def _parse(self, stream: Any, context: Any, path: str) -> ListContainer:
        magic = construct.stream_read(stream, 1, path)[0]
        if magic != GGEP_MAGIC:
            raise construct.ExplicitError(f"GGEP magic is {magic:#04x}, not 0xc3", path=path)
        extensions = ListContainer()
        while True:
            if len(extensions) == MAX_EXTENSIONS:
                raise LimitExceeded(f"more than MAX_EXTENSIONS ({MAX_EXTENSIONS}) in a block",
                                    protocol=PROTOCOL)
            flags = construct.stream_read(stream, 1, path)[0]
            if flags & _RESERVED:
                raise construct.ExplicitError("reserved flag bit 4 is set", path=path)
            id_length = flags & _ID_LENGTH
            if not id_length:
                raise construct.ExplicitError("extension ID length is 0", path=path)
            raw_id = construct.stream_read(stream, id_length, path)
            if 0 in raw_id:
                raise construct.ExplicitError("extension ID contains a 0x00 byte", path=path)
            length = _read_length(stream, path)
            data = construct.stream_read(stream, length, path)
            ext_id = raw_id.decode("latin-1")
            ext = Container(id=ext_id, cobs=bool(flags & _COBS), deflate=bool(flags & _DEFLATE),
                            data=data)
            ext.payload = _payload(ext)
            ext.value = _value(ext_id, ext.payload)
            extensions.append(ext)
            if flags & _LAST:
                return extensions

    def _build(self, obj: Any, stream: Any, context: Any, path: str) -> Any:
        if not obj:
            raise construct.ExplicitError("a GGEP block needs at least one extension", path=path)
        out = bytearray([GGEP_MAGIC])
        for i, ext in enumerate(obj):
            raw_id = ext["id"].encode("latin-1")
            if not 1 <= len(raw_id) <= 15 or 0 in raw_id:
                raise construct.ExplicitError(f"bad extension ID {ext['id']!r}", path=path)
            data = ext.get("data")
            if data is None:
                data = extension(ext["id"], ext.get("payload", b""), value=ext.get("value"),
                                 cobs=ext.get("cobs", False),
                                 deflate=ext.get("deflate", False)).data
            flags = len(raw_id)
            flags |= _LAST if i == len(obj) - 1 else 0
            flags |= _COBS if ext.get("cobs") else 0
            flags |= _DEFLATE if ext.get("deflate") else 0
            out.append(flags)
            out += raw_id
            out += _length_bytes(len(data))
            out += data
        construct.stream_write(stream, bytes(out), len(out), path)
        return obj

    def _sizeof(self, context: Any, path: str) -> int:
        raise construct.SizeofError("GGEP blocks have no fixed size", path=path)


def _first_chunk(byte: int) -> tuple[int, bool] | None:
    try:
        return _length_chunk(0, 0, byte)
    except construct.ExplicitError:
        return None


#: :func:`_length_chunk` of every first byte of a length: (length so far, last) or None.
_FIRST_CHUNK = tuple(_first_chunk(byte) for byte in range(256))


class JsonOutput(NamedTuple):
    """How ``_fast_extension_block`` writes the JSON of what it reads (the dissector's
    conversion, given by it: this module knows no output format)."""

    #: The JSON of any value (``p2pkit.capture.record.json_value``).
    convert: Callable[[Any], Any]
    #: Bytes of at most this length are written as hex (else by ``convert``).
    inline: int
    #: Extension ID -> the JSON of its value read from its payload, None where ``convert``
    #: of ``_value`` must say.
    values: Mapping[str, Callable[[bytes], Any]]


def _fast_ggep(data: bytes, pos: int, check: bool = False,
               json: JsonOutput | None = None) -> tuple[list[Any], int] | None:
    """The GGEP block at ``data[pos]`` as :class:`_GgepBlock` parses it, and where it ends;
    None wherever that parser would raise (or might: a bound, a COBS or deflate error), so
    that it runs and reports it. Works on the bytes, without construct's streams; tests
    compare both on the real captures and on random and mutated blocks. ``check=True``
    only says whether the block parses (a list of None; COBS and deflate are still undone,
    as they may fail; extension values are not decoded, which never fails). ``json``: each
    extension is made as that JSON conversion makes the Container, ``{"id", "cobs",
    "deflate", "data", "payload", "value"}`` in a list (tests compare both)."""
    end = len(data)
    if pos >= end or data[pos] != GGEP_MAGIC:
        return None
    pos += 1
    extensions: list[Any] = ListContainer() if json is None else []
    while len(extensions) < MAX_EXTENSIONS and pos < end:
        flags = data[pos]
        id_length = flags & _ID_LENGTH
        if flags & _RESERVED or not id_length:
            return None
        id_end = pos + 1 + id_length
        raw_id = data[pos + 1:id_end]
        if id_end >= end or 0 in raw_id:
            return None
        first = _FIRST_CHUNK[data[id_end]]  # §length encoding, as _read_length
        if first is None:
            return None  # the stream parser reports it
        length, last = first
        pos, count = id_end + 1, 1
        while not last:  # a length of more than one chunk
            if pos >= end:
                return None
            try:
                length, last = _length_chunk(length, count, data[pos])
            except construct.ExplicitError:
                return None
            pos += 1
            count += 1
        value_end = pos + length
        if value_end > end:
            return None
        ext_data = data[pos:value_end]
        pos = value_end
        if check:
            if flags & (_COBS | _DEFLATE):
                try:
                    _payload({"data": ext_data, "cobs": flags & _COBS,
                              "deflate": flags & _DEFLATE})
                except Exception:  # noqa: BLE001 - the stream parser reports it
                    return None
            extensions.append(None)  # counted (MAX_EXTENSIONS), not decoded
            if flags & _LAST:
                return extensions, pos
            continue
        ext_id = raw_id.decode("latin-1")
        cobs, deflate = bool(flags & _COBS), bool(flags & _DEFLATE)
        payload = ext_data
        if cobs or deflate:
            try:
                payload = _payload({"data": ext_data, "cobs": cobs, "deflate": deflate})
            except Exception:  # noqa: BLE001 - the stream parser reports it
                return None
        if json is None:
            extensions.append(Container(id=ext_id, cobs=cobs, deflate=deflate, data=ext_data,
                                        payload=payload, value=_value(ext_id, payload)))
            if flags & _LAST:
                return extensions, pos
            continue
        # the Container's JSON, each item as the conversion makes it
        convert = json.convert
        value_json = json.values.get(ext_id)
        value = None if value_json is None else value_json(payload)
        if value is None:
            value = _value(ext_id, payload)
            if value is not None and type(value) is not int:
                value = convert(value)
        data_json = ext_data.hex() if len(ext_data) <= json.inline else convert(ext_data)
        if payload is not ext_data:
            payload = payload.hex() if len(payload) <= json.inline else convert(payload)
        else:
            payload = data_json
        extensions.append({"id": ext_id if ext_id.isascii() else convert(ext_id), "cobs": cobs,
                           "deflate": deflate, "data": data_json, "payload": payload,
                           "value": value})
        if flags & _LAST:
            return extensions, pos
    return None


def _fast_extension_block(data: bytes, check: bool = False,
                          json: JsonOutput | None = None) -> list[Any] | None:
    """``data`` as :class:`_ExtensionBlock` parses it, or None where that parser would raise
    (it then runs and says why). Works on the bytes; tests compare both. ``check=True``
    only says whether it parses (a list of None, one per part, see :func:`_fast_ggep`).
    ``json``: the parts as that JSON conversion makes the ListContainer (a list of
    dictionaries, see :func:`_fast_ggep`)."""
    if type(data) is not bytes:
        return None
    parts: list[Any] = ListContainer() if json is None else []
    pos = 0
    end = len(data)
    while pos < end:
        if len(parts) == MAX_EXTENSIONS:
            return None
        if data[pos] == GGEP_MAGIC:
            block = _fast_ggep(data, pos, check, json)
            if block is None:
                return None
            extensions, stop = block
            if check:
                part = None
            elif json is None:
                part = Container(kind="ggep", extensions=extensions)
            else:
                part = {"kind": "ggep", "extensions": extensions}
        else:  # a legacy part, up to a separator (Appendix B step 8)
            stop = data.find(FILE_SEPARATOR, pos)
            if stop < 0:
                stop = end
            zero = data.find(0, pos, stop)
            if zero >= 0:
                stop = zero
            if check:  # text always decodes (surrogateescape)
                part = None
            else:
                text = _decode_text(data[pos:stop], None, "")
                kind = "urn" if text[:4].lower() == "urn:" else (
                    "xml" if text[:1] in ("<", "{") else "text")
                if json is None:
                    part = Container(kind=kind, text=text)
                else:
                    part = {"kind": kind,
                            "text": text if text.isascii() else json.convert(text)}
        separator = None
        if stop < end and data[stop] in (FILE_SEPARATOR, 0):
            separator = data[stop]
            stop += 1
        if part is not None:
            part["separator"] = separator
        parts.append(part)
        pos = stop
    return parts


_decode_text = Text._decode


def _byte(value: int) -> bytes:
    return re.escape(bytes([value]))


def _alternatives(items: list[bytes]) -> bytes:
    return b"(?:" + b"|".join(items) + b")"


def _block_pattern(terminator: int | None) -> bytes:
    """A regular expression of extension blocks every one of which :func:`_fast_extension_block`
    reads (a sufficient condition, not a necessary one), derived from the same tables: GGEP
    blocks whose extensions have flags without COBS, deflate or the reserved bit, an ID of
    ``flags & _ID_LENGTH`` non-zero bytes and a one-chunk length (:data:`_FIRST_CHUNK`,
    §length encoding) followed by that many bytes, at most ``MAX_EXTENSIONS`` of them; legacy
    parts up to a separator (Appendix B step 8); at most ``MAX_EXTENSIONS`` parts. Each byte
    that starts a part, an extension or a length selects one alternative, and parts and
    repetitions are atomic (possessive: the walk's own choices, never taken back), so a
    match takes time linear in the block. ``terminator``: a byte no part contains (a block a
    ``NullTerminated`` ends), else None."""
    any_byte = b"[\\s\\S]" if terminator is None else b"[^" + _byte(terminator) + b"]"
    separators = [FILE_SEPARATOR, 0]
    if terminator is not None:
        separators.remove(terminator)
    separator = b"[" + b"".join(_byte(b) for b in separators) + b"]"
    lengths = _alternatives([_byte(first) + (any_byte + b"{%d}" % chunk[0] if chunk[0] else b"")
                             for first, chunk in enumerate(_FIRST_CHUNK)
                             if chunk is not None and chunk[1] and first != terminator])

    def extension(last: bool) -> bytes:
        ids = [_byte(flags) + b"[^\\x00]{%d}" % (flags & _ID_LENGTH) for flags in range(256)
               if bool(flags & _LAST) == last and flags & _ID_LENGTH
               and not flags & (_COBS | _DEFLATE | _RESERVED) and flags != terminator]
        return _alternatives(ids) + lengths

    block = (_byte(GGEP_MAGIC) + b"(?:" + extension(False) + b"){0,%d}+" % (MAX_EXTENSIONS - 1)
             + extension(True))
    not_legacy = b"".join(_byte(b) for b in (GGEP_MAGIC, *separators)
                          if b != terminator) + (b"" if terminator is None else _byte(terminator))
    legacy = (b"[^" + not_legacy + b"][^" + b"".join(_byte(b) for b in separators)
              + (b"" if terminator is None else _byte(terminator)) + b"]*+")
    part = _alternatives([block + separator + b"?+", legacy + separator + b"?+", separator])
    return b"(?>" + part + b"){0,%d}+" % MAX_EXTENSIONS


#: :func:`_block_pattern`'s matchers: of a whole block, of one a 0x00 byte ends.
_CHECKED_BLOCK = re.compile(_block_pattern(None)).fullmatch
_CHECKED_TERMINATED_BLOCK = re.compile(_block_pattern(0)).fullmatch


def check_extension_block(data: bytes, pos: int = 0, end: int | None = None) -> bool:
    """Whether ``data[pos:end]`` is an extension block ``_fast_extension_block`` reads
    (so the schema parses it without a deviation or a bound), reading nothing into values:
    the blocks of ``_block_pattern`` by one regular-expression match, any other by the
    walk of ``_fast_extension_block(check=True)``. Tests compare both on real, mutated and
    random blocks.

    >>> check_extension_block(bytes.fromhex("c3824455 4101")), check_extension_block(b"\\xc3")
    (True, False)
    """
    if end is None:
        end = len(data)
    if _CHECKED_BLOCK(data, pos, end) is not None:
        return True
    return _fast_extension_block(data[pos:end], True) is not None


class _ExtensionBlock(construct.Construct):
    """§Extension Block with Appendix B: GGEP blocks and legacy extensions, to the stream's end.

    Each part is a ``Container(kind=…, separator=…)``: ``kind="ggep"`` with ``extensions``;
    ``kind="urn"`` (HUGE §3, ``urn:sha1:…``), ``"xml"`` (text starting with ``<`` or ``{``) or
    ``"text"`` (anything else) with ``text``. ``separator`` is the byte that ended the part on
    the wire (0x1C or 0x00, Appendix B step 8) or ``None`` — kept so the build is byte-exact.
    """

    def _parse(self, stream: Any, context: Any, path: str) -> ListContainer:
        start = construct.stream_tell(stream, path)
        data = construct.stream_read_entire(stream, path)
        fast = _fast_extension_block(data)
        if fast is not None:
            return fast
        parts = ListContainer()
        pos = 0
        while pos < len(data):
            if len(parts) == MAX_EXTENSIONS:
                raise LimitExceeded(f"more than MAX_EXTENSIONS ({MAX_EXTENSIONS}) parts",
                                    protocol=PROTOCOL)
            if data[pos] == GGEP_MAGIC:
                construct.stream_seek(stream, start + pos, 0, path)
                extensions = GgepBlockBody._parsereport(stream, context, path)
                end = construct.stream_tell(stream, path) - start
                part = Container(kind="ggep", extensions=extensions)
            else:
                end = pos
                while end < len(data) and data[end] not in (FILE_SEPARATOR, 0):
                    end += 1
                text = Text.parse(data[pos:end])
                kind = "urn" if text[:4].lower() == "urn:" else (
                    "xml" if text[:1] in ("<", "{") else "text")
                part = Container(kind=kind, text=text)
            part.separator = None
            if end < len(data) and data[end] in (FILE_SEPARATOR, 0):
                part.separator = data[end]
                end += 1
            parts.append(part)
            pos = end
        construct.stream_seek(stream, start + len(data), 0, path)
        return parts

    def _build(self, obj: Any, stream: Any, context: Any, path: str) -> Any:
        out = bytearray()
        for part in obj or ():
            if part["kind"] == "ggep":
                out += GgepBlock.build(part["extensions"])
            else:
                text = Text.build(part["text"])
                if FILE_SEPARATOR in text or 0 in text or text[:1] == bytes([GGEP_MAGIC]):
                    raise construct.ExplicitError(
                        "legacy extension contains 0x1C or 0x00 or starts with 0xC3", path=path)
                out += text
            separator = part.get("separator")
            if separator is not None:
                out.append(separator)
        construct.stream_write(stream, bytes(out), len(out), path)
        return obj

    def _sizeof(self, context: Any, path: str) -> int:
        raise construct.SizeofError("extension blocks have no fixed size", path=path)


GgepBlockBody = _GgepBlock()
#: One GGEP block (see the module docstring for real bytes).
GgepBlock = Schema(GgepBlockBody, protocol=PROTOCOL, name="ggep_block")
#: An extension block: GGEP, HUGE urns, XML, kept in order with their separators.
ExtensionBlock = Schema(_ExtensionBlock(), protocol=PROTOCOL, name="extension_block")
ExtensionBlock.fast_parse = _fast_extension_block
