"""Build the four captures of the dissection benchmarks (issue 12, "Faster than tshark in every
mode"): peer-wire-heavy, DHT-heavy, Gnutella-heavy and mixed, written to a directory at
benchmark time (never committed: they are tens of megabytes).

    python benchmarks/mode_captures.py /tmp/captures [--scale 1.0]

Message shapes are real: KRPC datagrams are the payloads of the committed captures recorded
with libtorrent and bittorrent-dht (``dht-02``, ``dht-03``), re-sent between many endpoints with
fresh transaction ids; Gnutella descriptors are the ones five gtk-gnutella 1.2.3 servents
exchanged (``gtkg123-plain-up2-3leaves``), cut with the descriptor header schema and replayed
over several 0.6 connections (each opened with the recorded handshake); peer-wire traffic is
built with the peer-wire schemas (handshake, bitfield, interested, unchoke, pipelined requests,
16 KiB pieces in 1448-byte segments). Frames are Ethernet II + IPv4 + TCP/UDP, the headers
packed with the struct layouts derived from the dissector's own header schemas.

Deterministic: the same scale gives the same bytes.
"""

from __future__ import annotations

import argparse
import random
from collections.abc import Iterator
from pathlib import Path

from p2pkit import bencode
from p2pkit.capture.packets import (
    EthernetHeader,
    Ipv4Header,
    TcpHeader,
    UdpHeader,
)
from p2pkit.capture.pcap_writer import PcapWriter
from p2pkit.capture.readers import LINKTYPE_ETHERNET, CaptureReader
from p2pkit.schema import FixedLayout

ROOT = Path(__file__).resolve().parent.parent
CAPTURES = ROOT / "tests" / "data" / "captures"
SEGMENT = 1448
#: The TCP port the Gnutella servents listen on (tshark needs ``-d tcp.port==6346,gnutella``).
GNUTELLA_PORT = 6346
#: Frames of each capture at scale 1.0.
FRAMES = {"peerwire": 120_000, "dht": 120_000, "gnutella": 60_000, "mixed": 120_000}

_ETH = FixedLayout(EthernetHeader).struct
_IPV4 = FixedLayout(Ipv4Header).struct
_TCP = FixedLayout(TcpHeader).struct
_UDP = FixedLayout(UdpHeader).struct
_ETH_HEADER = _ETH.pack(b"\x02" * 6, b"\x04" * 6, 0x0800)


def _ip(a: str) -> bytes:
    return bytes(int(x) for x in a.split("."))


def udp_frame(src: tuple[str, int], dst: tuple[str, int], payload: bytes) -> bytes:
    udp = _UDP.pack(src[1], dst[1], 8 + len(payload), 0)
    ip = _IPV4.pack(0x45, 0, 28 + len(payload), 0, 0x4000, 64, 17, 0, _ip(src[0]), _ip(dst[0]))
    return _ETH_HEADER + ip + udp + payload


def tcp_frame(src: tuple[str, int], dst: tuple[str, int], seq: int, ack: int, flags: int,
              payload: bytes) -> bytes:
    tcp = _TCP.pack(src[1], dst[1], seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, (5 << 12) | flags,
                    65535, 0, 0)
    ip = _IPV4.pack(0x45, 0, 40 + len(payload), 0, 0x4000, 64, 6, 0, _ip(src[0]), _ip(dst[0]))
    return _ETH_HEADER + ip + tcp + payload


class TcpConnection:
    """Frames of one TCP connection: handshake, data both ways in segments, FIN."""

    def __init__(self, a: tuple[str, int], b: tuple[str, int], rng: random.Random) -> None:
        self.ends = {a: b, b: a}
        self.seq = {a: rng.getrandbits(32), b: rng.getrandbits(32)}
        self.a, self.b = a, b

    def open(self) -> Iterator[bytes]:
        a, b = self.a, self.b
        yield tcp_frame(a, b, self.seq[a], 0, 0x02, b"")
        self.seq[a] += 1
        yield tcp_frame(b, a, self.seq[b], self.seq[a], 0x12, b"")
        self.seq[b] += 1
        yield tcp_frame(a, b, self.seq[a], self.seq[b], 0x10, b"")

    def send(self, src: tuple[str, int], data: bytes) -> Iterator[bytes]:
        dst = self.ends[src]
        for i in range(0, len(data), SEGMENT):
            chunk = data[i:i + SEGMENT]
            yield tcp_frame(src, dst, self.seq[src], self.seq[dst], 0x18, chunk)
            self.seq[src] += len(chunk)

    def close(self) -> Iterator[bytes]:
        for src in (self.a, self.b):
            yield tcp_frame(src, self.ends[src], self.seq[src], self.seq[self.ends[src]], 0x11,
                            b"")
            self.seq[src] += 1


# -- real shapes out of the committed captures -----------------------------------------------

def _udp_payloads(path: Path) -> list[bytes]:
    from p2pkit.capture.packets import decode_frame

    out = []
    with CaptureReader(path) as reader:
        for frame in reader:
            pkt = decode_frame(frame)
            if pkt is not None and pkt.transport == "udp" and pkt.payload[:1] == b"d":
                out.append(pkt.payload)
    return out


def krpc_shapes() -> list[dict]:
    """The KRPC messages of the libtorrent / bittorrent-dht captures, decoded."""
    shapes = []
    for name in ("dht-03-p2pkit-libtorrent-bittorrent-dht.pcap", "dht-02-bep44-put-get.pcap"):
        for payload in _udp_payloads(CAPTURES / name):
            try:
                shapes.append(bencode.decode(payload, strict=False))
            except Exception:  # noqa: BLE001 - a shape we cannot reuse
                continue
    return shapes


def gnutella_streams() -> list[tuple[bytes, bytes]]:
    """(handshake bytes, descriptors) of each direction of the gtk-gnutella capture."""
    from p2pkit.capture.dissect import Dissection
    from p2pkit.capture.flows import StreamData, TcpReassembler
    from p2pkit.capture.packets import decode_frame

    path = CAPTURES / "gtkg123-plain-up2-3leaves.pcap"
    streams: dict[tuple[str, str], bytearray] = {}
    tcp = TcpReassembler()
    with CaptureReader(path) as reader:
        for frame in reader:
            pkt = decode_frame(frame)
            if pkt is None or pkt.transport != "tcp":
                continue
            for event in tcp.packet(pkt):
                if isinstance(event, StreamData):
                    streams.setdefault((event.src, event.dst), bytearray()).extend(event.data)
    first: dict[tuple[str, str], int] = {}
    last: dict[tuple[str, str], int] = {}
    for r in Dissection(path):
        if r.protocol != "gnutella" or r.offset is None:
            continue
        key = (r.src, r.dst)
        if r.message in ("handshake", "http_request", "http_response", "http_body", "giv"):
            continue
        first[key] = min(first.get(key, r.offset), r.offset)
        last[key] = max(last.get(key, 0), r.offset + r.length)
    out = []
    for key, start in first.items():
        data = bytes(streams[key])
        out.append((data[:start], data[start:last[key]]))
    return out


# -- the four captures -----------------------------------------------------------------------

def _peer_wire(conn: TcpConnection, rng: random.Random, pieces: int) -> Iterator[bytes]:
    from p2pkit.bittorrent.wire.messages import Handshake, PeerMessage

    info_hash = rng.randbytes(20)
    yield from conn.open()
    for side in (conn.a, conn.b):
        hs = Handshake.build(dict(reserved=dict(extension_protocol=True, fast=True, dht=True),
                                  info_hash=info_hash, peer_id=rng.randbytes(20)))
        yield from conn.send(side, hs)
    yield from conn.send(conn.b, PeerMessage.build(dict(type="bitfield", bitfield=b"\xff" * 64)))
    yield from conn.send(conn.a, PeerMessage.build(dict(type="interested")))
    yield from conn.send(conn.b, PeerMessage.build(dict(type="unchoke")))
    block = rng.randbytes(16384)
    for first in range(0, pieces, 8):
        batch = range(first, min(first + 8, pieces))
        yield from conn.send(conn.a, b"".join(
            PeerMessage.build(dict(type="request", index=i // 16, begin=(i % 16) << 14,
                                   length=16384)) for i in batch))
        for i in batch:
            yield from conn.send(conn.b, PeerMessage.build(dict(
                type="piece", index=i // 16, begin=(i % 16) << 14, piece=block)))
            yield from conn.send(conn.a, PeerMessage.build(dict(type="have", index=i // 16)))
    yield from conn.close()


def peerwire_frames(frames: int, rng: random.Random) -> Iterator[bytes]:
    """Four connections in turn, 16 KiB blocks (about 13 frames a block)."""
    per_connection = max(8, frames // 4 // 14)
    for n in range(4):
        conn = TcpConnection(("10.0.0.1", 50000 + n), (f"10.0.1.{n + 1}", 6881), rng)
        yield from _peer_wire(conn, rng, per_connection)


def dht_frames(frames: int, rng: random.Random, shapes: list[dict]) -> Iterator[bytes]:
    """Queries and their responses between 2,000 endpoints, transaction ids fresh."""
    queries = [s for s in shapes if s.get(b"y") == b"q"]
    answers = {}
    for s in shapes:
        if s.get(b"y") in (b"r", b"e"):
            answers.setdefault(s.get(b"y"), []).append(s)
    responses = answers.get(b"r", []) + answers.get(b"e", [])[:3]
    endpoints = [(f"10.{(i >> 8) & 255}.{i & 255}.7", 6881 + i % 50) for i in range(2000)]
    for n in range(frames // 2):
        a, b = rng.choice(endpoints), rng.choice(endpoints)
        tid = n.to_bytes(4, "big")[-2:]
        q = dict(rng.choice(queries))
        q[b"t"] = tid
        yield udp_frame(a, b, bencode.encode(q))
        r = dict(rng.choice(responses))
        r[b"t"] = tid
        yield udp_frame(b, a, bencode.encode(r))


def gnutella_frames(frames: int, rng: random.Random,
                    streams: list[tuple[bytes, bytes]]) -> Iterator[bytes]:
    """Eight 0.6 connections, each replaying recorded handshakes then recorded descriptors
    (about 3 descriptors a segment)."""
    client = [s for s in streams if s[0].startswith(b"GNUTELLA CONNECT")]
    server = [s for s in streams if s[0].startswith(b"GNUTELLA/0.6")]
    per = frames // 8
    for n in range(8):
        conn = TcpConnection((f"10.2.0.{n + 1}", 40000 + n), ("10.2.1.1", GNUTELLA_PORT), rng)
        c, s = client[n % len(client)], server[n % len(server)]
        count = 3
        yield from conn.open()
        yield from conn.send(conn.a, c[0][:c[0].index(b"\r\n\r\n") + 4])
        yield from conn.send(conn.b, s[0])
        yield from conn.send(conn.a, c[0][c[0].index(b"\r\n\r\n") + 4:])
        count += 3
        body = [c[1], s[1]]
        while count < per:
            for side, data in zip((conn.a, conn.b), body, strict=True):
                # descriptors cut at descriptor boundaries, packed up to a segment
                for chunk in _descriptor_segments(data):
                    yield from conn.send(side, chunk)
                    count += 1
        yield from conn.close()


def _descriptor_segments(data: bytes) -> Iterator[bytes]:
    """Whole descriptors (cut with the header schema's payload length), packed into segments."""
    from p2pkit.gnutella.descriptors import HEADER_LENGTH, DescriptorHeader

    header = FixedLayout(DescriptorHeader).struct
    pos, start = 0, 0
    while pos + HEADER_LENGTH <= len(data):
        length = header.unpack_from(data, pos)[-1]
        end = pos + HEADER_LENGTH + length
        if end - start > SEGMENT and pos > start:
            yield data[start:pos]
            start = pos
        pos = end
    if start < len(data):
        yield data[start:]


def mixed_frames(frames: int, rng: random.Random, shapes: list[dict],
                 streams: list[tuple[bytes, bytes]]) -> Iterator[bytes]:
    """A third of each, interleaved frame by frame."""
    sources = [peerwire_frames(frames // 3, rng), dht_frames(frames // 3, rng, shapes),
               gnutella_frames(frames // 3, rng, streams)]
    while sources:
        for source in list(sources):
            try:
                for _ in range(4):
                    yield next(source)
            except StopIteration:
                sources.remove(source)


def build(kind: str, path: Path, scale: float = 1.0) -> int:
    """Write the ``kind`` capture to ``path``; the number of frames written."""
    rng = random.Random(12)
    frames = int(FRAMES[kind] * scale)
    if kind == "peerwire":
        source = peerwire_frames(frames, rng)
    elif kind == "dht":
        source = dht_frames(frames, rng, krpc_shapes())
    elif kind == "gnutella":
        source = gnutella_frames(frames, rng, gnutella_streams())
    else:
        source = mixed_frames(frames, rng, krpc_shapes(), gnutella_streams())
    t = 1_765_000_000.0
    with PcapWriter(path, LINKTYPE_ETHERNET) as w:
        for data in source:
            t += 0.0001
            w.write(data, t)
        return w.count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--kind", action="append", choices=sorted(FRAMES))
    args = parser.parse_args()
    args.directory.mkdir(parents=True, exist_ok=True)
    for kind in args.kind or sorted(FRAMES):
        n = build(kind, args.directory / f"{kind}.pcap", args.scale)
        print(f"{kind}: {n} frames")


if __name__ == "__main__":
    main()
