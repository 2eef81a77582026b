"""The in-order shortcut of TCP dissection: a direction's reassembly state and its decoder,
found by the packet's address/port 4-tuple.

Most segments of a capture are the next bytes of a direction whose protocol is already known,
or bare acknowledgments. For those, what :class:`~p2pkit.capture.flows.TcpReassembler` and
:class:`~p2pkit.capture.dissect.Dissector` do comes down to: advance the direction's stream
offset (RFC 9293 §3.4: the sequence number expected next), count the bytes and frames the
direction carried, and hand the payload to its decoder. :class:`TcpLanes` keeps, per 4-tuple
``(source address bytes, source port, destination address bytes, destination port)``, the
direction's :class:`~p2pkit.capture.flows.TcpDirection` and the dissector's per-direction state,
so :class:`~p2pkit.capture.dissect.Dissection` can do exactly that for such a segment without
making a ``Packet``, a ``StreamData`` or the endpoint strings.

A lane is a hint, not state: every use checks, on the reassembler's own objects, that the
segment is the next one (no SYN, FIN or RST; sequence number expected; nothing held out of
order; no FIN waiting; direction not ended; decoder chosen); anything else goes the full way
and the lane is learnt again afterwards. Lanes of ended directions are swept once the table has
doubled since the last sweep, so it stays within twice the live directions.
"""

from __future__ import annotations

from typing import Any

from p2pkit.capture.flows import TcpDirection, TcpReassembler

__all__ = ["Lane", "TcpLanes"]

#: ``[reassembly state, dissector state (or None before the first data)]`` of one direction.
Lane = list[Any]
#: Lanes held before the first sweep.
SWEEP_FLOOR = 4096


class TcpLanes(dict[tuple[bytes, int, bytes, int], Lane]):
    """4-tuple → ``Lane``, learnt from the reassembler after a packet went the full way."""

    def __init__(self, reassembler: TcpReassembler, directions: dict[tuple[int, str], Any]):
        super().__init__()
        self._reassembler = reassembler
        self._directions = directions
        self._sweep_at = SWEEP_FLOOR

    def learn(self, key: tuple[bytes, int, bytes, int], src: str, dst: str) -> None:
        """After a packet from ``src`` to ``dst`` went through the reassembler and the
        dissector: remember its direction, or forget it when it ended."""
        direction = self._direction(src, dst)
        if direction is None:
            self.pop(key, None)
            return
        self[key] = [direction, self._directions.get((direction.connection, src))]
        if len(self) > self._sweep_at:
            for stale in [k for k, lane in self.items() if lane[0].ended]:
                del self[stale]
            self._sweep_at = max(SWEEP_FLOOR, 2 * len(self))

    def _direction(self, src: str, dst: str) -> TcpDirection | None:
        entry = self._reassembler._connections.get((src, dst) if src <= dst else (dst, src))
        if entry is None:
            return None
        direction = entry[1].get(src)
        return direction if direction is not None and not direction.ended else None
