"""Real bytes for the wire formats the per-message examples cannot cut: KRPC, and the peer wire
carried inside uTP.

KRPC (BEP 5 §KRPC Protocol) is bencoded: it has no per-message schema whose rows a hex dump
could sit under, so :func:`bencoded_examples` keeps, per kind of message (a query of each
method, the response to it, an error), the first datagram of the committed captures, and the
page shows its bytes beside the dictionary :func:`p2pkit.bencode.decode` reads from them.

BitTorrent over uTP (BEP 29) carries the peer wire as the payloads of ``st_data`` packets;
:func:`carried_examples` rebuilds each direction's stream from those payloads (by ``seq_nr``,
retransmissions once), finds where each peer-wire record of the dissection lies in it, and
keeps the first message of each type that one datagram carries whole: the page shows that
datagram (its uTP header, then the message) and the message parsed by
:data:`p2pkit.bittorrent.wire.messages.PeerMessage`. Nothing is typed by hand.

```` ```{p2pkit-bencoded-examples} bt-dht ``` ```` and
```` ```{p2pkit-carried-examples} bt-04-libtorrent-utp-only.pcap ``` ```` render them.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from docutils import nodes
from p2pkit_wire_examples import CAPTURES, hexdump
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

logger = logging.getLogger(__name__)

#: Bytes shown per example (a KRPC datagram is rarely longer; a longer one is counted).
MAX_SHOWN = 256


@dataclass(frozen=True)
class PayloadExample:
    """One captured datagram and what it holds."""

    capture: str
    frame: int
    src: str
    dst: str
    title: str
    data: bytes
    #: Where the carried message lies in ``data`` (uTP), else the whole datagram.
    start: int = 0
    end: int | None = None


def readable(value: Any, indent: int = 0) -> str:
    """A decoded bencoded value, one item a line: text as text, binary as hex."""
    pad = "  " * indent
    if isinstance(value, dict):
        if not value:
            return "{}"
        lines = ["{"]
        for key, item in value.items():
            lines.append(f"{pad}  {readable(key)}: {readable(item, indent + 1)},")
        return "\n".join(lines + [pad + "}"])
    if isinstance(value, list):
        if not value:
            return "[]"
        return "[" + ", ".join(readable(item, indent + 1) for item in value) + "]"
    if isinstance(value, bytes):
        try:
            text = value.decode("ascii")
        except UnicodeDecodeError:
            text = None
        if text is not None and text.isprintable():
            return repr(text)
        return f"<{len(value)} bytes {value[:8].hex()}{'…' if len(value) > 8 else ''}>"
    return repr(value)


def _datagrams(path: Path, frames: set[int]) -> dict[int, bytes]:
    from p2pkit.capture.packets import decode_frame
    from p2pkit.capture.readers import CaptureReader

    out: dict[int, bytes] = {}
    with CaptureReader(path) as reader:
        for frame in reader:
            pkt = decode_frame(frame)
            if pkt is not None and pkt.transport == "udp" and pkt.frame in frames:
                out[pkt.frame] = pkt.payload
    return out


@functools.cache
def bencoded_examples(protocol: str, root: Path = CAPTURES) -> list[PayloadExample]:
    """The first datagram of each kind of ``protocol`` message in the captures: each query
    method, the response to it, each error (in capture then frame order)."""
    from p2pkit import bencode
    from p2pkit.capture.dissect import dissect

    found: dict[str, PayloadExample] = {}
    for path in sorted(p for p in root.iterdir() if p.suffix in (".pcap", ".pcapng")):
        wanted: dict[str, Any] = {}
        for record in dissect(path):
            if record.protocol != protocol or record.transport != "udp":
                continue
            method = record.fields.get("method")
            title = f"{method} {record.message}" if method else record.message
            if title not in found and title not in wanted:
                wanted[title] = record
        data = _datagrams(path, {r.frame for r in wanted.values()})
        for title, record in wanted.items():
            payload = data.get(record.frame, b"")
            try:
                bencode.decode(payload)
            except Exception:  # noqa: BLE001 - not a whole bencoded datagram: not an example
                continue
            found[title] = PayloadExample(path.name, record.frame, record.src, record.dst,
                                          title, payload)
    order = {"query": 0, "response": 1, "error": 2}
    return sorted(found.values(), key=lambda e: (e.title.split()[0] if " " in e.title else "~",
                                                 order.get(e.title.split()[-1], 3)))


@functools.cache
def carried_examples(capture: str, root: Path = CAPTURES) -> list[PayloadExample]:
    """The first peer-wire message of each type that one uTP datagram of ``capture`` carries
    whole, with where it lies in that datagram."""
    from p2pkit.bittorrent.wire.messages import Handshake, PeerMessage
    from p2pkit.bittorrent.wire.utp import UtpPacket
    from p2pkit.capture.dissect import dissect
    from p2pkit.capture.packets import decode_frame
    from p2pkit.capture.readers import CaptureReader

    path = root / capture
    # each direction's st_data packets: seq_nr -> (frame, datagram, payload), first copy kept
    packets: dict[tuple[str, str], dict[int, tuple[int, bytes, bytes]]] = {}
    with CaptureReader(path) as reader:
        for frame in reader:
            pkt = decode_frame(frame)
            if pkt is None or pkt.transport != "udp":
                continue
            try:
                value = UtpPacket.parse(pkt.payload)
            except Exception:  # noqa: BLE001 - not uTP
                continue
            if str(value.type) == "st_data" and value.payload:
                packets.setdefault((pkt.src, pkt.dst), {}).setdefault(
                    value.seq_nr, (pkt.frame, pkt.payload, bytes(value.payload)))
    # stream offset of each packet: seq_nr order from the first one sent (16-bit, circular)
    where: dict[tuple[str, str], list[tuple[int, int, bytes, bytes]]] = {}
    for direction, by_seq in packets.items():
        first = by_seq[min(by_seq.items(), key=lambda item: item[1][0])[0]]
        start_seq = next(s for s, v in by_seq.items() if v is first)
        offset, spans = 0, []
        for seq in sorted(by_seq, key=lambda s: (s - start_seq) & 0xFFFF):
            frame, datagram, payload = by_seq[seq]
            spans.append((offset, frame, datagram, payload))
            offset += len(payload)
        where[direction] = spans
    found: dict[str, PayloadExample] = {}
    for record in dissect(path):
        if (record.protocol != "bittorrent" or record.transport != "utp"
                or record.message in found or record.offset is None):
            continue
        for offset, frame, datagram, payload in where.get((record.src, record.dst), ()):
            inside = record.offset - offset
            if 0 <= inside and inside + record.length <= len(payload):
                message = payload[inside:inside + record.length]
                schema = Handshake if record.message == "handshake" else PeerMessage
                try:
                    value = schema.parse(message)
                except Exception:  # noqa: BLE001 - not where we thought: no example
                    break
                if record.message != "handshake" and value.type != record.message:
                    break
                head = len(datagram) - len(payload)
                found[record.message] = PayloadExample(
                    capture, frame, record.src, record.dst, record.message, datagram,
                    head + inside, head + inside + record.length)
                break
    return list(found.values())


def _two_columns(left: str, right: str, titles: tuple[str, str]) -> nodes.table:
    table = nodes.table(classes=["p2pkit-example-pair"])
    group = nodes.tgroup(cols=2)
    table += group
    group += nodes.colspec(colwidth=1)
    group += nodes.colspec(colwidth=1)
    head = nodes.thead()
    group += head
    row = nodes.row()
    for title in titles:
        entry = nodes.entry()
        entry += nodes.paragraph(text=title)
        row += entry
    head += row
    body = nodes.tbody()
    group += body
    row = nodes.row()
    for text in (left, right):
        entry = nodes.entry()
        block = nodes.literal_block(text=text)
        block["language"] = "none"  # a hex dump, not code: no highlighting
        entry += block
        row += entry
    body += row
    return table


def _caption(example: PayloadExample, what: str) -> nodes.paragraph:
    caption = nodes.paragraph(classes=["p2pkit-example"])
    caption += nodes.Text("Captured: ")
    caption += nodes.literal(text=example.capture)
    caption += nodes.Text(f", frame {example.frame}, {example.src} → {example.dst} ({what}):")
    return caption


class BencodedExamplesDirective(SphinxDirective):
    """```` ```{p2pkit-bencoded-examples} bt-dht ``` ````"""

    required_arguments = 1

    def run(self) -> list[Any]:
        from p2pkit import bencode

        try:
            examples = bencoded_examples(self.arguments[0].strip())
        except Exception as e:  # noqa: BLE001 - report, never crash the build
            logger.warning("p2pkit-bencoded-examples: %s", e, location=self.get_location())
            return []
        if not examples:
            logger.warning("p2pkit-bencoded-examples: no %s datagram in the captures",
                           self.arguments[0], location=self.get_location())
        result: list[Any] = []
        for example in examples:
            result.append(nodes.rubric(text=example.title))
            result.append(_caption(example, f"a {len(example.data)}-byte datagram"))
            result.append(_two_columns(hexdump(example.data, MAX_SHOWN),
                                       readable(bencode.decode(example.data)),
                                       ("bytes", "decoded (p2pkit.bencode.decode)")))
        return result


class CarriedExamplesDirective(SphinxDirective):
    """```` ```{p2pkit-carried-examples} bt-04-libtorrent-utp-only.pcap ``` ````"""

    required_arguments = 1

    def run(self) -> list[Any]:
        from p2pkit.bittorrent.wire.messages import Handshake, PeerMessage
        from p2pkit.bittorrent.wire.utp import UtpPacket

        try:
            examples = carried_examples(self.arguments[0].strip())
        except Exception as e:  # noqa: BLE001 - report, never crash the build
            logger.warning("p2pkit-carried-examples: %s", e, location=self.get_location())
            return []
        if not examples:
            logger.warning("p2pkit-carried-examples: no peer message inside uTP in %s",
                           self.arguments[0], location=self.get_location())
        result: list[Any] = []
        for example in examples:
            utp = UtpPacket.parse(example.data)
            message = example.data[example.start:example.end]
            schema = Handshake if example.title == "handshake" else PeerMessage
            header = (f"uTP {utp.type} seq_nr={utp.seq_nr} ack_nr={utp.ack_nr} "
                      f"connection_id={utp.connection_id}")
            result.append(nodes.rubric(text=example.title))
            result.append(_caption(example, f"a {len(example.data)}-byte uTP datagram; the "
                                            f"{example.title} message is bytes "
                                            f"{example.start}–{example.end - 1}"))
            result.append(_two_columns(
                hexdump(example.data, MAX_SHOWN),
                header + "\n" + hexdump(message, MAX_SHOWN) + "\n" + str(schema.parse(message)),
                ("the datagram", "the message inside, parsed by its schema")))
        return result


def setup(app: Any) -> dict[str, Any]:
    app.add_directive("p2pkit-bencoded-examples", BencodedExamplesDirective)
    app.add_directive("p2pkit-carried-examples", CarriedExamplesDirective)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
