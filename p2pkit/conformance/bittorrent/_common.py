"""Building blocks of the BitTorrent peer-wire catalog: what the harness knows of the torrent,
the peer wire as a :class:`~p2pkit.conformance.stream_runner.StreamProtocol`, and the steps
most cases open with.

The target seeds a torrent the harness was given (``--torrent F``: info-hash, piece count,
piece lengths, piece hashes, metadata; ``--magnet M``: the info-hash only). Templates are
:class:`~p2pkit.conformance.case.Wire` messages built with the strict schemas
(:data:`~p2pkit.bittorrent.wire.messages.Handshake`,
:data:`~p2pkit.bittorrent.wire.messages.PeerMessage`); what the target sends is framed by
``MessageFramer`` (lenient: unknown ids are kept) and
extended messages are decoded with the ids the harness offered in its BEP 10 handshake.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from p2pkit import bencode
from p2pkit.bittorrent.peer.storage import PieceMap
from p2pkit.bittorrent.wire.extensions import decode_extended, encode_extended
from p2pkit.bittorrent.wire.framer import MessageFramer
from p2pkit.bittorrent.wire.magnet import MagnetLink
from p2pkit.bittorrent.wire.messages import Handshake, PeerMessage, PeerMessageLenient
from p2pkit.bittorrent.wire.metainfo import BLOCK_SIZE, Metainfo
from p2pkit.conformance.case import INFO_HASH, PEER_ID, Case, Computed, Step, Wire
from p2pkit.conformance.runner import CaseContext, flatten
from p2pkit.conformance.stream_runner import Session, StreamProtocol
from p2pkit.conformance.stream_verifiers import Receives, SessionRule
from p2pkit.deviations import DEVIATIONS
from p2pkit.errors import P2PKitError

__all__ = [
    "AVAILABILITY",
    "BitTorrentWire",
    "BtContext",
    "HARNESS_EXTENSIONS",
    "TorrentFacts",
    "bt_case",
    "handshake",
    "opening",
]

#: The BEP 10 ``m`` the harness offers: the ids the target must use when it sends us these
#: extensions (deliberately not libtorrent's or p2pkit's own numbers).
HARNESS_EXTENSIONS = {"ut_metadata": 7, "ut_pex": 9}
_HARNESS_NAMES = {mid: name for name, mid in HARNESS_EXTENSIONS.items()}
#: Messages that tell what a peer has (BEP 3 bitfield, BEP 6 have_all/have_none).
AVAILABILITY = ("bitfield", "have_all", "have_none")
#: The harness's peer id prefix (Azureus style, as BEP 20 suggests).
PEER_ID_PREFIX = b"-PKCONF-"
#: Every case that opens with a handshake depends on the target's handshake being readable.
HANDSHAKE_RULE = "bep3/handshake/pstr"


@dataclass(frozen=True)
class TorrentFacts:
    """What the harness knows of the torrent the target serves."""

    info_hash: bytes
    metainfo: Metainfo | None = None

    @classmethod
    def from_torrent(cls, data: bytes) -> TorrentFacts:
        meta = Metainfo.parse(data)
        return cls(info_hash=meta.info_hash, metainfo=meta)

    @classmethod
    def from_file(cls, path: str | Path) -> TorrentFacts:
        return cls.from_torrent(Path(path).read_bytes())

    @classmethod
    def from_magnet(cls, uri: str) -> TorrentFacts:
        link = MagnetLink.parse(uri)
        info_hash = link.info_hash_v1 or link.info_hash_v2[:20]
        return cls(info_hash=info_hash)

    @property
    def known(self) -> bool:
        return self.metainfo is not None

    @property
    def pieces(self) -> PieceMap:
        return _piece_map(self.metainfo)

    @property
    def piece_count(self) -> int:
        return self.metainfo.piece_count

    def piece_length(self, index: int) -> int:
        return self.pieces.piece_length(index)

    def request_limit(self, index: int) -> int:
        """How far into piece ``index`` a request may reach: the piece's length, except in a
        v2-only torrent, whose files are laid out on piece boundaries (BEP 52) so the last
        piece of a file may be requested up to the piece length, the bytes past the file's end
        being its zero padding (libtorrent 2.0 asks for them; p2pkit serves them)."""
        if not self.metainfo.has_v1:
            return self.metainfo.piece_length
        return self.piece_length(index)

    def blocks(self, index: int) -> list[tuple[int, int, int]]:
        """The 16 KiB blocks of piece ``index`` as (index, begin, length)."""
        size = self.piece_length(index)
        return [(index, begin, min(BLOCK_SIZE, size - begin))
                for begin in range(0, size, BLOCK_SIZE)]


_MAPS: dict[int, PieceMap] = {}


def _piece_map(meta: Metainfo) -> PieceMap:
    key = id(meta)
    if key not in _MAPS:
        _MAPS[key] = PieceMap(meta)
    return _MAPS[key]


class BtContext(CaseContext):
    """A case's fresh values: the torrent's info-hash, a fresh peer id, the session."""

    def __init__(self, case: Case, rng: random.Random, facts: TorrentFacts) -> None:
        super().__init__(case, rng)
        self.facts = facts
        self.info_hash = facts.info_hash
        self.peer_id = PEER_ID_PREFIX + rng.randbytes(12)
        self.session: Session | None = None
        #: The reserved bits of the harness's handshake, once sent, and whether the harness
        #: has said what it has (have_none) since.
        self.our_reserved: dict[str, Any] | None = None
        self.have_sent = False

    def their_extension(self, name: str) -> int:
        """The id the target's BEP 10 handshake gave ``name`` (KeyError when it gave none)."""
        m = self.session.state.get("m") or {}
        mid = m.get(name)
        if not isinstance(mid, int) or mid <= 0:
            raise KeyError(f"the target's extension handshake offers no {name}")
        return mid

    def their_handshake(self) -> dict[str, Any] | None:
        found = self.session.of_type("handshake") if self.session else []
        return found[0] if found else None


class BitTorrentWire(StreamProtocol):
    """The BitTorrent peer wire (BEP 3, 6, 9, 10, 11, 52) for the stream runner."""

    name = "bittorrent"
    dissector = "bittorrent"
    tree_aliases = {"type": ""}

    def __init__(self, facts: TorrentFacts) -> None:
        self.facts = facts

    def context(self, case: Case, rng: random.Random) -> BtContext:
        return BtContext(case, rng, self.facts)

    def framer(self) -> MessageFramer:
        return MessageFramer(handshake=True, strict=False)

    def decode(self, frame: Any, session: Session) -> dict[str, Any]:
        message = frame.message
        if "type" not in message:
            r = message.reserved
            return {"type": "handshake", "reserved": {k: v for k, v in r.items()
                                                      if not k.startswith("_")},
                    "info_hash": message.info_hash, "peer_id": message.peer_id,
                    "length": len(frame.data)}
        out = {k: v for k, v in message.items() if not k.startswith("_")}
        if out["type"] == "extended":
            out.update(_decode_extended(message.extended_id, message.payload, session))
        return out

    def encode(self, send: Any, ctx: BtContext) -> bytes:
        value = dict(ctx.resolve(send.message))
        kind = value.pop("type")
        if kind == "handshake":
            ctx.our_reserved = dict(value["reserved"])
            return Handshake.build(value)
        if kind == "extended" and isinstance(value.get("payload"), dict):
            name = value.pop("name", "handshake")
            value["payload"] = encode_extended(name, value["payload"])
        return PeerMessage.build(dict(type=kind, **value))

    def hello(self, ctx: BtContext) -> bytes:
        fields = _handshake_fields(ctx.info_hash, ctx.peer_id)
        ctx.our_reserved = fields["reserved"]
        return Handshake.build(fields)

    def respond(self, message: dict[str, Any], ctx: BtContext) -> bytes:
        """Once the target's handshake is in and both sides set the fast bit, the harness
        (which has nothing) says have_none: BEP 6 "Exactly one of *Have All*, *Have None*, or
        *Have Bitfield* MUST appear and only immediately after the handshake". Without the
        fast extension it skips the bitfield, as BEP 3 allows ("Downloaders which don't have
        anything yet may skip the 'bitfield' message")."""
        ours = getattr(ctx, "our_reserved", None)
        if message["type"] == "handshake" and ours and ours.get("fast") and \
                message["reserved"].get("fast") and not ctx.have_sent:
            ctx.have_sent = True
            return PeerMessage.build({"type": "have_none"})
        return b""

    def hello_text(self, ctx: BtContext) -> str:
        return f"info-hash {ctx.info_hash.hex()}: does the target serve this torrent?"

    def served(self, session: Session, ctx: BtContext) -> bool:
        return bool(session.of_type("handshake"))

    def unsupported(self, case: Case, ctx: BtContext) -> str | None:
        if "torrent" in case.tags and not self.facts.known:
            return "needs the torrent (--torrent F): piece count, lengths and hashes"
        if "v1" in case.tags and not (self.facts.known and self.facts.metainfo.has_v1):
            return "needs a v1 or hybrid torrent (SHA-1 piece hashes)"
        if "v2" in case.tags and not (self.facts.known and self.facts.metainfo.has_v2):
            return "needs a v2 or hybrid torrent (BEP 52)"
        theirs = ctx.their_handshake() if ctx.session else None
        if theirs is None or not case.extension:
            return None
        bits = theirs["reserved"]
        if case.extension == "BEP 5" and not bits.get("dht"):
            return "BEP 5: the target's handshake does not set the DHT bit"
        if case.extension == "BEP 6" and not bits.get("fast"):
            return "BEP 6: the target's handshake does not set the fast extension bit"
        if case.extension in ("BEP 9", "BEP 10", "BEP 11") and not bits.get(
                "extension_protocol"):
            return (f"{case.extension}: the target's handshake does not set the extension "
                    "protocol bit (BEP 10)")
        m = ctx.session.state.get("m")
        for bep, name in (("BEP 9", "ut_metadata"), ("BEP 11", "ut_pex")):
            if case.extension == bep and m is not None and not m.get(name):
                return f"{bep}: the target's extension handshake offers no {name}"
        return None

    def describe(self, data: bytes) -> list[tuple[str, str]]:
        rows: list[tuple[str, str]] = []
        framer = MessageFramer(handshake=data[:1] == b"\x13", strict=False)
        try:
            frames = framer.feed(data)
        except P2PKitError as e:
            return [("raw", f"{len(data)} bytes, not peer-wire messages ({e}): "
                            f"{data[:48]!r}")]
        session = Session()
        for i, frame in enumerate(frames[:16]):
            rows += flatten(self.decode(frame, session), str(i))
        if len(frames) > 16:
            rows.append(("…", f"{len(frames) - 16} more messages"))
        if framer.buffered:
            rows.append(("raw", f"{framer.buffered} bytes of an incomplete message"))
        return rows


def _decode_extended(extended_id: int, payload: bytes, session: Session) -> dict[str, Any]:
    if extended_id == 0:
        try:
            items = dict(decode_extended("handshake", payload, strict=False))
        except P2PKitError as e:
            return {"type": "extended_handshake", "error": str(e)}
        items.pop(DEVIATIONS, None)  # the departures are not fields
        m = items.get("m")
        if isinstance(m, dict):
            session.state.setdefault("m", {}).update(dict(m))
        try:
            raw = bencode.decode(payload, strict=False)
        except P2PKitError:
            raw = None
        return {"type": "extended_handshake", "items": items, "raw": raw}
    name = _HARNESS_NAMES.get(extended_id)
    if name is None:
        return {}
    try:
        decoded = dict(decode_extended(name, payload, strict=False))
    except P2PKitError as e:
        return {"type": name, "error": str(e)}
    decoded.pop(DEVIATIONS, None)
    return {"type": name, **decoded}


def _handshake_fields(info_hash: Any, peer_id: Any, *, fast: bool = True, ext: bool = True,
                      dht: bool = False, v2: bool = False, unknown: int = 0) -> dict[str, Any]:
    return {"reserved": dict(extension_protocol=ext, fast=fast, dht=dht, v2_upgrade=v2,
                             unknown=unknown),
            "info_hash": info_hash, "peer_id": peer_id}


def handshake(*, fast: bool = True, ext: bool = True, dht: bool = False, v2: bool = False,
              unknown: int = 0, info_hash: Any = INFO_HASH, expect: Any = None) -> Step:
    """The harness's handshake; by default the target's handshake must come back (and the
    harness then says what it has: :meth:`BitTorrentWire.respond`)."""
    message = {"type": "handshake", **_handshake_fields(info_hash, PEER_ID, fast=fast, ext=ext,
                                                         dht=dht, v2=v2, unknown=unknown)}
    return Step(send=Wire(message), name="handshake",
                expect=Receives("handshake") if expect is None else expect)


def first_after_handshake(session: Session) -> dict[str, Any] | None:
    """The target's first message after its handshake, its BEP 10 handshakes (which BEP 10
    says "should be sent immediately after the standard bittorrent handshake") aside."""
    seen = False
    for m in session.messages:
        if m["type"] == "handshake":
            seen = True
        elif seen and m["type"] not in ("extended_handshake", "keep_alive"):
            return m
    return None


def _first_message(answer: Any, ctx: Any) -> str | None:
    return "" if first_after_handshake(answer.session) is not None else None


def opening(*, fast: bool = True, ext: bool = True, v2: bool = False,
            extension_handshake: bool = False) -> list[Step]:
    """Handshake, then the target's first message (and its BEP 10 handshake, if asked)."""
    steps = [handshake(fast=fast, ext=ext, v2=v2),
             Step(send=None, name="first", expect=SessionRule(
                 _first_message, "the target's first message after the handshake",
                 pending="no message after the handshake"))]
    if extension_handshake:
        steps.append(Step(send=None, name="ext", expect=SessionRule(
            lambda a, ctx: "" if a.session.of_type("extended_handshake") else None,
            "the target's extension handshake", pending="no extension handshake")))
    return steps


def wire(kind: str, **fields: Any) -> Wire:
    return Wire({"type": kind, **fields})


def request(index: Any, begin: Any = 0, length: Any = BLOCK_SIZE) -> Wire:
    return wire("request", index=index, begin=begin, length=length)


def _is_unchoked(answer: Any, ctx: Any) -> str | None:
    state = [m["type"] for m in answer.session.messages if m["type"] in ("choke", "unchoke")]
    return "" if state and state[-1] == "unchoke" else None


#: Seconds to wait for an unchoke: a choker may wait for its next round, and BEP 3's changes
#: "who's choked once every ten seconds" (transmission 3.00 does).
UNCHOKE_WAIT = 11.0


def unchoked() -> Step:
    """Interested, then the target unchokes (a seeder with a free upload slot does at once,
    others at their next choke round; it may have unchoked the harness already, unasked)."""
    return Step(send=wire("interested"), name="unchoke", wait=UNCHOKE_WAIT, expect=SessionRule(
        _is_unchoked, "the target unchokes the harness", pending="no unchoke"))


def extended(name: str, payload: dict[str, Any]) -> Wire:
    """An extended message to the target, with the id its BEP 10 handshake gave ``name``."""
    return Wire({"type": "extended", "name": name,
                 "extended_id": Computed(lambda ctx: ctx.their_extension(name),
                                         f"their {name} id"),
                 "payload": payload})


def our_extension_handshake(**items: Any) -> Wire:
    return Wire({"type": "extended", "extended_id": 0,
                 "payload": {"m": dict(HARNESS_EXTENSIONS), "v": "p2pkit-conformance",
                             **items}})


LAST = Computed(lambda ctx: ctx.facts.piece_count - 1, "last piece")
COUNT = Computed(lambda ctx: ctx.facts.piece_count, "piece count")
LAST_LENGTH = Computed(lambda ctx: ctx.facts.piece_length(ctx.facts.piece_count - 1),
                       "last piece's length")
#: How far into the last piece a request may reach (:meth:`TorrentFacts.request_limit`).
LAST_LIMIT = Computed(lambda ctx: ctx.facts.request_limit(ctx.facts.piece_count - 1),
                      "last piece's request limit")


def piece_while_choked(session: Session, exempt: set[int] = frozenset()) -> dict | None:
    """The first piece the target sent while it was choking the harness (it starts choking:
    BEP 3 "Connections start out choked"), ``exempt`` pieces (allowed fast) aside."""
    choking = True
    for m in session.messages:
        if m["type"] in ("choke", "unchoke"):
            choking = m["type"] == "choke"
        elif m["type"] == "piece" and choking and m["index"] not in exempt:
            return m
    return None


def piece_sha1(session: Session, index: int, length: int) -> bytes | None:
    """The SHA-1 of piece ``index`` from the piece messages received, once complete."""
    data = bytearray(length)
    got = 0
    for m in session.of_type("piece"):
        if m["index"] == index and m["begin"] + len(m["piece"]) <= length:
            data[m["begin"]:m["begin"] + len(m["piece"])] = m["piece"]
            got += len(m["piece"])
    return hashlib.sha1(bytes(data)).digest() if got >= length else None


def bt_case(*, needs_handshake: bool = True, **fields: Any) -> Case:
    """A :class:`Case` whose id is prefixed with ``bittorrent/``. A case depends on the
    target's handshake being readable (``needs_handshake``): without it neither the case nor
    the well-behaved session that proves the target still serves can be judged."""
    fields["id"] = "bittorrent/" + fields["id"]
    fields["steps"] = tuple(fields["steps"])
    if fields["rule"] != HANDSHAKE_RULE and needs_handshake:
        fields["depends"] = (*fields.get("depends", ()), HANDSHAKE_RULE)
    return Case(**fields)


def decode_requests(data: bytes) -> list[Any]:
    """The messages of a byte string of frames (tests and reports)."""
    return [PeerMessageLenient.parse(f.data) for f in MessageFramer(handshake=False,
                                                                     strict=False).feed(data)]
