"""BEP 3 §trackers over HTTP: the announce keys and their encodings, the response's
``interval`` and ``peers``, ``event`` (started, completed, stopped, empty), and the
``failure reason`` a bad request gets.

BEP 3 words its requirements in prose: "it must have two keys: ``interval`` [...] and
``peers``" is a MUST. Where it gives no keyword the case's level is chosen and said here:

- a peer is handed the other peers of the swarm (MUST: it is what a tracker is for, BEP 23
  §Overview: "This tracker returns a list of peers that are currently transferring the
  file."); not itself (SHOULD: a peer list holding the asker wastes a slot but breaks nothing);
- a stopped peer is no longer handed out (MUST: after ``stopped`` it is not "currently
  transferring");
- ``event=empty`` and no ``event`` are regular announces (MUST: BEP 3 defines them);
- percent-encoding of binary ``info_hash``/``peer_id`` in any spelling (MUST: "This value will
  almost certainly have to be escaped", and clients differ in how);
- a bad request answered with a ``failure reason`` (SHOULD: BEP 3 defines the key, not when it
  must be used; a tracker may also refuse at the HTTP level). Each of those is also a
  robustness case: the tracker must keep serving (MUST).
"""

from __future__ import annotations

from p2pkit.bittorrent.tracker.query import PercentStyle, QueryParameter, build_query
from p2pkit.conformance.case import Computed, HttpGet, Step
from p2pkit.conformance.tracker._common import (
    LEFT,
    PORTS,
    PeerCount,
    PeerListed,
    http_announce,
    http_case,
    peer_id,
)
from p2pkit.conformance.verifiers import (
    Absent,
    All,
    Between,
    Field,
    NoDeviation,
    OneOf,
    Present,
    Satisfies,
)

SPEC = "BEP 3 §trackers"
RESPONSE = ("Otherwise, it must have two keys: ``interval``, which maps to the number of seconds "
            "the downloader should wait between regular rerequests, and ``peers``.")
PEERS = ("``peers`` maps to a list of dictionaries corresponding to ``peers``, each of which "
         "contains the keys ``peer id``, ``ip``, and ``port``, which map to the peer's "
         "self-selected ID, IP address or dns name as a string, and port number, respectively.")
CURRENT = "This tracker returns a list of peers that are currently transferring the file."
FAILURE = ("If a tracker response has a key ``failure reason``, then that maps to a human "
           "readable string which explains why the query failed, and no other keys are "
           "required.")
RESPONSES = "Tracker responses are bencoded dictionaries."
EVENT = ("This is an optional key which maps to ``started``, ``completed``, or ``stopped`` (or "
         "``empty``, which is the same as not being present).")
STOPPED = "Downloaders send an announcement using ``stopped`` when they cease downloading."
INFO_HASH_TEXT = ("The 20 byte sha1 hash of the bencoded form of the info value from the "
                  "metainfo file. This value will almost certainly have to be escaped.")
PEER_ID_TEXT = ("A string of length 20 which this downloader uses as its id. Each downloader "
                "generates its own id at random at the start of a new download. This value "
                "will also almost certainly have to be escaped.")
PORT_TEXT = "The port number this peer is listening on."
RERQ = ("Note that downloaders may rerequest on nonscheduled times if an event happens or they "
        "need more peers.")

#: Bytes that must be escaped in a query (``%``, ``&``, ``=``, ``+``, space, ``#``, NUL, 0xff).
NASTY = b"%&=+ #?/\x00\xff\x7f\x80;:@!*'()\x01\x02"


def _text(value: object, ctx: object) -> bool:
    return isinstance(value, str) and bool(value.strip())


#: A bad request's answer: a bencoded dictionary whose ``failure reason`` is a non-empty string.
FAILURE_REASON = Field("failure_reason", Satisfies(_text, "a human readable string"))


def _dictionaries(value: object, ctx: object) -> bool:
    return isinstance(value, list) and bool(value) and all(
        isinstance(p, dict) and {"ip", "port"} <= set(p) and
        (len(p.get("peer_id", b"")) == 20 or "peer_id" not in p) for p in value)


def _nasty_hash(ctx: object) -> bytes:
    return (NASTY + ctx.fresh("nasty", 20))[:20]


def _query(style: PercentStyle, source: str):
    """A Computed query string of ``source``'s announce with the nasty info-hash, escaped in
    ``style`` (a client other than p2pkit's own encoder)."""
    def build(ctx: object) -> str:
        params = [("info_hash", _nasty_hash(ctx)), ("peer_id", ctx.resolve(peer_id(source))),
                  ("port", str(PORTS[source]).encode()), ("uploaded", b"0"),
                  ("downloaded", b"0"), ("left", str(LEFT).encode()), ("event", b"started"),
                  ("compact", b"1")]
        return build_query([QueryParameter(name=n, value=v) for n, v in params], style)
    return Computed(build, f"query of {source}, {'lower' if not style.uppercase else 'upper'}"
                           "case escapes")


def _everything_escaped(source: str) -> Computed:
    def build(ctx: object) -> str:
        def esc(data: bytes) -> str:
            return "".join(f"%{b:02X}" for b in data)
        return (f"info_hash={esc(ctx.info_hash)}&peer_id={esc(ctx.resolve(peer_id(source)))}"
                f"&port={PORTS[source]}&uploaded=0&downloaded=0&left={LEFT}&event=started"
                "&compact=1")
    return Computed(build, "every byte escaped, unreserved ones too")


def _bad(name: str, title: str, requirement: str, **params: object) -> object:
    drop = tuple(k for k, v in params.items() if v is None)
    kept = {k: v for k, v in params.items() if v is not None}
    return http_case(
        id=f"bep3/announce/{name}", title=title, spec=SPEC, requirement=requirement,
        level="SHOULD", rule="bep3/http/failure-reason", robustness=True,
        steps=[Step(send=http_announce(drop=drop, **kept), expect=FAILURE_REASON)])


CASES = [
    http_case(
        id="bep3/announce/interval", title="an announce is answered with an integer interval",
        spec=SPEC, requirement=RESPONSE, level="MUST", rule="bep3/announce/interval",
        steps=[Step(send=http_announce(), expect=Field("interval", Between(1, 2**31)))]),
    http_case(
        id="bep3/announce/peers-key", title="an announce is answered with a peers key",
        spec=SPEC, requirement=RESPONSE, level="MUST", rule="bep3/announce/peers",
        steps=[Step(send=http_announce(), expect=All(Field("failure_reason", Absent()),
                                                      Field("peers", Present())))]),
    http_case(
        id="bep3/announce/valid-body", title="the answer is a canonical bencoded dictionary "
        "with no MUST deviation", spec=SPEC, requirement=RESPONSES, level="MUST",
        rule="bep3/http/valid-body", depends=("bep3/announce/interval",),
        steps=[Step(send=http_announce(), expect=All(Field("failure_reason", Absent()),
                                                      NoDeviation(levels=("MUST",))))]),
    http_case(
        id="bep3/announce/sees-other-peer", title="a second peer is handed the first",
        spec="BEP 23 §Overview", requirement=CURRENT, level="MUST", rule="bep3/announce/peers",
        steps=[Step(send=http_announce("a"), source="a"),
               Step(send=http_announce("b", compact=None), source="b",
                    expect=PeerListed("a"))]),
    http_case(
        id="bep3/announce/not-itself", title="a peer is not handed its own address",
        spec="BEP 23 §Overview", requirement=CURRENT, level="SHOULD",
        rule="bep3/announce/not-itself",
        steps=[Step(send=http_announce("a"), source="a"),
               Step(send=http_announce("b"), source="b", expect=PeerListed("b", listed=False))]),
    http_case(
        id="bep3/announce/announced-port", title="peers are handed out at their announced "
        "port, not the connection's", spec=SPEC, requirement=PORT_TEXT, level="MUST",
        rule="bep3/announce/peers",
        steps=[Step(send=http_announce("a", port=PORTS["c"]), source="a"),
               Step(send=http_announce("b"), source="b",
                    expect=PeerListed("a", port=PORTS["c"]))]),
    http_case(
        id="bep3/announce/dictionary-peers", title="compact=0: a list of dictionaries with "
        "peer id, ip and port (or compact peers: compact is advisory)", spec=SPEC,
        requirement=PEERS, level="MUST", rule="bep3/announce/dictionary-peers",
        steps=[Step(send=http_announce("a", compact=0), source="a"),
               Step(send=http_announce("b", compact=0), source="b", expect=OneOf(
                   Field("peers_compact", Satisfies(lambda v, ctx: v is True, "compact")),
                   Field("peers", Satisfies(_dictionaries,
                                            "dictionaries with peer id, ip and port"))))]),
    http_case(
        id="bep3/announce/dictionary-peer-listed", title="compact=0: the second peer is handed "
        "the first", spec=SPEC, requirement=PEERS, level="MUST", rule="bep3/announce/peers",
        steps=[Step(send=http_announce("a", compact=0), source="a"),
               Step(send=http_announce("b", compact=0), source="b", expect=PeerListed("a"))]),
    http_case(
        id="bep3/announce/stopped-removes", title="a peer that sent stopped is no longer "
        "handed out", spec="BEP 23 §Overview", requirement=CURRENT, level="MUST",
        rule="tracker/announce/stopped",
        steps=[Step(send=http_announce("a"), source="a"),
               Step(send=http_announce("a", event="stopped"), source="a"),
               Step(send=http_announce("b"), source="b", expect=PeerListed("a", listed=False))]),
    http_case(
        id="bep3/announce/stopped-answered", title="a stopped announce is answered without a "
        "failure", spec=SPEC, requirement=STOPPED, level="SHOULD",
        rule="bep3/announce/stopped-answered",
        steps=[Step(send=http_announce("a"), source="a"),
               Step(send=http_announce("a", event="stopped"), source="a",
                    expect=Field("failure_reason", Absent()))]),
    http_case(
        id="bep3/announce/event-empty", title="event=empty is a regular announce", spec=SPEC,
        requirement=EVENT, level="MUST", rule="bep3/announce/event",
        steps=[Step(send=http_announce("a"), source="a"),
               Step(send=http_announce("b", event="empty"), source="b",
                    expect=PeerListed("a"))]),
    http_case(
        id="bep3/announce/no-event", title="an announce without event is a regular announce",
        spec=SPEC, requirement=EVENT, level="MUST", rule="bep3/announce/event",
        steps=[Step(send=http_announce("a"), source="a"),
               Step(send=http_announce("b", event=None), source="b", expect=PeerListed("a"))]),
    http_case(
        id="bep3/announce/binary-info-hash", title="an info_hash of reserved bytes, escaped "
        "in upper and in lower case, names one swarm", spec=SPEC, requirement=INFO_HASH_TEXT,
        level="MUST", rule="bep3/http/percent-encoding",
        steps=[Step(send=HttpGet(query=_query(PercentStyle(uppercase=True), "a")), source="a"),
               Step(send=HttpGet(query=_query(PercentStyle(uppercase=False), "b")), source="b",
                    expect=PeerListed("a"))]),
    http_case(
        id="bep3/announce/unreserved-escaped", title="escaping unreserved bytes too (%41 for A) "
        "names the same swarm", spec=SPEC, requirement=PEER_ID_TEXT, level="MUST",
        rule="bep3/http/percent-encoding",
        steps=[Step(send=http_announce("a"), source="a"),
               Step(send=HttpGet(query=_everything_escaped("b")), source="b",
                    expect=PeerListed("a"))]),
    _bad("missing-info-hash", "an announce without info_hash gets a failure reason",
         INFO_HASH_TEXT, info_hash=None),
    _bad("short-info-hash", "a 19-byte info_hash gets a failure reason", INFO_HASH_TEXT,
         info_hash=Computed(lambda ctx: ctx.info_hash[:19], "19 bytes")),
    _bad("long-peer-id", "a 21-byte peer_id gets a failure reason", PEER_ID_TEXT,
         peer_id=Computed(lambda ctx: b"-PK0001-" + ctx.fresh("long", 13), "21 bytes")),
    _bad("missing-port", "an announce without port gets a failure reason", PORT_TEXT,
         port=None),
    _bad("port-not-a-number", "port=abc gets a failure reason", PORT_TEXT, port="abc"),
    http_case(
        id="bep3/announce/bad-percent-encoding", title="a malformed escape (%zz) gets a "
        "failure reason", spec=SPEC, requirement=INFO_HASH_TEXT, level="SHOULD",
        rule="bep3/http/failure-reason", robustness=True,
        steps=[Step(send=HttpGet(query=Computed(
            lambda ctx: "info_hash=%zz%zz" + "%41" * 18 + "&peer_id=-PK0001-abcdefghijkl"
                        "&port=40001&uploaded=0&downloaded=0&left=1", "%zz escapes")),
            expect=FAILURE_REASON)]),
    http_case(
        id="bep3/announce/numwant", title="numwant=1 gets at most one peer (de-facto key)",
        spec=SPEC, requirement=RERQ, level="INFO", rule="tracker/http/numwant",
        steps=[Step(send=http_announce("a"), source="a"),
               Step(send=http_announce("b"), source="b"),
               Step(send=http_announce("c"), source="c"),
               Step(send=http_announce("d", extra=(("numwant", 1),)), source="d",
                    expect=PeerCount(1, "d"))]),
]
