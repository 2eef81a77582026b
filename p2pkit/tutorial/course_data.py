"""The real data the course's later exercises are checked on: the committed captures.

The captures live in the repository (``tests/data/captures``), next to ``tutorials/``: the
course is followed from a checkout, so the checker looks for them there and says so plainly
when p2pkit was installed without one. Each capture is read once per process.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from p2pkit.capture.flows import StreamData, TcpReassembler
from p2pkit.capture.packets import decode_frame
from p2pkit.capture.readers import read_frames
from p2pkit.tutorial.exercise import ExerciseFailed

__all__ = ["BT02", "BT02_LEECH", "BT02_SEED", "bt02_streams", "capture"]

CAPTURES = Path(__file__).resolve().parents[2] / "tests" / "data" / "captures"
#: Chapter 4's capture: libtorrent 2.0 downloading a 2 MiB file from libtorrent (BEP 3, 9, 10).
BT02 = "bt-02-libtorrent-magnet-ut_metadata-pex.pcap"
BT02_LEECH, BT02_SEED = "127.0.0.3:40049", "127.0.0.2:6881"


def capture(name: str) -> Path:
    """The path of a committed capture (``tests/data/captures/NAME``)."""
    path = CAPTURES / name
    if not path.is_file():
        raise ExerciseFailed(f"the capture {name} is not here ({CAPTURES}): this exercise is "
                             "checked on the repository's captures; run it from a git checkout")
    return path


@cache
def bt02_streams() -> dict[str, bytes]:
    """The bytes each side of chapter 4's connection sent, reassembled: sender -> stream."""
    reassembler = TcpReassembler()
    streams = {BT02_LEECH: bytearray(), BT02_SEED: bytearray()}
    for frame in read_frames(capture(BT02)):
        packet = decode_frame(frame)
        if packet is None or packet.transport != "tcp" or {packet.src, packet.dst} != set(streams):
            continue
        for event in reassembler.packet(packet):
            if isinstance(event, StreamData):
                streams[event.src] += event.data
    return {sender: bytes(data) for sender, data in streams.items()}
