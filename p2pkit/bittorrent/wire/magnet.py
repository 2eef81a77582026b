"""Magnet URIs: BEP 9 §magnet URI format, BEP 53 (select-only), BEP 19 (``ws``).

BEP 9::

    v1: magnet:?xt=urn:btih:<info-hash>&dn=<name>&tr=<tracker-url>&x.pe=<peer-address>
    v2: magnet:?xt=urn:btmh:<tagged-info-hash>&dn=<name>&tr=<tracker-url>&x.pe=<peer-address>

"<info-hash> Is the info-hash hex encoded, for a total of 40 characters. For compatability with
existing links in the wild, clients should also support the 32 character base32 encoded
info-hash." "<tagged-info-hash> Is the multihash formatted, hex encoded full infohash" (``1220``
+ 64 hex digits: SHA2-256, 32 bytes). "'btmh' and 'btih' exact topics may exist in the same
magnet if they describe the same hybrid torrent." "``xt`` is the only mandatory parameter."

BEP 53: "``so=0,2,4,6-8`` means *select only* [...] Dashes mean inclusive ranges".

>>> link = MagnetLink.parse("magnet:?xt=urn:btih:8e3f4515b630cdb09dfc315577611036fc7ac773"
...                         "&dn=payload-02.bin&x.pe=127.0.0.2:6881&so=0,2,4-6")
>>> link.display_name, str(link.peers[0]), link.select_only
('payload-02.bin', '127.0.0.2:6881', (range(0, 1), range(2, 3), range(4, 7)))
>>> MagnetLink.parse(str(link)) == link
True
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import quote, unquote_plus

from p2pkit.errors import BuildError, LimitExceeded, ParseError

if TYPE_CHECKING:
    from p2pkit.bittorrent.wire.metainfo import Metainfo

__all__ = ["MAX_MAGNET_LENGTH", "MagnetLink", "PeerAddress"]

PROTOCOL = "magnet"
#: Longest magnet URI accepted (checked before splitting it).
MAX_MAGNET_LENGTH = 64 * 1024
#: Highest file index accepted in ``so`` (BEP 53 sets no bound; this keeps ranges sane).
MAX_FILE_INDEX = 2**31 - 1
#: Multihash prefix of a SHA2-256 digest of 32 bytes (code 0x12, length 0x20).
SHA256_MULTIHASH = bytes([0x12, 0x20])

_SAFE = "/:@!$'()*,;=[]"  # kept as is inside parameter values (RFC 3986 pchar minus & + #)
_HOST_PORT = re.compile(r"^(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[^:\[\]]+)):(?P<port>[0-9]+)$")
_RANGE = re.compile(r"^(?P<first>[0-9]+)(?:-(?P<last>[0-9]+))?$")


@dataclass(frozen=True, kw_only=True)
class PeerAddress:
    """BEP 9 ``x.pe``: "``hostname:port``, ``ipv4-literal:port`` or ``[ipv6-literal]:port``".

    >>> str(PeerAddress(host="::1", port=6881))
    '[::1]:6881'
    """

    host: str
    port: int

    def __post_init__(self) -> None:
        if not 0 < self.port < 65536:
            raise BuildError(f"port {self.port} is not in 1..65535", protocol=PROTOCOL,
                             path="x.pe")
        if not self.host:
            raise BuildError("empty host", protocol=PROTOCOL, path="x.pe")

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True, kw_only=True)
class MagnetLink:
    """A BitTorrent magnet link. At least one of the info-hashes is set (BEP 9: ``xt``)."""

    #: ``xt=urn:btih:`` — the 20-byte SHA-1 info-hash.
    info_hash_v1: bytes | None = None
    #: ``xt=urn:btmh:1220…`` — the 32-byte SHA-256 info-hash.
    info_hash_v2: bytes | None = None
    #: ``dn``: "the display name that may be used by the client to display while waiting for
    #: metadata".
    display_name: str | None = None
    #: ``tr``: tracker URLs, in order.
    trackers: tuple[str, ...] = ()
    #: ``ws``: web seeds (BEP 19).
    web_seeds: tuple[str, ...] = ()
    #: ``x.pe``: peers to fetch the metadata from directly.
    peers: tuple[PeerAddress, ...] = ()
    #: ``so`` (BEP 53): file indices to download, as ranges.
    select_only: tuple[range, ...] = ()
    #: ``xl``: exact length of the content in bytes.
    exact_length: int | None = None
    #: Parameters this module does not interpret, kept in order for a faithful rebuild.
    extra: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if self.info_hash_v1 is None and self.info_hash_v2 is None:
            raise BuildError("a magnet link needs an info-hash (xt)", protocol=PROTOCOL,
                             path="xt")
        if self.info_hash_v1 is not None and len(self.info_hash_v1) != 20:
            raise BuildError("a v1 info-hash is 20 bytes", protocol=PROTOCOL, path="xt")
        if self.info_hash_v2 is not None and len(self.info_hash_v2) != 32:
            raise BuildError("a v2 info-hash is 32 bytes", protocol=PROTOCOL, path="xt")
        for r in self.select_only:
            if not isinstance(r, range) or r.step != 1 or not 0 <= r.start < r.stop:
                raise BuildError(f"select-only entry {r!r} is not a non-empty range",
                                 protocol=PROTOCOL, path="so")
        if self.exact_length is not None and self.exact_length < 0:
            raise BuildError("exact length is negative", protocol=PROTOCOL, path="xl")

    def selects(self, index: int) -> bool:
        """Whether file ``index`` is to be downloaded (all are when ``so`` is absent)."""
        return not self.select_only or any(index in r for r in self.select_only)

    def __str__(self) -> str:
        return self.to_uri()

    def to_uri(self) -> str:
        """The URI: ``xt`` first (btih, then btmh), then dn, tr, ws, x.pe, so, xl, the rest.

        >>> MagnetLink(info_hash_v1=bytes(20), display_name="a b").to_uri()
        'magnet:?xt=urn:btih:0000000000000000000000000000000000000000&dn=a%20b'
        """
        params: list[tuple[str, str]] = []
        if self.info_hash_v1 is not None:
            params.append(("xt", "urn:btih:" + self.info_hash_v1.hex()))
        if self.info_hash_v2 is not None:
            params.append(("xt", "urn:btmh:" + (SHA256_MULTIHASH + self.info_hash_v2).hex()))
        if self.display_name is not None:
            params.append(("dn", self.display_name))
        params += [("tr", t) for t in self.trackers]
        params += [("ws", w) for w in self.web_seeds]
        params += [("x.pe", str(p)) for p in self.peers]
        if self.select_only:
            params.append(("so", ",".join(
                str(r.start) if len(r) == 1 else f"{r.start}-{r.stop - 1}"
                for r in self.select_only)))
        if self.exact_length is not None:
            params.append(("xl", str(self.exact_length)))
        params += list(self.extra)
        try:
            return "magnet:?" + "&".join(f"{k}={quote(v, safe=_SAFE)}" for k, v in params)
        except UnicodeEncodeError as e:
            raise BuildError(f"text that is not encodable as UTF-8: {e.reason}",
                             protocol=PROTOCOL) from None

    @classmethod
    def from_metainfo(cls, meta: Metainfo, *, peers: Iterable[PeerAddress] = ()) -> MagnetLink:
        """The magnet of a torrent: its info-hashes, name, trackers (all tiers) and web seeds.

        >>> from pathlib import Path
        >>> from p2pkit.bittorrent.wire.metainfo import Metainfo
        >>> data = (Path(__file__).parents[2] / "data" / "libtorrent-v2.torrent").read_bytes()
        >>> MagnetLink.from_metainfo(Metainfo.parse(data)).to_uri()[:29]
        'magnet:?xt=urn:btmh:122053a4c'
        """
        trackers: list[str] = []
        for tier in meta.trackers:
            trackers += [t for t in tier if t not in trackers]
        return cls(info_hash_v1=meta.info_hash_v1, info_hash_v2=meta.info_hash_v2,
                   display_name=meta.name or None, trackers=tuple(trackers),
                   web_seeds=meta.web_seeds, peers=tuple(peers))

    @classmethod
    def parse(cls, uri: str) -> MagnetLink:
        """Parse a magnet URI; errors name the parameter and its character offset in ``uri``."""
        if not isinstance(uri, str):
            raise ParseError(f"expected a string, got {type(uri).__name__}", protocol=PROTOCOL)
        if len(uri) > MAX_MAGNET_LENGTH:
            raise LimitExceeded(f"magnet URI of {len(uri)} characters is longer than "
                                f"{MAX_MAGNET_LENGTH}", protocol=PROTOCOL, offset=0)
        if not uri[:8].lower() == "magnet:?":
            raise ParseError("does not start with 'magnet:?'", protocol=PROTOCOL, offset=0)
        v1: bytes | None = None
        v2: bytes | None = None
        display_name: str | None = None
        trackers: list[str] = []
        web_seeds: list[str] = []
        peers: list[PeerAddress] = []
        select_only: tuple[range, ...] = ()
        exact_length: int | None = None
        extra: list[tuple[str, str]] = []
        offset = 8
        for part in uri[8:].split("&"):
            at = offset
            offset += len(part) + 1
            if not part:
                continue
            key, eq, raw = part.partition("=")
            if not eq:
                raise ParseError(f"parameter {key!r} has no '='", protocol=PROTOCOL,
                                 path=key, offset=at)
            name = key.lower()
            try:
                value = unquote_plus(raw, errors="strict")
                if name == "xt" or name.startswith("xt."):
                    topic = _exact_topic(value)
                    if topic is None:
                        extra.append((key, value))
                    elif len(topic) == 20:
                        v1 = _set_once(v1, topic, "btih")
                    else:
                        v2 = _set_once(v2, topic, "btmh")
                elif name == "dn":
                    display_name = value
                elif name == "tr" or name.startswith("tr."):
                    trackers.append(value)
                elif name == "ws":
                    web_seeds.append(value)
                elif name == "x.pe":
                    peers.append(_peer(value))
                elif name == "so":
                    select_only = _select_only(value)
                elif name == "xl":
                    if not (value.isascii() and value.isdigit()):
                        raise ValueError(f"exact length {value!r} is not a number")
                    exact_length = int(value)
                else:
                    extra.append((key, value))
            except (ValueError, BuildError) as e:
                reason = e.reason if isinstance(e, BuildError) else str(e)
                raise ParseError(reason, protocol=PROTOCOL, path=key,
                                 offset=at + len(key) + 1) from None
        if v1 is None and v2 is None:
            raise ParseError("no BitTorrent exact topic (xt=urn:btih: or urn:btmh:)",
                             protocol=PROTOCOL, path="xt", offset=8)
        return cls(info_hash_v1=v1, info_hash_v2=v2, display_name=display_name,
                   trackers=tuple(trackers), web_seeds=tuple(web_seeds), peers=tuple(peers),
                   select_only=select_only, exact_length=exact_length, extra=tuple(extra))


def _set_once(previous: bytes | None, topic: bytes, kind: str) -> bytes:
    """BEP 9 allows one btih and one btmh (a hybrid torrent); two different ones conflict."""
    if previous is not None and previous != topic:
        raise ValueError(f"two different urn:{kind} exact topics")
    return topic


def _exact_topic(value: str) -> bytes | None:
    """The info-hash in ``urn:btih:`` (hex or base32) or ``urn:btmh:`` (multihash), else None."""
    lower = value.lower()
    if lower.startswith("urn:btih:"):
        text = value[9:]
        if len(text) == 40:
            try:
                return bytes.fromhex(text)
            except ValueError:
                raise ValueError("btih is not 40 hex digits") from None
        if len(text) == 32:
            try:
                return base64.b32decode(text.upper())
            except (binascii.Error, ValueError):
                raise ValueError("btih is not 32 base32 characters") from None
        raise ValueError(f"btih of {len(text)} characters (40 hex or 32 base32 expected)")
    if lower.startswith("urn:btmh:"):
        try:
            multihash = bytes.fromhex(value[9:])
        except ValueError:
            raise ValueError("btmh is not hex") from None
        if multihash[:2] != SHA256_MULTIHASH or len(multihash) != 34:
            raise ValueError("btmh is not a SHA2-256 multihash (1220 + 64 hex digits)")
        return multihash[2:]
    return None


def _peer(value: str) -> PeerAddress:
    m = _HOST_PORT.match(value)
    if not m:
        raise ValueError(f"peer address {value!r} is not host:port or [ipv6]:port")
    return PeerAddress(host=m["v6"] or m["host"], port=int(m["port"]))


def _select_only(value: str) -> tuple[range, ...]:
    ranges = []
    for item in value.split(","):
        m = _RANGE.match(item)
        if not m or not item.isascii():
            raise ValueError(f"select-only item {item!r} is not N or N-M")
        first = int(m["first"])
        last = int(m["last"]) if m["last"] is not None else first
        if last > MAX_FILE_INDEX:
            raise ValueError(f"file index {last} is larger than {MAX_FILE_INDEX}")
        if last < first:
            raise ValueError(f"select-only range {item!r} is empty")
        ranges.append(range(first, last + 1))
    return tuple(ranges)
