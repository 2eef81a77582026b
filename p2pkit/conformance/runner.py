"""The live runner: plays the harness's side of each case against a target over UDP.

Each case gets fresh sockets (on a loopback target, each source letter of the case gets its own
127.42.x.y address, so a per-IP rate limit or token of one case never touches another), fresh
ids and transaction ids, a per-step timeout and, for robustness cases, a well-behaved probe
afterwards proving the target still serves. The whole run has a deadline. Verdicts:

``pass``, ``fail`` (a MUST case, or any case under ``--strict``), ``non-strict`` (a SHOULD or
MAY case failing without ``--strict``), ``informational`` (INFO cases: what the target does),
``unsupported`` (the target answered 204 "Method Unknown" to an extension, or the case needs
more source addresses than the target's network offers), ``target-died`` (the probe after the
case went unanswered) and ``skipped`` (the run's deadline passed first).

Reporters never run inside the runner: it calls ``on_result`` per case and returns a
:class:`RunReport` they read.

It stays one module: the datagram runner's verdicts, deadlines, probes and restarts are one
loop, and the other transports plug into it through its hooks (``run_with``; streams have
:mod:`p2pkit.conformance.stream_runner`).
"""

from __future__ import annotations

import asyncio
import ipaddress
import itertools
import random
import socket
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from p2pkit import bencode
from p2pkit.addresses import parse_host_port
from p2pkit.conformance.case import (
    Case,
    Computed,
    FromAnswer,
    Krpc,
    Placeholder,
    Raw,
    SourceAddress,
    Step,
)
from p2pkit.conformance.verifiers import MISSING, Answer, Check, lookup
from p2pkit.dht import krpc
from p2pkit.errors import P2PKitError

__all__ = [
    "CaseContext",
    "DEFAULT_DEADLINE",
    "DEFAULT_SILENCE",
    "DEFAULT_TIMEOUT",
    "Exchange",
    "Result",
    "RunReport",
    "TargetError",
    "VERDICTS",
    "flatten",
    "parse_target",
    "preflight",
    "run",
    "run_cases",
    "run_with",
]

VERDICTS = ("pass", "fail", "non-strict", "informational", "unsupported", "target-died",
            "skipped")
#: Seconds a step waits for its answer.
DEFAULT_TIMEOUT = 2.0
#: Seconds a step that expects no answer listens before it counts as silence.
DEFAULT_SILENCE = 0.4
#: Seconds the whole run may take.
DEFAULT_DEADLINE = 300.0
#: Seconds after a flood before the probe (lets the target drain its queue).
FLOOD_SETTLE = 0.2
#: Seconds a case may take beyond its steps' waits and the probe (building, restarts).
CASE_MARGIN = 5.0
#: Probes sent (one second apart) before a target counts as dead: a rate limiter that a flood
#: emptied must not pass for a crash.
PROBE_ATTEMPTS = 3
#: Datagrams per second when every case shares one source address (a target that is not on
#: IPv4 loopback): under the per-source rate limits nodes apply (p2pkit's: 20/s).
SHARED_SOURCE_RATE = 15.0

Address = tuple[str, int]


class TargetError(P2PKitError):
    """The target cannot be judged at all (bad address, unreachable, another protocol)."""


def parse_target(text: str) -> Address:
    """``HOST:PORT`` (``[v6]:PORT``) as an address tuple; :class:`TargetError` otherwise
    (the project's one parser, :func:`p2pkit.addresses.parse_host_port`).

    >>> parse_target("127.0.0.1:6881"), parse_target("[::1]:6881")
    (('127.0.0.1', 6881), ('::1', 6881))
    >>> parse_target("localhost")
    Traceback (most recent call last):
    ...
    p2pkit.conformance.runner.TargetError: 'localhost': expected HOST:PORT, e.g. 127.0.0.1:6881 or [::1]:6881
    """
    try:
        return parse_host_port(text)
    except ValueError as e:
        raise TargetError(f"{text!r}: {e}") from None


def _resolve_address(addr: Address) -> Address:
    try:
        infos = socket.getaddrinfo(addr[0], addr[1], type=socket.SOCK_DGRAM)
    except OSError as e:
        raise TargetError(f"{addr[0]}: cannot resolve ({e.strerror or e})") from None
    return infos[0][4][0], infos[0][4][1]


def flatten(value: Any, prefix: str = "") -> list[tuple[str, str]]:
    """A decoded message as ``(path, text)`` rows, the report's field tree.

    >>> flatten({"t": b"aa", "r": {"id": b"\\x01" * 2, "n": [1]}})
    [('t', '6161'), ('r.id', '0101'), ('r.n.0', '1')]
    """
    rows: list[tuple[str, str]] = []
    if isinstance(value, Mapping):
        for k, v in value.items():
            key = k.decode("latin-1") if isinstance(k, bytes) else str(k)
            if key.startswith("_") or (key == "method" and v is None):
                continue
            rows += flatten(v, f"{prefix}.{key}" if prefix else key)
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            rows += flatten(v, f"{prefix}.{i}" if prefix else str(i))
        if not value:
            rows.append((prefix, "[]"))
    elif isinstance(value, (bytes, bytearray)):
        raw = bytes(value)
        rows.append((prefix, raw.hex() if len(raw) <= 48 else
                     f"{len(raw)} bytes: {raw[:24].hex()}…"))
    else:
        rows.append((prefix, str(value)))
    return rows


@dataclass
class Exchange:
    """One step as it happened: what went out and what came back."""

    step: int
    source: str
    sent: bytes
    count: int
    expect: str
    answer: Answer
    check: Check | None

    def sent_fields(self) -> list[tuple[str, str]]:
        decoded = type(self.answer).decode_request(self.sent)
        if decoded.message is None:
            text = self.sent[:64]
            return [("raw", f"{len(self.sent)} bytes: {text!r}"
                     + ("…" if len(self.sent) > 64 else ""))]
        return flatten(decoded.message)

    def received_fields(self) -> list[tuple[str, str]]:
        a = self.answer
        if a.data is None:
            return []
        if a.message is None:
            return [("raw", f"{len(a.data)} bytes, not {a.WHAT}: {a.error}")]
        return flatten(a.message)

    def to_json(self) -> dict[str, Any]:
        return {
            "step": self.step, "source": self.source, "count": self.count,
            "sent": self.sent.hex(), "sent_fields": dict(self.sent_fields()),
            "expect": self.expect,
            "received": None if self.answer.data is None else self.answer.data.hex(),
            "received_fields": dict(self.received_fields()),
            "elapsed": round(self.answer.elapsed, 6),
            "deviations": [{"rule": d.rule, "level": d.level, "message": d.message,
                            "spec": d.spec} for d in self.answer.deviations],
            "ok": None if self.check is None else self.check.ok,
            "reason": "" if self.check is None else self.check.reason,
            "path": None if self.check is None else self.check.path,
        }


@dataclass
class Result:
    """A case's verdict."""

    case: Case
    verdict: str
    reason: str = ""
    elapsed: float = 0.0
    exchanges: list[Exchange] = field(default_factory=list)
    #: The first differing field of the failing step's answer.
    path: str | None = None
    failed_step: int | None = None

    def to_json(self) -> dict[str, Any]:
        c = self.case
        return {
            "id": c.id, "title": c.title, "spec": c.spec, "requirement": c.requirement,
            "level": c.level, "rule": c.rule, "robustness": c.robustness,
            "depends": list(c.depends), "extension": c.extension, "verdict": self.verdict, "reason": self.reason,
            "elapsed": round(self.elapsed, 6), "failed_step": self.failed_step,
            "path": self.path, "exchanges": [e.to_json() for e in self.exchanges],
        }


@dataclass
class RunReport:
    """A whole run: what reporters read."""

    protocol: str
    target: str
    strict: bool
    started: float
    duration: float = 0.0
    results: list[Result] = field(default_factory=list)
    #: The target's name in a multi-target run (``libtorrent``); the address otherwise.
    label: str = ""

    def __post_init__(self) -> None:
        self.label = self.label or self.target

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(VERDICTS, 0)
        for r in self.results:
            out[r.verdict] += 1
        return out

    @property
    def must_failures(self) -> list[Result]:
        """Cases that make the run fail: every ``fail`` (MUST, or any under --strict) and
        every ``target-died``."""
        return [r for r in self.results if r.verdict in ("fail", "target-died")]

    @property
    def ok(self) -> bool:
        return not self.must_failures


class _Receiver(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.queue: asyncio.Queue[tuple[bytes, Any, float]] = asyncio.Queue()
        self.errors: list[OSError] = []
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.queue.put_nowait((data, addr, time.monotonic()))

    def error_received(self, exc: OSError) -> None:
        self.errors.append(exc)


#: Numbers of the 127.42.x.y source addresses, shared by every runner of the process.
_SOURCE_NUMBERS = itertools.count()
#: Distinct 127.42.x.y addresses: x in 0-255, y in 1-254 (no .0 or .255 host part).
SOURCE_ADDRESSES = 256 * 254


def source_address(n: int) -> str:
    """The ``n``-th harness source address, one-to-one over :data:`SOURCE_ADDRESSES`
    consecutive numbers (an earlier mapping sent two consecutive numbers from the same address,
    which a target refusing a second handshake from one address, as transmission does, closed).

    >>> [source_address(n) for n in (0, 253, 254, 255)]
    ['127.42.0.1', '127.42.0.254', '127.42.1.1', '127.42.1.2']
    >>> len({source_address(n) for n in range(SOURCE_ADDRESSES)}) == SOURCE_ADDRESSES
    True
    """
    n %= SOURCE_ADDRESSES
    return f"127.42.{n // 254}.{n % 254 + 1}"


class _Sources:
    """Source addresses for a target: distinct loopback IPs when the target is on loopback."""

    def __init__(self, target: Address) -> None:
        ip = ipaddress.ip_address(target[0])
        self.family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
        self.many = ip.version == 4 and ip.is_loopback

    def ip(self) -> str:
        """A loopback source no other runner of this process uses at the same time (the
        counter is shared, so concurrent runners against one target never collide)."""
        if not self.many:
            return "::" if self.family == socket.AF_INET6 else "0.0.0.0"
        return source_address(next(_SOURCE_NUMBERS))

    @property
    def distinct(self) -> int:
        return SOURCE_ADDRESSES if self.many else 1

    def local_ip(self, target: Address) -> str:
        """The address the kernel sends to ``target`` from (what the target sees, short of
        a NAT on the way): a connected UDP socket's own address; nothing is sent."""
        with socket.socket(self.family, socket.SOCK_DGRAM) as probe:
            try:
                probe.connect(target)
                return probe.getsockname()[0]
            except OSError:
                return target[0]


class CaseContext:
    """Fresh values of one case run and the answers seen so far (for placeholders)."""

    def __init__(self, case: Case, rng: random.Random) -> None:
        self.case = case
        self.rng = rng
        self.node_id = rng.randbytes(20)
        self.info_hash = rng.randbytes(20)
        self.target = rng.randbytes(20)
        self.answers: dict[str, Answer] = {}
        self.addresses: dict[str, Address] = {}
        self.current_t: bytes | None = None
        self.target_address: Address = ("", 0)
        self.queries_received: list[bytes] = []
        self._fresh: dict[str, bytes] = {}

    def fresh(self, name: str, n: int) -> bytes:
        """``n`` random bytes, the same for ``name`` throughout the case (a key seed …)."""
        if name not in self._fresh:
            self._fresh[name] = self.rng.randbytes(n)
        return self._fresh[name]

    def answer(self, step: str) -> Answer:
        return self.answers[step]

    def resolve(self, value: Any) -> Any:
        if isinstance(value, Placeholder):
            if value.name == "t":
                return self.current_t
            return getattr(self, value.name)
        if isinstance(value, FromAnswer):
            answer = self.answers.get(value.step)
            got = lookup(answer.message if answer else None, value.path)
            if got is MISSING:
                raise _StepError(f"no {value.path} in the answer to step {value.step!r}")
            return got
        if isinstance(value, Computed):
            return value.fn(self)
        if isinstance(value, SourceAddress):
            return self.addresses[value.source]
        if isinstance(value, Mapping):
            return {k: self.resolve(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.resolve(v) for v in value]
        return value


class _StepError(Exception):
    """A step cannot be built (a value it needs never came)."""


def _encode_step(step: Step, ctx: CaseContext) -> bytes:
    ctx.current_t = ctx.rng.randbytes(2)
    send = step.send
    if isinstance(send, Raw):
        data = ctx.resolve(send.data) if isinstance(send.data, Computed) else send.data
        return data.replace(b"<T>", ctx.current_t)
    template = send.message if isinstance(send, Krpc) else send.value
    value = ctx.resolve(template)
    if isinstance(value, dict) and isinstance(value.get("t"), (bytes, bytearray)):
        ctx.current_t = bytes(value["t"])
    try:
        if isinstance(send, Krpc):
            return krpc.encode(value)
        return bencode.encode(value)
    except P2PKitError as e:
        raise _StepError(f"cannot build the step's message: {e}") from None


def _is_query(data: bytes) -> bool:
    try:
        raw = bencode.decode(data, strict=False)
    except P2PKitError:
        return False
    return isinstance(raw, dict) and raw.get(b"y") == b"q"


class Runner:
    """Runs cases one after the other against one target."""

    #: Each source letter of a case needs an address of its own (a DHT node is its address);
    #: when False (trackers tell peers apart by announced port), letters may share one and
    #: only ``Case.sources`` counts.
    letters_need_addresses = True

    def __init__(self, target: Address, *, strict: bool = False,
                 timeout: float = DEFAULT_TIMEOUT, silence: float = DEFAULT_SILENCE,
                 rng: random.Random | None = None,
                 restart: Callable[[], Awaitable[Address]] | None = None,
                 rate: float | None = None) -> None:
        self.target = target
        self.strict = strict
        self.timeout = timeout
        self.silence = silence
        self.rng = rng or random.Random()
        self.restart = restart
        self.sources = _Sources(target)
        self.dead = False
        self._gone = False
        #: Datagrams per second (None: as fast as the cases go).
        self.rate = rate if rate is not None else (
            None if self.sources.many else SHARED_SOURCE_RATE)
        self._last_send = 0.0

    async def _pace(self) -> None:
        if self.rate:
            wait = self._last_send + 1.0 / self.rate - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
        self._last_send = time.monotonic()

    async def _socket(self, ip: str) -> _Receiver:
        loop = asyncio.get_running_loop()
        _, receiver = await loop.create_datagram_endpoint(
            _Receiver, local_addr=(ip, 0), family=self.sources.family)
        return receiver

    async def _receive(self, receiver: _Receiver, queries: list[bytes], wait: float,
                       sent_at: float) -> Answer:
        deadline = sent_at + wait
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return Answer(None, elapsed=wait)
            try:
                data, addr, at = await asyncio.wait_for(receiver.queue.get(), left)
            except TimeoutError:
                return Answer(None, elapsed=wait)
            if self.is_unsolicited(data):  # the target's own queries (a verification ping …)
                queries.append(data)
                continue
            return self.decode_answer(data, at - sent_at)

    # Hooks for another datagram protocol on the same runner (BEP 15 trackers): how a step is
    # built, how an answer is decoded, what the target sends on its own, what the probe sends.

    def encode_step(self, step: Step, ctx: CaseContext) -> bytes:
        """The datagram of one step (KRPC: templates built with the schema)."""
        return _encode_step(step, ctx)

    def decode_answer(self, data: bytes, elapsed: float) -> Answer:
        """A datagram from the target, decoded leniently."""
        return Answer.of(data, elapsed=elapsed)

    def is_unsolicited(self, data: bytes) -> bool:
        """A datagram the target sent on its own (not an answer): a KRPC query."""
        return _is_query(data)

    def probe_datagram(self) -> bytes:
        """The well-behaved request of :meth:`probe`: a ping."""
        return krpc.encode(krpc.query("ping", self.rng.randbytes(2), id=self.rng.randbytes(20)))

    async def probe(self, timeout: float | None = None,
                    attempts: int = PROBE_ATTEMPTS) -> Answer:
        """A well-behaved ping from a fresh source; any answer proves the target serves.
        Up to ``attempts`` pings, a second apart, before it counts as silence."""
        answer = Answer(None)
        for attempt in range(attempts):
            if attempt:
                await asyncio.sleep(1.0)
            receiver = await self._socket(self.sources.ip())
            try:
                data = self.probe_datagram()
                await self._pace()
                receiver.transport.sendto(data, self.target)
                answer = await self._receive(receiver, [], timeout or self.timeout,
                                             time.monotonic())
            finally:
                receiver.transport.close()
            if answer.data is not None:
                break
        return answer

    def case_timeout(self, case: Case) -> float:
        """The most one case may take: each step's wait, the probe, and a margin."""
        waits = sum(s.wait if s.wait is not None else self.timeout for s in case.steps)
        pacing = len(case.steps) / self.rate if self.rate else 0.0
        probing = PROBE_ATTEMPTS * (self.timeout + 1.0)
        return waits + pacing + probing + FLOOD_SETTLE + CASE_MARGIN

    async def run_case_bounded(self, case: Case, left: float = float("inf")) -> Result:
        """:meth:`run_case` within :meth:`case_timeout` and the ``left`` of the run."""
        limit = min(self.case_timeout(case), left)
        try:
            return await asyncio.wait_for(self.run_case(case), limit)
        except TimeoutError:
            if limit >= left:
                return Result(case, "skipped", "the run's deadline passed during the case",
                              limit)
            verdict = "fail" if case.level == "MUST" or self.strict else (
                "informational" if case.level == "INFO" else "non-strict")
            return Result(case, verdict, f"the case took more than {limit:.1f} s", limit)

    async def run_case(self, case: Case) -> Result:
        started = time.monotonic()
        if self.dead:
            if self.restart is not None:
                self.target = await self.restart()
                self.dead = False
            elif self._gone or (await self.probe(attempts=1)).data is None:
                self._gone = True  # asked twice: no more probes, the rest is quick
                return Result(case, "target-died", "the target stopped answering earlier",
                              0.0)
            else:
                self.dead = False
        letters = sorted({s.source[0] for s in case.steps})
        needed = max(len(letters) if self.letters_need_addresses else 1, case.sources)
        if needed > self.sources.distinct:
            return Result(case, "unsupported", f"needs {needed} "
                          "source addresses (loopback targets only)", 0.0)
        ctx = CaseContext(case, self.rng)
        ctx.target_address = self.target
        receivers: dict[str, _Receiver] = {}
        ips: dict[str, str] = {}
        try:
            result = await self._play(case, ctx, receivers, ips, started)
        finally:
            for r in receivers.values():
                r.transport.close()
        if case.robustness or (result.verdict in ("fail", "non-strict", "informational",
                                                  "unsupported")
                               and "no answer" in result.reason):
            probe = await self.probe()
            if probe.data is None:
                self.dead = True
                result.verdict = "target-died"
                result.reason = (result.reason + "; " if result.reason else "") + (
                    "the probe after the case went unanswered")
        result.elapsed = time.monotonic() - started
        return result

    async def _play(self, case: Case, ctx: CaseContext, receivers: dict[str, _Receiver],
                    ips: dict[str, str], started: float) -> Result:
        result = Result(case, "pass")
        for source in sorted({s.source for s in case.steps}):
            letter = source[0]
            if letter not in ips:
                ips[letter] = self.sources.ip()
            receivers[source] = await self._socket(ips[letter])
            host, port = receivers[source].transport.get_extra_info("sockname")[:2]
            if host in ("0.0.0.0", "::"):
                host = self.sources.local_ip(self.target)
            ctx.addresses[source] = (host, port)
        for index, step in enumerate(case.steps):
            receiver = receivers[step.source]
            if step.send is None:  # listen only: what does the target send on its own?
                await asyncio.sleep(step.wait if step.wait is not None else self.silence)
                while not receiver.queue.empty():
                    data, _, _ = receiver.queue.get_nowait()
                    if self.is_unsolicited(data):
                        ctx.queries_received.append(data)
                answer = Answer(None)
                check = step.expect.check(answer, ctx) if step.expect is not None else None
                result.exchanges.append(Exchange(
                    step=index, source=step.source, sent=b"", count=0,
                    expect=step.expect.describe() if step.expect else "(listen)",
                    answer=answer, check=check))
                if check is not None and not check.ok:
                    return self._finish(result, case, index, check)
                continue
            try:
                data = self.encode_step(step, ctx)
            except _StepError as e:
                return self._finish(result, case, index, Check(False, str(e), None))
            first = data
            sent_at = time.monotonic()
            for i in range(step.repeat):
                if i:
                    data = self.encode_step(step, ctx)
                if step.repeat == 1:  # a flood is a flood
                    await self._pace()
                receiver.transport.sendto(data, self.target)
                if step.repeat > 1 and i % 64 == 63:
                    await asyncio.sleep(0)
            expect = step.expect
            if step.repeat > 1:
                await asyncio.sleep(FLOOD_SETTLE)
                while not receiver.queue.empty():
                    receiver.queue.get_nowait()
                answer = Answer(None)
            else:
                wait = step.wait if step.wait is not None else (
                    self.silence if expect is not None and expect.wants_silence
                    else self.timeout)
                answer = await self._receive(receiver, ctx.queries_received, wait, sent_at)
            if step.name:
                ctx.answers[step.name] = answer
            check = expect.check(answer, ctx) if expect is not None else None
            if expect is None and step.repeat == 1 and answer.data is None:
                check = Check(False, "no answer", "")
            result.exchanges.append(Exchange(
                step=index, source=step.source, sent=first, count=step.repeat,
                expect=expect.describe() if expect is not None else (
                    "(a flood: not judged)" if step.repeat > 1 else "any answer (set-up)"),
                answer=answer, check=check))
            if case.extension and answer.kind == "e" and answer.get("e.code") == 204:
                result.verdict = "unsupported"
                result.reason = f"{case.extension}: the target answered 204 Method Unknown"
                result.failed_step = index
                return result
            if case.extension and step.unsupported_if is not None and answer.kind in (
                    "r", "silence") and step.unsupported_if.check(answer, ctx).ok:
                result.verdict = "unsupported"
                result.reason = (f"{case.extension}: no answer" if answer.data is None else
                                 f"{case.extension}: the answer shows no support "
                                 f"({step.unsupported_if.describe()})")
                result.failed_step = index
                return result
            if check is not None and not check.ok:
                return self._finish(result, case, index, check)
        if case.level == "INFO":
            result.verdict = "informational"
        return result

    def _finish(self, result: Result, case: Case, index: int, check: Check) -> Result:
        result.failed_step = index
        result.reason = f"step {index + 1}: {check.reason}"
        result.path = check.path
        if case.level == "INFO":
            result.verdict = "informational"
        elif case.level == "MUST" or self.strict:
            result.verdict = "fail"
        else:
            result.verdict = "non-strict"
        return result


async def preflight(target: Address, timeout: float = DEFAULT_TIMEOUT) -> Address:
    """Check that ``target`` speaks KRPC: one ping must get a bencoded dictionary back.

    Raises :class:`TargetError` with a one-line reason (unreachable, silent, another
    protocol)."""
    resolved = _resolve_address(target)
    runner = Runner(resolved, timeout=timeout)
    loop = asyncio.get_running_loop()
    try:  # a connected socket, so an ICMP "port unreachable" comes back as an error
        _, receiver = await loop.create_datagram_endpoint(
            _Receiver, local_addr=(runner.sources.ip(), 0), remote_addr=resolved,
            family=runner.sources.family)
    except OSError as e:
        raise TargetError(f"{target[0]}:{target[1]}: cannot open a socket "
                          f"({e.strerror or e})") from None
    try:
        data = krpc.encode(krpc.query("ping", b"pf", id=runner.rng.randbytes(20)))
        try:
            receiver.transport.sendto(data)
        except OSError as e:
            raise TargetError(f"{target[0]}:{target[1]}: {e.strerror or e}") from None
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if receiver.errors:
                e = receiver.errors[0]
                raise TargetError(f"{target[0]}:{target[1]}: unreachable "
                                  f"({e.strerror or e}; nothing listens on that UDP port?)")
            if left <= 0:
                raise TargetError(f"{target[0]}:{target[1]}: no answer to a KRPC ping within "
                                  f"{timeout:g} s (not a DHT node, or unreachable)")
            try:
                answer, _, _ = await asyncio.wait_for(receiver.queue.get(), min(left, 0.05))
            except TimeoutError:
                continue
            try:
                raw = bencode.decode(answer, strict=False)
            except P2PKitError:
                raw = None
            if not isinstance(raw, dict) or b"y" not in raw:
                raise TargetError(f"{target[0]}:{target[1]}: answered {len(answer)} bytes that "
                                  f"are not KRPC ({answer[:16]!r}…): another protocol?")
            if raw.get(b"y") == b"q":
                continue
            return resolved
    finally:
        receiver.transport.close()


async def run_cases(cases: Iterable[Case], target: Address, *, protocol: str = "dht",
                    strict: bool = False, timeout: float = DEFAULT_TIMEOUT,
                    silence: float = DEFAULT_SILENCE, deadline: float = DEFAULT_DEADLINE,
                    check_target: bool = True, rng: random.Random | None = None,
                    on_result: Callable[[Result], None] | None = None,
                    restart: Callable[[], Awaitable[Address]] | None = None,
                    rate: float | None = None) -> RunReport:
    """Run ``cases`` against ``target`` and return the report (``on_result`` per case)."""
    if check_target:
        target = await preflight(target, timeout)
    else:
        target = _resolve_address(target)
    runner = Runner(target, strict=strict, timeout=timeout, silence=silence, rng=rng,
                    restart=restart, rate=rate)
    return await run_with(runner, cases, protocol=protocol, target=f"{target[0]}:{target[1]}",
                          deadline=deadline, on_result=on_result)


async def run_with(runner: Runner, cases: Iterable[Case], *, protocol: str, target: str,
                   deadline: float = DEFAULT_DEADLINE,
                   on_result: Callable[[Result], None] | None = None) -> RunReport:
    """Run ``cases`` one after the other with a runner already built for its target (the
    DHT's, or another transport's as the tracker catalog's) within ``deadline`` seconds, and
    return the report (``on_result`` per case)."""
    report = RunReport(protocol=protocol, target=target, strict=runner.strict,
                       started=time.time())
    began = time.monotonic()
    for case in cases:
        left = deadline - (time.monotonic() - began)
        if left <= 0:
            result = Result(case, "skipped", f"the run's deadline ({deadline:g} s) passed")
        else:
            result = await runner.run_case_bounded(case, left)
        report.results.append(result)
        if on_result is not None:
            on_result(result)
    report.duration = time.monotonic() - began
    return report


def run(cases: Iterable[Case], target: Address, **options: Any) -> RunReport:
    """:func:`run_cases` on a new event loop."""
    return asyncio.run(run_cases(cases, target, **options))
