"""The stream runner: plays the harness's side of each case against a target over TCP.

The UDP runner (:mod:`p2pkit.conformance.runner`) judges one datagram per step; over a stream
the target talks on its own (a BitTorrent peer sends its handshake, extension handshake,
bitfield, unchoke… in whatever order and split), so a step here is: write the step's bytes,
then read the target's framed messages until the step's verifier holds, the target closes the
connection, or the step's window ends. Verifiers that judge an absence (no ``piece`` while
choked, the connection stays open) listen the whole window.

What is protocol-specific comes from a :class:`StreamProtocol`: how to frame and decode the
target's bytes, how to build a step's template, what a well-behaved session looks like (the
probe), which cases a target cannot be asked (the torrent is unknown, an extension is off).
The BitTorrent peer wire is one (:mod:`p2pkit.conformance.bittorrent`); a Gnutella catalog
brings another and reuses everything else.

The discipline is the UDP runner's: one fresh connection and fresh values per case, per-step
windows, a bound per case and a deadline for the run, and after each robustness case (and
each case whose connection could not even be opened) a fresh well-behaved session proving the
target still serves. A target that stops serving makes the case ``target-died``; the run goes
on, through the ``restart`` hook when the harness started the target. The verdicts and the
report (:class:`~p2pkit.conformance.runner.Result`,
:class:`~p2pkit.conformance.runner.RunReport`) are the UDP runner's, so every reporter works.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from p2pkit.conformance.case import Case, Computed, Raw, Step
from p2pkit.conformance.runner import (
    DEFAULT_DEADLINE,
    DEFAULT_SILENCE,
    DEFAULT_TIMEOUT,
    Address,
    CaseContext,
    Exchange,
    Result,
    RunReport,
    TargetError,
    _Sources,
    flatten,
    run_with,
)
from p2pkit.conformance.verifiers import Check, lookup
from p2pkit.errors import P2PKitError

__all__ = [
    "NotApplicable",
    "PROBE_ATTEMPTS",
    "Session",
    "StreamAnswer",
    "StreamExchange",
    "StreamProtocol",
    "StreamRunner",
    "run_stream_cases",
]

#: Well-behaved sessions tried (half a second apart) before a target counts as dead.
PROBE_ATTEMPTS = 2
#: Seconds a case may take beyond its steps' windows and the probe.
CASE_MARGIN = 5.0
#: Bytes read from the socket at a time.
READ_SIZE = 1 << 16
#: Seconds to open a TCP connection.
CONNECT_TIMEOUT = 5.0


class NotApplicable(Exception):
    """Raised while building a step (a :class:`~p2pkit.conformance.case.Computed` value) when
    what the target said so far leaves nothing to ask: the case is *unsupported*, with this
    reason (a seed whose allowed-fast set covers every piece has none to request while
    choked)."""


class StreamProtocol:
    """What the stream runner needs to know about one protocol (subclass it).

    ``context`` makes a case's :class:`~p2pkit.conformance.runner.CaseContext` (fresh ids,
    what the harness knows of the target); ``framer`` splits the target's bytes (an object with
    ``feed(bytes) -> frames``, each frame with ``data`` and ``message``); ``decode`` turns a
    frame into the dictionary verifiers read (its ``type`` names the message); ``encode`` builds
    a step's template; ``hello`` and ``served`` are the probe; ``unsupported`` says why a case
    cannot be judged against this target (checked before the case and after each step).
    """

    name = "stream"
    #: The registry protocol whose dissector decodes the stream for the reports' field trees.
    dissector: str | None = None
    #: A verifier path's first part -> the record field showing it (``""``: the message line).
    tree_aliases: ClassVar[dict[str, str]] = {}

    def context(self, case: Case, rng: random.Random) -> CaseContext:
        return CaseContext(case, rng)

    def framer(self) -> Any:
        raise NotImplementedError

    def decode(self, frame: Any, session: Session) -> dict[str, Any]:
        return dict(frame.message)

    def encode(self, value: Any, ctx: CaseContext) -> bytes:
        raise NotImplementedError

    def hello(self, ctx: CaseContext) -> bytes:
        """The bytes a well-behaved session opens with."""
        raise NotImplementedError

    def hello_text(self, ctx: CaseContext) -> str:
        """What :meth:`hello` asked for, in words (the preflight's error message)."""
        return ""

    def served(self, session: Session, ctx: CaseContext) -> bool:
        """Whether what ``session`` received after :meth:`hello` shows the target serving."""
        raise NotImplementedError

    def unsupported(self, case: Case, ctx: CaseContext) -> str | None:
        return None

    def respond(self, message: dict[str, Any], ctx: CaseContext) -> bytes:
        """Bytes the harness owes as soon as the target sent ``message`` (what any peer of
        the protocol answers without being told: BitTorrent's have_none after the target's
        handshake showed the fast bit); written at once, before any later step."""
        return b""

    def describe(self, data: bytes) -> list[tuple[str, str]]:
        """The field rows of bytes the harness sent (the report's left column)."""
        return [("raw", f"{len(data)} bytes: {data[:64]!r}" + ("…" if len(data) > 64 else ""))]


@dataclass
class Session:
    """One TCP connection as the harness sees it: everything the target sent, decoded."""

    messages: list[dict[str, Any]] = field(default_factory=list)
    received: bytearray = field(default_factory=bytearray)
    #: ``"eof"`` or ``"reset"`` once the target closed the connection.
    closed: str | None = None
    #: Why the target's bytes stopped making sense (framing or schema error).
    error: str | None = None
    #: Protocol state the decoder keeps (the target's extension ids …).
    state: dict[str, Any] = field(default_factory=dict)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def of_type(self, *types: str) -> list[dict[str, Any]]:
        return [m for m in self.messages if m.get("type") in types]


@dataclass
class StreamAnswer:
    """What the target sent during one step (``data`` is None when nothing came)."""

    data: bytes | None
    messages: list[dict[str, Any]]
    session: Session
    elapsed: float = 0.0
    deviations: list[Any] = field(default_factory=list)
    #: Where the step's bytes start in ``session.received``.
    offset: int = 0

    @property
    def closed(self) -> str | None:
        return self.session.closed

    @property
    def error(self) -> str | None:
        return self.session.error

    @property
    def message(self) -> dict[str, Any] | None:
        """The step's first message (what :class:`~p2pkit.conformance.case.FromAnswer` reads)."""
        return self.messages[0] if self.messages else None

    def get(self, path: str) -> Any:
        return lookup(self.message, path)

    @property
    def kind(self) -> str:
        """``"messages"``, ``"closed"``, ``"error"`` or ``"silence"``."""
        if self.messages:
            return "messages"
        if self.session.error:
            return "error"
        return "closed" if self.session.closed else "silence"


@dataclass
class StreamExchange(Exchange):
    """A step over a stream: the messages it wrote and those that came back."""

    protocol: StreamProtocol | None = None

    def sent_fields(self) -> list[tuple[str, str]]:
        if not self.sent:
            return []
        return self.protocol.describe(self.sent) if self.protocol else flatten(
            {"raw": self.sent})

    def received_fields(self) -> list[tuple[str, str]]:
        a = self.answer
        rows: list[tuple[str, str]] = []
        for i, message in enumerate(a.messages):
            rows += flatten(message, str(i))
        if a.session.error:
            rows.append(("error", a.session.error))
        if a.session.closed:
            rows.append(("closed", a.session.closed))
        return rows


class _Connection:
    """A TCP connection and the task reading it into a :class:`Session`."""

    def __init__(self, protocol: StreamProtocol, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter, ctx: CaseContext) -> None:
        self.protocol = protocol
        self.ctx = ctx
        self.reader = reader
        self.writer = writer
        self.session = Session()
        self.framer = protocol.framer()
        self.task = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        s = self.session
        try:
            while True:
                data = await self.reader.read(READ_SIZE)
                if not data:
                    s.closed = "eof"
                    break
                s.received += data
                if s.error:
                    continue
                try:
                    frames = self.framer.feed(data)
                except P2PKitError as e:
                    s.error = str(e)
                    frames = []
                for frame in frames:
                    message = self.protocol.decode(frame, s)
                    s.messages.append(message)
                    owed = self.protocol.respond(message, self.ctx)
                    if owed:
                        self.writer.write(owed)
                s.arrived.set()
        except (ConnectionError, OSError):
            s.closed = "reset"
        finally:
            s.arrived.set()

    async def write(self, data: bytes) -> None:
        if self.session.closed:
            return
        try:
            self.writer.write(data)
            await self.writer.drain()
        except (ConnectionError, OSError):
            self.session.closed = self.session.closed or "reset"

    async def close(self) -> None:
        self.task.cancel()
        try:
            self.writer.close()
        except (ConnectionError, OSError):  # pragma: no cover - already gone
            pass
        try:
            await asyncio.wait_for(self.task, 0.5)
        except (asyncio.CancelledError, TimeoutError, ConnectionError, OSError):
            pass


class StreamRunner:
    """Runs cases one after the other against one stream target."""

    def __init__(self, target: Address, protocol: StreamProtocol, *, strict: bool = False,
                 timeout: float = DEFAULT_TIMEOUT, silence: float = DEFAULT_SILENCE,
                 rng: random.Random | None = None,
                 restart: Callable[[], Awaitable[Address]] | None = None) -> None:
        self.target = target
        self.protocol = protocol
        self.strict = strict
        self.timeout = timeout
        self.silence = silence
        self.rng = rng or random.Random()
        self.restart = restart
        self.sources = _Sources(target)
        self.dead = False
        self._gone = False

    async def connect(self, ctx: CaseContext) -> _Connection:
        """A fresh connection; against an IPv4 loopback target from a fresh 127.42.x.y
        address, so that a peer that limits connections per address (transmission refuses a
        second connection from an address it still knows) sees each case as a new peer."""
        local = (self.sources.ip(), 0) if self.sources.many else None
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(self.target[0], self.target[1], local_addr=local),
            CONNECT_TIMEOUT)
        connection = _Connection(self.protocol, reader, writer, ctx)
        ctx.session = connection.session
        return connection

    async def probe(self, attempts: int = PROBE_ATTEMPTS) -> bool:
        """A fresh well-behaved session: does the target still serve?"""
        for attempt in range(attempts):
            if attempt:
                await asyncio.sleep(0.5)
            ctx = self.protocol.context(_PROBE_CASE, self.rng)
            try:
                conn = await self.connect(ctx)
            except (OSError, TimeoutError):
                continue
            try:
                await conn.write(self.protocol.hello(ctx))
                deadline = time.monotonic() + self.timeout
                while time.monotonic() < deadline:
                    if self.protocol.served(conn.session, ctx):
                        return True
                    if conn.session.closed or conn.session.error:
                        break
                    conn.session.arrived.clear()
                    try:
                        await asyncio.wait_for(conn.session.arrived.wait(),
                                               deadline - time.monotonic())
                    except TimeoutError:
                        break
            finally:
                await conn.close()
        return False

    def case_timeout(self, case: Case) -> float:
        waits = sum(s.wait if s.wait is not None else self.timeout for s in case.steps)
        probing = PROBE_ATTEMPTS * (self.timeout + 0.5) + CONNECT_TIMEOUT
        return waits + probing + CASE_MARGIN

    async def run_case_bounded(self, case: Case, left: float = float("inf")) -> Result:
        limit = min(self.case_timeout(case), left)
        try:
            return await asyncio.wait_for(self.run_case(case), limit)
        except TimeoutError:
            if limit >= left:
                return Result(case, "skipped", "the run's deadline passed during the case",
                              limit)
            return _verdict(Result(case, "pass"), case, self.strict,
                            f"the case took more than {limit:.1f} s")

    async def run_case(self, case: Case) -> Result:
        started = time.monotonic()
        if self.dead:
            if self.restart is not None:
                self.target = await self.restart()
                self.dead = False
            elif self._gone or not await self.probe(attempts=1):
                self._gone = True
                return Result(case, "target-died", "the target stopped serving earlier", 0.0)
            else:
                self.dead = False
        ctx = self.protocol.context(case, self.rng)
        ctx.target_address = self.target
        reason = self.protocol.unsupported(case, ctx)
        if reason:
            return Result(case, "unsupported", reason, 0.0)
        try:
            conn = await self.connect(ctx)
        except (OSError, TimeoutError) as e:
            result = _verdict(Result(case, "pass"), case, self.strict,
                              f"cannot connect: {getattr(e, 'strerror', None) or e}")
            conn = None
        if conn is not None:
            connections = {case.steps[0].source: conn}
            try:
                result = await self._play(case, ctx, connections)
            finally:
                for c in connections.values():
                    await c.close()
        if case.robustness or conn is None:
            if not await self.probe():
                self.dead = True
                result.verdict = "target-died"
                result.reason = (result.reason + "; " if result.reason else "") + (
                    "no well-behaved session was served after the case")
        result.elapsed = time.monotonic() - started
        return result

    async def _play(self, case: Case, ctx: CaseContext,
                    connections: dict[str, _Connection]) -> Result:
        """Play the case's steps. A step's ``source`` names the harness connection it runs on
        (``"a"``, the first step's, is open already; another name opens a connection of its
        own the first time, so a case can be two leaves, or a leaf and an ultrapeer, of one
        target). A step's answer is what its connection received since that connection's
        previous step (on a connection the last step also used: since this step began)."""
        result = Result(case, "pass")
        ctx.sessions = {name: c.session for name, c in connections.items()}
        #: messages and bytes of each connection already given to a step
        judged: dict[str, tuple[int, int]] = {}
        previous: str | None = None
        several = len({s.source for s in case.steps}) > 1
        for index, step in enumerate(case.steps):
            conn = connections.get(step.source)
            if conn is None:
                try:
                    conn = connections[step.source] = await self.connect(ctx)
                except (OSError, TimeoutError) as e:
                    return _finish(result, case, self.strict, index, Check(
                        False, f"cannot open connection {step.source!r}: "
                               f"{getattr(e, 'strerror', None) or e}"))
                ctx.sessions[step.source] = conn.session
            session = conn.session
            ctx.session = session
            sent = b""
            if step.send is not None:
                try:
                    sent = self._encode(step, ctx)
                except NotApplicable as e:
                    result.verdict, result.reason, result.failed_step = (
                        "unsupported", str(e), index)
                    return result
                except (P2PKitError, KeyError, TypeError, ValueError) as e:
                    why = self.protocol.unsupported(case, ctx)
                    if why:
                        result.verdict, result.reason, result.failed_step = (
                            "unsupported", why, index)
                        return result
                    return _finish(result, case, self.strict, index,
                                   Check(False, f"cannot build the step's message: {e}"))
                for _ in range(step.repeat):
                    await conn.write(sent)
            if previous == step.source or step.source not in judged:
                start, start_bytes = (len(session.messages), len(session.received)) \
                    if previous == step.source or step.source == case.steps[0].source \
                    else (0, 0)
            else:
                start, start_bytes = judged[step.source]
            previous = step.source
            sent_at = time.monotonic()
            expect = step.expect
            if expect is not None and step.repeat == 1:
                wait = step.wait if step.wait is not None else (
                    self.silence if expect.wants_silence else self.timeout)
                await self._await(expect, ctx, session, start, start_bytes, sent_at, wait)
            elif step.wait:
                await asyncio.sleep(step.wait)
            answer = self._answer(session, start, start_bytes, sent_at)
            judged[step.source] = (start + len(answer.messages),
                                   start_bytes + len(answer.data or b""))
            ctx.answers[step.name or str(index)] = answer
            check = _judge(expect, answer, ctx) if expect is not None and step.repeat == 1 \
                else None
            result.exchanges.append(StreamExchange(
                step=index, source=f"tcp {step.source}" if several else "tcp",
                sent=sent, count=step.repeat,
                expect=expect.describe() if expect is not None and step.repeat == 1 else (
                    "(a flood: not judged)" if step.repeat > 1 else "(not judged)"),
                answer=answer, check=check, protocol=self.protocol))
            if step.unsupported_if is not None and step.unsupported_if.check(answer, ctx).ok:
                result.verdict = "unsupported"
                result.reason = (f"{case.extension}: " if case.extension else "") + \
                    step.unsupported_if.describe()
                result.failed_step = index
                return result
            why = self.protocol.unsupported(case, ctx)
            if why:  # what the target said so far shows it lacks what the case needs
                result.verdict, result.reason, result.failed_step = "unsupported", why, index
                return result
            if check is not None and not check.ok:
                return _finish(result, case, self.strict, index, check)
        if case.level == "INFO":
            result.verdict = "informational"
        return result

    def _encode(self, step: Step, ctx: CaseContext) -> bytes:
        send = step.send
        if isinstance(send, Raw):
            return ctx.resolve(send.data) if isinstance(send.data, Computed) else send.data
        return self.protocol.encode(send, ctx)

    def _answer(self, session: Session, start: int, start_bytes: int,
                sent_at: float) -> StreamAnswer:
        data = bytes(session.received[start_bytes:])
        return StreamAnswer(data or None, list(session.messages[start:]), session,
                            elapsed=time.monotonic() - sent_at, offset=start_bytes)

    async def _await(self, expect: Any, ctx: CaseContext, session: Session, start: int,
                     start_bytes: int, sent_at: float, wait: float) -> None:
        """Read until ``expect`` holds (unless it judges an absence), the target closes, or
        ``wait`` seconds pass."""
        deadline = sent_at + wait
        while True:
            if not expect.wants_silence and _judge(
                    expect, self._answer(session, start, start_bytes, sent_at), ctx).ok:
                return
            if session.closed or session.error:
                return
            left = deadline - time.monotonic()
            if left <= 0:
                return
            session.arrived.clear()
            try:
                await asyncio.wait_for(session.arrived.wait(), left)
            except TimeoutError:
                return


def _judge(expect: Any, answer: StreamAnswer, ctx: CaseContext) -> Check:
    """``expect.check``; a verifier that cannot read what came (a message without a field it
    needs) fails the step with the reason rather than the run with a traceback."""
    try:
        return expect.check(answer, ctx)
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as e:
        return Check(False, f"cannot judge the answer ({type(e).__name__}: {e})", "")


_PROBE_CASE = Case(id="probe", title="probe", spec="", requirement="", level="INFO",
                   rule="probe", steps=(Step(send=None),))


def _verdict(result: Result, case: Case, strict: bool, reason: str) -> Result:
    result.reason = reason
    if case.level == "INFO":
        result.verdict = "informational"
    elif case.level == "MUST" or strict:
        result.verdict = "fail"
    else:
        result.verdict = "non-strict"
    return result


def _finish(result: Result, case: Case, strict: bool, index: int, check: Check) -> Result:
    result.failed_step = index
    result.path = check.path
    return _verdict(result, case, strict, f"step {index + 1}: {check.reason}")


async def preflight(target: Address, protocol: StreamProtocol,
                    timeout: float = DEFAULT_TIMEOUT) -> None:
    """One well-behaved session must be served; :class:`TargetError` with a one-line reason
    otherwise (nothing listens, another protocol, the target does not serve what we ask)."""
    where = f"{target[0]}:{target[1]}"
    runner = StreamRunner(target, protocol, timeout=timeout)
    ctx = protocol.context(_PROBE_CASE, runner.rng)
    try:
        conn = await runner.connect(ctx)
    except TimeoutError:
        raise TargetError(f"{where}: no TCP connection within {CONNECT_TIMEOUT:g} s") from None
    except OSError as e:
        raise TargetError(f"{where}: cannot connect ({e.strerror or e}; nothing listens on "
                          "that TCP port?)") from None
    try:
        hello = protocol.hello(ctx)
        await conn.write(hello)
        s = conn.session
        deadline = time.monotonic() + timeout
        while not protocol.served(s, ctx) or _echoed(s, hello):
            if _echoed(s, hello):
                raise TargetError(f"{where}: sent our own {protocol.name} handshake back (an "
                                  "echo service, not a peer)")
            if s.error:
                raise TargetError(f"{where}: answered {bytes(s.received[:16])!r}…, not "
                                  f"{protocol.name} ({s.error}): another protocol?")
            if s.closed:
                raise TargetError(f"{where}: closed the connection after our {protocol.name} "
                                  f"handshake ({protocol.hello_text(ctx)})")
            left = deadline - time.monotonic()
            if left <= 0:
                raise TargetError(f"{where}: no {protocol.name} answer within {timeout:g} s")
            s.arrived.clear()
            try:
                await asyncio.wait_for(s.arrived.wait(), left)
            except TimeoutError:
                pass
    finally:
        await conn.close()


def _echoed(session: Session, hello: bytes) -> bool:
    """The target's first bytes are the very bytes we sent: a mirror. (A BitTorrent peer
    answers with its own peer id, BEP 3; a Gnutella servent with a response line, Gnutella 0.6
    §2.2.)"""
    return len(session.received) >= len(hello) and bytes(session.received[:len(hello)]) == hello


async def run_stream_cases(cases: Iterable[Case], target: Address, protocol: StreamProtocol,
                           *, name: str | None = None, strict: bool = False,
                           timeout: float = DEFAULT_TIMEOUT, silence: float = DEFAULT_SILENCE,
                           deadline: float = DEFAULT_DEADLINE, check_target: bool = True,
                           rng: random.Random | None = None,
                           on_result: Callable[[Result], None] | None = None,
                           restart: Callable[[], Awaitable[Address]] | None = None
                           ) -> RunReport:
    """Run ``cases`` against the stream ``target`` and return the report."""
    if check_target:
        await preflight(target, protocol, timeout)
    runner = StreamRunner(target, protocol, strict=strict, timeout=timeout, silence=silence,
                          rng=rng, restart=restart)
    return await run_with(runner, cases, protocol=name or protocol.name,
                          target=f"{target[0]}:{target[1]}", deadline=deadline,
                          on_result=on_result)
