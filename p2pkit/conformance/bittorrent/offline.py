"""The peer-wire rules a capture can be judged by (BEP 3, 5, 6, 9, 10, 11, 52), offline.

The dissector (:mod:`p2pkit.bittorrent.dissect`) decodes both directions of every BitTorrent
connection with the lenient schemas; this module follows each connection's state through those
records (handshake bits, who chokes whom, what each side announced and requested) and judges
what each side *sent*: who sent what, which rule, which frame. Rule ids are the live catalog's
(``bep3/handshake/info-hash-echo``, ``bep6/enabled-by-both`` …, and the requirement each quotes
is the live case's constant), so a capture and a live run say the same thing about one peer.
A few rules judge what only a capture shows, the sender's side of an exchange the live harness
plays itself; their ids are new (``bep3/piece/requested``, ``bep9/piece-index``,
``bep11/flags``, ``bep52/hash-request/bounds``), documented in docs/conformance.md.

Rules that need the torrent's shape (piece count and length: bitfield size and spare bits,
request bounds, have index) use the metadata the capture itself carries (BEP 9 ``data``
pieces that hash to the connection's info-hash) or a torrent the caller gives; without either
they are not judged (``n/a``), never guessed. A connection whose handshakes were not captured
(a capture that starts mid-connection) is judged only by the rules that need no state.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from construct import Container

from p2pkit.bittorrent.dissect import METADATA_PIECE
from p2pkit.bittorrent.wire.bitfield import decode_bitfield
from p2pkit.bittorrent.wire.extensions import EXTENSION_MESSAGES_LENIENT, decode_extended
from p2pkit.bittorrent.wire.messages import PROTOCOL
from p2pkit.bittorrent.wire.metainfo import Metainfo
from p2pkit.conformance.bittorrent import (
    bep3_bitfield,
    bep3_choking,
    bep3_handshake,
    bep3_requests,
    bep6_fast,
    bep9_metadata,
    bep10_extension,
    bep11_pex,
    bep52_hashes,
)
from p2pkit.conformance.bittorrent._common import TorrentFacts
from p2pkit.deviations import Deviation
from p2pkit.errors import P2PKitError

__all__ = ["MAX_CONNECTIONS", "PEX_INTERVAL", "RULES", "PeerWireJudge", "PeerWireRule",
           "client_of", "judge_capture", "light", "torrent_facts"]

#: BEP 11: "no more than 1 PEX message per minute"; capture timestamps of two messages of one
#: sender may be a little closer than the sender's own clock had them.
PEX_INTERVAL = 60.0
PEX_SLACK = 0.5
#: Connections followed at once; the oldest is forgotten beyond (a capture of a busy host).
MAX_CONNECTIONS = 4096
#: Requests remembered per side of a connection (BEP 10 ``reqq`` values are in the hundreds).
MAX_REQUESTS = 4096
#: BEP 52: "Length SHOULD NOT be greater than 512."
MAX_HASH_REQUEST = 512
#: The dissector's ``undecoded`` reasons for a stream whose first bytes are no handshake.
UNREADABLE_OPENING = frozenset({"malformed"})
#: Metadata (BEP 9) gathered per sender to learn the torrent's shape, and senders at once.
MAX_METADATA = 16 << 20
MAX_METADATA_SENDERS = 64
#: Pieces remembered per side (announced by bitfield and have; a bitfield longer than this
#: many bits, of a torrent whose shape is unknown, is not read).
MAX_PIECES = 1 << 20
FAST_MESSAGES = frozenset(bep3_handshake.FAST_MESSAGES)
HASH_ANSWERS = ("hashes", "hash_reject")


@dataclass(frozen=True)
class PeerWireRule:
    """A peer-wire rule: the live catalog's rule id, level, spec and quoted requirement."""

    rule: str
    level: str
    spec: str
    title: str
    requirement: str


def _rule(rule: str, level: str, spec: str, title: str, requirement: str) -> PeerWireRule:
    return PeerWireRule(rule, level, spec, title, requirement)


BEP3 = "BEP 3 §peer protocol"
BEP3_MESSAGES = "BEP 3 §peer messages"
BEP6 = bep6_fast.SPEC
#: Every peer-wire rule, by id (the order of the report).
RULES: dict[str, PeerWireRule] = {r.rule: r for r in (
    _rule("bep3/handshake/pstr", "MUST", BEP3, "the handshake starts with 19 and the protocol "
          "string", bep3_handshake.PSTR),
    _rule("bep3/handshake/info-hash-echo", "MUST", BEP3, "the answering handshake carries the "
          "initiator's info-hash", bep3_handshake.ECHO),
    _rule("bep3/stream-framing", "MUST", BEP3, "every message is well formed (no MUST deviation)",
          bep3_handshake.FRAMING),
    _rule("bep10/handshake/dictionary", "MUST", bep10_extension.SPEC, "the extension "
          "handshake is a (canonically) bencoded dictionary", bep10_extension.DICTIONARY),
    _rule("bep6/enabled-by-both", "MUST", BEP6, "fast-extension messages only when both set "
          "reserved[7] & 0x04", bep3_handshake.FAST_ONLY_BOTH),
    _rule("bep10/enabled-by-both", "MUST", "BEP 10 §BitTorrent protocol", "extension messages "
          "only when both set reserved[5] & 0x10", bep3_handshake.EXT_BIT),
    _rule("bep5/port-message", "SHOULD", "BEP 5 §BitTorrent Protocol Extension", "port only "
          "from a peer that set the DHT bit", bep3_handshake.DHT_PORT),
    _rule("bep3/bitfield/first", "MUST", BEP3_MESSAGES, "a bitfield only as the first message",
          bep3_bitfield.ONLY_FIRST),
    _rule("bep3/bitfield/only-first", "MUST", BEP3_MESSAGES, "no second bitfield",
          bep3_bitfield.ONLY_FIRST),
    _rule("bep3/bitfield/size", "MUST", BEP3_MESSAGES, "the bitfield has ceil(pieces / 8) "
          "bytes", bep3_bitfield.LAYOUT),
    _rule("bep3/bitfield/spare-bits", "MUST", BEP3_MESSAGES, "spare bits are zero",
          bep3_bitfield.SPARE),
    _rule("bep6/have/only-first", "MUST", BEP6, "have_all/have_none only first, and no "
          "bitfield after them", bep6_fast.EXCLUSIVE),
    _rule("bep3/request/block-size", "SHOULD", BEP3_MESSAGES, "requests of at most 16 KiB",
          bep3_requests.LIMIT),
    _rule("bep3/request/index-bounds", "MUST", BEP3_MESSAGES, "requests within a piece of the "
          "torrent", bep3_requests.BY_INDEX),
    _rule("bep3/piece/requested", "MUST", BEP6, "a piece only for a block the other side "
          "requested", bep6_fast.UNREQUESTED_PIECE),
    _rule("bep3/choke/no-data-while-choked", "MUST", BEP3, "no piece while choking the other "
          "side (but for allowed_fast pieces)", bep3_choking.CHOKED),
    _rule("bep3/piece/announced", "MUST", BEP3_MESSAGES, "a piece only of a piece the sender "
          "announced", bep3_requests.CONTENT),
    _rule("bep3/have/index", "MUST", BEP3_MESSAGES, "have names a piece of the torrent",
          bep3_bitfield.HAVE),
    _rule("bep6/reject/unrequested", "SHOULD", BEP6, "reject_request only for a block the "
          "other side requested", bep6_fast.REJECT_NEVER_SENT),
    _rule("bep9/piece-index", "MUST", bep9_metadata.SPEC, "ut_metadata pieces within the "
          "metadata size", bep9_metadata.HEADER),
    _rule("bep9/data/total-size", "MUST", bep9_metadata.SPEC, "total_size equals the "
          "sender's metadata_size", bep9_metadata.TOTAL),
    _rule("bep9/data/piece-size", "MUST", bep9_metadata.SPEC, "data pieces are 16 KiB but the "
          "last", bep9_metadata.SIZE_16K),
    _rule("bep11/flags", "MUST", bep11_pex.SPEC, "one flag byte per added peer, a well-formed "
          "message", bep11_pex.FLAGS),
    _rule("bep11/rate", "MUST", bep11_pex.SPEC, "at most one ut_pex message a minute",
          bep11_pex.RATE),
    _rule("bep52/hash-request/bounds", "MUST", bep52_hashes.SPEC, "hash request length a power "
          "of two >= 2 dividing the index", bep52_hashes.LENGTH),
    _rule("bep52/hashes/correlate", "MUST", bep52_hashes.SPEC, "hashes and hash_reject answer "
          "a hash request", bep52_hashes.CORRELATE),
)}


def client_of(peer_id: bytes) -> str:
    """The client part of a peer id (BEP 20): Azureus style ``-LT2080-``, or the printable
    prefix of another style (``A2-1-36-0``, ``M7-4-0--``).

    >>> client_of(b"-LT2080-" + bytes(12)), client_of(b"A2-1-36-0-" + bytes(10))
    ('-LT2080-', 'A2-1-36-0')
    """
    if len(peer_id) >= 8 and peer_id[:1] == b"-" and peer_id[7:8] == b"-":
        return peer_id[:8].decode("latin-1")
    head = bytearray()
    for byte in peer_id[:12]:
        if not 0x21 <= byte < 0x7F:
            break
        head.append(byte)
    return head.decode("ascii").rstrip("-") or "?"


def torrent_facts(torrents: Iterable[Metainfo]) -> dict[bytes, TorrentFacts]:
    """Facts by the info-hash a handshake carries (v1, or the v2 hash truncated to 20)."""
    out: dict[bytes, TorrentFacts] = {}
    for meta in torrents:
        facts = TorrentFacts(info_hash=meta.info_hash, metainfo=meta)
        for key in (meta.info_hash_v1, meta.info_hash_v2_truncated):
            if key is not None:
                out[key] = facts
    return out


# -- connection state -------------------------------------------------------------------------


@dataclass
class Side:
    """One end of a connection, as its own messages show it."""

    endpoint: str
    handshake: Any = None
    #: Messages after the handshake (the BEP 10 handshake aside: it may precede the bitfield).
    messages: int = 0
    bitfield_sent: bool = False
    have_all_or_none: bool = False
    has_all: bool = False
    pieces: set[int] = field(default_factory=set)
    #: This side chokes the other (BEP 3: "Connections start out choked").
    choking: bool = True
    #: Pieces this side allowed the other to ask for while choked (BEP 6).
    allowed_fast: set[int] = field(default_factory=set)
    #: Blocks this side requested and were not answered yet.
    requests: set[tuple[int, int, int]] = field(default_factory=set)
    hash_requests: set[tuple[bytes, int, int, int, int]] = field(default_factory=set)
    metadata_size: int | None = None
    last_pex: float | None = None

    def bit(self, name: str) -> bool:
        return bool(self.handshake is not None and self.handshake.reserved.get(name))


@dataclass
class Connection:
    sides: dict[str, Side]
    info_hash: bytes | None = None
    #: Both handshakes seen: the state rules apply.
    complete: bool = False

    def other(self, endpoint: str) -> Side:
        return next(s for e, s in self.sides.items() if e != endpoint)


def _block(m: Any) -> tuple[int, int, int]:
    return (m.index, m.begin, m.length)


def _hash_key(m: Any) -> tuple[bytes, int, int, int, int]:
    return (bytes(m.pieces_root), m.base_layer, m.index, m.length, m.proof_layers)


Verdict = tuple[str, bool, str]


class PeerWireJudge:
    """Judges the ``bittorrent`` records of a capture, connection by connection.

    :meth:`judge` takes the records in frame order and returns, for each, the verdicts of the
    rules it falls under as ``(rule id, ok, reason)``; the torrent's shape comes from
    ``facts`` (by info-hash) and from BEP 9 metadata the capture carries, gathered in a first
    pass over the same records (:meth:`learn`)."""

    def __init__(self, facts: Mapping[bytes, TorrentFacts] | None = None) -> None:
        self.facts: dict[bytes, TorrentFacts] = dict(facts or {})
        self.connections: dict[tuple[str, frozenset[str]], Connection] = {}
        self._metadata: dict[tuple[str, int], dict[int, bytes]] = {}

    # -- the torrent's shape from the capture's own BEP 9 metadata ----------------------------

    def learn(self, record: Any) -> None:
        """First pass: gather each sender's ``ut_metadata`` data pieces; a whole info
        dictionary gives the shape of the torrent its SHA-1 (and truncated SHA-256) names, the
        info-hash of the connections that exchange it (BEP 9: "the info-hash verification";
        metadata that hashes to no connection's info-hash is never used)."""
        if record.protocol != PROTOCOL or record.fields.get("extension") != "ut_metadata":
            return
        message = self._extension(record)
        if message is None or str(message.get("msg_type")) != "data":
            return
        total, piece = message.get("total_size"), message.get("piece")
        if not (isinstance(total, int) and isinstance(piece, int)
                and 0 < total <= MAX_METADATA):
            return
        key = (record.src, total)
        if key not in self._metadata and len(self._metadata) >= MAX_METADATA_SENDERS:
            del self._metadata[next(iter(self._metadata))]
        pieces = self._metadata.setdefault(key, {})
        if len(pieces) * METADATA_PIECE <= MAX_METADATA:
            pieces[piece] = bytes(message.get("metadata") or b"")
        info = b"".join(pieces.get(p, b"") for p in range(-(-total // METADATA_PIECE)))
        if len(info) != total:
            return
        try:
            meta = Metainfo.parse_info(info)
        except P2PKitError:
            return
        self.facts.update({k: v for k, v in torrent_facts([meta]).items()
                           if k not in self.facts})
        del self._metadata[key]

    # -- the judging pass ----------------------------------------------------------------------

    def judge(self, record: Any) -> list[Verdict]:
        """The verdicts on one record (its sender's conduct)."""
        key = (record.transport, frozenset((record.src, record.dst)))
        conn = self.connections.get(key)
        if record.message == "handshake":
            if conn is None or conn.sides[record.src].handshake is not None:
                conn = self._new(key, record)
            return self._handshake(conn, conn.sides[record.src], record)
        if conn is None:
            conn = self._new(key, record)
        me = conn.sides[record.src]
        if record.message == "undecoded":
            return self._undecoded(conn, me, record)
        verdicts = self._deviations(record)
        handler = getattr(self, f"_on_{record.message}", None)
        if handler is not None:
            verdicts += handler(conn, me, conn.other(record.src), record.value, record)
        if record.message not in ("extended", "port", "keep_alive") or (
                record.message == "extended" and record.value.extended_id != 0):
            me.messages += 1
        return verdicts

    @staticmethod
    def _deviations(record: Any) -> list[Verdict]:
        """The MUST deviations the lenient decoders reported, under the rule of the layer
        they bend: an extension handshake's bencoding (BEP 10), a ``ut_pex`` message's items
        (:meth:`_ut_pex`), anything else (BEP 3 framing, ``ut_metadata`` items). An
        extension p2pkit has no schema for is not judged (that is the dissector's gap)."""
        name = record.fields.get("extension")
        if record.message == "extended" and name is not None \
                and name not in EXTENSION_MESSAGES_LENIENT:
            return []
        if name == "ut_pex":
            return []
        musts = [d for d in record.deviations if d.level == "MUST"]
        rule = "bep10/handshake/dictionary" if name == "handshake" else "bep3/stream-framing"
        return [(rule, not musts, "; ".join(d.message for d in musts[:2]))]

    def _new(self, key: tuple[str, frozenset[str]], record: Any) -> Connection:
        self.connections.pop(key, None)
        if len(self.connections) >= MAX_CONNECTIONS:
            del self.connections[next(iter(self.connections))]
        conn = Connection(sides={record.src: Side(record.src), record.dst: Side(record.dst)})
        self.connections[key] = conn
        return conn

    def _handshake(self, conn: Connection, me: Side, record: Any) -> list[Verdict]:
        me.handshake = record.value
        other = conn.other(record.src)
        verdicts: list[Verdict] = [("bep3/handshake/pstr", True, "")]
        if other.handshake is None:
            conn.info_hash = bytes(record.value.info_hash)
        else:
            # a handshake is only ever read at the start of a direction (after an MSE/PE
            # preamble at most): with both, the connection was captured from its start
            conn.complete = True
            echoed = bytes(record.value.info_hash) == conn.info_hash
            verdicts.append(("bep3/handshake/info-hash-echo", echoed, "" if echoed else
                             f"info-hash {bytes(record.value.info_hash).hex()}, the other "
                             f"side's was {(conn.info_hash or b'').hex()}"))
        return verdicts

    def _undecoded(self, conn: Connection, me: Side, record: Any) -> list[Verdict]:
        """An ``undecoded`` record of the dissector (its ``reason`` field names why)."""
        # a direction of a peer-wire connection that does not open with the handshake
        # (neither an MSE/PE key exchange nor a capture started mid-stream)
        if record.offset == 0 and record.fields.get("reason") in UNREADABLE_OPENING \
                and conn.other(record.src).handshake is not None:
            return [("bep3/handshake/pstr", False, f"{record.fields.get('bytes')} bytes that "
                     "are not a BitTorrent handshake open the stream")]
        return []

    def _shape(self, conn: Connection) -> TorrentFacts | None:
        facts = self.facts.get(conn.info_hash or b"")
        return facts if facts is not None and facts.known else None

    # -- availability (BEP 3 bitfield and have, BEP 6 have_all/have_none) ---------------------

    def _first(self, conn: Connection, me: Side, name: str) -> list[Verdict]:
        verdicts: list[Verdict] = []
        if not conn.complete:
            return verdicts
        if me.have_all_or_none:
            verdicts.append(("bep6/have/only-first", False,
                             f"{name} after have_all/have_none"))
        elif name == "bitfield" and me.bitfield_sent:
            verdicts.append(("bep3/bitfield/only-first", False, "a second bitfield"))
        elif me.messages:
            rule = "bep3/bitfield/first" if name == "bitfield" else "bep6/have/only-first"
            verdicts.append((rule, False, f"{name} after {me.messages} other messages"))
        else:
            verdicts.append(("bep3/bitfield/first" if name == "bitfield"
                             else "bep6/have/only-first", True, ""))
        return verdicts

    def _fast(self, conn: Connection, me: Side, other: Side, name: str) -> list[Verdict]:
        if not conn.complete:
            return []
        ok = me.bit("fast") and other.bit("fast")
        return [("bep6/enabled-by-both", ok, "" if ok else
                 f"{name} with the fast bit set by "
                 f"{'neither side' if not me.bit('fast') and not other.bit('fast') else 'one side only'}")]

    def _on_bitfield(self, conn: Connection, me: Side, other: Side, m: Any,
                     record: Any) -> list[Verdict]:
        verdicts = self._first(conn, me, "bitfield")
        me.bitfield_sent = True
        data = bytes(m.bitfield)
        facts = self._shape(conn)
        if facts is not None:
            count = facts.piece_count
            size_ok, spare = len(data) == -(-count // 8), 0
            verdicts.append(("bep3/bitfield/size", size_ok, "" if size_ok else
                             f"{len(data)} bytes for {count} pieces"))
            if size_ok:
                spare = count % 8 and data[-1] & (0xFF >> (count % 8))
                verdicts.append(("bep3/bitfield/spare-bits", not spare, "" if not spare else
                                 f"last byte {data[-1]:#04x} for {count} pieces"))
            if size_ok and not spare:
                me.pieces |= {i for i, has in enumerate(decode_bitfield(data, count)) if has}
        elif len(data) * 8 <= MAX_PIECES:
            me.pieces |= {i * 8 + b for i, byte in enumerate(data) for b in range(8)
                          if byte & (0x80 >> b)}
        return verdicts

    def _on_have_all(self, conn: Connection, me: Side, other: Side, m: Any,
                     record: Any) -> list[Verdict]:
        verdicts = self._fast(conn, me, other, "have_all") + self._first(conn, me, "have_all")
        me.have_all_or_none = me.has_all = True
        return verdicts

    def _on_have_none(self, conn: Connection, me: Side, other: Side, m: Any,
                      record: Any) -> list[Verdict]:
        verdicts = self._fast(conn, me, other, "have_none") + self._first(conn, me, "have_none")
        me.have_all_or_none = True
        return verdicts

    def _on_have(self, conn: Connection, me: Side, other: Side, m: Any,
                 record: Any) -> list[Verdict]:
        if len(me.pieces) < MAX_PIECES:
            me.pieces.add(m.index)
        facts = self._shape(conn)
        if facts is None:
            return []
        ok = m.index < facts.piece_count
        return [("bep3/have/index", ok, "" if ok else
                 f"have {m.index}, the torrent has {facts.piece_count} pieces")]

    # -- choking and transfer -----------------------------------------------------------------

    def _on_choke(self, conn: Connection, me: Side, other: Side, m: Any,
                  record: Any) -> list[Verdict]:
        me.choking = True
        if not (me.bit("fast") and other.bit("fast")):
            other.requests.clear()  # BEP 3: pending requests are dropped on choke
        return []

    def _on_unchoke(self, conn: Connection, me: Side, other: Side, m: Any,
                    record: Any) -> list[Verdict]:
        me.choking = False
        return []

    def _on_allowed_fast(self, conn: Connection, me: Side, other: Side, m: Any,
                         record: Any) -> list[Verdict]:
        me.allowed_fast.add(m.index)
        return self._fast(conn, me, other, "allowed_fast")

    def _on_suggest_piece(self, conn: Connection, me: Side, other: Side, m: Any,
                          record: Any) -> list[Verdict]:
        return self._fast(conn, me, other, "suggest_piece")

    def _on_request(self, conn: Connection, me: Side, other: Side, m: Any,
                    record: Any) -> list[Verdict]:
        verdicts: list[Verdict] = [("bep3/request/block-size", m.length <= 16384,
                                    "" if m.length <= 16384 else f"{m.length}-byte request")]
        facts = self._shape(conn)
        if facts is not None:
            inside = m.index < facts.piece_count and m.begin + m.length <= \
                facts.request_limit(m.index)
            verdicts.append(("bep3/request/index-bounds", inside, "" if inside else
                             f"request {_block(m)} outside the torrent's pieces"))
        if len(me.requests) < MAX_REQUESTS:
            me.requests.add(_block(m))
        return verdicts

    def _on_piece(self, conn: Connection, me: Side, other: Side, m: Any,
                  record: Any) -> list[Verdict]:
        block = (m.index, m.begin, record.length - 13)  # prefix, id, index, begin
        if not conn.complete:
            return []
        requested = block in other.requests
        other.requests.discard(block)
        verdicts: list[Verdict] = [("bep3/piece/requested", requested, "" if requested else
                                    f"piece {block} never requested")]
        while_choked = me.choking and m.index not in me.allowed_fast
        verdicts.append(("bep3/choke/no-data-while-choked", not while_choked,
                         "" if not while_choked else f"piece {block} while choking"))
        announced = me.has_all or m.index in me.pieces
        verdicts.append(("bep3/piece/announced", announced, "" if announced else
                         f"piece {m.index}, never announced"))
        return verdicts

    def _on_cancel(self, conn: Connection, me: Side, other: Side, m: Any,
                   record: Any) -> list[Verdict]:
        return []  # the request stays outstanding: a piece or reject may cross the cancel

    def _on_reject_request(self, conn: Connection, me: Side, other: Side, m: Any,
                           record: Any) -> list[Verdict]:
        verdicts = self._fast(conn, me, other, "reject_request")
        if conn.complete:
            requested = _block(m) in other.requests
            other.requests.discard(_block(m))
            verdicts.append(("bep6/reject/unrequested", requested, "" if requested else
                             f"reject_request {_block(m)} never requested"))
        return verdicts

    def _on_port(self, conn: Connection, me: Side, other: Side, m: Any,
                 record: Any) -> list[Verdict]:
        if not conn.complete:
            return []
        ok = me.bit("dht")
        return [("bep5/port-message", ok, "" if ok else "port without the DHT bit")]

    # -- BEP 52 --------------------------------------------------------------------------------

    def _on_hash_request(self, conn: Connection, me: Side, other: Side, m: Any,
                         record: Any) -> list[Verdict]:
        n = m.length
        ok = n >= 2 and not n & (n - 1) and m.index % n == 0 and n <= MAX_HASH_REQUEST
        if len(me.hash_requests) < MAX_REQUESTS:
            me.hash_requests.add(_hash_key(m))
        return [("bep52/hash-request/bounds", ok, "" if ok else
                 f"length {n} at index {m.index}")]

    def _hash_answer(self, conn: Connection, me: Side, other: Side, m: Any,
                     record: Any) -> list[Verdict]:
        if not conn.complete:
            return []
        key = _hash_key(m)
        ok = key in other.hash_requests
        other.hash_requests.discard(key)
        return [("bep52/hashes/correlate", ok, "" if ok else
                 f"{record.message} for index {m.index} length {m.length}, never requested")]

    _on_hashes = _on_hash_reject = _hash_answer

    # -- BEP 10 and its extensions -------------------------------------------------------------

    @staticmethod
    def _extension(record: Any) -> Any:
        name = record.fields.get("extension")
        if name is None:
            return None
        try:
            return decode_extended(name, record.value.payload, strict=False)
        except P2PKitError:
            return None

    def _on_extended(self, conn: Connection, me: Side, other: Side, m: Any,
                     record: Any) -> list[Verdict]:
        verdicts: list[Verdict] = []
        if conn.complete:
            ok = me.bit("extension_protocol") and other.bit("extension_protocol")
            verdicts.append(("bep10/enabled-by-both", ok, "" if ok else
                             "an extended message without the BEP 10 bit on both sides"))
        name = record.fields.get("extension")
        message = self._extension(record)
        if message is None:
            return verdicts
        if name == "handshake":
            size = message.get("metadata_size")
            if isinstance(size, int):
                me.metadata_size = size
        elif name == "ut_metadata":
            verdicts += self._ut_metadata(me, other, message)
        elif name == "ut_pex":
            verdicts += self._ut_pex(me, message, record)
        return verdicts

    def _ut_metadata(self, me: Side, other: Side, message: Any) -> list[Verdict]:
        kind, piece = str(message.get("msg_type")), message.get("piece")
        # the metadata's size: the sender's for data, the other side's for requests
        size = me.metadata_size if kind in ("data", "reject") else other.metadata_size
        verdicts: list[Verdict] = []
        if isinstance(piece, int) and isinstance(size, int) and size > 0:
            count = -(-size // METADATA_PIECE)
            ok = 0 <= piece < count
            verdicts.append(("bep9/piece-index", ok, "" if ok else
                             f"{kind} for piece {piece}; metadata_size {size} has {count}"))
        if kind == "data":
            total = message.get("total_size")
            if isinstance(size, int):
                ok = total == size
                verdicts.append(("bep9/data/total-size", ok, "" if ok else
                                 f"total_size {total}, metadata_size {size}"))
            if isinstance(total, int) and isinstance(piece, int):
                expected = min(METADATA_PIECE, max(total - piece * METADATA_PIECE, 0))
                got = len(message.get("metadata") or b"")
                verdicts.append(("bep9/data/piece-size", got == expected, "" if
                                 got == expected else f"piece {piece}: {got} bytes, "
                                 f"{expected} expected"))
        return verdicts

    def _ut_pex(self, me: Side, message: Any, record: Any) -> list[Verdict]:
        problems = [d.message for d in _pex_deviations(record)]
        for peers, flags in (("added", "added.f"), ("added6", "added6.f")):
            if message.get(flags) is not None and message.get(peers) is not None \
                    and len(message[flags]) != len(message[peers]):
                problems.append(f"{len(message[flags])} {flags} bytes for "
                                f"{len(message[peers])} {peers} peers")
        verdicts: list[Verdict] = [("bep11/flags", not problems, "; ".join(problems[:2]))]
        if me.last_pex is not None:
            gap = record.time - me.last_pex
            ok = gap >= PEX_INTERVAL - PEX_SLACK
            verdicts.append(("bep11/rate", ok, "" if ok else
                             f"{gap:.1f} s after the previous ut_pex"))
        me.last_pex = record.time
        return verdicts


def light(record: Any) -> Any:
    """``record`` without a piece's data (what the rules need of a ``piece`` is its index,
    begin and length, which :attr:`Record.length` keeps), for buffering a capture's records
    between the two passes."""
    if record.message == "piece" and record.value is not None:
        return replace(record, value=Container(type="piece", index=record.value.index,
                                               begin=record.value.begin), fields={})
    return record


def judge_capture(records: list[Any], report: Any, endpoint: str | None = None,
                  facts: Mapping[bytes, TorrentFacts] | None = None) -> None:
    """Apply the peer-wire rules to ``records`` (a capture's ``bittorrent`` records, in frame
    order; ``light`` ones will do) and tally the verdicts into ``report`` (a
    :class:`~p2pkit.conformance.offline.CaptureReport`), per sender (only ``endpoint``'s,
    when given). The implementation comes from the BEP 10 ``v`` and the peer id."""
    from p2pkit.conformance.offline import MAX_FAILURES_KEPT, EndpointReport, RuleTally

    judge = PeerWireJudge(facts)
    for record in records:
        judge.learn(record)
    for record in records:
        verdicts = judge.judge(record)
        if endpoint is not None and record.src != endpoint:
            continue
        who = report.endpoints.get(record.src)
        if who is None:
            who = report.endpoints[record.src] = EndpointReport(record.src)
        if record.message != "undecoded":
            who.messages += 1
        _name(who, record)
        for rule_id, ok, reason in verdicts:
            rule = RULES[rule_id]
            tally = who.tallies.setdefault(rule_id, RuleTally(rule))
            tally.checked += 1
            if not ok:
                tally.failed += 1
                if len(tally.failures) < MAX_FAILURES_KEPT:
                    tally.failures.append((record.frame, reason))


def _name(who: Any, record: Any) -> None:
    """The implementation: BEP 10 ``v`` ("Client name and version"), else the peer id's
    client part (BEP 20)."""
    if record.message == "handshake" and who.implementation == "?":
        who.implementation = client_of(bytes(record.value.peer_id))
    elif record.fields.get("extension") == "handshake":
        v = (record.fields.get("message") or {}).get("v")
        if isinstance(v, str) and v and not who.implementation.startswith(v):
            peer_id = who.implementation if who.implementation.startswith("-") else ""
            who.implementation = f"{v} ({peer_id})" if peer_id else v


def _pex_deviations(record: Any) -> list[Deviation]:
    return [d for d in record.deviations if d.rule.startswith("bittorrent/ut_pex")]
