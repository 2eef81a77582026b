"""What the harness sent and what the target answered, per step, as the field trees
``p2pkit dissect -V`` prints, with the first difference marked.

The bytes of each exchange go through the dissector's own decoders, found in
:mod:`p2pkit.registry` by the name the answer type gives (``DISSECTOR``: ``bt-dht`` for KRPC,
``bt-tracker`` for BEP 15, ``bt-tracker-http`` for HTTP trackers, the stream protocol's
``dissector`` for the peer wire), and are rendered with
:func:`p2pkit.capture.render.record_tree`: one decoder and one renderer, shared with the
dissector. A conversation keeps its decoders' state as a capture would: the datagrams of a
case go through one datagram decoder (a BEP 15 answer is named by the request it answers), the
bytes of a peer-wire case through two linked stream decoders (one per direction), an HTTP
exchange through a fresh pair (each is its own connection). Bytes no decoder takes are shown
as hex, and only those.

The verifier's :class:`~p2pkit.conformance.verifiers.Check` names the field that differs
(``path``), what was expected and what came (``expected``, ``got``) and, over a stream, which
message of the step (``index``); :func:`case_trees` marks that line of the received tree, or
adds a line for a field that is missing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from p2pkit import registry
from p2pkit.capture.packets import Packet
from p2pkit.capture.record import UNDECODED, Record
from p2pkit.capture.render import TreeLine, record_tree
from p2pkit.conformance.runner import Exchange, Result
from p2pkit.errors import P2PKitError

__all__ = ["Difference", "StepTrees", "case_trees", "raw_lines"]

#: Bytes of undecodable data shown as hex (per step and direction).
MAX_HEX_BYTES = 256
#: Messages of one step shown in a tree (a flood's answer is summarised after these).
MAX_RECORDS = 24
#: The harness's and the target's endpoints in the records (names, not addresses: the trees
#: show fields, not frames).
HARNESS = ("harness", 1)
TARGET = ("target", 2)


@dataclass(frozen=True)
class Difference:
    """The first difference of a failing step: the field, what the rule wanted, what came."""

    path: str
    expected: str | None
    got: str | None

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "expected": self.expected, "got": self.got}


@dataclass
class StepTrees:
    """One step: the sent and received trees, and which received line is the difference."""

    sent: list[TreeLine] = field(default_factory=list)
    received: list[TreeLine] = field(default_factory=list)
    #: Index in :attr:`received` of the marked line (None: nothing failed, or no line).
    marked: int | None = None
    difference: Difference | None = None


def raw_lines(data: bytes, what: str) -> list[TreeLine]:
    """Undecodable bytes as hex, 32 bytes a line, at most :data:`MAX_HEX_BYTES`.

    >>> [str(line) for line in raw_lines(b"\\x00\\x01garbage", "not KRPC")]
    ['  raw (9 bytes, not KRPC)', '    0000  0001676172626167 65']
    """
    lines = [TreeLine(f"  raw ({len(data)} bytes, {what})", "raw")]
    shown = data[:MAX_HEX_BYTES]
    for at in range(0, len(shown), 32):
        chunk = shown[at:at + 32].hex()
        groups = " ".join(chunk[i:i + 16] for i in range(0, len(chunk), 16))
        lines.append(TreeLine(f"    {at:04x}  {groups}", "raw"))
    if len(data) > MAX_HEX_BYTES:
        lines.append(TreeLine(f"    … {len(data) - MAX_HEX_BYTES} more bytes", "raw"))
    return lines


class _Datagrams:
    """One datagram decoder for a whole case, as in a dissection of its capture."""

    def __init__(self, descriptor: registry.ProtocolDescriptor) -> None:
        self.decoder = registry.load(descriptor.datagram_decoder)()
        self.frame = 0

    def feed(self, data: bytes, outgoing: bool) -> list[Record]:
        self.frame += 1
        (sip, sport), (dip, dport) = (HARNESS, TARGET) if outgoing else (TARGET, HARNESS)
        packet = Packet(frame=self.frame, time=0.0, transport="udp", src_ip=sip,
                        src_port=sport, dst_ip=dip, dst_port=dport, payload=data)
        try:
            return list(self.decoder.datagram(packet, forced=True) or ())
        except P2PKitError:
            return []

    def close(self) -> list[Record]:
        return []


class _Stream:
    """Two linked stream decoders, one per direction of one connection."""

    def __init__(self, descriptor: registry.ProtocolDescriptor) -> None:
        factory = registry.load(descriptor.stream_decoder)
        harness, target = (f"{h}:{p}" for h, p in (HARNESS, TARGET))
        self.out = factory(src=harness, dst=target, transport="tcp", peer=None)
        self.back = factory(src=target, dst=harness, transport="tcp", peer=self.out)
        self.offsets = {True: 0, False: 0}
        self.frame = 0

    def feed(self, data: bytes, outgoing: bool) -> list[Record]:
        self.frame += 1
        decoder = self.out if outgoing else self.back
        at = self.offsets[outgoing]
        self.offsets[outgoing] += len(data)
        try:
            return list(decoder.data(at, data, self.frame, 0.0))
        except P2PKitError:
            return []

    def close(self) -> dict[bool, list[Record]]:
        out: dict[bool, list[Record]] = {}
        for outgoing, decoder in ((True, self.out), (False, self.back)):
            try:
                out[outgoing] = list(decoder.end())
            except P2PKitError:
                out[outgoing] = []
        return out


def _lines(records: list[Record], data: bytes, what: str,
           base: int | None) -> tuple[list[TreeLine], list[int]]:
    """Tree lines of ``records`` and where each record starts; the bytes of an ``undecoded``
    record as hex under it (``base``: where ``data`` starts in its stream, None for a
    datagram), and all of ``data`` as hex when no record came of it."""
    lines: list[TreeLine] = []
    starts: list[int] = []
    for record in records[:MAX_RECORDS]:
        starts.append(len(lines))
        lines += record_tree(record)
        if record.message == UNDECODED and data:
            if base is None or record.offset is None:
                lines += raw_lines(data, what)
            else:
                first = max(record.offset - base, 0)
                chunk = data[first:max(record.offset - base + record.length, 0)]
                if chunk:
                    lines += raw_lines(chunk, what)
    if len(records) > MAX_RECORDS:
        lines.append(TreeLine(f"  … {len(records) - MAX_RECORDS} more messages"))
    if data and not records:
        lines += raw_lines(data, what)
    return lines, starts


def _dissector(exchange: Exchange) -> tuple[str | None, Mapping[str, str]]:
    protocol = getattr(exchange, "protocol", None)
    if protocol is not None:
        return protocol.dissector, protocol.tree_aliases
    answer = type(exchange.answer)
    return getattr(answer, "DISSECTOR", None), getattr(answer, "TREE_ALIASES", {})


def _tree_path(path: str, aliases: Mapping[str, str]) -> str:
    head, _, rest = path.partition(".")
    if head in aliases:
        head = aliases[head]
        return f"{head}.{rest}" if head and rest else head
    return path


def _mark(trees: StepTrees, starts: list[int], exchange: Exchange,
          aliases: Mapping[str, str], earlier: list[StepTrees]) -> None:
    """Mark the received line of the failing field; a rule over the whole session (a
    bitfield the target sent before the step) marks it in the earlier step that received it;
    for a field that is nowhere, add a line saying so under the field that should hold it (or
    at the message's end)."""
    check = exchange.check
    if check is None or check.ok or check.path is None:
        return
    trees.difference = Difference(check.path, check.expected, check.got)
    lines = trees.received
    first, last = 0, len(lines)
    if starts:
        index = check.index if check.index is not None and check.index < len(starts) else 0
        first = starts[index]
        last = starts[index + 1] if index + 1 < len(starts) else len(lines)
    wanted = _tree_path(check.path, aliases)
    if wanted == "":  # the message itself (its type): its message line
        trees.marked = first if lines else None
        return
    for scope in (range(first, last), range(len(lines))):
        for i in scope:
            if lines[i].path == wanted:
                trees.marked = i
                return
    for before in reversed(earlier):
        for i, line in enumerate(before.received):
            if line.path == wanted:
                before.marked = i
                return
    at, depth = last, 1
    for i in range(first, last):  # the deepest enclosing field present
        path = lines[i].path
        if path and wanted.startswith(path + "."):
            at, depth = i + 1, path.count(".") + 2
    lines.insert(at, TreeLine(f"{'    ' * depth}{wanted}: ({check.got or 'missing'})",
                              wanted))
    trees.marked = at


def case_trees(result: Result) -> list[StepTrees]:
    """The sent and received trees of each of ``result``'s exchanges, in order."""
    out: list[StepTrees] = []
    conversations: dict[str, Any] = {}
    pending: list[tuple[StepTrees, Exchange, Mapping[str, str], list[int]]] = []
    streamed = _stream_slices(result.exchanges)
    for n, exchange in enumerate(result.exchanges):
        name, aliases = _dissector(exchange)
        trees = StepTrees()
        out.append(trees)
        answer = exchange.answer
        received = streamed.get(n, exchange.answer.data)
        try:
            descriptor = registry.get(name) if name else None
        except P2PKitError:
            descriptor = None
        starts: list[int] = []
        if descriptor is None:
            if exchange.sent:
                trees.sent = raw_lines(exchange.sent, "no dissector")
            if received:
                trees.received = raw_lines(received, "no dissector")
        else:
            per_case = descriptor.datagram_decoder is not None or hasattr(exchange, "protocol")
            conv = conversations.get(name) if per_case else None
            if conv is None:
                conv = (_Datagrams(descriptor) if descriptor.datagram_decoder is not None
                        else _Stream(descriptor))
                if per_case:
                    conversations[name] = conv
            bases = dict(getattr(conv, "offsets", {}))  # where this step's bytes start
            sent_records = conv.feed(exchange.sent, True) if exchange.sent else []
            got_records = conv.feed(received, False) if received else []
            if not per_case:  # one HTTP exchange, one connection
                ended = conv.close()
                sent_records += ended[True]
                got_records += ended[False]
            elif isinstance(conv, _Stream) and exchange is result.exchanges[-1]:
                ended = conv.close()
                sent_records += ended[True]
                got_records += ended[False]
            what = f"not {getattr(answer, 'WHAT', name)}"
            trees.sent, _ = _lines(sent_records, exchange.sent, what, bases.get(True))
            trees.received, starts = _lines(got_records, received or b"", what,
                                            bases.get(False))
        trees.received += _ending(exchange, received)
        pending.append((trees, exchange, aliases, starts))
    for n, (trees, exchange, aliases, starts) in enumerate(pending):
        _mark(trees, starts, exchange, aliases, out[:n])
    return out


def _stream_slices(exchanges: list[Exchange]) -> dict[int, bytes | None]:
    """What the target sent during each stream step: its bytes from this step's start to the
    next step's (what came while the harness was between steps is not lost)."""
    out: dict[int, bytes | None] = {}
    streams = [(n, e.answer) for n, e in enumerate(exchanges)
               if getattr(e.answer, "session", None) is not None]
    for k, (n, answer) in enumerate(streams):
        received = answer.session.received
        end = len(received)
        if k + 1 < len(streams) and streams[k + 1][1].session is answer.session:
            end = streams[k + 1][1].offset
        out[n] = bytes(received[answer.offset:end]) or None
    return out


def _ending(exchange: Exchange, received: bytes | None) -> list[TreeLine]:
    """What else the step showed: no answer, or a closed or unparseable stream."""
    answer = exchange.answer
    session = getattr(answer, "session", None)
    if session is None:
        return [] if answer.data is not None else [TreeLine("  (no answer)", "")]
    lines = []
    if not received:
        lines.append(TreeLine("  (nothing received)", ""))
    if session.error:
        lines.append(TreeLine(f"  (unparseable: {session.error})", ""))
    lines.append(TreeLine(f"  (connection {'closed: ' + session.closed if session.closed else 'open'})",
                          "closed"))
    return lines


def trees_json(steps: Iterable[StepTrees]) -> list[dict[str, Any]]:
    """The trees as JSON (lists of lines), for the JSON report."""
    return [{"sent_tree": [line.text for line in s.sent],
             "received_tree": [line.text for line in s.received],
             "marked_line": s.marked,
             "difference": s.difference.to_json() if s.difference else None} for s in steps]
