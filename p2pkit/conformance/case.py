"""Conformance cases as data: what a case sends, what it accepts, and the spec beside it.

DESIGN.md §Shapes to follow ("Conformance cases are data, grouped in one module per spec
section", h2spec's ``6_5_settings.go``): a :class:`Case` carries a hierarchical id, the spec
reference, the requirement quoted from the spec text, its level, the rule it judges and the
:class:`Step` s the harness plays. A step's message is a template with placeholders for the
values that must be fresh in every run (``T``, ``NODE_ID``, ``INFO_HASH``, values
taken from an earlier answer with :class:`FromAnswer`, or computed with :class:`Computed`).

>>> case = Case(id="dht/bep5/ping/response", title="ping is answered", spec="BEP 5 §ping",
...             requirement="The appropriate response to a ping has a single key \\"id\\"",
...             level="MUST", rule="bep5/ping/response",
...             steps=(Step(send=Krpc({"t": T, "y": "q", "q": "ping", "a": {"id": NODE_ID}})),))
>>> case.section, case.strict_only
('dht/bep5/ping', False)
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "Bencoded",
    "Case",
    "Computed",
    "FromAnswer",
    "HttpGet",
    "INFO_HASH",
    "Krpc",
    "LEVELS",
    "Level",
    "NODE_ID",
    "PEER_ID",
    "Placeholder",
    "Raw",
    "SourceAddress",
    "Step",
    "T",
    "TARGET",
    "UdpTracker",
    "Wire",
    "select",
]

Level = Literal["MUST", "SHOULD", "MAY", "INFO"]
#: MUST cases decide the exit status; SHOULD and MAY fail only under ``--strict``; INFO cases
#: record what the target does (Autobahn's "informational").
LEVELS: tuple[str, ...] = ("MUST", "SHOULD", "MAY", "INFO")


@dataclass(frozen=True)
class Placeholder:
    """A value made fresh for each case run (resolved by the runner's context)."""

    name: str

    def __repr__(self) -> str:
        return f"<{self.name}>"


#: This step's fresh transaction id (2 random bytes; the step's own unless ``Step.t`` is set).
T = Placeholder("t")
#: The harness's node id for this case (20 random bytes).
NODE_ID = Placeholder("node_id")
#: A fresh info-hash (20 random bytes) for this case; the same in every step of the case.
INFO_HASH = Placeholder("info_hash")
#: A second fresh 20-byte id (a find_node or BEP 51 target).
TARGET = Placeholder("target")
#: The harness's peer id for this case (stream protocols: BitTorrent's 20 bytes).
PEER_ID = Placeholder("peer_id")


@dataclass(frozen=True)
class FromAnswer:
    """A value of an earlier step's answer: ``FromAnswer("peers", "r.token")``."""

    step: str
    path: str

    def __repr__(self) -> str:
        return f"<{self.step}.{self.path}>"


@dataclass(frozen=True)
class Computed:
    """A value computed from the case context (signatures, values of a given size…)."""

    fn: Callable[[Any], Any]
    label: str = "computed"

    def __repr__(self) -> str:
        return f"<{self.label}>"


@dataclass(frozen=True)
class SourceAddress:
    """The harness's own address of one source (``"a"``) as ``(ip, port)``."""

    source: str = "a"


@dataclass(frozen=True)
class Krpc:
    """A KRPC message template built with the strict schema (``p2pkit.dht.krpc.KrpcMessage``):
    keys as in BEP 5 (``t``, ``y``, ``q``, ``a``/``r``/``e``, ``v``, ``ip``, ``ro``)."""

    message: Mapping[str, Any]


@dataclass(frozen=True)
class Bencoded:
    """A template bencoded as it is, without the KRPC schema's checks (malformed input)."""

    value: Any


@dataclass(frozen=True)
class UdpTracker:
    """A BEP 15 request template built with the strict schema
    (``p2pkit.bittorrent.tracker.udp.UdpTrackerRequest``): ``action`` names it; ``T`` is
    the step's fresh 32-bit transaction id."""

    message: Mapping[str, Any]


@dataclass(frozen=True)
class Wire:
    """A message of a stream protocol built with that protocol's strict schema (the stream
    runner's :class:`~p2pkit.conformance.stream_runner.StreamProtocol` builds it): ``type``
    names the message, the other keys are its fields (placeholders resolved first)."""

    message: Mapping[str, Any]


@dataclass(frozen=True)
class HttpGet:
    """One HTTP tracker request (BEP 3 §trackers, BEP 48): ``GET`` of the target's announce
    path (``kind="announce"``) or the scrape path derived from it (``kind="scrape"``).

    ``params`` are ``(name, value)`` pairs, percent-encoded by the tracker schema
    (``p2pkit.bittorrent.tracker.query.build_query``); ``query`` replaces them with a query
    string sent as it is (malformed input). ``headers`` are extra header lines.
    """

    kind: str = "announce"
    params: tuple[tuple[str, Any], ...] = ()
    query: str | Computed | None = None
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Raw:
    """Bytes sent as they are; ``b"<T>"`` is replaced by the step's transaction id."""

    data: bytes | Computed


@dataclass(frozen=True, kw_only=True)
class Step:
    """One datagram (or ``repeat`` of them) and the verifier its answer must satisfy.

    ``expect=None`` only needs an answer (a set-up step, as the get_peers before an
    announce_peer); ``name`` keeps the answer for :class:`FromAnswer`. ``source`` picks the
    harness socket: one letter per source IP (``"a"``, ``"b"``…), a digit after it for another
    port of the same IP (``"a2"``). ``repeat`` > 1 sends a flood and judges nothing;
    ``send=None`` only listens for ``wait`` seconds (what the target sends on its own).
    """

    send: Krpc | Bencoded | Raw | UdpTracker | HttpGet | Wire | None
    expect: Any = None
    name: str = ""
    source: str = "a"
    repeat: int = 1
    #: Seconds to wait for the answer (default: the run's timeout; silence checks use less).
    wait: float | None = None
    #: For an extension carried by arguments (BEP 33 ``scrape``, BEP 51's ``samples``), where
    #: a node without it answers as to a plain query: when this verifier holds on the answer,
    #: the verdict is *unsupported*.
    unsupported_if: Any = None


@dataclass(frozen=True, kw_only=True)
class Case:
    """One conformance case."""

    #: Hierarchical id: ``<protocol>/<spec>/<topic>/<name>`` (``dht/bep5/get_peers/token``).
    id: str
    title: str
    #: Where the requirement is written: ``BEP 5 §get_peers``.
    spec: str
    #: The requirement, quoted from the spec text (whitespace aside, verbatim).
    requirement: str
    level: Level
    #: The rule the case judges; mutant tests expect exactly the cases naming a broken rule
    #: to fail (several cases may share a rule).
    rule: str
    steps: tuple[Step, ...]
    #: Other rules the verdict depends on (a case checking the *code* of the bad-token error
    #: also needs the token to be checked at all).
    depends: tuple[str, ...] = ()
    #: A robustness case: after the steps a well-behaved probe must still be answered.
    robustness: bool = False
    #: The extension the case needs (``"BEP 44"``): a 204 "Method Unknown" answer makes the
    #: verdict *unsupported* rather than *fail*.
    extension: str | None = None
    #: Distinct source IPs the case needs (loopback targets give each its own address).
    sources: int = 1
    tags: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if self.level not in LEVELS:
            raise ValueError(f"{self.id}: level {self.level!r} is not one of {LEVELS}")
        if not self.steps:
            raise ValueError(f"{self.id}: a case needs at least one step")

    @property
    def rules(self) -> tuple[str, ...]:
        """The rule the case judges, then those it depends on."""
        return (self.rule, *self.depends)

    @property
    def section(self) -> str:
        """The id without its last part: the spec section the case belongs to."""
        return self.id.rpartition("/")[0]

    @property
    def strict_only(self) -> bool:
        """SHOULD and MAY cases fail the run only under ``--strict``."""
        return self.level in ("SHOULD", "MAY")


def select(cases: Iterable[Case], patterns: Iterable[str] = ()) -> list[Case]:
    """The cases whose id matches one of the glob ``patterns`` (all when there are none); a
    pattern without a wildcard also matches every id below it.

    >>> ids = [Case(id=i, title="", spec="", requirement="", level="MUST", rule="r",
    ...             steps=(Step(send=Raw(b"")),)) for i in ("dht/a/x", "dht/b/y")]
    >>> [c.id for c in select(ids, ["*/b/*"])], [c.id for c in select(ids, ["dht/a"])]
    (['dht/b/y'], ['dht/a/x'])
    """
    patterns = list(patterns)
    if not patterns:
        return list(cases)
    out = []
    for case in cases:
        for p in patterns:
            if fnmatch.fnmatchcase(case.id, p) or case.id.startswith(p.rstrip("/") + "/") or (
                    "*" not in p and "?" not in p and p in case.id):
                out.append(case)
                break
    return out
