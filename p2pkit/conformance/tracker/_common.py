"""What the tracker cases share: answers decoded with the tracker schemas, request templates,
and the verifiers that read peer lists.

A UDP answer (:class:`UdpTrackerAnswer`) is a BEP 15 response parsed with
:data:`p2pkit.bittorrent.tracker.udp.UdpTrackerResponse` (``action``, ``transaction_id``,
``connection_id``, ``interval``, ``leechers``, ``seeders``, ``peers``, ``files``, ``message``).
An HTTP answer (:class:`HttpTrackerAnswer`) is the bencoded body of the response decoded
leniently with :data:`p2pkit.bittorrent.tracker.http.AnnounceBody` or ``ScrapeBody``, with the
deviations they report (``interval``, ``peers``, ``failure_reason``, ``files.<hash>.complete``
…); ``http.status`` is the HTTP status code.

Each source letter of a case is one peer: its own peer id (:func:`peer_id`) and listening port
(:data:`PORTS`), so a peer list can be searched for "peer ``a``" (:class:`PeerListed`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from construct import Container

from p2pkit.bittorrent.tracker.http import (
    AnnounceBody,
    ScrapeBody,
    parse_http_request,
    parse_http_response,
)
from p2pkit.bittorrent.tracker.query import parse_query
from p2pkit.bittorrent.tracker.udp import (
    PROTOCOL_ID,
    UdpTrackerRequest,
    UdpTrackerResponse,
    UdpTrackerResponse6,
)
from p2pkit.conformance.case import (
    INFO_HASH,
    Case,
    Computed,
    FromAnswer,
    HttpGet,
    Step,
    T,
    UdpTracker,
)
from p2pkit.conformance.verifiers import (
    MISSING,
    OK,
    Answer,
    Anything,
    Check,
    Echo,
    Equals,
    Field,
    OneOf,
    Silence,
    Verifier,
    lookup,
)
from p2pkit.errors import P2PKitError

__all__ = [
    "ECHO",
    "LEFT",
    "PORTS",
    "PROTOCOL_ID",
    "HttpTrackerAnswer",
    "PeerCount",
    "PeerListed",
    "UdpTrackerAnswer",
    "UdpTrackerAnswer6",
    "connect",
    "connected",
    "http_announce",
    "http_case",
    "http_scrape",
    "peer_id",
    "refused_udp",
    "scrape_file",
    "strip_absent",
    "survives",
    "transport_of",
    "udp_announce",
    "udp_case",
    "udp_scrape",
]

#: The listening port each source letter's peer announces (BEP 3: "port: The port number this
#: peer is listening on.").
PORTS = {"a": 40001, "b": 40002, "c": 40003, "d": 40004}
#: Bytes a peer still has to download when it is a leecher.
LEFT = 16384


def peer_id(source: str = "a") -> Computed:
    """The peer id of ``source``'s peer: 8 bytes of client prefix, 12 random bytes (fresh per
    case; random bytes exercise the percent-encoding)."""
    letter = source[0]
    return Computed(lambda ctx: b"-PK0001-" + ctx.fresh(f"peer_id:{letter}", 12),
                    f"peer id {letter}")


def _key(source: str) -> Computed:
    letter = source[0]
    return Computed(lambda ctx: int.from_bytes(ctx.fresh(f"key:{letter}", 4), "big"),
                    f"key {letter}")


def strip_absent(value: Any) -> Any:
    """Containers without their ``None`` fields (absent keys), so lookups say *missing*."""
    if isinstance(value, Mapping):
        return Container((k, strip_absent(v)) for k, v in value.items()
                         if v is not None and not (isinstance(k, str) and k.startswith("_"))
                         and not (k == "extra" and not v))
    if isinstance(value, list):
        return [strip_absent(v) for v in value]
    return value


# ---- answers -------------------------------------------------------------------------------

class UdpTrackerAnswer(Answer):
    """A BEP 15 response from an IPv4 tracker (6-byte peers)."""

    WHAT = "a BEP 15 response"
    DISSECTOR = "bt-tracker"
    TREE_ALIASES = {"action": ""}
    SCHEMA = UdpTrackerResponse

    @classmethod
    def of(cls, data: bytes | None, elapsed: float = 0.0) -> Answer:
        if data is None:
            return cls(None, elapsed=elapsed)
        try:
            message = cls.SCHEMA.parse(data)
        except P2PKitError as e:
            return cls(data, error=str(e), elapsed=elapsed)
        return cls(data, strip_absent(message), elapsed=elapsed)

    @classmethod
    def decode_request(cls, data: bytes) -> Answer:
        try:
            return cls(data, strip_absent(UdpTrackerRequest.parse(data)))
        except P2PKitError as e:
            return cls(data, error=str(e))

    @property
    def kind(self) -> str:
        """``connect``, ``announce``, ``scrape``, ``error``, ``silence`` or ``not-bep15``."""
        if self.data is None:
            return "silence"
        if self.message is None:
            return "not-bep15"
        return str(self.message.get("action"))


class UdpTrackerAnswer6(UdpTrackerAnswer):
    """A BEP 15 response from an IPv6 tracker (BEP 15 §IPv6: "18 bytes instead of 6")."""

    SCHEMA = UdpTrackerResponse6


class HttpTrackerAnswer(Answer):
    """An HTTP tracker response: the bencoded body, decoded leniently (with deviations)."""

    WHAT = "a bencoded tracker response"
    DISSECTOR = "bt-tracker-http"
    TREE_ALIASES = {"http": "status"}
    #: The HTTP status code (None without a status line).
    status: int | None = None

    @classmethod
    def of(cls, data: bytes | None, elapsed: float = 0.0, kind: str = "announce") -> Answer:
        if data is None:
            return cls(None, elapsed=elapsed)
        try:
            response = parse_http_response(data, kind=None, strict=False)
        except P2PKitError as e:
            return cls(data, error=f"not an HTTP response: {e}", elapsed=elapsed)
        deviations: list = []
        body = (ScrapeBody if kind == "scrape" else AnnounceBody).lenient()
        try:
            message = body.parse_bytes(response.body, deviations)
        except P2PKitError as e:
            answer = cls(data, error=f"HTTP {response.status}, body {response.body[:24]!r}: {e}",
                         elapsed=elapsed)
        else:
            answer = cls(data, strip_absent(message), deviations, elapsed=elapsed)
        answer.status = response.status
        return answer

    @classmethod
    def decode_request(cls, data: bytes) -> Answer:
        try:
            request = parse_http_request(data)
        except P2PKitError:
            request = None
        line = data.split(b"\r\n", 1)[0]
        if request is None or request.query is None:
            return cls(data, error="not a tracker request") if request is None else cls(
                data, {"request": line.decode("latin-1")})
        fields: dict[str, Any] = {"request": f"{request.method} {request.path}"}
        try:
            for p in parse_query(request.query).parameters:
                value: Any = p.value
                if value.isascii() and value.decode("ascii").isprintable():
                    value = value.decode("ascii")  # numbers and words as text, ids as hex
                fields[p.name] = value if p.name not in fields else (
                    [*fields[p.name], value] if isinstance(fields[p.name], list)
                    else [fields[p.name], value])
        except P2PKitError as e:
            fields["query"] = f"{request.query[:80]} ({e})"
        return cls(data, fields)

    def get(self, path: str) -> Any:
        if path == "http.status":
            return MISSING if self.status is None else self.status
        return lookup(self.message, path)

    @property
    def kind(self) -> str:
        """``failure``, ``response``, ``silence`` or ``not-tracker``."""
        if self.data is None:
            return "silence"
        if self.message is None:
            return "not-tracker"
        return "failure" if "failure_reason" in self.message else "response"


# ---- templates -----------------------------------------------------------------------------

def connect(**over: Any) -> UdpTracker:
    """BEP 15 connect request: "protocol_id 0x41727101980 // magic constant", action 0."""
    return UdpTracker({"action": "connect", "transaction_id": T, **over})


def udp_announce(source: str = "a", *, connection: str = "conn", event: str = "started",
                 left: int = LEFT, **over: Any) -> UdpTracker:
    """BEP 15 announce request of ``source``'s peer with the connection id of step
    ``connection``."""
    message = {"action": "announce", "connection_id": FromAnswer(connection, "connection_id"),
               "transaction_id": T, "info_hash": INFO_HASH, "peer_id": peer_id(source),
               "downloaded": 0, "left": left, "uploaded": 0, "event": event,
               "key": _key(source), "num_want": -1, "port": PORTS[source[0]]}
    message.update(over)
    return UdpTracker(message)


def udp_scrape(*hashes: Any, connection: str = "conn", **over: Any) -> UdpTracker:
    """BEP 15 scrape request for ``hashes`` (the case's info-hash when none)."""
    return UdpTracker({"action": "scrape", "connection_id": FromAnswer(connection,
                                                                        "connection_id"),
                       "transaction_id": T, "info_hashes": list(hashes or (INFO_HASH,)),
                       **over})


def http_announce(source: str = "a", *, event: str | None = "started", left: int = LEFT,
                  compact: int | None = 1, drop: tuple[str, ...] = (),
                  extra: tuple[tuple[str, Any], ...] = (), **over: Any) -> HttpGet:
    """A BEP 3 announce of ``source``'s peer: info_hash, peer_id, port, uploaded,
    downloaded, left, event, compact (``None`` leaves a key out; ``drop`` too)."""
    params: dict[str, Any] = {"info_hash": INFO_HASH, "peer_id": peer_id(source),
                              "port": PORTS[source[0]], "uploaded": 0, "downloaded": 0,
                              "left": left, "event": event, "compact": compact}
    params.update(over)
    items = tuple((k, v) for k, v in params.items() if v is not None and k not in drop)
    return HttpGet(kind="announce", params=items + extra)


def http_scrape(*hashes: Any) -> HttpGet:
    """A BEP 48 scrape: "the ``info_hash`` key [...] appended multiple times"."""
    return HttpGet(kind="scrape", params=tuple(("info_hash", h) for h in hashes or (INFO_HASH,)))


#: BEP 15 "transaction_id": the request's, echoed.
ECHO = Echo(path="transaction_id")


def refused_udp() -> OneOf:
    """What a tracker may do with a request it will not serve: "ignores the request" (no
    answer) or an error packet (action 3); never the answer of a served request."""
    return OneOf(Silence(), Field("action", Equals("error")))


def survives() -> Anything:
    """A robustness step: whatever the target does with the input, the probe decides."""
    return Anything()


# ---- verifiers -----------------------------------------------------------------------------

def _peers(answer: Answer) -> list[tuple[str, int]]:
    out = []
    for key in ("peers", "peers6"):
        value = answer.get(key)
        if isinstance(value, list):
            for p in value:
                ip, port = lookup(p, "ip"), lookup(p, "port")
                if ip is not MISSING and port is not MISSING:
                    out.append((str(ip), int(port)))
    return out


class PeerListed(Verifier):
    """The answer's peer list (``peers`` and ``peers6``, compact or dictionaries) holds
    ``source``'s peer (its address and announced port), or does not (``listed=False``).

    The address is the one the tracker saw ``source`` at; the port, the one it announced."""

    def __init__(self, source: str, listed: bool = True, port: int | None = None) -> None:
        self.source = source
        self.listed = listed
        #: The port ``source`` announced, when not its own of :data:`PORTS`.
        self.port = port

    def check(self, answer: Answer, ctx: Any) -> Check:
        if answer.data is None:
            return Check(False, "no answer", "")
        if answer.message is None:
            return Check(False, f"answer is not {answer.WHAT}: {answer.error}", "")
        if answer.get("peers") is MISSING and answer.get("peers6") is MISSING:
            return Check(False, "peers: missing", "peers")
        ip = ctx.addresses[self.source][0]
        wanted = (ip, self.port or PORTS[self.source[0]])
        peers = _peers(answer)
        if (wanted in peers) == self.listed:
            return OK
        shown = ", ".join(f"{a}:{p}" for a, p in peers[:6]) or "none"
        return Check(False, f"peers ({shown}) {'lack' if self.listed else 'include'} "
                            f"{wanted[0]}:{wanted[1]}", "peers")

    def describe(self) -> str:
        at = f" at port {self.port}" if self.port else ""
        return f"peers {'include' if self.listed else 'exclude'} peer {self.source}{at}"


class PeerCount(Verifier):
    """At most ``most`` peers in the answer's lists, not counting ``source``'s own entry (a
    tracker listing the asker is judged by another rule)."""

    def __init__(self, most: int, source: str) -> None:
        self.most = most
        self.source = source

    def check(self, answer: Answer, ctx: Any) -> Check:
        if answer.message is None:
            return Check(False, "no answer" if answer.data is None else
                         f"answer is not {answer.WHAT}: {answer.error}", "")
        own = (ctx.addresses[self.source][0], PORTS[self.source[0]])
        n = len([p for p in _peers(answer) if p != own])
        return OK if n <= self.most else Check(False, f"{n} peers, asked for {self.most}",
                                               "peers")

    def describe(self) -> str:
        return f"at most {self.most} peers"


def scrape_file(field: str, rule: Any) -> Field:
    """A field of the case's info-hash's entry in a BEP 48 ``files`` dictionary."""
    return _FileField(field, rule)


class _FileField(Field):
    def __init__(self, name: str, rule: Any) -> None:
        super().__init__(f"files.<info_hash>.{name}", rule)
        self.name = name

    def check(self, answer: Answer, ctx: Any) -> Check:
        if answer.message is None:
            return Check(False, "no answer" if answer.data is None else
                         f"answer is not {answer.WHAT}: {answer.error}", "")
        files = answer.get("files")
        entry = files.get(ctx.info_hash, MISSING) if isinstance(files, Mapping) else MISSING
        value = lookup(entry, self.name) if entry is not MISSING else MISSING
        reason = self.rule(value, ctx)
        return Check(False, f"files[info_hash].{self.name}: {reason}", "files") if reason \
            else OK


def transport_of(case: Case) -> str:
    """``"http"`` or ``"udp"``: the transport a tracker case runs over (its first tag)."""
    return case.tags[0]


def _case(transport: str, fields: dict[str, Any]) -> Case:
    fields["id"] = "tracker/" + fields["id"]
    fields["steps"] = tuple(fields["steps"])
    fields["tags"] = (transport, *fields.get("tags", ()))
    return Case(**fields)


def http_case(**fields: Any) -> Case:
    """A :class:`Case` over HTTP, its id prefixed with ``tracker/``."""
    return _case("http", fields)


def udp_case(**fields: Any) -> Case:
    """A :class:`Case` over UDP (BEP 15), its id prefixed with ``tracker/``."""
    return _case("udp", fields)


def connected(name: str = "conn", source: str = "a") -> Step:
    """Set-up: a connect whose connection id later steps use."""
    return Step(send=connect(), name=name, source=source,
                expect=Field("action", Equals("connect")))

