"""Building blocks of the Gnutella catalog: the Gnutella 0.6 connection as a
:class:`~p2pkit.conformance.stream_runner.StreamProtocol`, and the steps cases are made of.

The target is a servent the harness connects to, normally an ultrapeer. Every harness
connection (a step's ``source``: ``"a"``, ``"b"`` …) is one more neighbour of the target: a
leaf (``X-Ultrapeer: False``, which sends its QRP table after the handshake) or an ultrapeer.
A case can so send a query on one connection and watch what the target forwards on another,
then answer with a QueryHit and watch where it is routed.

Templates are :class:`~p2pkit.conformance.case.Wire` messages built with the strict schemas
(:data:`~p2pkit.gnutella.handshake.Handshake` for ``connect``/``response`` blocks,
:data:`~p2pkit.gnutella.descriptors.Descriptor` for descriptors); what the target sends is
framed and decoded by :class:`~p2pkit.gnutella.stream.StreamReader` (lenient schemas; a
deflated link, compression §3, is inflated). GUIDs are fresh per case (:func:`guid`).
"""

from __future__ import annotations

import itertools
import random
import zlib
from typing import Any

from construct import Container

from p2pkit.conformance.case import Case, Computed, Step, Wire
from p2pkit.conformance.runner import CaseContext, flatten
from p2pkit.conformance.stream_runner import Session, StreamProtocol
from p2pkit.conformance.stream_verifiers import NoMessage, Receives, SessionRule
from p2pkit.errors import P2PKitError
from p2pkit.gnutella.descriptors import Descriptor
from p2pkit.gnutella.handshake import Handshake
from p2pkit.gnutella.qrp import RouteTable
from p2pkit.gnutella.stream import DescriptorFrame, HandshakeFrame, StreamReader
from p2pkit.http1 import Headers

__all__ = [
    "GnContext",
    "GnutellaWire",
    "HANDSHAKE_RULE",
    "LEAF_HEADERS",
    "ULTRAPEER_HEADERS",
    "connect",
    "descriptor",
    "final",
    "gn_case",
    "guid",
    "join",
    "query",
    "settle",
]

#: Every case that opens with a handshake depends on the target answering it with 200.
HANDSHAKE_RULE = "gnutella/handshake/accept"
USER_AGENT = "p2pkit-conformance/0.1"
#: What the harness says of itself as a leaf (ultra-peers §3.1's example, trimmed).
LEAF_HEADERS = (("User-Agent", USER_AGENT), ("X-Ultrapeer", "False"),
                ("X-Query-Routing", "0.1"), ("Pong-Caching", "0.1"), ("Bye-Packet", "0.1"),
                ("GGEP", "0.5"))
ULTRAPEER_HEADERS = (("User-Agent", USER_AGENT), ("X-Ultrapeer", "True"),
                     ("X-Query-Routing", "0.1"), ("Pong-Caching", "0.1"),
                     ("Bye-Packet", "0.1"), ("GGEP", "0.5"))


class GnContext(CaseContext):
    """A case's fresh values: GUIDs by name, the harness's servent id, the sessions."""

    def __init__(self, case: Case, rng: random.Random) -> None:
        super().__init__(case, rng)
        self.servent_id = self.fresh("servent-id", 16)
        self.session: Session | None = None
        self.sessions: dict[str, Session] = {}

    def guid(self, name: str) -> bytes:
        """A fresh GUID, the same for ``name`` throughout the case (byte 8 all ones, as the
        0.6 "marked GUID" of ping-pong §)."""
        value = bytearray(self.fresh("guid:" + name, 16))
        value[8], value[15] = 0xFF, 0x00
        return bytes(value)


def guid(name: str) -> Computed:
    """The case's GUID called ``name`` (a placeholder resolved when the step is built)."""
    return Computed(lambda ctx: ctx.guid(name), f"guid {name}")


class _Framer:
    """The target's bytes on one connection, split by the dissector's stream reader."""

    def __init__(self) -> None:
        self.reader = StreamReader(strict=False)

    def feed(self, data: bytes) -> list[HandshakeFrame | DescriptorFrame]:
        return self.reader.feed(data)

    @property
    def buffered(self) -> int:
        return self.reader.buffered


def decode_handshake(block: Any) -> dict[str, Any]:
    """A handshake block as verifiers read it: header names lower-cased."""
    headers = block.headers or Headers()
    return {"type": "handshake", "kind": block.kind, "version": block.get("version"),
            "status_code": block.get("status_code"), "reason": block.get("reason"),
            "headers": {name.lower().replace("-", "_"): value for name, value in headers},
            "header_names": [name for name, _ in headers]}


def decode_descriptor(d: Any) -> dict[str, Any]:
    """A descriptor as verifiers read it: the header's fields and the payload's, flat."""
    out = {k: v for k, v in d.items() if not k.startswith("_")}
    trailer = d.get("trailer")
    if d.get("type") == "query_hit" and trailer is not None:
        out["servent_id"] = trailer.get("servent_id")
    return out


class GnutellaWire(StreamProtocol):
    """Gnutella 0.6 connections (handshaking_0.6 §3, then descriptors) for the stream runner."""

    name = "gnutella"

    def context(self, case: Case, rng: random.Random) -> GnContext:
        return GnContext(case, rng)

    def framer(self) -> _Framer:
        return _Framer()

    def decode(self, frame: Any, session: Session) -> dict[str, Any]:
        if isinstance(frame, HandshakeFrame):
            out = decode_handshake(frame.handshake)
            if "deflate" in Headers(frame.handshake.headers or ()).tokens("Content-Encoding"):
                session.state["inflated"] = True
            return out
        return decode_descriptor(frame.descriptor)

    def encode(self, send: Any, ctx: GnContext) -> bytes:
        value = dict(ctx.resolve(send.message))
        kind = value.pop("type")
        state = ctx.session.state if ctx.session is not None else {}
        if kind in ("connect", "response"):
            headers = Headers(value.pop("headers", ()))
            block = dict(kind=kind, version=value.pop("version", "0.6"), headers=headers)
            if kind == "response":
                block.update(status_code=value.pop("status_code", 200),
                             reason=value.pop("reason", "OK"))
            data = Handshake.build(block)
            if kind == "response" and "deflate" in headers.tokens("Content-Encoding"):
                state["deflater"] = zlib.compressobj()
            return data
        if kind == "qrp_table":
            table = RouteTable.from_keywords(value["words"],
                                             table_length=value.get("table_length", 1 << 16))
            data = b"".join(Descriptor.build(Container(
                guid=ctx.rng.randbytes(16), type="route_table_update", ttl=1, hops=0, **m))
                for m in table.update_messages())
        else:
            value.setdefault("extensions", [])
            data = Descriptor.build(Container(type=kind, **value))
        deflater = state.get("deflater")
        if deflater is not None:  # compression §2: a synchronisation flush per message
            data = deflater.compress(data) + deflater.flush(zlib.Z_SYNC_FLUSH)
        return data

    def hello(self, ctx: GnContext) -> bytes:
        return Handshake.build(dict(kind="connect", version="0.6", headers=Headers(LEAF_HEADERS)))

    def hello_text(self, ctx: GnContext) -> str:
        return "GNUTELLA CONNECT/0.6 as a leaf"

    def served(self, session: Session, ctx: GnContext) -> bool:
        return any(m.get("kind") == "response" for m in session.of_type("handshake"))

    def unsupported(self, case: Case, ctx: GnContext) -> str | None:
        """A case tagged ``ultrapeer`` needs a target that says ``X-Ultrapeer: True``; one
        tagged ``deflate`` (and ``accept-encoding`` or ``content-encoding``) a target that
        offers to inflate or that compresses (compression §3)."""
        answers = [m for s in ctx.sessions.values() for m in s.of_type("handshake")
                   if m["kind"] == "response" and m["status_code"] == 200]
        if not answers:
            return None
        if "ultrapeer" in case.tags and \
                answers[0]["headers"].get("x_ultrapeer", "").strip().lower() != "true":
            return "needs an ultrapeer target (its answer says X-Ultrapeer: False)"
        if "deflate" not in case.tags:
            return None
        offered = answers[0]["headers"]

        def tokens(name: str) -> list[str]:
            return [t.strip().lower() for t in offered.get(name, "").split(",")]
        if "accept-encoding" in case.tags and "deflate" not in tokens("accept_encoding"):
            return "compression: the target's answer has no Accept-Encoding: deflate"
        if "content-encoding" in case.tags and "deflate" not in tokens("content_encoding"):
            return "compression: the target does not compress (no Content-Encoding: deflate)"
        return None

    def describe(self, data: bytes) -> list[tuple[str, str]]:
        reader = StreamReader(handshake=data[:8] == b"GNUTELLA", strict=False)
        try:
            frames = reader.feed(data)
        except P2PKitError as e:
            return [("raw", f"{len(data)} bytes, not Gnutella ({e}): {data[:48]!r}")]
        rows: list[tuple[str, str]] = []
        session = Session()
        for i, frame in enumerate(frames[:16]):
            rows += flatten(self.decode(frame, session), str(i))
        if reader.buffered:
            rows.append(("raw", f"{reader.buffered} bytes of an incomplete frame"))
        return rows


# --- steps ------------------------------------------------------------------------------------


def handshake_answer(status: int = 200) -> Receives:
    return Receives("handshake", kind="response", status_code=status)


def connect(source: str = "a", *, role: str = "leaf", headers: Any = None,
            extra: tuple[tuple[str, str], ...] = (), version: str = "0.6",
            expect: Any = "ok") -> Step:
    """``GNUTELLA CONNECT/0.6`` and the harness's headers (a leaf's, or an ultrapeer's); by
    default the target must answer 200."""
    if headers is None:
        headers = LEAF_HEADERS if role == "leaf" else ULTRAPEER_HEADERS
    return Step(send=Wire({"type": "connect", "version": version,
                           "headers": tuple(headers) + tuple(extra)}),
                source=source, name=f"{source}:connect",
                expect=handshake_answer() if expect == "ok" else expect)


def final(source: str = "a", *, status: int = 200, reason: str = "OK",
          extra: tuple[tuple[str, str], ...] = ()) -> Step:
    """The third leg (handshaking_0.6 §3 step 6)."""
    return Step(send=Wire({"type": "response", "status_code": status, "reason": reason,
                           "headers": tuple(extra)}), source=source)


_SETTLES = itertools.count(1)


def settle(source: str = "a") -> Step:
    """A TTL 1 ping on ``source``, answered by a pong: the target has read everything sent
    on that connection before it (the legs, a QRP table), so another connection may rely on
    it (the connections of one case are not ordered with each other). Any pong will do."""
    return Step(send=ping(guid_name=f"settle {source} {next(_SETTLES)}", ttl=1), source=source,
                expect=Receives("pong", text="(all sent before it was read)"))


def join(source: str = "a", *, role: str = "leaf", words: tuple[str, ...] = (),
         extra: tuple[tuple[str, str], ...] = ()) -> list[Step]:
    """A whole handshake; a leaf then sends its QRP table (RESET, PATCH) of ``words``; then
    :func:`settle`."""
    steps = [connect(source, role=role, extra=extra), final(source)]
    if role == "leaf":
        steps.append(Step(send=Wire({"type": "qrp_table", "words": tuple(words)}),
                          source=source))
    return [*steps, settle(source)]


def descriptor(kind: str, *, guid_name: str, ttl: int = 3, hops: int = 0,
               **fields: Any) -> Wire:
    return Wire({"type": kind, "guid": guid(guid_name), "ttl": ttl, "hops": hops, **fields})


def query(text: str, *, guid_name: str = "q", ttl: int = 3, hops: int = 0) -> Wire:
    return descriptor("query", guid_name=guid_name, ttl=ttl, hops=hops,
                      min_speed=dict(mark=True), search_criteria=text)


def query_hit(*, guid_name: str = "q", ttl: int = 3, hops: int = 0,
              servent: str = "servent-id") -> Wire:
    """A QueryHit for the query ``guid_name`` naming one file, from the servent id
    ``servent`` (a fresh 16 bytes of the case)."""
    return descriptor(
        "query_hit", guid_name=guid_name, ttl=ttl, hops=hops, port=6346,
        ip_address="127.0.0.1", speed=1000,
        results=[Container(file_index=1, file_size=1234, file_name="conformance probe.txt",
                           extensions=[])],
        trailer=Container(vendor_code="PKCF", open_data=b"\x1c\x1d", private_data=b"",
                          private_extensions=None, xml=None,
                          servent_id=Computed(lambda ctx: ctx.fresh(servent, 16), servent)))


def push(*, guid_name: str = "p", servent: str = "servent-id", ttl: int = 3) -> Wire:
    return descriptor("push", guid_name=guid_name, ttl=ttl,
                      servent_id=Computed(lambda ctx: ctx.fresh(servent, 16), servent),
                      file_index=1, ip_address="127.0.0.1", port=6346)


def ping(*, guid_name: str = "ping", ttl: int = 1, hops: int = 0) -> Wire:
    return descriptor("ping", guid_name=guid_name, ttl=ttl, hops=hops)


def bye(code: int = 200, message: str = "Conformance run over\r\nServer: "
        f"{USER_AGENT}\r\n\r\n") -> Wire:
    return descriptor("bye", guid_name="bye", ttl=1, hops=0, code=code, message=message)


def with_guid(name: str) -> Any:
    """``where`` for verifiers: the message carries the case's GUID ``name``."""
    return lambda m, ctx: m.get("guid") == ctx.guid(name)


def receives(kind: str, name: str, source: str, *, wait: float | None = None,
             **fields: Any) -> Step:
    """Listen on connection ``source`` for a ``kind`` with the GUID ``name``."""
    return Step(send=None, source=source, wait=wait, expect=Receives(
        kind, where=with_guid(name), text=f"with GUID {name!r}", **fields))


def never(kind: str, name: str, source: str, *, wait: float = 0.6, text: str = "") -> Step:
    """Listen on ``source`` for ``wait`` seconds: no ``kind`` with the GUID ``name``."""
    return Step(send=None, source=source, wait=wait, expect=NoMessage(
        kind, where=with_guid(name), text=text or f"with GUID {name!r}"))


def closes(source: str = "a", *, text: str = "the target closes the connection") -> Step:
    return Step(send=None, source=source, expect=SessionRule(
        lambda a, ctx: "" if a.closed else None, text, pending="the connection stayed open"))


def gn_case(*, needs_handshake: bool = True, **fields: Any) -> Case:
    """A :class:`Case` whose id is prefixed with ``gnutella/``; it depends on the target
    accepting a well-formed handshake (``needs_handshake``)."""
    fields["id"] = "gnutella/" + fields["id"]
    fields["steps"] = tuple(fields["steps"])
    if fields["rule"] != HANDSHAKE_RULE and needs_handshake:
        fields["depends"] = (*fields.get("depends", ()), HANDSHAKE_RULE)
    return Case(**fields)
