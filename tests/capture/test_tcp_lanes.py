"""The per-frame fast path (FrameScanner, one-unpack headers, TCP lanes) against the full path
(CaptureReader, decode_frame, TcpReassembler, Dissector.packet): the same records and the same
bytes handed to every stream decoder, on every committed capture and on generated TCP traffic
with losses, reordering, retransmissions, resets and port reuse."""

from __future__ import annotations

import io
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from p2pkit import registry
from p2pkit.bittorrent.mse.keylog import parse_keylog
from p2pkit.capture.dissect import Dissection
from p2pkit.capture.packets import ETHERNET_IPV4_TCP, EthernetHeader, Ipv4Header, TcpHeader
from p2pkit.capture.pcap_writer import PcapWriter
from p2pkit.capture.readers import LINKTYPE_ETHERNET
from p2pkit.capture.render import render_summary
from p2pkit.capture.tcp_lanes import TcpLanes
from p2pkit.ipfs.noise_keylog import parse_noise_keylog
from p2pkit.schema import FixedLayout
from tests.pcap_payloads import CAPTURES


class _Recording:
    """A stream decoder that logs what it is given, then passes it on."""

    def __init__(self, log: list[tuple[Any, ...]], inner: Any) -> None:
        object.__setattr__(self, "_log", log)
        object.__setattr__(self, "_inner", inner)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._inner, name, value)

    def data(self, offset, data, frame, time):
        self._log.append((self._inner.src, "data", offset, bytes(data), frame, time))
        return self._inner.data(offset, data, frame, time)

    def gap(self, offset, length):
        self._log.append((self._inner.src, "gap", offset, length))
        return self._inner.gap(offset, length)

    def end(self):
        self._log.append((self._inner.src, "end"))
        return self._inner.end()


def _run(source: Any, fast: bool, secrets: dict[str, Any] | None = None):
    log: list[tuple[Any, ...]] = []
    dissection = Dissection(source, fast=fast, secrets=secrets)
    factories = dissection.dissector._stream_factories

    def recording(ref):
        return lambda **kw: _Recording(log, registry.load(ref)(**kw))

    dissection.dissector._stream_factories = {n: recording(r) for n, r in factories.items()}
    lines = [(r.frame, render_summary(r, 0.0), r.to_json()) for r in dissection]
    return lines, log, str(dissection.error), dissection.frames, dissection.first_time


def _secrets(name: str) -> dict[str, Any] | None:
    keylog = CAPTURES / (name.rsplit(".", 1)[0] + ".keylog")
    if not keylog.exists():
        return None
    text = keylog.read_text()
    return {"bittorrent": parse_keylog(text), "ipfs": parse_noise_keylog(text)}


@pytest.mark.parametrize("name", sorted(p.name for p in CAPTURES.glob("*.pcap*")))
def test_committed_captures_same_records_and_stream_bytes(name):
    fast = _run(CAPTURES / name, True, _secrets(name))
    full = _run(CAPTURES / name, False, _secrets(name))
    assert fast[0] == full[0]  # records, in the same order
    assert fast[1] == full[1]  # every byte, gap and end each decoder was given
    assert fast[2:] == full[2:]  # reader damage, frames, first time


def test_one_unpack_agrees_with_the_header_schemas():
    frame = bytes(range(54))
    expected = {}
    offset = 0
    for schema in (EthernetHeader, Ipv4Header, TcpHeader):
        layout = FixedLayout(schema)
        values = layout.struct.unpack_from(frame, offset)
        expected.update((f"{schema is TcpHeader}.{n}", v) for n, v in zip(layout.names, values))
        offset += layout.size
    picked = ETHERNET_IPV4_TCP.unpack_from(frame)
    names = ["False.ethertype", "False.version_ihl", "False.total_length",
             "False.flags_fragment_offset", "False.protocol", "False.source",
             "False.destination", "True.source_port", "True.destination_port",
             "True.sequence_number", "True.acknowledgment_number", "True.offset_flags"]
    assert list(picked) == [expected[n] for n in names]


# -- generated traffic ----------------------------------------------------------------------

_MAC = b"\x02\x00\x00\x00\x00\x01" * 2
_ETH = FixedLayout(EthernetHeader).struct
_IPV4 = FixedLayout(Ipv4Header).struct
_TCP = FixedLayout(TcpHeader).struct
_HANDSHAKE = b"\x13BitTorrent protocol" + bytes(8) + b"I" * 20 + b"P" * 20
#: keep-alive, choke, have, request, port, and a length prefix above the bound (resync)
_MESSAGES = [bytes(4), bytes.fromhex("0000000100"), bytes.fromhex("000000050400000007"),
             bytes.fromhex("0000000d06") + bytes(12), bytes.fromhex("00000003091ae1"),
             b"\xff\xff\xff\xff"]


def _ip(port: int) -> bytes:
    return b"\x0a\x00\x00\x01" if port == 6881 else b"\x0a\x00\x00\x02"


def _frame(src: int, dst: int, seq: int, flags: int, payload: bytes, *, ihl: int = 5,
           fragment: int = 0x4000) -> bytes:
    options = bytes(4 * (ihl - 5))
    tcp = _TCP.pack(src, dst, seq & 0xFFFFFFFF, 0, (5 << 12) | flags, 65535, 0, 0)
    ip = _IPV4.pack(0x40 | ihl, 0, 4 * ihl + 20 + len(payload), 0, fragment, 64, 6, 0,
                    _ip(src), _ip(dst)) + options
    return _ETH.pack(_MAC[:6], _MAC[6:], 0x0800) + ip + tcp + payload


@st.composite
def _traffic(draw) -> bytes:
    """A pcap of a few BitTorrent connections whose segments are cut, reordered, repeated,
    dropped, reset and reused at random; some frames take the full path on purpose (IPv4
    options, a fragment, a truncated capture, Ethernet padding)."""
    out = io.BytesIO()
    frames: list[tuple[bytes, int | None]] = []
    for port in draw(st.lists(st.sampled_from([5001, 5002, 5003, 5008]), min_size=1,
                              max_size=4)):
        seqs = {port: draw(st.integers(0, 2**32 - 1)), 6881: draw(st.integers(0, 2**32 - 1))}
        if draw(st.booleans()):
            frames.append((_frame(port, 6881, seqs[port], 0x02, b""), None))
            frames.append((_frame(6881, port, seqs[6881], 0x12, b""), None))
            seqs = {k: v + 1 for k, v in seqs.items()}
        for side in (port, 6881):
            other = 6881 if side == port else port
            body = _HANDSHAKE + b"".join(draw(st.lists(st.sampled_from(_MESSAGES), max_size=8)))
            sent = 0
            while sent < len(body):
                n = 80 - draw(st.integers(0, 79))  # (the simplest: few large segments)
                flags = draw(st.sampled_from([0x10, 0x18, 0x18, 0x10, 0x11, 0x14]))
                chunk = body[sent:sent + n]
                frames.append((_frame(side, other, seqs[side] + sent, flags, chunk,
                                      ihl=draw(st.sampled_from([5, 5, 5, 6])),
                                      fragment=draw(st.sampled_from([0x4000] * 6 + [0x2000]))),
                               draw(st.sampled_from([None] * 8 + [60]))))
                if draw(st.booleans()):
                    frames.append((_frame(other, side, seqs[other], 0x10, b""), None))
                sent += len(chunk) if draw(st.integers(0, 9)) else 0  # sometimes sent twice
            if draw(st.booleans()):  # a bare FIN (reordered: before the last bytes)
                frames.append((_frame(side, other, seqs[side] + len(body), 0x11, b""), None))
    order = draw(st.permutations(range(len(frames)))) if draw(st.booleans()) else None
    if order is not None:  # a few neighbours swapped rather than full chaos
        frames = [frames[i] for i in sorted(range(len(frames)),
                                            key=lambda i: i + 3 * (order[i] % 3))]
    keep = draw(st.lists(st.booleans(), min_size=len(frames), max_size=len(frames)))
    with PcapWriter(out, LINKTYPE_ETHERNET) as writer:
        for i, ((data, cut), kept) in enumerate(zip(frames, keep)):
            if kept or i % 5:
                padded = data + (bytes(6) if len(data) < 60 else b"")
                if cut is not None and cut < len(padded):
                    writer.write(padded[:cut], float(i), original_length=len(padded))
                else:
                    writer.write(padded, float(i))
    return out.getvalue()


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.large_base_example, HealthCheck.too_slow])
@given(_traffic())
def test_generated_traffic_same_records_and_stream_bytes(pcap):
    fast = _run(io.BytesIO(pcap), True)
    full = _run(io.BytesIO(pcap), False)
    assert fast == full


def test_lanes_of_ended_directions_are_swept(monkeypatch):
    monkeypatch.setattr("p2pkit.capture.tcp_lanes.SWEEP_FLOOR", 4)
    out = io.BytesIO()
    with PcapWriter(out, LINKTYPE_ETHERNET) as writer:
        for port in range(5000, 5040):  # 40 connections the client resets
            writer.write(_frame(port, 6881, 100, 0x02, b""), 0.0)
            writer.write(_frame(6881, port, 500, 0x12, b""), 0.0)  # the server's lane
            writer.write(_frame(port, 6881, 101, 0x18, _HANDSHAKE), 0.0)
            writer.write(_frame(port, 6881, 101 + len(_HANDSHAKE), 0x14, b""), 0.0)
    dissection = Dissection(io.BytesIO(out.getvalue()))
    sizes = []
    original = TcpLanes.learn

    def learn(self, key, src, dst):
        original(self, key, src, dst)
        sizes.append(len(self))

    monkeypatch.setattr(TcpLanes, "learn", learn)
    assert [r.message for r in dissection].count("handshake") == 40
    # without the sweep, the server lanes of the 40 reset connections would all stay
    assert max(sizes) <= 9 and sizes[-1] <= 9


def _pcap(frames: list[bytes]) -> bytes:
    out = io.BytesIO()
    with PcapWriter(out, LINKTYPE_ETHERNET) as writer:
        for i, data in enumerate(frames):
            writer.write(data, float(i))
    return out.getvalue()


def test_in_order_bytes_after_an_early_fin_end_the_direction_there():
    """A bare FIN seen before the last bytes: the segment that fills the hole ends the
    direction (the lane must not take it, or the end would wait for the capture's end)."""
    body = _HANDSHAKE + bytes.fromhex("0000000100")
    pcap = _pcap([
        _frame(5001, 6881, 100, 0x02, b""), _frame(6881, 5001, 900, 0x12, b""),
        _frame(5001, 6881, 101, 0x18, body[:30]),
        _frame(5001, 6881, 101 + len(body), 0x11, b""),  # FIN, ahead of the last bytes
        _frame(5001, 6881, 131, 0x18, body[30:]),
        _frame(6881, 5001, 901, 0x18, _HANDSHAKE), _frame(6881, 5001, 969, 0x18, bytes(4)),
    ])
    fast, full = _run(io.BytesIO(pcap), True), _run(io.BytesIO(pcap), False)
    assert fast == full
    log = full[1]
    assert log.index(("10.0.0.2:5001", "end")) < log.index(
        ("10.0.0.1:6881", "data", 0, _HANDSHAKE, 6, 5.0))


def test_most_segments_of_a_capture_take_the_lane(monkeypatch):
    learnt = []
    original = TcpLanes.learn
    monkeypatch.setattr(TcpLanes, "learn",
                        lambda self, *a: learnt.append(a) or original(self, *a))
    dissection = Dissection(CAPTURES / "bt-06-p2pkit-leech-libtorrent.pcap")
    records = list(dissection)
    assert records and dissection.frames > 100
    assert len(learnt) < dissection.frames / 10  # the rest went through lanes
