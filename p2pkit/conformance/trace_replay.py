"""Replaying a trace against a live target: the recorded client's side, with fresh values.

A trace (a directory: ``trace.pcap`` + ``manifest.json``, :mod:`p2pkit.conformance.trace_manifest`)
becomes one :class:`~p2pkit.conformance.case.Case` whose steps send the recorded client's
messages (:class:`~p2pkit.conformance.case.Raw` bytes computed per run) and judge the target's
answers with the manifest's rules, so the existing runners play it and every reporter works:
the DHT's datagram runner (``Runner``), the BEP 15 tracker's
(``UdpTrackerRunner``), and the stream runner for the
BitTorrent peer wire and Gnutella (:mod:`p2pkit.conformance.trace_stream`). The first failing
step is the verdict's reason (step, field path, expected vs got).

Fresh values (the manifest's ``fresh``): the transaction id of each datagram (KRPC ``t``, BEP 15
``transaction_id``) is the runner's own fresh one; every recorded value named in ``fresh`` is
replaced, in what the harness sends, by fresh random bytes of the same length or by the value
the target gave in an earlier answer (a token, a connection id). Datagrams are rebuilt with the
schemas (bencode, ``UdpTrackerRequest``); stream bytes keep their layout (the fresh value has
the recorded one's length) and BitTorrent ``extended`` ids are rewritten for the target.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any

from p2pkit import bencode, registry
from p2pkit.conformance.case import Case, Computed, Raw, Step
from p2pkit.conformance.runner import (
    DEFAULT_DEADLINE,
    DEFAULT_SILENCE,
    DEFAULT_TIMEOUT,
    Address,
    Result,
    RunReport,
    TargetError,
    run_with,
)
from p2pkit.conformance.trace_deflate import InflatedTurn, split_deflated
from p2pkit.conformance.trace_manifest import (
    Fresh,
    Manifest,
    TraceStep,
    fresh_value,
    load_manifest,
    verifier_of,
)
from p2pkit.conformance.trace_session import SessionInfo, TraceError, Turn, read_turns
from p2pkit.conformance.verifiers import All, Anything
from p2pkit.errors import P2PKitError
from p2pkit.gnutella.deflate import Deflater

__all__ = [
    "SHIPPED",
    "catalog_traces",
    "Trace",
    "load_trace",
    "replay",
    "run_traces",
    "shipped_traces",
    "trace_case",
]

#: Where the traces shipped with p2pkit live (package data).
SHIPPED = files("p2pkit.conformance") / "traces"
#: Seconds a stream step without rules waits before the next one (the client's turn-taking).
STREAM_PAUSE = 0.05


@dataclass
class Trace:
    """A loaded trace: its manifest, the session's turns, and each step's client turn."""

    manifest: Manifest
    turns: list[Turn]
    sends: list[Turn]
    #: BitTorrent: extended id -> extension name, from the recorded server's handshake.
    recorded_names: dict[int, str] = field(default_factory=dict)
    #: Gnutella, a client that deflated its side: its turns inflated, by frame.
    deflated: dict[int, InflatedTurn] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return self.manifest.id


def _session(manifest: Manifest) -> SessionInfo:
    return SessionInfo(manifest.transport, manifest.client, manifest.server, "", 0)


def load_trace(directory: str | Path) -> Trace:
    """Read a trace directory; :class:`TraceError` with a one-line reason when the manifest,
    the capture or the session it names is missing or broken."""
    manifest = load_manifest(directory)
    capture = Path(directory) / manifest.capture
    if not capture.is_file():
        raise TraceError(f"{capture}: missing (the manifest's capture)")
    turns = read_turns(capture, _session(manifest))
    if not turns:
        raise TraceError(f"{capture}: no packet of the session {manifest.client} ↔ "
                         f"{manifest.server} that the manifest names")
    starts = {t.frame: t for t in turns if t.side == "client"}
    sends = []
    for i, step in enumerate(manifest.steps):
        turn = starts.get(step.frame)
        if turn is None:
            raise TraceError(f"{directory}: steps.{i}.frame: frame {step.frame} does not start "
                             f"a message of {manifest.client} to {manifest.server}")
        sends.append(turn)
    trace = Trace(manifest, turns, sends)
    if manifest.protocol == "bittorrent":
        trace.recorded_names = recorded_extension_names(turns, manifest)
    elif manifest.protocol == "gnutella":
        trace.deflated = split_deflated((t.frame, t.data) for t in turns if t.side == "client")
    return trace


def recorded_extension_names(turns: list[Turn], manifest: Manifest) -> dict[int, str]:
    """The ids the recorded server's BEP 10 handshake gave its extensions (the dissector's)."""
    factory = registry.load(registry.get("bittorrent").stream_decoder)
    client = factory(src=manifest.client, dst=manifest.server, transport="tcp")
    server = factory(src=manifest.server, dst=manifest.client, transport="tcp", peer=client)
    offsets = {"client": 0, "server": 0}
    for turn in turns:
        decoder = client if turn.side == "client" else server
        list(decoder.data(offsets[turn.side], turn.data, turn.frame, turn.time))
        offsets[turn.side] += len(turn.data)
    return dict(getattr(server, "received_names", {}) or {})


# ---- fresh values ---------------------------------------------------------------------------

def _substitute(value: Any, values: list[tuple[Any, Any]]) -> Any:
    """``value`` with every recorded value replaced (bytes also inside longer strings)."""
    if isinstance(value, Mapping):
        return {k: _substitute(v, values) for k, v in value.items()
                if not (isinstance(k, str) and k.startswith("_"))}
    if isinstance(value, list):
        return [_substitute(v, values) for v in value]
    if isinstance(value, bytes):
        for old, new in values:
            if isinstance(old, bytes) and isinstance(new, bytes) and old and old in value:
                value = value.replace(old, new)
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        for old, new in values:
            if isinstance(old, int) and value == old:
                return new
    return value


def _fresh_values(fresh: tuple[Fresh, ...], ctx: Any) -> list[tuple[Any, Any]]:
    """(recorded, fresh) pairs for this run so far: a value taken from an answer counts once
    that answer came (``KeyError`` when it came without the value)."""
    out = []
    for f in fresh:
        if f.from_step is not None and f"s{f.from_step}" not in ctx.answers:
            continue
        new = fresh_value(ctx, f)
        if isinstance(f.recorded, bytes) and not isinstance(new, bytes):
            continue
        out.append((f.recorded, new))
    return out


def _datagram_error(e: Exception) -> Exception:
    from p2pkit.conformance.runner import _StepError

    return _StepError(f"cannot build the step's message: {str(e).strip(chr(39))}")


def _krpc_sender(data: bytes, manifest: Manifest) -> Callable[[Any], bytes]:
    def build(ctx: Any) -> bytes:
        try:
            raw = _substitute(bencode.decode(data, strict=False),
                              _fresh_values(manifest.fresh, ctx))
            raw[b"t"] = ctx.current_t
            return bencode.encode(raw)
        except (KeyError, P2PKitError) as e:
            raise _datagram_error(e) from None
    return build


def _udp_tracker_sender(data: bytes, manifest: Manifest) -> Callable[[Any], bytes]:
    from p2pkit.bittorrent.tracker.udp import UdpTrackerRequest

    def build(ctx: Any) -> bytes:
        try:
            request = _substitute(UdpTrackerRequest.parse(data),
                                  _fresh_values(manifest.fresh, ctx))
            request["transaction_id"] = ctx.current_t
            return UdpTrackerRequest.build(request)
        except (KeyError, P2PKitError) as e:
            raise _datagram_error(e) from None
    return build


def _stream_sender(trace: Trace, turn: Turn, step: TraceStep | None = None
                   ) -> Callable[[Any], bytes]:
    manifest = trace.manifest
    needed = frozenset(
        rule["fields"]["extension"] for rule in (step.expect if step else ())
        if isinstance(rule.get("fields"), Mapping) and isinstance(
            rule["fields"].get("extension"), str))

    def fresh(data: bytes, ctx: Any) -> bytes:
        for old, new in _fresh_values(manifest.fresh, ctx):
            if isinstance(old, bytes) and isinstance(new, bytes) and len(old) == len(new):
                data = data.replace(old, new)
        return data

    def build(ctx: Any) -> bytes:
        inflated = trace.deflated.get(turn.frame)
        if inflated is None:
            data = fresh(turn.data, ctx)
        else:  # compression §3: fresh values inside the client's zlib stream (trace_deflate)
            if ctx.deflater is None:
                ctx.deflater = Deflater()  # the harness's own zlib stream on this connection
            data = fresh(inflated.plain, ctx) + ctx.deflater.batch(
                fresh(inflated.inflated, ctx))
        if manifest.protocol == "bittorrent" and trace.recorded_names:
            from p2pkit.conformance.trace_stream import rewrite_extended_ids

            data = rewrite_extended_ids(data, trace.recorded_names, ctx, needed)
        ctx.sent(data)
        return data
    return build


# ---- the case ------------------------------------------------------------------------------

def trace_case(trace: Trace) -> Case:
    """The trace as a case: one step per replayed message or turn, judged by its rules."""
    m = trace.manifest
    steps = []
    for i, (step, turn) in enumerate(zip(m.steps, trace.sends)):
        if m.protocol == "dht":
            send = _krpc_sender(turn.data, m)
        elif m.protocol == "tracker":
            send = _udp_tracker_sender(turn.data, m)
        else:
            send = _stream_sender(trace, turn, step)
        verifiers = [verifier_of(rule, m) for rule in step.expect]
        expect: Any = (verifiers[0] if len(verifiers) == 1 else All(*verifiers)) if \
            verifiers else None
        if expect is None and not m.stream:
            expect = Anything()  # the recorded server did not answer this one either
        wait = step.wait if step.wait is not None else (
            STREAM_PAUSE if m.stream and expect is None else None)
        steps.append(Step(send=Raw(Computed(send, f"frame {step.frame} of the trace")),
                          expect=expect, name=f"s{i}", wait=wait))
    provenance = m.provenance
    return Case(id=m.id, title=m.title or f"replay of {provenance['source']}",
                spec=m.spec or "recorded traffic", level=m.level, rule=m.id,
                requirement=m.requirement or (
                    f"Answer as {provenance['software']} was answered "
                    f"({provenance['source']}: {provenance['cut']})"),
                steps=tuple(steps),
                # a tracker case's first tag is its transport (BEP 15 traces are UDP)
                tags=("udp", "trace") if m.protocol == "tracker" else ("trace", m.protocol))


def catalog_traces(protocol: str, patterns: Iterable[str]) -> list[Case]:
    """The shipped traces of a datagram ``protocol`` (``dht``, ``tracker``) as cases for
    ``conformance run``, when a pattern names traces (``--cases 'trace/*'``,
    ``'dht/trace/libtorrent-*'``); the stream
    protocols' traces need the trace runner (``conformance replay``)."""
    from p2pkit.conformance.case import select

    patterns = list(patterns)
    if protocol not in ("dht", "tracker") or not any("trace" in p for p in patterns):
        return []
    # 'trace/*' as well as 'dht/trace/*'
    patterns += [f"{protocol}/{p}" for p in patterns if not p.startswith(f"{protocol}/")]
    traces = [load_trace(p) for p in shipped_traces()]
    return select([trace_case(t) for t in traces if t.manifest.protocol == protocol], patterns)


def shipped_traces() -> list[Path]:
    """The trace directories shipped with p2pkit, sorted by name."""
    root = Path(str(SHIPPED))
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if (p / "manifest.json").is_file())


# ---- running -------------------------------------------------------------------------------

async def _tcp_reachable(target: Address, timeout: float) -> None:
    where = f"{target[0]}:{target[1]}"
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(*target), timeout)
    except TimeoutError:
        raise TargetError(f"{where}: no TCP connection within {timeout:g} s") from None
    except OSError as e:
        raise TargetError(f"{where}: cannot connect ({e.strerror or e}; nothing listens on "
                          "that TCP port?)") from None
    writer.close()


async def replay(traces: Iterable[Trace], target: Address, *, strict: bool = False,
                 timeout: float = DEFAULT_TIMEOUT, silence: float = DEFAULT_SILENCE,
                 deadline: float = DEFAULT_DEADLINE, rng: random.Random | None = None,
                 check_target: bool = True,
                 on_result: Callable[[Result], None] | None = None) -> RunReport:
    """Replay ``traces`` (all of one protocol) against ``target``; the run's report."""
    traces = list(traces)
    protocols = {t.manifest.protocol for t in traces}
    if len(protocols) != 1:
        raise TraceError(f"one protocol per run, not {', '.join(sorted(protocols))}")
    protocol = protocols.pop()
    cases = [trace_case(t) for t in traces]
    options: dict[str, Any] = dict(strict=strict, timeout=timeout, silence=silence, rng=rng)
    where = f"{target[0]}:{target[1]}"
    if protocol == "dht":
        from p2pkit.conformance.runner import Runner, preflight

        if check_target:
            target = await preflight(target, timeout)
        runner: Any = Runner(target, **options)
    elif protocol == "tracker":
        from p2pkit.conformance.tracker.live import UdpTrackerRunner, preflight_udp

        if check_target:
            target = await preflight_udp(target, timeout)
        runner = UdpTrackerRunner(target, **options)
        where = f"udp://{where}"
    else:
        from p2pkit.conformance.trace_stream import TraceStream, TraceStreamRunner

        if check_target:
            await _tcp_reachable(target, timeout)
        first = traces[0]
        opening = _stream_sender(first, first.sends[0])
        runner = TraceStreamRunner(target, TraceStream(protocol, opening), **options)
    return await run_with(runner, cases, protocol=protocol, target=where, deadline=deadline,
                          on_result=on_result)


def run_traces(directories: Iterable[str | Path], target: Address,
               **options: Any) -> RunReport:
    """Load and replay trace directories on a new event loop."""
    traces = [load_trace(d) for d in directories]
    return asyncio.run(replay(traces, target, **options))
