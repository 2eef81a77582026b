"""Judge a capture offline: the DHT rules (and the tracker rules of
:mod:`p2pkit.conformance.tracker.offline`, the Gnutella rules of
:mod:`p2pkit.conformance.gnutella.offline`) applied to every endpoint seen in a pcap/pcapng.

The dissector (:func:`p2pkit.capture.dissect.dissect`) decodes each KRPC datagram leniently
and pairs answers with queries; each record a sender produced is then judged by the rules
below, the same verifiers the live cases use (:mod:`p2pkit.conformance.verifiers`), and the
lenient decoders' ``Deviation`` records (rule ``krpc/valid``), so a rule is written once. No
live peer is needed: who sent what, which rule, which frame.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from p2pkit.conformance.dht._common import ERROR_CODES
from p2pkit.conformance.verifiers import (
    Answer,
    Check,
    Field,
    In,
    Length,
    NoDeviation,
    OneOf,
    Present,
    Verifier,
)
from p2pkit.dht.krpc import PROTOCOL

__all__ = ["CaptureReport", "EndpointReport", "OfflineRule", "RULES", "check_capture"]


@dataclass(frozen=True)
class OfflineRule:
    """A rule applied to every captured message it ``applies`` to."""

    rule: str
    level: str
    spec: str
    title: str
    applies: Callable[[Any], bool]
    verifier: Verifier | Callable[[Any], Check]


def _y(*kinds: str, method: str | None = None) -> Callable[[Any], bool]:
    def applies(record: Any) -> bool:
        m = record.value
        return m.get("y") in kinds and (method is None or m.get("method") == method)
    return applies


def _size(limit: int) -> Callable[[Any], Check]:
    def check(record: Any) -> Check:
        return Check(True) if record.length <= limit else Check(
            False, f"{record.length}-byte datagram, more than {limit}", "")
    return check


#: The DHT rules a capture can be judged by (ids shared with the live catalog's rules).
RULES: tuple[OfflineRule, ...] = (
    OfflineRule("krpc/valid", "MUST", "BEP 5 §KRPC Protocol", "no MUST deviation in any message",
                _y("q", "r", "e"), NoDeviation(levels=("MUST",))),
    OfflineRule("bep5/response-id", "MUST", "BEP 5 §DHT Queries", "responses carry a 20-byte id",
                _y("r"), Field("r.id", Length(20))),
    OfflineRule("bep5/get_peers/token", "MUST", "BEP 5 §get_peers",
                "get_peers answers carry a token", _y("r", method="get_peers"),
                Field("r.token", Present())),
    OfflineRule("bep5/get_peers/values-or-nodes", "MUST", "BEP 5 §get_peers",
                "get_peers answers carry values or nodes", _y("r", method="get_peers"),
                OneOf(Field("r.values", Present()), Field("r.nodes", Present()),
                      Field("r.nodes6", Present()))),
    OfflineRule("bep5/find_node/nodes", "SHOULD", "BEP 5 §find_node",
                "find_node answers carry nodes", _y("r", method="find_node"),
                OneOf(Field("r.nodes", Present()), Field("r.nodes6", Present()))),
    OfflineRule("krpc/error-shape", "MUST", "BEP 5 §Errors", "errors are [code, message]",
                _y("e"), Field("e.code", Present())),
    OfflineRule("krpc/error-code-known", "SHOULD", "BEP 44 §Errors",
                "error codes are those BEP 5 and BEP 44 define", _y("e"),
                Field("e.code", In(ERROR_CODES))),
    OfflineRule("krpc/version", "SHOULD", "BEP 5 §KRPC Protocol",
                "every message carries 'v'", _y("q", "r", "e"), Field("v", Present())),
    OfflineRule("bep42/ip-field", "SHOULD", "BEP 42 §Node ID restriction",
                "responses carry the requestor's 'ip'", _y("r"), Field("ip", Present())),
    OfflineRule("bep32/packet-size", "MUST", "BEP 32 §Maximum packet size",
                "datagrams of at most 1024 bytes (nodes obeying BEP 32)", _y("q", "r", "e"),
                _size(1024)),
)


@dataclass
class RuleTally:
    rule: OfflineRule
    checked: int = 0
    failed: int = 0
    #: (frame, reason) of the first failures.
    failures: list[tuple[int, str]] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        if not self.checked:
            return "n/a"
        if not self.failed:
            return "pass"
        return "fail" if self.rule.level == "MUST" else "non-strict"


@dataclass
class EndpointReport:
    endpoint: str
    implementation: str = "?"
    messages: int = 0
    tallies: dict[str, RuleTally] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(t.verdict != "fail" for t in self.tallies.values())

    def to_json(self) -> dict[str, Any]:
        return {"endpoint": self.endpoint, "implementation": self.implementation,
                "messages": self.messages, "ok": self.ok,
                "rules": [{"rule": t.rule.rule, "level": t.rule.level, "spec": t.rule.spec,
                           "title": t.rule.title, "checked": t.checked, "failed": t.failed,
                           "verdict": t.verdict,
                           "failures": [{"frame": f, "reason": r} for f, r in t.failures]}
                          for t in self.tallies.values()]}


@dataclass
class CaptureReport:
    capture: str
    frames: int = 0
    endpoints: dict[str, EndpointReport] = field(default_factory=dict)
    #: Reader damage (a truncated capture), as one line; judging stopped there.
    warning: str | None = None

    @property
    def ok(self) -> bool:
        return all(e.ok for e in self.endpoints.values())

    def to_json(self) -> dict[str, Any]:
        return {"capture": self.capture, "frames": self.frames, "ok": self.ok,
                "warning": self.warning,
                "endpoints": [e.to_json() for e in self.endpoints.values()]}


#: Failures kept per rule and endpoint (the count goes on).
MAX_FAILURES_KEPT = 5


def _implementation(v: Any) -> str:
    """BEP 5 "v": two characters of client (BEP 20) and two of version."""
    if not isinstance(v, bytes) or len(v) < 2:
        return "?"
    client = v[:2].decode("latin-1")
    return f"{client} {v[2:].hex()}".strip()


def _krpc_answer(record: Any) -> Answer:
    return Answer(b"", message=record.value, deviations=list(record.deviations))


def _rulesets(rules: tuple[OfflineRule, ...]) -> dict[str, tuple[tuple[OfflineRule, ...],
                                                                Callable[[Any], Any]]]:
    """The DHT ``rules`` and the other catalogs' offline rules, by record protocol."""
    from p2pkit.conformance.tracker.offline import RULESETS as TRACKER

    return {PROTOCOL: (rules, _krpc_answer), **TRACKER}


#: BitTorrent records buffered for the peer-wire rules' two passes (piece data dropped).
MAX_PEER_WIRE_RECORDS = 2_000_000
#: Gnutella records buffered for the rules that follow messages across connections.
MAX_GNUTELLA_RECORDS = 1_000_000


def judge(records: Iterable[Any], report: CaptureReport, endpoint: str | None = None,
          rules: tuple[OfflineRule, ...] = RULES, torrents: Iterable[Any] = ()
          ) -> CaptureReport:
    """Apply ``rules`` to every KRPC record, the tracker rules
    (:mod:`p2pkit.conformance.tracker.offline`) to every tracker answer, and the peer-wire
    rules (:mod:`p2pkit.conformance.bittorrent.offline`) to every BitTorrent connection (of
    ``endpoint``'s, when given); ``torrents`` (:class:`~p2pkit.bittorrent.wire.metainfo.Metainfo`)
    give the peer-wire rules the shape of torrents whose metadata the capture does not carry."""
    from p2pkit.conformance.bittorrent import offline as peer_wire

    rulesets = _rulesets(rules)
    wire: list[Any] = []
    gnutella: list[Any] = []
    libp2p: Any = None
    for record in records:
        if record.protocol == "ipfs":  # judged as it streams, state per connection
            if libp2p is None:
                from p2pkit.conformance.ipfs.offline import IpfsJudge

                libp2p = IpfsJudge(report, endpoint)
            libp2p.record(record)
            continue
        if record.protocol == peer_wire.PROTOCOL:
            if len(wire) < MAX_PEER_WIRE_RECORDS:
                wire.append(peer_wire.light(record))
            elif report.warning is None:
                report.warning = (f"more than {MAX_PEER_WIRE_RECORDS} peer-wire messages: "
                                  "the rest are not judged")
            continue
        if record.protocol == "gnutella":  # judged with state across connections, below
            if len(gnutella) < MAX_GNUTELLA_RECORDS:
                gnutella.append(record)
            elif report.warning is None:
                report.warning = (f"more than {MAX_GNUTELLA_RECORDS} Gnutella messages: "
                                  "the rest are not judged")
            continue
        if record.protocol not in rulesets or record.value is None:
            continue
        if endpoint is not None and record.src != endpoint:
            continue
        applicable, as_answer = rulesets[record.protocol]
        answer = as_answer(record)
        if answer is None:
            continue
        who = report.endpoints.get(record.src)
        if who is None:
            who = report.endpoints[record.src] = EndpointReport(record.src)
        for r in applicable:
            who.tallies.setdefault(r.rule, RuleTally(r))
        who.messages += 1
        if record.protocol == PROTOCOL and who.implementation == "?" and \
                record.value.get("v") is not None:
            who.implementation = _implementation(record.value.get("v"))
        for rule in applicable:
            if not rule.applies(record):
                continue
            tally = who.tallies[rule.rule]
            tally.checked += 1
            verifier = rule.verifier
            result = (verifier.check(answer, None) if isinstance(verifier, Verifier)
                      else verifier(record))
            if not result.ok:
                tally.failed += 1
                if len(tally.failures) < MAX_FAILURES_KEPT:
                    tally.failures.append((record.frame, result.reason))
    if libp2p is not None:
        libp2p.finish()
    if wire:
        peer_wire.judge_capture(wire, report, endpoint, peer_wire.torrent_facts(torrents))
    if gnutella:
        from p2pkit.conformance.gnutella.offline import judge_gnutella

        judge_gnutella(gnutella, report, endpoint)
    return report


def check_capture(path: str | Path, endpoint: str | None = None,
                  torrents: Iterable[Any] = (), secrets: dict[str, Any] | None = None
                  ) -> CaptureReport:
    """Judge every DHT node, tracker, BitTorrent peer, Gnutella servent and libp2p endpoint of
    a capture (only ``endpoint``, ``HOST:PORT``, if given); ``torrents`` as for :func:`judge`;
    ``secrets``: per protocol, what decrypts its streams (the dissector's, e.g. a Noise key
    log for ``ipfs``)."""
    from p2pkit.capture.dissect import Dissection

    dissection = Dissection(path, secrets=secrets)
    report = CaptureReport(capture=str(path))
    judge(dissection, report, endpoint, torrents=torrents)
    report.frames = dissection.frames
    if dissection.error is not None:
        report.warning = str(dissection.error)
    return report
