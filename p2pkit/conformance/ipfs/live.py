"""Running the IPFS catalog live: each case is a short coroutine over fresh connections.

A libp2p target is judged through several layers at once (the Noise channel wraps yamux, which
wraps a multistream-select negotiation per stream), so a case's step is a :class:`Play`: an
async function given an :class:`IpfsContext` that opens sessions
(:class:`~p2pkit.conformance.ipfs.session.IpfsSession`) as it needs and raises
:class:`~p2pkit.conformance.ipfs.session.Deviation` when the target breaks the requirement,
:class:`NotApplicable` when it cannot be asked. The discipline is the other runners': fresh
identity and values per case, a bound per case and a deadline for the run, and after every
robustness case a fresh well-behaved session (Noise, yamux, one ping) proving the target still
serves; the verdicts and :class:`~p2pkit.conformance.runner.RunReport` are shared, so every
reporter works.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from p2pkit.conformance.case import Case
from p2pkit.conformance.ipfs.session import Deviation, IpfsSession, NotApplicable
from p2pkit.conformance.runner import (
    DEFAULT_DEADLINE,
    DEFAULT_TIMEOUT,
    Result,
    RunReport,
    TargetError,
)
from p2pkit.errors import P2PKitError
from p2pkit.ipfs.cid import Cid

__all__ = ["IpfsContext", "IpfsRunner", "IpfsTarget", "Pacer", "NotApplicable", "Play", "ipfs_case", "ipfs_target",
           "parse_target", "run_ipfs_cases"]

#: Seconds a case may take beyond ``timeout`` times its sessions.
CASE_BOUND = 20.0


@dataclass(frozen=True)
class Play:
    """A case's step: ``await fn(ctx)``; ``label`` says what it does in the report."""

    fn: Callable[[IpfsContext], Awaitable[None]]
    label: str = ""


@dataclass(frozen=True)
class IpfsTarget:
    """What the harness knows of the target: its address and blocks it serves."""

    host: str
    port: int
    #: CIDs of blocks the target is known to have (Bitswap want-block cases need one).
    blocks: tuple[Cid, ...] = ()


class Pacer:
    """At most one new connection per ``interval`` seconds: js-libp2p refuses more than 5
    inbound connections a second from one address (its connection manager's
    ``inboundConnectionThreshold``), which a harness opening a session per case exceeds."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._next = 0.0

    async def wait(self) -> None:
        if self.interval <= 0:
            return
        loop = asyncio.get_running_loop()
        now = loop.time()
        delay, self._next = max(0.0, self._next - now), max(now, self._next) + self.interval
        if delay:
            await asyncio.sleep(delay)


def parse_target(text: str) -> tuple[str, int]:
    """``/ip4/127.0.0.1/tcp/4001[/p2p/…]``, ``/ip6/::1/tcp/…`` or ``HOST:PORT``."""
    if text.startswith("/"):
        from p2pkit.ipfs.multiaddr import Multiaddr

        try:
            addr = Multiaddr.from_text(text)
            ip = next(str(v) for n, v in addr if n in ("ip4", "ip6"))
            return ip, int(addr.value_for("tcp"))
        except (P2PKitError, StopIteration, KeyError, TypeError, ValueError) as e:
            raise ValueError(f"not a /ip4|ip6/…/tcp/… multiaddr: {e}") from None
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError("expected HOST:PORT or a /ip4/…/tcp/… multiaddr")
    return host.strip("[]"), int(port)


def ipfs_target(text: str, cids: Iterable[str] = ()) -> IpfsTarget:
    """The target of ``--target`` (a multiaddr or ``HOST:PORT``) and ``--cid`` values;
    :class:`~p2pkit.conformance.runner.TargetError` for one that does not parse."""
    try:
        host, port = parse_target(text)
    except ValueError as e:
        raise TargetError(f"{text}: {e}") from None
    blocks = []
    for value in cids:
        try:
            blocks.append(Cid.decode(value))
        except P2PKitError as e:
            raise TargetError(f"--cid {value}: {e}") from None
    return IpfsTarget(host, port, tuple(blocks))


@dataclass
class IpfsContext:
    """A case's fresh values and the sessions it opened."""

    case: Case
    target: IpfsTarget
    rng: random.Random
    timeout: float
    notes: list[str] = field(default_factory=list)
    pacer: Pacer = field(default_factory=lambda: Pacer(0.0))

    def session(self, *, accept: tuple[str, ...] = ()) -> IpfsSession:
        """A new connection to the target (``async with ctx.session() as s``)."""
        return IpfsSession((self.target.host, self.target.port), rng=self.rng,
                           timeout=self.timeout, accept=accept, pacer=self.pacer.wait)

    def note(self, text: str) -> None:
        """What the target did, for the report (the reason of a passing case)."""
        self.notes.append(text)


async def _probe(ctx: IpfsContext, attempts: int = 2) -> bool:
    """A well-behaved session: ``/noise``, the handshake, yamux, one ping echoed (or one
    identify message)."""
    for attempt in range(attempts):
        try:
            async with ctx.session() as s:
                await s.secure()
                if await s.serves():
                    return True
        except (Deviation, P2PKitError, OSError, TimeoutError):
            pass
        if attempt + 1 < attempts:
            await asyncio.sleep(0.5)
    return False


async def _run_case(case: Case, target: IpfsTarget, *, rng: random.Random, timeout: float,
                    strict: bool, pacer: Pacer) -> Result:
    ctx = IpfsContext(case, target, random.Random(rng.getrandbits(64)), timeout, pacer=pacer)
    began = time.monotonic()
    verdict, reason = "pass", ""
    try:
        for step in case.steps:
            await asyncio.wait_for(step.send.fn(ctx), CASE_BOUND + 4 * timeout)
    except NotApplicable as e:
        verdict, reason = "unsupported", str(e)
    except Deviation as e:
        verdict, reason = "fail", str(e)
    except TimeoutError:
        verdict, reason = "fail", "the case's bound passed without an answer"
    except (OSError, P2PKitError) as e:
        verdict, reason = "fail", f"{type(e).__name__}: {e}"
    if verdict == "fail" and case.level == "INFO":
        verdict = "informational"
    elif verdict == "fail" and case.strict_only and not strict:
        verdict = "non-strict"
    elif verdict == "pass":
        reason = "; ".join(ctx.notes)
    if case.robustness and not await _probe(ctx):
        verdict, reason = "target-died", (reason + "; " if reason else "") + \
            "no well-behaved session was served afterwards"
    return Result(case, verdict, reason, time.monotonic() - began)


async def run_ipfs_cases(cases: Iterable[Case], target: IpfsTarget | tuple[str, int], *,
                         strict: bool = False, timeout: float = DEFAULT_TIMEOUT,
                         deadline: float = DEFAULT_DEADLINE, check_target: bool = True,
                         rng: random.Random | None = None, connect_interval: float = 0.25,
                         on_result: Callable[[Result], None] | None = None) -> RunReport:
    """Run ``cases`` against the libp2p node at ``target``; :class:`TargetError` when a
    well-behaved session is not served at all (``check_target``). New connections are
    ``connect_interval`` seconds apart (:class:`Pacer`)."""
    if not isinstance(target, IpfsTarget):
        target = IpfsTarget(*target)
    rng = rng or random.Random()
    name = f"{target.host}:{target.port}"
    cases = list(cases)
    pacer = Pacer(connect_interval)
    if check_target and cases and not await _probe(IpfsContext(cases[0], target, rng, timeout,
                                                               pacer=pacer)):
        raise TargetError(f"{name}: no libp2p session (multistream /noise, Noise XX, yamux, "
                          f"/ipfs/ping/1.0.0 or /ipfs/id/1.0.0) was served")
    report = RunReport(protocol="ipfs", target=name, strict=strict, started=time.time())
    began = time.monotonic()
    for case in cases:
        if time.monotonic() - began > deadline:
            result = Result(case, "skipped", f"the run's deadline ({deadline:g} s) passed")
        else:
            result = await _run_case(case, target, rng=rng, timeout=timeout, strict=strict,
                                     pacer=pacer)
        report.results.append(result)
        if on_result is not None:
            on_result(result)
    report.duration = time.monotonic() - began
    return report


class IpfsRunner:
    """One case at a time against one target (the pytest plugin's runner interface)."""

    def __init__(self, target: IpfsTarget, *, strict: bool = False,
                 timeout: float = DEFAULT_TIMEOUT, rng: random.Random | None = None,
                 connect_interval: float = 0.25) -> None:
        self.target = target
        self.strict = strict
        self.timeout = timeout
        self.rng = rng or random.Random()
        self.pacer = Pacer(connect_interval)

    async def run_case_bounded(self, case: Case, left: float | None = None) -> Result:
        return await _run_case(case, self.target, rng=self.rng, timeout=self.timeout,
                               strict=self.strict, pacer=self.pacer)


def ipfs_case(*, play: Callable[[IpfsContext], Awaitable[None]], **fields: Any) -> Case:
    """A :class:`Case` whose one step is ``play``; ids get the ``ipfs/`` prefix."""
    from p2pkit.conformance.case import Step

    fields["id"] = "ipfs/" + fields["id"]
    return Case(steps=(Step(send=Play(play, fields.get("title", ""))),), **fields)
