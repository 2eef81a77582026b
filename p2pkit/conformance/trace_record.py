"""Making traces: cut one session out of a capture and infer its manifest's default rules.

:func:`record_from_capture` writes ``TRACE_DIR/trace.pcap`` (the session's frames, as
captured) and ``TRACE_DIR/manifest.json``. The default rules come from the recorded answers,
decoded with the same decoders the harness judges live answers with:

* DHT (BEP 5): a response must be a response (``y`` = ``r``) echoing the transaction id, with a
  20-byte ``r.id``, valid by the KRPC schema; an error must be an error of the same code. The
  rest varies between implementations (which nodes, which values) and is not compared.
* UDP tracker (BEP 15): the same ``action``, the transaction id echoed; a connect answer
  carries a connection id; an announce answer an interval. Recorded errors only need a valid
  answer with the transaction id (they depend on the recorded tracker's state).
* BitTorrent (BEP 3, 9, 10): the handshake with the same info-hash, the extension handshake,
  ``ut_metadata`` data for each requested piece, ``piece`` for each request, ``unchoke``.
* Gnutella 0.6: the handshake's status, and a ``pong`` echoing each ``ping``'s GUID.

Fresh values are found the same way: the client's node id, peer id, info-hash and announced
port (trackers) and descriptor GUIDs become fresh random values; a token or connection id the
client took from an answer is taken from the live target's answer to the same step.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from p2pkit import registry
from p2pkit.conformance.trace_manifest import CAPTURE_NAME, Fresh, Manifest, TraceStep
from p2pkit.conformance.trace_session import (
    SessionInfo,
    TraceError,
    Turn,
    cut_session,
    find_sessions,
    read_turns,
)

__all__ = ["Provenance", "infer_manifest", "pick_session", "record_from_capture"]


@dataclass(frozen=True)
class Provenance:
    """Where a trace comes from: the source capture, the software that produced the replayed
    side, and what was cut."""

    source: str
    software: str = "unknown"
    cut: str = ""


def pick_session(capture: str | Path, endpoint: str, number: int = 1) -> SessionInfo:
    """The ``number``-th (1-based) replayable session of ``endpoint`` in ``capture``."""
    sessions = [s for s in find_sessions(capture, endpoint)
                if s.protocol is not None and s.client != s.server]
    if not sessions:
        raise TraceError(f"{capture}: no DHT, UDP tracker, BitTorrent or Gnutella session of "
                         f"{endpoint}")
    if not 1 <= number <= len(sessions):
        raise TraceError(f"{capture}: --session {number}: {endpoint} has {len(sessions)} "
                         "replayable sessions")
    return sessions[number - 1]


# ---- datagrams ------------------------------------------------------------------------------

def _dht_steps(turns: list[Turn]) -> tuple[list[TraceStep], list[Fresh]]:
    from p2pkit.conformance.verifiers import Answer

    steps: list[TraceStep] = []
    fresh: dict[str, Fresh] = {}
    tokens: dict[bytes, int] = {}
    answers = [(t, Answer.of(t.data)) for t in turns if t.side == "server"]
    for turn in (t for t in turns if t.side == "client"):
        query = Answer.of(turn.data)
        if query.kind != "q":
            continue
        node_id = query.get("a.id")
        if isinstance(node_id, bytes) and len(node_id) == 20 and "node_id" not in fresh:
            fresh["node_id"] = Fresh("node_id", node_id)
        token = query.get("a.token")
        if isinstance(token, bytes) and token in tokens:
            name = f"token-{tokens[token] + 1}"
            fresh.setdefault(name, Fresh(name, token, tokens[token], "r.token"))
        t = query.get("t")
        answer = next((a for s, a in answers if s.time >= turn.time and a.message is not None
                       and a.get("t") == t), None)
        rules: list[dict[str, Any]] = []
        if answer is not None and answer.kind == "r":
            rules = [{"response": True}, {"echo": "t"}, {"field": "r.id", "length": 20},
                     {"valid": True}]
            got = answer.get("r.token")
            if isinstance(got, bytes):
                # the latest answer that gave it: a node may bind its tokens to the target as
                # well as the address (libtorrent does), so the get before a put counts
                tokens[got] = len(steps)
        elif answer is not None and answer.kind == "e":
            code = answer.get("e.code")
            rules = [{"error": [int(code)] if isinstance(code, int) else []}, {"echo": "t"}]
        steps.append(TraceStep(turn.frame, tuple(rules),
                               note=str(query.get("method"))))
    return steps, list(fresh.values())


def _tracker_steps(turns: list[Turn]) -> tuple[list[TraceStep], list[Fresh]]:
    from p2pkit.bittorrent.tracker.udp import UdpTrackerRequest
    from p2pkit.conformance.tracker._common import UdpTrackerAnswer
    from p2pkit.errors import P2PKitError

    steps: list[TraceStep] = []
    fresh: dict[Any, Fresh] = {}
    connections: dict[int, int] = {}
    answers = [(t, UdpTrackerAnswer.of(t.data)) for t in turns if t.side == "server"]
    for turn in (t for t in turns if t.side == "client"):
        try:
            request = UdpTrackerRequest.parse(turn.data)
        except P2PKitError:
            continue
        for name in ("info_hash", "peer_id"):
            value = request.get(name)
            if isinstance(value, bytes) and value not in fresh:
                fresh[value] = Fresh(f"{name}-{len(fresh) + 1}", value)
        port = request.get("port")
        if isinstance(port, int) and port and ("port", port) not in fresh:
            fresh[("port", port)] = Fresh(f"port-{len(fresh) + 1}", port)
        for value in request.get("info_hashes") or ():
            if isinstance(value, bytes) and value not in fresh:
                fresh[value] = Fresh(f"info_hash-{len(fresh) + 1}", value)
        cid = request.get("connection_id")
        if request.action != "connect" and cid in connections and cid not in fresh:
            fresh[cid] = Fresh(f"connection_id-{connections[cid] + 1}", cid,
                               connections[cid], "connection_id")
        answer = next((a for s, a in answers if s.time >= turn.time and a.message is not None
                       and a.get("transaction_id") == request.transaction_id), None)
        rules: list[dict[str, Any]] = []
        if answer is not None:
            kind = answer.kind
            rules = [{"valid": True}, {"echo": "transaction_id"}]
            if kind == request.action:
                rules.insert(0, {"exact": {"action": kind}})
            if kind == "connect":
                rules.append({"field": "connection_id", "present": True})
                connections.setdefault(answer.get("connection_id"), len(steps))
            elif kind == "announce":
                rules.append({"field": "interval", "between": [1, 2**31 - 1]})
        steps.append(TraceStep(turn.frame, tuple(rules), note=str(request.action)))
    return steps, list(fresh.values())


# ---- streams --------------------------------------------------------------------------------

def _stream_records(turns: list[Turn], session: SessionInfo, protocol: str
                    ) -> tuple[list[Any], list[Any]]:
    """The dissector's records of each side (client's, server's)."""
    factory = registry.load(registry.get(protocol).stream_decoder)
    client = factory(src=session.client, dst=session.server, transport="tcp")
    server = factory(src=session.server, dst=session.client, transport="tcp", peer=client)
    out: dict[str, list[Any]] = {"client": [], "server": []}
    offsets = {"client": 0, "server": 0}
    for turn in turns:
        decoder = client if turn.side == "client" else server
        out[turn.side] += list(decoder.data(offsets[turn.side], turn.data, turn.frame,
                                            turn.time))
        offsets[turn.side] += len(turn.data)
    out["client"] += list(client.end())
    out["server"] += list(server.end())
    return out["client"], out["server"]


#: The fields a BEP 52 ``hashes`` message repeats from its ``hash request``.
_HASH_KEYS = ("pieces_root", "base_layer", "index", "length", "proof_layers")


def _bittorrent_rule(record: Any, requested: set[Any]) -> dict[str, Any] | None:
    f = record.fields
    if record.message == "handshake":
        return {"receives": "handshake", "fields": {"info_hash": f.get("info_hash")}}
    if record.message == "piece" and (f.get("index"), f.get("begin")) in requested:
        return {"receives": "piece", "fields": {"index": f["index"], "begin": f["begin"]}}
    if record.message == "hashes" and ("hashes", *(f.get(k) for k in _HASH_KEYS)) in requested:
        # BEP 52: the hashes answer names the request it answers
        return {"receives": "hashes", "fields": {k: f.get(k) for k in _HASH_KEYS}}
    if record.message == "extended":
        if f.get("extension") == "handshake":
            return {"receives": "extended", "fields": {"extension": "handshake"}}
        message = f.get("message") or {}
        if f.get("extension") == "ut_metadata" and message.get("msg_type") == "data" and (
                ("ut_metadata", message.get("piece")) in requested):
            return {"receives": "extended", "fields": {
                "extension": "ut_metadata", "message.msg_type": "data",
                "message.piece": message.get("piece")}}
    return None


def _stream_steps(turns: list[Turn], session: SessionInfo, protocol: str
                  ) -> tuple[list[TraceStep], list[Fresh], str | None]:
    client_records, server_records = _stream_records(turns, session, protocol)
    starts = [t for t in turns if t.side == "client"]
    fresh: dict[str, Fresh] = {}
    info_hash = None
    requested: set[Any] = set()
    guids: dict[str, str] = {}
    interested: int | None = None

    def step_of(record: Any) -> int | None:
        return max((i for i, t in enumerate(starts) if t.frame <= record.frame), default=None)

    for r in client_records:
        f = r.fields
        if protocol == "bittorrent":
            if r.message == "handshake":
                info_hash = info_hash or f.get("info_hash")
                if isinstance(f.get("peer_id"), str) and "peer_id" not in fresh:
                    fresh["peer_id"] = Fresh("peer_id", bytes.fromhex(f["peer_id"]))
            elif r.message == "interested" and interested is None:
                interested = step_of(r)
            elif r.message == "request":
                requested.add((f.get("index"), f.get("begin")))
            elif r.message == "hash_request":
                requested.add(("hashes", *(f.get(k) for k in _HASH_KEYS)))
            elif r.message == "extended" and f.get("extension") == "ut_metadata" and (
                    (f.get("message") or {}).get("msg_type") == "request"):
                requested.add(("ut_metadata", f["message"].get("piece")))
        elif protocol == "gnutella":
            guid = f.get("guid")
            if isinstance(guid, str) and guid.strip("0") and guid not in guids:
                guids[guid] = name = f"guid-{len(guids) + 1}"
                fresh[name] = Fresh(name, bytes.fromhex(guid))
    rules: list[list[dict[str, Any]]] = [[] for _ in starts]
    if interested is not None and any(r.message == "unchoke" for r in server_records):
        # BEP 3: a seeder unchokes an interested peer (when it unchokes unasked varies)
        rules[interested].append({"receives": "unchoke"})
    for r in server_records:
        index = step_of(r)
        if index is None:
            continue
        if protocol == "bittorrent":
            rule = _bittorrent_rule(r, requested)
        else:
            rule = _gnutella_rule(r, guids)
        if rule is not None and rule not in rules[index] and not any(
                rule in earlier for earlier in rules[:index]):
            rules[index].append(rule)
    steps = [TraceStep(t.frame, tuple(r)) for t, r in zip(starts, rules)]
    return steps, list(fresh.values()), info_hash


def _gnutella_rule(record: Any, guids: dict[str, str]) -> dict[str, Any] | None:
    f = record.fields
    if record.message == "handshake" and isinstance(f.get("status"), int):
        return {"receives": "handshake", "fields": {"status": f["status"]}}
    if record.message == "pong" and f.get("guid") in guids:
        return {"receives": "pong", "fields": {"guid": {"fresh": guids[f["guid"]]}}}
    if record.message == "query_hit" and f.get("guid") in guids:
        return {"receives": "query_hit", "fields": {"guid": {"fresh": guids[f["guid"]]}}}
    return None


# ---- the trace ------------------------------------------------------------------------------

def infer_manifest(capture: str | Path, session: SessionInfo, *, id: str, title: str,
                   provenance: Provenance, max_steps: int | None = None) -> Manifest:
    """The manifest of the session in ``capture`` with default rules inferred from the
    recorded answers (see the module's docstring)."""
    protocol = session.protocol
    if protocol is None:
        raise TraceError(f"{session.dissected}: the harness cannot replay this protocol")
    turns = read_turns(capture, session)
    info_hash = None
    if protocol == "dht":
        steps, fresh = _dht_steps(turns)
    elif protocol == "tracker":
        steps, fresh = _tracker_steps(turns)
    else:
        steps, fresh, info_hash = _stream_steps(turns, session, protocol)
    if max_steps is not None:
        steps = steps[:max_steps]
        fresh = [f for f in fresh if f.from_step is None or f.from_step < len(steps)]
    if not steps:
        raise TraceError(f"{capture}: {session.client} sent {session.server} nothing the "
                         f"harness can replay")
    return Manifest(id=id, title=title, protocol=protocol, provenance={
        "source": provenance.source, "software": provenance.software,
        "cut": provenance.cut or f"{session.transport} {session.client} ↔ {session.server}"},
        transport=session.transport, client=session.client, server=session.server,
        steps=tuple(steps), fresh=tuple(fresh), info_hash=info_hash,
        spec={"dht": "BEP 5", "tracker": "BEP 15", "bittorrent": "BEP 3",
              "gnutella": "Gnutella 0.6"}[protocol])


def record_from_capture(capture: str | Path, endpoint: str, out: str | Path, *,
                        session: int = 1, max_steps: int | None = None, name: str | None = None,
                        software: str = "unknown", source: str | None = None,
                        title: str | None = None) -> Manifest:
    """Cut the ``session``-th session of ``endpoint`` out of ``capture`` into the trace
    directory ``out`` (``trace.pcap`` + ``manifest.json``); the manifest written."""
    chosen = pick_session(capture, endpoint, session)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    last_frame = None
    if max_steps is not None:
        turns = read_turns(capture, chosen)
        starts = [t for t in turns if t.side == "client"]
        if len(starts) > max_steps:
            last_frame = starts[max_steps].frame - 1
    cut_session(capture, chosen, out / CAPTURE_NAME, last_frame=last_frame)
    name = name or out.name
    manifest = infer_manifest(
        out / CAPTURE_NAME, chosen, id=f"{chosen.protocol}/trace/{name}",
        title=title or f"{software}'s side of a {chosen.protocol} session, replayed",
        provenance=Provenance(source or Path(capture).name, software,
                              f"{chosen.transport} session {session} of {endpoint} "
                              f"({chosen.client} ↔ {chosen.server})"
                              + (f", first {max_steps} steps" if last_frame else "")),
        max_steps=max_steps)
    manifest.dump(out)
    return manifest
