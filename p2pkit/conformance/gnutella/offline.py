"""The Gnutella rules a capture can be judged by: what each servent sent, on every connection
the dissector decoded (:mod:`p2pkit.gnutella.dissect`), against what it had received.

Rule ids are the live catalog's (``gnutella/routing/ttl-decrement``,
``gnutella/ping/pong-guid`` …), so a capture and a live run say the same thing about one
servent. A servent is named by the ``Listen-IP`` its handshakes announce (its outgoing
connections come from other ports), else by its address. Most rules need state across
connections: a pong is judged against the pings its sender received on that connection, a
forwarded query against the copy that came in on another, a query sent to a leaf against the
QRP table that leaf sent (rebuilt with :class:`~p2pkit.gnutella.qrp.RouteTableReceiver`).

What a capture cannot show is not judged: whether a connection was closed (TCP FINs are not
records), descriptors sent but dropped, and anything on a stream whose handshake was not
captured (the dissector does not decode a stream it joined in the middle) or that lost bytes
(a deflated stream cannot be resumed). Deflated links (compression §3) are inflated by the
dissector when their handshake was captured, and judged like plain ones.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from p2pkit.conformance.offline import (
    MAX_FAILURES_KEPT,
    CaptureReport,
    EndpointReport,
    OfflineRule,
    RuleTally,
)
from p2pkit.conformance.verifiers import Check
from p2pkit.errors import P2PKitError
from p2pkit.gnutella.qrp import RouteTableReceiver

__all__ = ["RULES", "judge_gnutella"]

PROTOCOL = "gnutella"
#: Seconds within which two Byes cross (both sides shutting down at once): the second was
#: sent before its sender could read the first, and is not "sent back".
CROSSING = 0.05


def _rule(rule: str, level: str, spec: str, title: str) -> OfflineRule:
    # the checks are stateful (judge_gnutella applies them), not per-record verifiers
    return OfflineRule(rule, level, spec, title, lambda record: False, lambda record: Check(True))


#: The Gnutella rules of a capture, by id.
RULES: dict[str, OfflineRule] = {r.rule: r for r in (
    _rule("gnutella/valid", "MUST", "handshaking_0.6 §3", "no MUST deviation in any message"),
    _rule("gnutella/ultrapeer/x-ultrapeer", "MUST", "ultra-peers §3.1",
          "CONNECT and its answer say X-Ultrapeer: True or False"),
    _rule("gnutella/handshake/user-agent", "SHOULD", "handshaking_0.6 §3",
          "CONNECT and its answer carry User-Agent"),
    _rule("gnutella/handshake/third-leg", "MUST", "handshaking_0.6 §3",
          "the accepting side sends no descriptor before the client's third leg"),
    _rule("gnutella/compression/negotiated", "MUST", "compression §3",
          "Content-Encoding: deflate only after the peer's Accept-Encoding: deflate"),
    _rule("gnutella/compression/one-value", "MUST", "compression §3",
          "Content-Encoding has one value"),
    _rule("gnutella/ping/pong-guid", "MUST", "ping-pong §Introduction",
          "a pong carries the GUID of a ping received on that connection"),
    _rule("gnutella/routing/hit-back", "MUST", "oob-shortcut §2",
          "a QueryHit goes only on the connection its query came from"),
    _rule("gnutella/routing/ttl-decrement", "MUST", "msg/route_lost §Return of the Query Hit",
          "a forwarded query, hit or Push has a smaller TTL than when it came"),
    _rule("gnutella/routing/hops-increment", "MUST", "msg/route_lost §Return of the Query Hit",
          "a forwarded query, hit or Push has one hop more than when it came"),
    _rule("gnutella/routing/duplicate", "MUST", "oob-shortcut §2",
          "a query GUID is sent at most once on a connection"),
    _rule("gnutella/routing/ttl-expired", "MUST", "ultrapeer_qrp §2.4",
          "no query goes to an ultrapeer with TTL 0"),
    _rule("gnutella/qrp/filter", "MUST", "ultrapeer_qrp §2.4",
          "an ultrapeer sends a leaf only queries its QRP table matches"),
    _rule("gnutella/qrp/ttl1-hops0", "MUST", "QRP §Gnutella Protocol Changes",
          "QRP messages have TTL 1 and hops 0"),
    _rule("gnutella/bye/ttl-hops", "MUST", "bye §3", "a Bye has TTL 1 and hops 0"),
    _rule("gnutella/bye/not-sent-back", "SHOULD", "bye §4",
          "no Bye in answer to a Bye"),
    _rule("gnutella/bye/sender-closes", "SHOULD", "bye §3",
          "nothing follows a servent's own Bye on that connection"),
)}


@dataclass
class _Link:
    """One TCP connection, both directions."""

    #: address -> its handshake blocks, in order.
    blocks: dict[str, list[Any]] = field(default_factory=dict)
    #: The address that sent GNUTELLA CONNECT, and the frame of its third leg.
    client: str | None = None
    final_frame: int | None = None
    #: (receiving address, type) -> GUID -> (ttl, hops) of pings and queries received.
    received: dict[tuple[str, str], dict[bytes, tuple[int, int]]] = field(default_factory=dict)
    #: address -> GUIDs of the queries it sent on this link.
    sent_queries: dict[str, set[bytes]] = field(default_factory=dict)
    #: address -> the QRP table the other side sent it.
    tables: dict[str, RouteTableReceiver] = field(default_factory=dict)
    #: address -> frame and capture time of its first Bye on this link.
    bye_from: dict[str, int] = field(default_factory=dict)
    bye_time: dict[str, float] = field(default_factory=dict)

    def ultrapeer(self, address: str) -> bool | None:
        """What ``address`` said of itself (X-Ultrapeer), None when it said nothing."""
        for block in self.blocks.get(address, []):
            value = block.headers.get("X-Ultrapeer") if block.headers else None
            if value is not None:
                return value.strip().lower() == "true"
        return None


class _Judge:
    def __init__(self, report: CaptureReport, endpoint: str | None) -> None:
        self.report = report
        self.endpoint = endpoint
        self.links: dict[frozenset[str], _Link] = {}
        #: address -> servent name (its Listen-IP)
        self.names: dict[str, str] = {}
        #: (servent name, type) -> GUID (a Push: servent id) -> (the neighbour it came from,
        #: ttl, hops, whether that neighbour is a leaf)
        self.arrivals: dict[tuple[str, str], dict[bytes, tuple[str, int, int, bool]]] = {}
        #: servents that say X-Dynamic-Querying (dynamic_query §2.5.3.2)
        self.dynamic: set[str] = set()

    # -- bookkeeping -------------------------------------------------------------------------

    def name(self, address: str) -> str:
        return self.names.get(address, address)

    def who(self, address: str) -> EndpointReport | None:
        name = self.name(address)
        if self.endpoint is not None and name != self.endpoint and address != self.endpoint:
            return None
        who = self.report.endpoints.get(name)
        if who is None:
            who = self.report.endpoints[name] = EndpointReport(name)
            for rule in RULES.values():
                who.tallies.setdefault(rule.rule, RuleTally(rule))
        return who

    def verdict(self, record: Any, rule: str, reason: str | None) -> None:
        """``reason`` None: the rule holds; a string: it does not."""
        who = self.who(record.src)
        if who is None:
            return
        tally = who.tallies[rule]
        tally.checked += 1
        if reason is not None:
            tally.failed += 1
            if len(tally.failures) < MAX_FAILURES_KEPT:
                tally.failures.append((record.frame, reason))

    # -- the walk ----------------------------------------------------------------------------

    def learn_names(self, records: list[Any]) -> None:
        for r in records:
            if r.message == "handshake" and r.value.headers:
                headers = r.value.headers
                listen = headers.get("Listen-IP") or headers.get("Node") or headers.get(
                    "X-My-Address")  # gtk-gnutella says Node, LimeWire X-My-Address
                if headers.get("X-Dynamic-Querying"):
                    self.dynamic.add(self.name(r.src))
                if listen and ":" in listen:
                    host = r.src.rpartition(":")[0]
                    port = listen.strip().rpartition(":")[2]
                    if port.isdigit():  # the address it listens on (its own IP as seen)
                        self.names[r.src] = f"{host}:{port}"
                        if headers.get("X-Dynamic-Querying"):
                            self.dynamic.add(self.names[r.src])

    def record(self, r: Any) -> None:
        link = self.links.setdefault(frozenset((r.src, r.dst)), _Link())
        who = self.who(r.src)
        if who is not None:
            who.messages += 1
            if who.implementation == "?" and r.message == "handshake" and r.value.headers:
                who.implementation = r.value.headers.get("User-Agent") or "?"
        musts = [d for d in r.deviations if d.level == "MUST"]
        self.verdict(r, "gnutella/valid", f"{musts[0].rule}: {musts[0].message}"
                     if musts else None)
        if r.message == "handshake":
            self.handshake(r, link)
        else:
            self.descriptor(r, link)

    def handshake(self, r: Any, link: _Link) -> None:
        block = r.value
        mine = link.blocks.setdefault(r.src, [])
        mine.append(block)
        if block.kind == "connect":
            link.client = r.src
        first = len(mine) == 1
        headers = block.headers
        gnutella2 = headers is not None and any(
            "gnutella2" in t for name in ("Accept", "Content-Type")
            for t in headers.tokens(name))  # Shareaza's G2 handshake: not Gnutella 0.6
        if first and not gnutella2 and block.kind in ("connect", "response") and (
                block.kind == "connect" or block.status_code == 200):
            value = headers.get("X-Ultrapeer")
            self.verdict(r, "gnutella/ultrapeer/x-ultrapeer", None if value and
                         value.strip().lower() in ("true", "false") else
                         f"X-Ultrapeer: {value!r}")
            self.verdict(r, "gnutella/handshake/user-agent",
                         None if headers.get("User-Agent") else "no User-Agent")
        if link.client == r.src and len(mine) == 2:
            link.final_frame = r.frame
        encodings = headers.tokens("Content-Encoding") if headers else []
        if encodings:
            self.verdict(r, "gnutella/compression/one-value", None if len(encodings) == 1
                         else f"Content-Encoding: {', '.join(encodings)}")
            other = [b for a, blocks in link.blocks.items() if a != r.src for b in blocks]
            offered = [t.lower() for b in other if b.headers
                       for t in b.headers.tokens("Accept-Encoding")]
            chosen = [e.lower() for e in encodings]
            self.verdict(r, "gnutella/compression/negotiated", None if set(chosen) <= set(
                offered) else f"Content-Encoding: {', '.join(encodings)} but the peer "
                              f"offered {', '.join(offered) or 'nothing'}")

    def descriptor(self, r: Any, link: _Link) -> None:
        d = r.value
        kind = r.message
        me, peer = r.src, r.dst
        name = self.name(me)
        # handshaking_0.6 §3: the server waits for the third leg
        if link.client == peer and link.blocks.get(me):
            self.verdict(r, "gnutella/handshake/third-leg",
                         None if link.final_frame is not None else
                         f"a {kind} before the client's third leg")
        if me in link.bye_from:
            self.verdict(r, "gnutella/bye/sender-closes",
                         f"a {kind} after its own Bye (frame {link.bye_from[me]})")
        if kind == "bye":
            self.verdict(r, "gnutella/bye/ttl-hops", None if (d.ttl, d.hops) == (1, 0) else
                         f"ttl {d.ttl} hops {d.hops}")
            if peer in link.bye_from and r.time - link.bye_time[peer] > CROSSING:
                self.verdict(r, "gnutella/bye/not-sent-back",
                             f"a Bye after the peer's Bye (frame {link.bye_from[peer]})")
            link.bye_from.setdefault(me, r.frame)
            link.bye_time.setdefault(me, r.time)
        if kind == "route_table_update":
            self.verdict(r, "gnutella/qrp/ttl1-hops0", None if (d.ttl, d.hops) == (1, 0) else
                         f"ttl {d.ttl} hops {d.hops}")
            table = link.tables.setdefault(peer, RouteTableReceiver())
            try:
                table.receive(d)
            except P2PKitError:
                link.tables[peer] = RouteTableReceiver()  # unreadable: judge nothing by it
        guid = d.get("guid")
        if kind == "pong":
            pings = link.received.get((me, "ping"), {})
            self.verdict(r, "gnutella/ping/pong-guid", None if guid in pings else
                         f"pong {guid.hex()} answers no ping received on this connection")
        if kind == "query_hit":
            queries = link.received.get((me, "query"), {})
            self.verdict(r, "gnutella/routing/hit-back", None if guid in queries else
                         f"hit {guid.hex()} for no query received on this connection")
        if kind == "query":
            sent = link.sent_queries.setdefault(me, set())
            self.verdict(r, "gnutella/routing/duplicate", None if guid not in sent else
                         f"query {guid.hex()} sent twice on this connection")
            sent.add(guid)
            if link.ultrapeer(peer) and d.hops > 0:
                self.verdict(r, "gnutella/routing/ttl-expired", None if d.ttl >= 1 else
                             "a query with TTL 0 to an ultrapeer")
            table = link.tables.get(me)
            if link.ultrapeer(me) and link.ultrapeer(peer) is False and table is not None \
                    and table.complete:
                urns = [p.text for p in d.get("extensions") or () if p.get("kind") == "urn"]
                wanted = any(table.contains(u) for u in urns) if urns else table.matches(
                    d.search_criteria)
                self.verdict(r, "gnutella/qrp/filter", None if wanted else
                             f"query {d.search_criteria!r} matches nothing in the leaf's "
                             "table")
        if kind in ("query", "query_hit", "push"):
            key = d.servent_id if kind == "push" else guid
            came = self.arrivals.get((name, kind), {}).get(key)
            if came is not None and came[0] != peer and d.hops > 0:
                _, ttl, hops, from_leaf = came
                # dynamic_query §2.2: "Upon receiving a query from a leaf, the Ultrapeer
                # ignores the TTL of that query and begins a dynamic query."
                if not (kind == "query" and from_leaf and name in self.dynamic):
                    self.verdict(r, "gnutella/routing/ttl-decrement", None if d.ttl < ttl
                                 else f"forwarded with ttl {d.ttl}, came with {ttl}")
                self.verdict(r, "gnutella/routing/hops-increment", None if d.hops == hops + 1
                             else f"forwarded with hops {d.hops}, came with {hops}")
        # what the receiver now knows
        if kind in ("ping", "query"):
            link.received.setdefault((peer, kind), {}).setdefault(guid, (d.ttl, d.hops))
        if kind in ("query", "query_hit", "push"):
            key = d.servent_id if kind == "push" else guid
            self.arrivals.setdefault((self.name(peer), kind), {}).setdefault(
                key, (me, d.ttl, d.hops, link.ultrapeer(me) is False))


def judge_gnutella(records: Iterable[Any], report: CaptureReport,
                   endpoint: str | None = None) -> CaptureReport:
    """Apply the Gnutella rules to the ``gnutella`` records of a capture (those sent by
    ``endpoint``, a servent's Listen-IP or address, when given)."""
    kept = [r for r in records if r.protocol == PROTOCOL and r.transport == "tcp"
            and r.value is not None and r.message not in ("http_request", "http_response",
                                                          "giv")]
    judge = _Judge(report, endpoint)
    judge.learn_names(kept)
    for r in sorted(kept, key=lambda r: r.frame):
        if r.message == "handshake" or "guid" in r.value:
            judge.record(r)
    return report

