"""UDP GSO and GRO for uTP (p2pkit.bittorrent.utp.offload) on real sockets and real packets."""

from __future__ import annotations

import asyncio
import errno
import random
import select
import socket
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pkit.bittorrent.utp.endpoint import UtpEndpoint
from p2pkit.bittorrent.utp.mtu import MtuProbe
from p2pkit.bittorrent.utp.offload import (
    GRO_CONTROL_SIZE,
    MAX_SEGMENTS,
    MAX_SEND,
    UDP_GRO,
    SegmentingSender,
    enable_gro,
    segment_runs,
    split_coalesced,
)
from p2pkit.bittorrent.wire.utp import UtpPacket, build_plain_packet

PEER = ("127.0.0.1", 9)


def data_packets(count: int, size: int = 1452, last: int | None = None) -> list[bytes]:
    """ST_DATA packets as the core builds them (1472-byte datagrams by default)."""
    rng = random.Random(count)
    sizes = [size] * count
    if last is not None:
        sizes[-1] = last
    return [build_plain_packet("st_data", 7, 1000 + i, 0, 1 << 20, (65530 + i) & 0xFFFF, 3,
                               rng.randbytes(n)) for i, n in enumerate(sizes)]


def test_runs_keep_order_and_cut_at_size_changes_probes_and_addresses():
    packets = data_packets(5, last=100)
    ack = build_plain_packet("st_state", 7, 1, 0, 1 << 20, 3, 9, b"")
    probe = MtuProbe(data_packets(1, size=1200)[0])
    other = ("127.0.0.2", 9)
    sent = [(p, PEER) for p in packets] + [(ack, PEER), (probe, PEER), (packets[0], PEER),
                                           (packets[1], other)]
    runs = segment_runs(sent)
    assert [(len(run), addr) for run, addr in runs] == [
        (5, PEER), (1, PEER), (1, PEER), (1, PEER), (1, other)]
    assert [d for run, addr in runs for d in run] == [d for d, _ in sent]
    assert type(runs[2][0][0]) is MtuProbe  # the probe alone: it goes with DF set


def test_runs_stay_within_what_one_sendmsg_carries():
    runs = segment_runs([(p, PEER) for p in data_packets(100)])
    assert [len(run) for run, _ in runs] == [44, 44, 12]  # 44 × 1472 ≤ 65507 < 45 × 1472
    tiny = segment_runs([(b"\x41" * 20, PEER)] * 150)
    assert max(len(run) for run, _ in tiny) == MAX_SEGMENTS
    assert all(sum(map(len, run)) <= MAX_SEND for run, _ in runs + tiny)


@settings(deadline=None)  # no timing in tests: a loaded machine is slow
@given(st.integers(1, 1472), st.integers(1, 60), st.data())
def test_split_undoes_the_concatenation(size, count, data):
    last = data.draw(st.integers(1, size))
    datagrams = [bytes([i % 256]) * size for i in range(count - 1)] + [b"\xff" * last]
    control = [(socket.IPPROTO_UDP, UDP_GRO, struct.pack("=i", size))]
    assert split_coalesced(b"".join(datagrams), control) == datagrams


@settings(deadline=None)  # no timing in tests: a loaded machine is slow
@given(st.binary(max_size=3000), st.integers(-5, 4000))
def test_split_takes_any_control_message(data, size):
    parts = split_coalesced(data, [(socket.IPPROTO_UDP, UDP_GRO, struct.pack("=i", size))])
    assert b"".join(parts) == data
    assert all(0 < len(p) <= max(size, len(data)) for p in parts) or data == b""


def _pair() -> tuple[socket.socket, socket.socket]:
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sender.bind(("127.0.0.1", 0))
    receiver.bind(("127.0.0.1", 0))
    receiver.setblocking(False)
    return sender, receiver


def _read_all(receiver: socket.socket, expected: int) -> list[tuple[bytes, list]]:
    reads = []
    got = 0
    while got < expected and select.select([receiver], [], [], 5.0)[0]:
        data, ancdata, _, _ = receiver.recvmsg(65536, GRO_CONTROL_SIZE)
        reads.append((data, ancdata))
        got += len(split_coalesced(data, ancdata))
    return reads


def test_one_sendmsg_carries_many_datagrams_and_gro_reads_them_back():
    sender, receiver = _pair()
    with sender, receiver:
        if not enable_gro(receiver):
            pytest.skip("this kernel has no UDP_GRO")
        packets = data_packets(30, last=333)
        addr = receiver.getsockname()
        gso = SegmentingSender(sender, lambda d, a: sender.sendto(d, a))
        gso.send([(p, addr) for p in packets])
        if not gso.enabled:
            pytest.skip("this kernel has no UDP_SEGMENT")
        assert (gso.calls, gso.datagrams) == (1, 30)
        reads = _read_all(receiver, 30)
        got = [d for data, anc in reads for d in split_coalesced(data, anc)]
        assert got == packets
        assert len(reads) < 30  # coalesced on loopback
        assert [UtpPacket.parse(d).seq_nr for d in got] == [(65530 + i) & 0xFFFF
                                                            for i in range(30)]


def test_without_gro_each_segment_arrives_as_its_own_datagram():
    sender, receiver = _pair()
    with sender, receiver:
        packets = data_packets(5, last=10)
        gso = SegmentingSender(sender, lambda d, a: sender.sendto(d, a))
        gso.send([(p, receiver.getsockname()) for p in packets])
        reads = _read_all(receiver, 5)
        assert [data for data, _ in reads] == packets  # the kernel cut them: wire datagrams


class RefusingSocket(socket.socket):
    """A socket whose kernel refuses UDP_SEGMENT (as one without GSO does)."""

    def sendmsg(self, *args, **kwargs):
        raise OSError(errno.EIO, "Input/output error")


def test_a_refusal_falls_back_to_one_datagram_per_call_for_good():
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sender = RefusingSocket(socket.AF_INET, socket.SOCK_DGRAM)
    with sender, receiver:
        receiver.bind(("127.0.0.1", 0))
        receiver.setblocking(False)
        addr = receiver.getsockname()
        sent: list[bytes] = []

        def send_one(data, to):
            sent.append(data)
            sender.sendto(data, to)

        gso = SegmentingSender(sender, send_one)
        packets = data_packets(6)
        gso.send([(p, addr) for p in packets[:3]])
        assert not gso.enabled
        gso.send([(p, addr) for p in packets[3:]])
        assert sent == packets and gso.calls == 6
        assert [data for data, _ in _read_all(receiver, 6)] == packets


@pytest.mark.parametrize("offload", [True, False])
def test_a_transfer_between_endpoints_with_and_without_offload(offload):
    data = random.Random(14).randbytes(3 << 19)

    async def run():
        chunks: list[bytes] = []
        done = asyncio.get_running_loop().create_future()

        class Collect(asyncio.Protocol):
            def data_received(self, d: bytes) -> None:
                chunks.append(d)

            def eof_received(self) -> bool:
                done.set_result(None)
                return False

        def accepted(stream) -> None:
            protocol = Collect()
            stream.set_protocol(protocol)
            protocol.connection_made(stream)

        server = await UtpEndpoint.bind("127.0.0.1", 0, on_accept=accepted, offload=offload)
        client = await UtpEndpoint.bind("127.0.0.1", 0, offload=offload)
        try:
            stream, _ = await client.connect(server.address, asyncio.Protocol, timeout=5.0)
            conn = client.core.connections[stream.key]
            stream.write(data)
            stream.close()
            await asyncio.wait_for(done, 30.0)
            return b"".join(chunks), client.segmenting, conn.stats["sent"]
        finally:
            client.close()
            server.close()

    got, segmenting, packets = asyncio.run(run())
    assert got == data
    if not offload:
        assert segmenting is None
    elif segmenting.enabled:
        assert segmenting.datagrams >= packets > 1000
        assert segmenting.calls * 4 < segmenting.datagrams  # many datagrams per system call
