"""libp2p stack throughput: Noise transport and yamux framing, one stream, in memory.

``tox -e bench -- -k ipfs``; figures in docs/ipfs-performance.md. The bytes cross both sans-I/O
connection cores (yamux frames, Noise encryption and decryption, per-stream flow control);
no sockets, so this is the CPU cost of the protocol stack.
"""

from __future__ import annotations

import random

from p2pkit.core import NEED_DATA
from p2pkit.ipfs.connection import ConnectionEstablished, Libp2pConnection, StreamData
from p2pkit.ipfs.keys import Ed25519Identity
from p2pkit.ipfs.noise import NoiseSession, SendData
from p2pkit.ipfs.yamux import SendData as YamuxSend
from p2pkit.ipfs.yamux import YamuxSession

BLOB = random.Random(1).randbytes(8 * 1024 * 1024)


def _exchange(a, b):
    """One round trip of whatever each end has to send (never an empty write: b"" is EOF)."""
    data = a.data_to_send()
    if data:
        b.receive_data(data, 0)
    data = b.data_to_send()
    if data:
        a.receive_data(data, 0)


def _connected():
    a = Libp2pConnection(initiator=True, identity=Ed25519Identity(bytes(32)), rng=random.Random(1))
    b = Libp2pConnection(initiator=False, identity=Ed25519Identity(bytes(range(32))),
                         rng=random.Random(2), protocols=["/bench"])
    established = 0
    for _ in range(10):
        _exchange(a, b)
        for core in (a, b):
            established += sum(isinstance(e, ConnectionEstablished)
                               for e in iter(core.next_event, NEED_DATA))
    assert established == 2
    sid = a.open_stream(["/bench"], 0)
    for _ in range(4):
        _exchange(a, b)
        for core in (a, b):
            list(iter(core.next_event, NEED_DATA))
    return a, b, sid


def test_noise_yamux_stream_8mib(benchmark):
    """8 MiB on one stream through both stacks (window updates flow back)."""
    def transfer():
        a, b, sid = _connected()
        wire = a.send_stream(sid, BLOB, 0)
        got = 0
        while wire:
            b.receive_data(wire, 0)
            got += sum(len(e.data) for e in iter(b.next_event, NEED_DATA)
                       if isinstance(e, StreamData))
            back = b.data_to_send()
            if back:
                a.receive_data(back, 0)
            list(iter(a.next_event, NEED_DATA))
            wire = a.data_to_send()
        assert got == len(BLOB)

    benchmark.pedantic(transfer, rounds=3, iterations=1)


def test_noise_transport_8mib(benchmark):
    """Noise alone: encrypt and decrypt 8 MiB in 65519-byte messages."""
    a = NoiseSession(initiator=True, identity=Ed25519Identity(bytes(32)),
                     static_secret=bytes([1]) * 32, ephemeral_secret=bytes([2]) * 32)
    b = NoiseSession(initiator=False, identity=Ed25519Identity(bytes(range(32))),
                     static_secret=bytes([3]) * 32, ephemeral_secret=bytes([4]) * 32)
    b.receive_data(a.data_to_send(), 0)
    a.receive_data(b.data_to_send(), 0)
    b.receive_data(a.data_to_send(), 0)
    list(iter(b.next_event, NEED_DATA))

    def transfer():
        b.receive_data(a.send(SendData(data=BLOB), 0), 0)
        assert sum(len(e.data) for e in iter(b.next_event, NEED_DATA)) == len(BLOB)

    benchmark.pedantic(transfer, rounds=5, iterations=1)


def test_yamux_framing_8mib(benchmark):
    """yamux alone: frame and deframe 8 MiB on one stream, windows included."""
    def transfer():
        a, b = YamuxSession(client=True), YamuxSession(client=False)
        sid = a.open_stream()
        wire = a.send(YamuxSend(stream_id=sid, data=BLOB), 0)
        got = 0
        while wire:
            b.receive_data(wire, 0)
            got += sum(len(getattr(e, "data", b"")) for e in iter(b.next_event, NEED_DATA))
            back = b.data_to_send()
            if back:
                a.receive_data(back, 0)
            list(iter(a.next_event, NEED_DATA))
            wire = a.data_to_send()
        assert got == len(BLOB)

    benchmark.pedantic(transfer, rounds=5, iterations=1)
