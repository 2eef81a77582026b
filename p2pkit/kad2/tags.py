"""eMule tags and tag lists, as Kad2 packets carry them (aMule ``src/SafeFile.cpp``
``CFileDataIO::ReadTag``, ``src/include/tags/TagTypes.h``, ``src/include/tags/FileTags.h``).

A tag is ``<type 1><name length 2><name><value>``, little-endian; Kad writes names as strings
(usually one byte: ``\\x01`` is ``TAG_FILENAME``). A tag list is a one-byte count and that many
tags. The value's layout depends on the type (``TAGTYPE_HASH16`` 16 bytes, ``TAGTYPE_STRING``
a 16-bit length and UTF-8 text, integers of 8 to 64 bits, ``TAGTYPE_BSOB`` an 8-bit length and
bytes, ``TAGTYPE_BLOB`` a 32-bit length and bytes, ``TAGTYPE_STR1`` … ``STR22`` text of 1 to
22 bytes whose length is the type); an unknown type cannot be skipped, which aMule reports as
"Invalid Kad tag type" and so do these schemas.

Every length is bounded before anything is read: ``MAX_TAG_NAME``, ``MAX_TAG_VALUE``.

>>> tag = Tag.parse(bytes.fromhex("09" "0100" "f2" "04"))
>>> str(tag.type), tag.name, tag.value
('uint8', 'TAG_KADMISCOPTIONS', 4)
>>> Tag.build(tag).hex()
'090100f204'
>>> TagList.parse(bytes.fromhex("01" "02" "0100" "01" "0300" "616263"))[0].value
'abc'
"""

from __future__ import annotations

import construct
from construct import (
    Adapter,
    Bytes,
    Float32l,
    Int8ul,
    Int16ul,
    Int32ul,
    Int64ul,
    PascalString,
    PrefixedArray,
    Struct,
    Switch,
    this,
)

from p2pkit.errors import LimitExceeded
from p2pkit.schema import Schema

__all__ = ["MAX_TAG_NAME", "MAX_TAG_VALUE", "TAG_NAMES", "TAG_TYPES", "PROTOCOL", "Tag",
           "TagList", "TagName", "TagType"]

#: The registry name of eMule Kad (shared by every Kad2 schema).
PROTOCOL = "emule-kad"
#: Longest tag name accepted (bytes); aMule's names are one byte, eMule's longest few dozen.
MAX_TAG_NAME = 256
#: Longest variable-length tag value accepted (bytes): a UDP datagram holds at most 65,507.
MAX_TAG_VALUE = 65_507

#: ``src/include/tags/TagTypes.h``: tag type byte -> name.
TAG_TYPES = {
    0x01: "hash16", 0x02: "string", 0x03: "uint32", 0x04: "float32", 0x05: "bool",
    0x06: "bool_array", 0x07: "blob", 0x08: "uint16", 0x09: "uint8", 0x0A: "bsob",
    0x0B: "uint64",
    **{0x10 + n: f"str{n}" for n in range(1, 23)},
}

#: ``src/include/tags/FileTags.h`` ("Kad search + some unused tags"): one-byte names -> names.
TAG_NAMES = {
    0x01: "TAG_FILENAME", 0x02: "TAG_FILESIZE", 0x03: "TAG_FILETYPE", 0x04: "TAG_FILEFORMAT",
    0x05: "TAG_COLLECTION", 0x06: "TAG_PART_PATH", 0x07: "TAG_PART_HASH", 0x08: "TAG_COPIED",
    0x09: "TAG_GAP_START", 0x0A: "TAG_GAP_END", 0x0B: "TAG_DESCRIPTION", 0x0C: "TAG_PING",
    0x0D: "TAG_FAIL", 0x0E: "TAG_PREFERENCE", 0x0F: "TAG_PORT", 0x10: "TAG_IP_ADDRESS",
    0x11: "TAG_VERSION", 0x12: "TAG_TEMPFILE", 0x13: "TAG_PRIORITY", 0x14: "TAG_STATUS",
    0x15: "TAG_SOURCES", 0x16: "TAG_PERMISSIONS", 0x17: "TAG_PARTS", 0x33: "TAG_PUBLISHINFO",
    0x3A: "TAG_FILESIZE_HI", 0xD0: "TAG_MEDIA_ARTIST", 0xD1: "TAG_MEDIA_ALBUM",
    0xD2: "TAG_MEDIA_TITLE", 0xD3: "TAG_MEDIA_LENGTH", 0xD4: "TAG_MEDIA_BITRATE",
    0xD5: "TAG_MEDIA_CODEC", 0xF2: "TAG_KADMISCOPTIONS", 0xF3: "TAG_ENCRYPTION",
    0xF7: "TAG_FILERATING", 0xF8: "TAG_BUDDYHASH", 0xF9: "TAG_CLIENTLOWID",
    0xFA: "TAG_SERVERPORT", 0xFB: "TAG_SERVERIP", 0xFC: "TAG_SOURCEUPORT",
    0xFD: "TAG_SOURCEPORT", 0xFE: "TAG_SOURCEIP", 0xFF: "TAG_SOURCETYPE",
}
_NAME_IDS = {name: code for code, name in TAG_NAMES.items()}


class _Bounded(construct.Subconstruct):
    """A length field that refuses values above ``limit`` before the bytes are read."""

    def __init__(self, subcon: construct.Construct, limit: int, what: str) -> None:
        super().__init__(subcon)
        self.limit, self.what = limit, what

    def _parse(self, stream, context, path):
        value = self.subcon._parsereport(stream, context, path)
        if value > self.limit:
            raise LimitExceeded(f"{self.what} of {value} bytes is above the bound of "
                                f"{self.limit}", protocol=PROTOCOL, path=path,
                                offset=construct.stream_tell(stream, path) - self.subcon.sizeof())
        return value


def _length(width: construct.Construct, limit: int, what: str) -> construct.Construct:
    return _Bounded(width, limit, what)


class _TagNameAdapter(Adapter):
    """A one-byte name aMule knows is shown by its constant's name (``TAG_FILENAME``); other
    names as text (latin-1: names are bytes on the wire)."""

    def _decode(self, obj, context, path):
        if len(obj) == 1 and obj[0] in TAG_NAMES:
            return TAG_NAMES[obj[0]]
        return obj.decode("latin-1")

    def _encode(self, obj, context, path):
        if obj in _NAME_IDS:
            return bytes([_NAME_IDS[obj]])
        return obj.encode("latin-1")


# fmt: off
#: Tag type byte, by name (:data:`TAG_TYPES`).
TagType = construct.Enum(Int8ul, **{name: code for code, name in TAG_TYPES.items()})
#: ``<length 2><name>``: the tag's name.
TagName = _TagNameAdapter(construct.Prefixed(_length(Int16ul, MAX_TAG_NAME, "tag name"),
                                             construct.GreedyBytes))
_Text16 = PascalString(_length(Int16ul, MAX_TAG_VALUE, "string tag"), "utf8")

_VALUES = {
    "hash16":     Bytes(16),
    "string":     _Text16,
    "uint32":     Int32ul,
    "float32":    Float32l,
    "bool":       Int8ul,
    "bool_array": Struct("bits" / Int16ul, "data" / Bytes((this.bits + 7) // 8)),
    "blob":       construct.Prefixed(_length(Int32ul, MAX_TAG_VALUE, "blob tag"),
                                     construct.GreedyBytes),
    "uint16":     Int16ul,
    "uint8":      Int8ul,
    "bsob":       construct.Prefixed(Int8ul, construct.GreedyBytes),
    "uint64":     Int64ul,
    **{f"str{n}": construct.PaddedString(n, "utf8") for n in range(1, 23)},
}

#: One eMule tag: ``<type 1><name><value>`` (``CFileDataIO::ReadTag``).
Tag = Schema(Struct(
    "type" / TagType,
    "name" / TagName,
    "value" / Switch(this.type, _VALUES,
                     default=construct.Error),
), protocol=PROTOCOL, name="Tag")

#: ``<count 1><tag>*count`` (``CFileDataIO::ReadTagPtrList``).
TagList = Schema(PrefixedArray(Int8ul, Tag), protocol=PROTOCOL, name="TagList")
# fmt: on
