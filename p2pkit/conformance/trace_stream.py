"""The stream runner's protocol for replayed TCP sessions: the dissector reads both sides.

A replayed BitTorrent or Gnutella session is judged on what the dissector makes of the target's
bytes (the registry's stream decoder of the protocol, :mod:`p2pkit.capture.dissect`'s): each
answer message is ``{"type": record.message, **record.fields}``, the same names and JSON
fields the recorded answers had when the trace was cut, so the manifest's rules read both
alike. The harness's own bytes go through the opposite decoder, linked to the target's as in a
capture, so what depends on both sides decodes (BEP 10 extended ids are named by the other
side's extension handshake).

What the target must be told differently from the recording is rewritten here, with the
schemas: a BitTorrent ``extended`` message is sent under the id the *target's* extension
handshake gave its extension (BEP 10 §"extension message IDs"), not the recorded peer's.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from p2pkit import registry
from p2pkit.conformance.case import Case
from p2pkit.conformance.runner import CaseContext, flatten
from p2pkit.conformance.stream_runner import NotApplicable, Session, StreamProtocol, StreamRunner
from p2pkit.gnutella.deflate import Deflater

__all__ = ["TraceContext", "TraceStream", "TraceStreamRunner", "rewrite_extended_ids"]

HARNESS = "harness:0"
TARGET = "target:0"


class TraceContext(CaseContext):
    """A replay's fresh values, and the two decoders of its connection."""

    def __init__(self, case: Case, rng: random.Random, protocol: str) -> None:
        super().__init__(case, rng)
        factory = registry.load(registry.get(protocol).stream_decoder)
        self.sent_decoder = factory(src=HARNESS, dst=TARGET, transport="tcp")
        self.received_decoder = factory(src=TARGET, dst=HARNESS, transport="tcp",
                                        peer=self.sent_decoder)
        self._sent = 0
        self._received = 0
        #: Gnutella: the harness's compressor when the recorded client deflated its side
        #: (:mod:`p2pkit.conformance.trace_deflate`).
        self.deflater: Deflater | None = None

    def sent(self, data: bytes) -> None:
        """The harness wrote ``data``: decode it (the target's answers may depend on it)."""
        list(self.sent_decoder.data(self._sent, data, 0, 0.0))
        self._sent += len(data)

    def received(self, data: bytes) -> list[Any]:
        records = list(self.received_decoder.data(self._received, data, 0, 0.0))
        self._received += len(data)
        return records


class _RecordFramer:
    """The stream runner's framer over the dissector: ``feed(bytes) -> records``."""

    def __init__(self, ctx: TraceContext) -> None:
        self.ctx = ctx

    def feed(self, data: bytes) -> list[Any]:
        return self.ctx.received(data)


class TraceStream(StreamProtocol):
    """A replayed session of ``protocol`` (``bittorrent`` or ``gnutella``); ``opening``
    builds the bytes of its first turn, the probe's well-behaved session."""

    def __init__(self, protocol: str, opening: Callable[[TraceContext], bytes]) -> None:
        self.name = protocol
        self.opening = opening

    def context(self, case: Case, rng: random.Random) -> TraceContext:
        return TraceContext(case, rng, self.name)

    def framer(self) -> Any:  # replaced per connection by TraceStreamRunner.connect
        return None

    def decode(self, frame: Any, session: Session) -> dict[str, Any]:
        return {"type": frame.message, **frame.fields}

    def encode(self, value: Any, ctx: CaseContext) -> bytes:
        raise NotApplicable("a trace replays recorded bytes only")

    def hello(self, ctx: CaseContext) -> bytes:
        return self.opening(ctx)

    def hello_text(self, ctx: CaseContext) -> str:
        return "the trace's first message"

    def served(self, session: Session, ctx: CaseContext) -> bool:
        return any(m.get("type") != "undecoded" for m in session.messages)

    def describe(self, data: bytes) -> list[tuple[str, str]]:
        factory = registry.load(registry.get(self.name).stream_decoder)
        decoder = factory(src=HARNESS, dst=TARGET, transport="tcp")
        rows: list[tuple[str, str]] = []
        for i, record in enumerate(list(decoder.data(0, data, 0, 0.0))[:16]):
            rows += flatten({"type": record.message, **record.fields}, str(i))
        return rows or [("raw", f"{len(data)} bytes: {data[:48]!r}")]


class TraceStreamRunner(StreamRunner):
    """The stream runner, its connections read by the dissector (``TraceContext``)."""

    async def connect(self, ctx: CaseContext) -> Any:
        connection = await super().connect(ctx)
        connection.framer = _RecordFramer(ctx)  # before the reading task first runs
        return connection


def rewrite_extended_ids(data: bytes, recorded: dict[int, str], ctx: TraceContext,
                         needed: frozenset[str] = frozenset()) -> bytes:
    """``data`` (peer-wire messages, perhaps after a handshake) with every ``extended``
    message's id changed from the recorded peer's to the one the target's extension
    handshake gave the same extension (BEP 10). Built with the peer-wire schemas. A message
    of an extension the target does not offer is left out (BEP 10: a peer only sends the
    extension messages the other side named), :class:`NotApplicable` when the step's rules
    need that extension."""
    from p2pkit.bittorrent.wire.framer import MessageFramer
    from p2pkit.bittorrent.wire.messages import PeerMessage

    live = {name: mid for mid, name in getattr(ctx.received_decoder, "received_names",
                                                {}).items()}
    framer = MessageFramer(handshake=data[:1] == b"\x13", strict=False)
    frames = framer.feed(data)
    if framer.buffered:
        return data  # not whole messages: sent as recorded
    out = bytearray()
    for frame in frames:
        message = frame.message
        if "type" in message and message.type == "extended" and message.extended_id:
            name = recorded.get(message.extended_id)
            if name is None:
                out += frame.data
                continue
            if name not in live:
                if name in needed:
                    raise NotApplicable(f"BEP 10: the target's extension handshake offers no "
                                        f"{name}")
                continue
            out += PeerMessage.build({"type": "extended", "extended_id": live[name],
                                      "payload": message.payload})
        else:
            out += frame.data
    return bytes(out)
