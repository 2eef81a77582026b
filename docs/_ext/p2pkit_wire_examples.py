"""Real bytes and byte-layout diagrams under each message of the wire-format pages.

:func:`first_examples` dissects the committed captures (``tests/data/captures``) with
:func:`p2pkit.capture.dissect.dissect`, keeps the first record of each message type of one
protocol, and cuts that record's bytes out of the capture (the reassembled TCP stream at the
record's offset, or the UDP datagram of its frame). :func:`hexdump` shows them with offsets;
:func:`layout_svg` draws a fixed-layout message from its schema rows (RFC 791-style rows of 4
or 8 bytes, each field boxed with its name and size). Nothing here is typed by hand.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from html import escape
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CAPTURES = ROOT / "tests" / "data" / "captures"
#: Bytes of a TCP direction kept while looking for an example (an example further in is skipped).
MAX_STREAM_BYTES = 1 << 20
#: Records kept per message type (the page shows the first that its schema parses: a
#: request and a response may share a name).
CANDIDATES = 8
#: Bytes of an example shown; the rest is counted, not printed.
MAX_SHOWN = 96


@dataclass(frozen=True)
class Example:
    """The bytes of one captured message."""

    capture: str
    frame: int
    transport: str
    src: str
    dst: str
    data: bytes
    #: What the page says about the bytes beyond where they come from.
    note: str = ""


def hexdump(data: bytes, limit: int = MAX_SHOWN, width: int = 16) -> str:
    """``0000  13 42 69 …  .Bi…`` lines; bytes past ``limit`` are counted on a last line."""
    lines = []
    for at in range(0, min(len(data), limit), width):
        chunk = data[at:min(at + width, limit)]
        text = "".join(chr(b) if 0x20 <= b < 0x7F else "." for b in chunk)
        lines.append(f"{at:04x}  {chunk.hex(' '):<{width * 3 - 1}}  {text}")
    if len(data) > limit:
        lines.append(f"…     ({len(data) - limit} more bytes, {len(data)} in all)")
    return "\n".join(lines)


def _captures(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.suffix in (".pcap", ".pcapng"))


@functools.cache
def first_examples(protocol: str, root: Path = CAPTURES) -> dict[str, list[Example]]:
    """Message name -> the bytes of its first records (up to :data:`CANDIDATES`) of
    ``protocol`` in the captures, in capture then frame order (TCP streams and UDP datagrams;
    messages carried inside uTP are not cut out)."""
    from p2pkit.capture.dissect import dissect

    found: dict[str, list[Example]] = {}
    for path in _captures(root):
        wanted: list = []
        counts: dict[str, int] = {}
        for record in dissect(path):
            if (record.protocol != protocol or record.transport not in ("tcp", "udp")
                    or len(found.get(record.message, ())) + counts.get(record.message, 0)
                    >= CANDIDATES):
                continue
            if record.transport == "tcp" and (record.offset is None
                                              or record.offset + record.length > MAX_STREAM_BYTES):
                continue
            counts[record.message] = counts.get(record.message, 0) + 1
            wanted.append(record)
        for name, example in _cut(path, wanted):
            found.setdefault(name, []).append(example)
    return found


def _cut(path: Path, wanted: list) -> list[tuple[str, Example]]:
    """The bytes of the ``wanted`` records, read again from the capture."""
    from p2pkit.capture.flows import StreamData, TcpReassembler
    from p2pkit.capture.packets import decode_frame
    from p2pkit.capture.readers import CaptureReader

    if not wanted:
        return []
    directions = {(r.src, r.dst) for r in wanted if r.transport == "tcp"}
    frames = {r.frame for r in wanted if r.transport == "udp"}
    streams: dict[tuple[str, str], bytearray] = {}
    datagrams: dict[int, bytes] = {}
    tcp = TcpReassembler()
    with CaptureReader(path) as reader:
        for frame in reader:
            pkt = decode_frame(frame)
            if pkt is None:
                continue
            if pkt.transport == "udp":
                if pkt.frame in frames:
                    datagrams[pkt.frame] = pkt.payload
                continue
            if (pkt.src, pkt.dst) not in directions:
                continue
            for event in tcp.packet(pkt):
                if isinstance(event, StreamData):
                    stream = streams.setdefault((event.src, event.dst), bytearray())
                    if event.offset == len(stream) and len(stream) < MAX_STREAM_BYTES:
                        stream += event.data[:MAX_STREAM_BYTES - len(stream)]
    out = []
    for r in wanted:
        if r.transport == "udp":
            data = datagrams.get(r.frame, b"")
        else:
            data = bytes(streams.get((r.src, r.dst), b"")[r.offset:r.offset + r.length])
        if len(data) == r.length and data:
            out.append((r.message, Example(path.name, r.frame, r.transport, r.src, r.dst, data)))
    return out


#: Pixels of one byte column and of one row of the diagram.
BYTE_PX = 60
ROW_PX = 34


def layout_svg(fields: list[tuple[str, int | None]]) -> str:
    """An RFC-style diagram of a fixed layout: ``fields`` are (name, size in bytes), drawn in
    rows of 4 bytes (8 when the message is longer than 32 bytes), byte offsets on top. A last
    field of size ``None`` is a variable tail, drawn to the end of its row as "name (…)"."""
    total = sum(size or 0 for _, size in fields)
    per_row = 4 if total <= 32 else 8
    boxes = [(name, size, str(size)) for name, size in fields if size is not None]
    if fields and fields[-1][1] is None:
        boxes.append((fields[-1][0], per_row - total % per_row, "…"))
    rows = max(1, -(-sum(size for _, size, _ in boxes) // per_row))
    left, top = 4, 22
    width, height = left + per_row * BYTE_PX + 4, top + rows * ROW_PX + 4
    described = ", ".join(f"{name} ({size})" for name, _, size in boxes)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="p2pkit-layout" '
           f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
           f'aria-label="byte layout: {escape(described)}">',
           '<style>rect{fill:#f4f6fa;stroke:#445}text{font:12px monospace;fill:#223}'
           '.o{fill:#778;font-size:10px}</style>']
    for col in range(per_row):
        out.append(f'<text class="o" x="{left + col * BYTE_PX + 3}" y="14">{col}</text>')
    at = 0
    for name, size, shown in boxes:
        pieces = []
        start, left_over = at, size
        while left_over > 0:
            row, col = divmod(start, per_row)
            span = min(left_over, per_row - col)
            pieces.append((row, col, span))
            start += span
            left_over -= span
        label_piece = max(pieces, key=lambda p: p[2])
        for row, col, span in pieces:
            x, y = left + col * BYTE_PX, top + row * ROW_PX
            out.append(f'<rect x="{x}" y="{y}" width="{span * BYTE_PX}" height="{ROW_PX}"/>')
            if (row, col, span) == label_piece:
                label = f"{name} ({shown})"
                room = int(span * BYTE_PX / 7.3)
                if len(label) > room:
                    label = name if len(name) <= room else name[:max(1, room - 1)] + "…"
                out.append(f'<text x="{x + span * BYTE_PX / 2}" y="{y + ROW_PX / 2 + 4}" '
                           f'text-anchor="middle">{escape(label)}</text>')
        at += size
    out.append("</svg>")
    return "".join(out)
