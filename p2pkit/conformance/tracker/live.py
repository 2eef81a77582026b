"""Running the tracker catalog against a live tracker, by its announce URL.

``udp://HOST:PORT`` runs the BEP 15 cases on the datagram runner
(``Runner``, with the tracker's requests, answers and probe:
``UdpTrackerRunner``); ``http://HOST:PORT/PATH`` runs the BEP 3/7/23/48 cases over HTTP,
one TCP connection per step (``HttpTrackerRunner``, on
:mod:`p2pkit.conformance.http_exchange`). The cases of the other transport are not run. Each
source letter of a case is one peer; against an IPv4 loopback target it gets its own address
(127.42.x.y), as on the DHT runner; against any other target the peers of a case share the
harness's address and differ by peer id and announced port (only the cases about a second
address, ``Case.sources`` > 1, are then *unsupported*).

The probe after a robustness case is a BEP 15 connect over UDP, and over HTTP an announce with
``event=stopped`` for a fresh info-hash (a request without side effects): any answer proves the
tracker still serves.

>>> parse_tracker_url("http://127.0.0.1:6969/announce").scrape_path
'/scrape'
>>> parse_tracker_url("udp://[::1]:6969").address
('::1', 6969)
>>> parse_tracker_url("ftp://127.0.0.1:21/")
Traceback (most recent call last):
...
p2pkit.conformance.runner.TargetError: 'ftp://127.0.0.1:21/': a tracker URL is http://HOST:PORT/PATH or udp://HOST:PORT
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from p2pkit.bittorrent.tracker.http import request_kind
from p2pkit.bittorrent.tracker.query import QueryParameter, build_query
from p2pkit.bittorrent.tracker.udp import UdpTrackerRequest, UdpTrackerResponse
from p2pkit.conformance.case import Case, Computed, HttpGet, Raw, Step, UdpTracker
from p2pkit.conformance.http_exchange import exchange, request_head
from p2pkit.conformance.runner import (
    DEFAULT_DEADLINE,
    DEFAULT_SILENCE,
    DEFAULT_TIMEOUT,
    FLOOD_SETTLE,
    PROBE_ATTEMPTS,
    Address,
    CaseContext,
    Exchange,
    Result,
    Runner,
    RunReport,
    TargetError,
    _Receiver,
    _resolve_address,
    _StepError,
    run_with,
)
from p2pkit.conformance.tracker._common import (
    HttpTrackerAnswer,
    UdpTrackerAnswer,
    UdpTrackerAnswer6,
    transport_of,
)
from p2pkit.conformance.verifiers import Answer, Check
from p2pkit.errors import P2PKitError

__all__ = [
    "FLOOD_CONCURRENCY",
    "HttpTrackerRunner",
    "TrackerTarget",
    "UdpTrackerRunner",
    "parse_tracker_url",
    "preflight_http",
    "preflight_udp",
    "run_tracker",
]

#: HTTP requests of a flood in flight at once.
FLOOD_CONCURRENCY = 32


@dataclass(frozen=True)
class TrackerTarget:
    """A tracker's announce URL, split."""

    scheme: str
    host: str
    port: int
    #: The announce path with its query, if any (``/announce``, ``/x/announce.php?pk=1``).
    path: str = "/announce"

    @property
    def address(self) -> Address:
        return (self.host, self.port)

    @property
    def scrape_path(self) -> str | None:
        """BEP 48: "locating the string ``announce`` in the path section of the announce URL
        and replacing it with the string ``scrape``" (None when the last component has no
        ``announce``: scraping is then out of the BEP's scope)."""
        path, sep, query = self.path.partition("?")
        head, slash, last = path.rpartition("/")
        if request_kind("/" + last) != "announce":
            return None
        return head + slash + last.replace("announce", "scrape", 1) + sep + query

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}" + (self.path if self.scheme == "http"
                                                         else "")


def parse_tracker_url(text: str) -> TrackerTarget:
    """``http://HOST:PORT/PATH`` or ``udp://HOST:PORT[/PATH]`` as a :class:`TrackerTarget`;
    :class:`TargetError` with a one-line reason otherwise."""
    usage = "a tracker URL is http://HOST:PORT/PATH or udp://HOST:PORT"
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as e:
        raise TargetError(f"{text!r}: {e} ({usage})") from None
    if parts.scheme not in ("http", "udp") or not parts.hostname:
        reason = "https is not supported" if parts.scheme == "https" else usage
        raise TargetError(f"{text!r}: {reason}")
    if port is None:
        if parts.scheme == "udp":
            raise TargetError(f"{text!r}: a udp:// tracker URL needs a port")
        port = 80
    if port == 0:
        raise TargetError(f"{text!r}: port 0 is not a tracker's port")
    path = parts.path or "/announce"
    if parts.query:
        path += "?" + parts.query
    return TrackerTarget(parts.scheme, parts.hostname, port, path)


def _value(value: Any) -> bytes:
    if isinstance(value, bool):
        value = int(value)
    if isinstance(value, int):
        return str(value).encode("ascii")
    if isinstance(value, str):
        return value.encode("latin-1")
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    raise _StepError(f"cannot put a {type(value).__name__} in a query")


def _raw(send: Raw, ctx: CaseContext) -> bytes:
    return ctx.resolve(send.data) if isinstance(send.data, Computed) else send.data


class UdpTrackerRunner(Runner):
    """The datagram runner speaking BEP 15: requests built with ``UdpTrackerRequest``, answers
    decoded with ``UdpTrackerResponse`` (``…6`` from an IPv6 tracker), a connect as the probe."""

    letters_need_addresses = False  # peers differ by announced port: one address serves

    def __init__(self, target: Address, **options: Any) -> None:
        super().__init__(target, **options)
        self.answer_class = UdpTrackerAnswer6 if ":" in target[0] else UdpTrackerAnswer

    def encode_step(self, step: Step, ctx: CaseContext) -> bytes:
        ctx.current_t = ctx.rng.getrandbits(32)
        send = step.send
        if isinstance(send, Raw):
            return _raw(send, ctx).replace(b"<T>", ctx.current_t.to_bytes(4, "big"))
        if not isinstance(send, UdpTracker):
            raise _StepError(f"a {type(send).__name__} step cannot be sent to a UDP tracker")
        try:
            return UdpTrackerRequest.build(ctx.resolve(send.message))
        except P2PKitError as e:
            raise _StepError(f"cannot build the step's request: {e}") from None

    def decode_answer(self, data: bytes, elapsed: float) -> Answer:
        return self.answer_class.of(data, elapsed)

    def is_unsolicited(self, data: bytes) -> bool:
        return False  # a tracker sends nothing on its own

    def probe_datagram(self) -> bytes:
        return UdpTrackerRequest.build({"action": "connect",
                                        "transaction_id": self.rng.getrandbits(32)})


class HttpTrackerRunner(Runner):
    """Plays HTTP tracker cases: each step one request on a fresh TCP connection from the
    step's source address, its answer decoded as an announce or scrape response."""

    letters_need_addresses = False

    def __init__(self, target: Address, url: TrackerTarget, **options: Any) -> None:
        super().__init__(target, **options)
        self.url = url
        self._host = f"[{url.host}]:{url.port}" if ":" in url.host else f"{url.host}:{url.port}"

    def case_timeout(self, case: Case) -> float:
        floods = sum(math.ceil(s.repeat / FLOOD_CONCURRENCY) * self.timeout
                     for s in case.steps if s.repeat > 1)
        return super().case_timeout(case) + floods

    def _request(self, step: Step, ctx: CaseContext) -> tuple[bytes, str]:
        send = step.send
        if isinstance(send, Raw):
            return _raw(send, ctx), "announce"
        if not isinstance(send, HttpGet):
            raise _StepError(f"a {type(send).__name__} step cannot be sent to an HTTP tracker")
        path = self.url.path if send.kind == "announce" else self.url.scrape_path
        if path is None:
            raise _StepError("unsupported: the announce URL has no 'announce' to derive a "
                             "scrape URL from (BEP 48)")
        if send.query is not None:
            query = ctx.resolve(send.query) if isinstance(send.query, Computed) else send.query
        else:
            query = build_query([QueryParameter(name=name, value=_value(ctx.resolve(v)))
                                 for name, v in send.params])
        path, _, fixed = path.partition("?")
        if fixed:
            query = f"{fixed}&{query}" if query else fixed
        return request_head(path, query, host=self._host, headers=send.headers), send.kind

    async def _get(self, data: bytes, kind: str, local_ip: str | None,
                   wait: float) -> HttpTrackerAnswer:
        reply = await exchange(self.target, data, timeout=wait, local_ip=local_ip)
        answer = HttpTrackerAnswer.of(reply.data, reply.elapsed, kind)
        if reply.data is None:
            answer.error = reply.error
        return answer

    async def _flood(self, data: bytes, local: str | None, count: int) -> None:
        """``count`` requests, :data:`FLOOD_CONCURRENCY` connections at a time."""
        gate = asyncio.Semaphore(FLOOD_CONCURRENCY)

        async def one() -> None:
            async with gate:
                await exchange(self.target, data, timeout=self.timeout, local_ip=local)
        await asyncio.gather(*(one() for _ in range(count)))

    def _local(self, ip: str) -> str | None:
        return None if ip in ("0.0.0.0", "::") else ip

    async def probe(self, timeout: float | None = None,
                    attempts: int = PROBE_ATTEMPTS) -> Answer:
        """An announce with ``event=stopped`` for a fresh info-hash from a fresh source."""
        answer: Answer = HttpTrackerAnswer(None)
        query = build_query([QueryParameter(name=n, value=v) for n, v in (
            ("info_hash", self.rng.randbytes(20)), ("peer_id", b"-PK0001-" +
                                                    self.rng.randbytes(12)),
            ("port", b"40000"), ("uploaded", b"0"), ("downloaded", b"0"), ("left", b"0"),
            ("event", b"stopped"), ("compact", b"1"))])
        path = self.url.path.partition("?")[0]
        head = request_head(path, query, host=self._host)
        for attempt in range(attempts):
            if attempt:
                await asyncio.sleep(1.0)
            await self._pace()
            answer = await self._get(head, "announce", self._local(self.sources.ip()),
                                     timeout or self.timeout)
            if answer.data is not None:
                break
        return answer

    async def _play(self, case: Case, ctx: CaseContext, receivers: dict[str, _Receiver],
                    ips: dict[str, str], started: float) -> Result:
        result = Result(case, "pass")
        for source in sorted({s.source for s in case.steps}):
            letter = source[0]
            if letter not in ips:
                ips[letter] = self.sources.ip()
            host = ips[letter]
            if host in ("0.0.0.0", "::"):
                host = self.sources.local_ip(self.target)
            ctx.addresses[source] = ctx.addresses[letter] = (host, 0)
        for index, step in enumerate(case.steps):
            if step.send is None:
                await asyncio.sleep(step.wait if step.wait is not None else self.silence)
                continue
            try:
                data, kind = self._request(step, ctx)
            except _StepError as e:
                if str(e).startswith("unsupported: "):
                    result.verdict = "unsupported"
                    result.reason = str(e).removeprefix("unsupported: ")
                    return result
                return self._finish(result, case, index, Check(False, str(e), None))
            local = self._local(ips[step.source[0]])
            expect = step.expect
            if step.repeat > 1:  # a flood: many connections at once, nothing judged
                await self._flood(data, local, step.repeat)
                await asyncio.sleep(FLOOD_SETTLE)
                answer: Answer = HttpTrackerAnswer(None)
            else:
                wait = step.wait if step.wait is not None else (
                    self.silence if expect is not None and expect.wants_silence
                    else self.timeout)
                await self._pace()
                answer = await self._get(data, kind, local, wait)
            if step.name:
                ctx.answers[step.name] = answer
            check = expect.check(answer, ctx) if expect is not None else None
            if expect is None and step.repeat == 1 and answer.data is None:
                check = Check(False, f"no answer ({answer.error or 'closed'})", "")
            result.exchanges.append(Exchange(
                step=index, source=step.source, sent=data, count=step.repeat,
                expect=expect.describe() if expect is not None else (
                    "(a flood: not judged)" if step.repeat > 1 else "any answer (set-up)"),
                answer=answer, check=check))
            if check is not None and not check.ok:
                return self._finish(result, case, index, check)
        if case.level == "INFO":
            result.verdict = "informational"
        return result


async def preflight_udp(address: Address, timeout: float = DEFAULT_TIMEOUT) -> Address:
    """One BEP 15 connect must get a connect response; :class:`TargetError` otherwise."""
    resolved = _resolve_address(address)
    runner = UdpTrackerRunner(resolved, timeout=timeout)
    where = f"udp://{address[0]}:{address[1]}"
    loop = asyncio.get_running_loop()
    try:  # connected, so an ICMP "port unreachable" comes back as an error
        _, receiver = await loop.create_datagram_endpoint(
            _Receiver, local_addr=(runner.sources.ip(), 0), remote_addr=resolved,
            family=runner.sources.family)
    except OSError as e:
        raise TargetError(f"{where}: cannot open a socket ({e.strerror or e})") from None
    try:
        try:
            receiver.transport.sendto(runner.probe_datagram())
        except OSError as e:
            raise TargetError(f"{where}: {e.strerror or e}") from None
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if receiver.errors:
                e = receiver.errors[0]
                raise TargetError(f"{where}: unreachable ({e.strerror or e}; nothing listens "
                                  "on that UDP port?)")
            if left <= 0:
                raise TargetError(f"{where}: no answer to a BEP 15 connect within "
                                  f"{timeout:g} s (not a UDP tracker, or unreachable)")
            try:
                data, _, _ = await asyncio.wait_for(receiver.queue.get(), min(left, 0.05))
            except TimeoutError:
                continue
            try:
                ok = UdpTrackerResponse.parse(data).action == "connect"
            except P2PKitError:
                ok = False
            if not ok:
                raise TargetError(f"{where}: answered {len(data)} bytes that are not a BEP 15 "
                                  f"connect response ({data[:16]!r}…): another protocol?")
            return resolved
    finally:
        receiver.transport.close()


async def preflight_http(url: TrackerTarget, timeout: float = DEFAULT_TIMEOUT) -> Address:
    """The probe announce must get an HTTP response with a bencoded body."""
    resolved = _resolve_address(url.address)
    runner = HttpTrackerRunner(resolved, url, timeout=timeout)
    answer = await runner.probe(timeout, attempts=1)
    if answer.data is None:
        raise TargetError(f"{url}: {answer.error or 'no answer'} (nothing serves HTTP there?)")
    if isinstance(answer, HttpTrackerAnswer) and answer.status is None:
        raise TargetError(f"{url}: answered {len(answer.data)} bytes that are not HTTP "
                          f"({answer.data[:16]!r}…; {answer.error}): another protocol?")
    if answer.message is None or answer.status == 404:
        raise TargetError(f"{url}: HTTP {answer.status} without a bencoded tracker response "
                          "(not a tracker's announce URL?)" if answer.message is None else
                          f"{url}: HTTP 404 (not a tracker's announce URL?)")
    return resolved


async def run_tracker(cases: Iterable[Case], url: TrackerTarget | str, *,
                      strict: bool = False, timeout: float = DEFAULT_TIMEOUT,
                      silence: float = DEFAULT_SILENCE, deadline: float = DEFAULT_DEADLINE,
                      check_target: bool = True, rng: random.Random | None = None,
                      on_result: Callable[[Result], None] | None = None,
                      restart: Callable[[], Awaitable[Address]] | None = None,
                      rate: float | None = None) -> RunReport:
    """Run the ``cases`` of ``url``'s transport (the others are left out) and return the
    report."""
    if isinstance(url, str):
        url = parse_tracker_url(url)
    cases = [c for c in cases if transport_of(c) == url.scheme]
    options = dict(strict=strict, timeout=timeout, silence=silence, rng=rng, restart=restart,
                   rate=rate)
    runner: Runner
    if url.scheme == "udp":
        address = await preflight_udp(url.address, timeout) if check_target else \
            _resolve_address(url.address)
        runner = UdpTrackerRunner(address, **options)
    else:
        address = await preflight_http(url, timeout) if check_target else \
            _resolve_address(url.address)
        runner = HttpTrackerRunner(address, url, **options)
    return await run_with(runner, cases, protocol="tracker", target=str(url),
                          deadline=deadline, on_result=on_result)
