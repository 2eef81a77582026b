"""Content identifiers, CIDv0 and CIDv1, binary and text (multiformats-cid.md).

Binary: ``<cidv1> ::= <0x01><content-type multicodec><multihash>`` (§How does it work?);
CIDv0 is a bare sha2-256 multihash, "34 bytes long with the leading bytes [0x12, 0x20, ...]",
whose content type is implicitly dag-pb (§Versions). Text: CIDv1 is multibase-encoded (base32
lower case by default), CIDv0 is base58btc without a prefix, "46 characters long and starts
with Qm" (§Decoding Algorithm).

>>> c = Cid.decode("QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn")
>>> c.version, c.codec_name
(0, 'dag-pb')
>>> str(c.to_v1())
'bafybeiczsscdsbs7ffqz55asqdf3smv6klcw3gofszvwlyarci47bgf354'
>>> Cid.decode(b"\\x01\\x55\\x12")  # doctest: +ELLIPSIS
Traceback (most recent call last):
  ...
p2pkit.errors.ParseError: cid, field multihash -> digest, offset 3: truncated...
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import construct
from construct import Struct

from p2pkit.errors import BuildError, ParseError
from p2pkit.ipfs import multibase
from p2pkit.ipfs.multicodec import CODES, name_of
from p2pkit.ipfs.multihash import Multihash, MultihashField, digest, verify
from p2pkit.ipfs.varint import UnsignedVarintField
from p2pkit.schema import Schema

__all__ = ["Cid", "CidBinary", "CidV1", "DAG_PB", "RAW"]

#: Content types (multicodec, tag ipld) named by CIDs in the stack.
DAG_PB = CODES["dag-pb"]
RAW = CODES["raw"]
_SHA2_256 = CODES["sha2-256"]


# fmt: off
#: A binary CIDv1 (§How does it work?).
CidV1 = Struct(
    "version" / construct.Const(1, UnsignedVarintField) * "multicodec cidv1 (0x01)",
    "codec" / UnsignedVarintField * "content type: a multicodec of tag ipld (0x70 dag-pb, 0x55 raw)",
    "multihash" / MultihashField * "hash of the addressed bytes",
)
# fmt: on


class _CidBinary(construct.Construct):
    """A binary CID, either version: a first byte 0x12 (sha2-256) is a CIDv0 multihash
    (§Decoding Algorithm, step 2), anything else a CIDv1. Parses to
    ``Container(version, codec, multihash)``."""

    def _parse(self, stream: Any, context: Any, path: str) -> Any:
        first = construct.stream_read(stream, 1, path)
        stream.seek(-1, 1)
        if first[0] == _SHA2_256:
            mh = MultihashField._parsereport(stream, context, path + " -> multihash")
            if len(mh.digest) != 32:
                raise ParseError("a CIDv0 is a 32-byte sha2-256 multihash",
                                 path="multihash -> digest")
            return construct.Container(version=0, codec=DAG_PB, multihash=mh)
        return CidV1._parsereport(stream, context, path)

    def _build(self, obj: Any, stream: Any, context: Any, path: str) -> Any:
        if obj["version"] == 0:
            return MultihashField._build(obj["multihash"], stream, context, path)
        return CidV1._build(obj, stream, context, path)

    def _sizeof(self, context: Any, path: str) -> int:
        raise construct.SizeofError("variable-length CID", path=path)


#: A binary CID of either version.
CidBinary = Schema(_CidBinary(), protocol="cid")


@dataclass(frozen=True)
class Cid:
    """A content identifier: ``version`` (0 or 1), ``codec`` (multicodec) and ``multihash``
    (its bytes)."""

    version: int
    codec: int
    multihash: bytes

    def __post_init__(self) -> None:
        # §Versions: "the multicodec is always dag-pb" and "always a full (length 32) sha256
        # hash" for CIDv0.
        if self.version == 0:
            if self.codec != DAG_PB or self.multihash[:2] != b"\x12\x20" or \
                    len(self.multihash) != 34:
                raise BuildError("a CIDv0 is dag-pb with a 32-byte sha2-256 multihash",
                                 protocol="cid")
        elif self.version != 1:
            raise BuildError(f"CID version {self.version} is reserved", protocol="cid")

    # -- constructors ------------------------------------------------------------------------

    @classmethod
    def from_bytes(cls, data: bytes) -> Cid:
        """A binary CID (nothing may follow it)."""
        parsed = CidBinary.parse(data)
        mh = Multihash.build(parsed.multihash)
        used = len(mh) + (0 if parsed.version == 0 else len(CidV1.build(
            {"codec": parsed.codec, "multihash": parsed.multihash})) - len(mh))
        if used != len(data):
            raise ParseError(f"{len(data) - used} bytes after the CID", protocol="cid",
                             offset=used)
        return cls(parsed.version, parsed.codec, mh)

    @classmethod
    def from_text(cls, text: str) -> Cid:
        """A CID in text: CIDv0 base58btc (``Qm…``) or multibase CIDv1."""
        if len(text) == 46 and text.startswith("Qm"):
            _, data = multibase.decode("z" + text)
            return cls.from_bytes(data)
        _, data = multibase.decode(text)
        if data[:1] == b"\x12":
            # §Decoding Algorithm: "If the first decoded byte is 0x12, return an error".
            raise ParseError("a multibase-encoded CIDv0 is not a CID", protocol="cid", offset=1)
        return cls.from_bytes(data)

    @classmethod
    def decode(cls, value: str | bytes) -> Cid:
        """:meth:`from_text` for ``str``, :meth:`from_bytes` for bytes."""
        return cls.from_text(value) if isinstance(value, str) else cls.from_bytes(value)

    @classmethod
    def of(cls, data: bytes, *, codec: str = "raw", version: int = 1,
           hash_function: str = "sha2-256") -> Cid:
        """The CID of ``data`` (the bytes of one block).

        >>> str(Cid.of(b"hello world"))
        'bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e'
        """
        return cls(version, CODES[codec], digest(hash_function, data))

    # -- views -------------------------------------------------------------------------------

    @property
    def codec_name(self) -> str:
        """The content type's multicodec name (``dag-pb``, ``raw``…)."""
        return name_of(self.codec)

    def __bytes__(self) -> bytes:
        return CidBinary.build({"version": self.version, "codec": self.codec,
                                "multihash": Multihash.parse(self.multihash)})

    def encode(self, base: str = "base32") -> str:
        """Text form: base58btc without prefix for CIDv0, multibase ``base`` for CIDv1."""
        if self.version == 0:
            return multibase.encode("base58btc", self.multihash)[1:]
        return multibase.encode(base, bytes(self))

    def __str__(self) -> str:
        return self.encode()

    def to_v1(self) -> Cid:
        """The same content as a CIDv1 (same codec and multihash)."""
        return Cid(1, self.codec, self.multihash)

    def to_v0(self) -> Cid:
        """The CIDv0 form; :class:`BuildError` unless dag-pb with a sha2-256 multihash."""
        return Cid(0, self.codec, self.multihash)

    def verify(self, block: bytes) -> bool:
        """Whether ``block`` hashes to this CID's multihash."""
        return verify(self.multihash, block)
