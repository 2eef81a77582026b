"""Replaying a recorded client whose Gnutella link was deflated: inflate, refresh, deflate again.

Spec: compression §3 (a side whose own handshake block says ``Content-Encoding: deflate`` sends
one zlib stream after it), §2 (synchronisation flushes). A trace's fresh values (GUIDs, ...)
are replaced in the bytes the harness sends (:mod:`p2pkit.conformance.trace_replay`); inside a
zlib stream the recorded GUIDs are not there to find, so a replay of a deflating leaf sent
its pings under the recorded GUIDs while the rules expected pongs under fresh ones (the
failure noted for issue 14). Here the recorded client's side is read once with the Gnutella
:class:`~p2pkit.gnutella.stream.StreamReader` (the schemas frame it); each client turn becomes
its plain bytes (handshake blocks and plain descriptors) and its inflated descriptors. At
replay time the fresh values are put into both, and the inflated part is deflated again by the
harness's own :class:`~p2pkit.gnutella.deflate.Deflater` (one zlib stream per replayed
connection, one synchronisation flush per turn), so the target reads a well-formed stream.

>>> from p2pkit.gnutella.deflate import Deflater
>>> hello = b"GNUTELLA/0.6 200 OK\\r\\nContent-Encoding: deflate\\r\\n\\r\\n"
>>> ping = bytes(16) + bytes([0, 1, 0]) + bytes(4)
>>> turns = split_deflated([(5, hello + Deflater().batch(ping))])
>>> turns[5].plain == hello, turns[5].inflated == ping
(True, True)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from p2pkit.errors import ParseError
from p2pkit.gnutella.stream import DescriptorFrame, StreamReader

__all__ = ["InflatedTurn", "split_deflated"]


@dataclass(frozen=True)
class InflatedTurn:
    """One recorded client turn: ``plain`` is sent as it is (after fresh values), ``inflated``
    is deflated again before it is sent."""

    plain: bytes
    inflated: bytes


def split_deflated(turns: Iterable[tuple[int, bytes]]) -> dict[int, InflatedTurn]:
    """The client's turns (``(frame, bytes)`` in order) of a link it deflated, by frame.

    Empty when the client never deflated (nothing to do) or when its side does not frame (a
    replay then sends the recorded bytes, as before). A frame completed in a later turn than
    the one it started in goes with the turn that completed it.
    """
    reader = StreamReader(strict=False)
    out: dict[int, InflatedTurn] = {}
    for frame, data in turns:
        try:
            frames = reader.feed(data)
        except ParseError:
            return {}
        plain = b"".join(f.data for f in frames
                         if not (isinstance(f, DescriptorFrame) and f.compressed))
        inflated = b"".join(f.data for f in frames
                            if isinstance(f, DescriptorFrame) and f.compressed)
        out[frame] = InflatedTurn(plain, inflated)
    return out if reader.compressed else {}

