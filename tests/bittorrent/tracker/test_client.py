"""Tracker client against p2pkit's reference tracker and scripted hostile trackers, all on
127.0.0.1 with ephemeral ports. Every wait is bounded by the client's ``timeout``."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import random
import socket
from collections.abc import Callable

import pytest
from construct import Container
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pkit.bittorrent.tracker.client import (
    CONNECTION_ID_LIFETIME,
    MAX_REDIRECTS,
    Announce,
    AnnounceResult,
    ScrapeResult,
    TrackerClient,
    TrackerError,
    TrackerPeer,
    TrackerTiers,
    announce,
    scrape,
    scrape_url,
)
from p2pkit.bittorrent.tracker.core import TrackerConfig, TrackerCore
from p2pkit.bittorrent.tracker.http import (
    MAX_BODY_SIZE,
    HttpHeader,
    TrackerHttpResponse,
    build_http_response,
    encode_body,
    parse_http_request,
)
from p2pkit.bittorrent.tracker.server import TrackerServer
from p2pkit.bittorrent.tracker.udp import (
    UdpAnnounceResponse,
    UdpConnectResponse,
    UdpErrorResponse,
    UdpTrackerRequest,
    url_data,
)
from p2pkit.errors import LimitExceeded, LocalProtocolError, ParseError

HASH = b"\x42" * 20
TIMEOUT = 10.0
#: BEP 15 retransmission base for tests (15 s on the wire). Large enough that a loaded CI
#: machine answers in time (a late answer would show as an extra retransmission).
FAST = 0.3


def peer_announce(n: int, *, left: int = 0, event: str = "started", **kw) -> Announce:
    return Announce(info_hash=HASH, peer_id=b"-PK0001-%012d" % n, port=7000 + n, left=left,
                    event=event, key=n, **kw)


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


@contextlib.asynccontextmanager
async def reference_tracker(config: TrackerConfig | None = None):
    server = TrackerServer(TrackerCore(config, rng=random.Random(1)))
    await server.start(host="127.0.0.1", http_port=0, udp_port=0)
    try:
        yield server
    finally:
        await server.close()


def urls(server: TrackerServer) -> dict[str, str]:
    return {"http": f"http://127.0.0.1:{server.http_port}/announce",
            "udp": f"udp://127.0.0.1:{server.udp_port}/announce"}


def endpoints(result: AnnounceResult) -> set[tuple[str, int]]:
    return {(p.host, p.port) for p in result.peers}


# --------------------------------------------------------------------------- reference tracker


@pytest.mark.parametrize("transport", ["http", "udp"])
def test_swarm_lifecycle_against_reference_tracker(transport):
    async def scenario():
        async with reference_tracker(TrackerConfig(interval=900)) as server:
            url = urls(server)[transport]
            client = TrackerClient(rng=random.Random(5), retransmit_base=FAST)
            first = await client.announce(url, peer_announce(1, left=0), timeout=TIMEOUT)
            second = await client.announce(url, peer_announce(2, left=500), timeout=TIMEOUT)
            third = await client.announce(url, peer_announce(3, left=500), timeout=TIMEOUT)
            await client.announce(url, peer_announce(1, event="stopped"), timeout=TIMEOUT)
            again = await client.announce(url, peer_announce(3, left=400, event=""),
                                          timeout=TIMEOUT)
            return first, second, third, again

    first, second, third, again = run(scenario())
    assert first.interval == 900 and first.peers == ()
    assert (first.complete, first.incomplete) == (1, 0)
    assert endpoints(second) == {("127.0.0.1", 7001)}
    assert (second.complete, second.incomplete) == (1, 1)
    assert endpoints(third) == {("127.0.0.1", 7001), ("127.0.0.1", 7002)}
    # peer 1 stopped: it is gone from the swarm
    assert endpoints(again) == {("127.0.0.1", 7002)}
    assert (again.complete, again.incomplete) == (0, 2)


def ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not ipv6_loopback(), reason="no IPv6 loopback (::1) here")
@pytest.mark.parametrize("transport", ["http", "udp"])
def test_ipv6_tracker(transport):
    """BEP 7 ``peers6`` over HTTP; BEP 15 §IPv6 18-byte peers from a tracker reached over IPv6."""

    async def scenario():
        server = TrackerServer(TrackerCore(rng=random.Random(1)))
        await server.start(host="::1", http_port=0, udp_port=0)
        try:
            port = server.http_port if transport == "http" else server.udp_port
            url = f"{transport}://[::1]:{port}/announce"
            client = TrackerClient(retransmit_base=FAST)
            await client.announce(url, peer_announce(1), timeout=TIMEOUT)
            return await client.announce(url, peer_announce(2, left=5), timeout=TIMEOUT)
        finally:
            await server.close()

    assert endpoints(run(scenario())) == {("::1", 7001)}


def test_refusal_from_reference_tracker_carries_its_text():
    async def scenario():
        config = TrackerConfig(allowed_info_hashes=frozenset({b"\x01" * 20}))
        async with reference_tracker(config) as server:
            errors = []
            for url in urls(server).values():
                with pytest.raises(TrackerError) as info:
                    await announce(url, peer_announce(1), timeout=TIMEOUT,
                                   client=TrackerClient(retransmit_base=FAST))
                errors.append(info.value)
            return errors

    http_error, udp_error = run(scenario())
    for error in (http_error, udp_error):
        assert error.failure_reason and error.failure_reason in str(error)
        assert "127.0.0.1" in error.url
    assert http_error.failure_reason == udp_error.failure_reason


@pytest.mark.parametrize("transport", ["http", "udp"])
def test_scrape_against_reference_tracker(transport):
    async def scenario():
        async with reference_tracker() as server:
            url = urls(server)[transport]
            client = TrackerClient(retransmit_base=FAST)
            await client.announce(url, peer_announce(1, left=0), timeout=TIMEOUT)
            await client.announce(url, peer_announce(2, left=9), timeout=TIMEOUT)
            return await scrape(url, [HASH, b"\x07" * 20], timeout=TIMEOUT, client=client)

    counts = run(scenario())
    assert counts[HASH] == ScrapeResult(complete=1, downloaded=0, incomplete=1)
    if transport == "udp":  # BEP 15 answers every hash asked; BEP 48 only known ones
        assert counts[b"\x07" * 20] == ScrapeResult()


def test_scrape_url_bep48():
    assert scrape_url("http://t/announce") == "http://t/scrape"
    assert scrape_url("http://t/a/announce?passkey=x") == "http://t/a/scrape?passkey=x"
    assert scrape_url("http://t/announce.php") == "http://t/scrape.php"
    assert scrape_url("http://t/a/b") is None
    assert scrape_url("udp://t:80") == "udp://t:80"

    async def scenario():
        with pytest.raises(TrackerError, match="scrape"):
            await scrape("http://127.0.0.1:1/tracker", [HASH], timeout=TIMEOUT)

    run(scenario())


# --------------------------------------------------------------------------- scripted UDP


class ScriptedUdpTracker(asyncio.DatagramProtocol):
    """A BEP 15 tracker whose answers are chosen per request by ``script(request, n)``:
    it returns the list of datagrams to send back (``n`` counts requests received)."""

    def __init__(self, script: Callable[[Container, int], list[bytes]]) -> None:
        self.script = script
        self.requests: list[Container] = []
        self.transport = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        request = UdpTrackerRequest.parse(data)
        self.requests.append(request)
        for reply in self.script(request, len(self.requests)):
            self.transport.sendto(reply, addr)

    @property
    def actions(self) -> list[str]:
        return [r.action for r in self.requests]


def connect_reply(request: Container, *, connection_id: int = 0x1122334455667788,
                  transaction_id: int | None = None) -> bytes:
    return UdpConnectResponse.build(dict(
        transaction_id=request.transaction_id if transaction_id is None else transaction_id,
        connection_id=connection_id))


def announce_reply(request: Container, *, transaction_id: int | None = None) -> bytes:
    return UdpAnnounceResponse.build(dict(
        action="announce", interval=1234, leechers=3, seeders=4,
        transaction_id=request.transaction_id if transaction_id is None else transaction_id,
        peers=[dict(ip="127.0.0.9", port=6889), dict(ip="127.0.0.10", port=0)]))


def error_reply(request: Container, text: bytes) -> bytes:
    return UdpErrorResponse.build(dict(action="error", transaction_id=request.transaction_id,
                                       message=text))


def honest(request: Container, n: int) -> list[bytes]:
    if request.action == "connect":
        return [connect_reply(request)]
    return [announce_reply(request)]


async def scripted_udp(script) -> tuple[ScriptedUdpTracker, asyncio.DatagramTransport, str]:
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(
        lambda: ScriptedUdpTracker(script), local_addr=("127.0.0.1", 0))
    port = transport.get_extra_info("sockname")[1]
    return protocol, transport, f"udp://127.0.0.1:{port}/announce?passkey=abc"


def udp_case(script, *, client: TrackerClient | None = None, announces: int = 1,
             between: Callable[[], None] | None = None, timeout: float = TIMEOUT):
    """Run ``announces`` announces against a scripted tracker: (tracker, results or error)."""

    async def scenario():
        tracker, transport, url = await scripted_udp(script)
        c = client or TrackerClient(rng=random.Random(3), retransmit_base=FAST)
        results = []
        try:
            for _ in range(announces):
                results.append(await c.announce(url, peer_announce(1), timeout=timeout))
                if between:
                    between()
        except TrackerError as e:
            results.append(e)
        finally:
            transport.close()
        return tracker, results

    return run(scenario())


def test_udp_request_fields_and_answer():
    tracker, [result] = udp_case(honest)
    assert tracker.actions == ["connect", "announce"]
    req = tracker.requests[1]
    assert req.connection_id == 0x1122334455667788
    assert (req.info_hash, req.peer_id, req.port, req.event, req.key, req.num_want) == (
        HASH, b"-PK0001-000000000001", 7001, "started", 1, -1)
    # BEP 41: the URL's path and query travel in URLData options
    assert url_data(req) == b"/announce?passkey=abc"
    assert result.interval == 1234 and (result.complete, result.incomplete) == (4, 3)
    # a port-0 peer is unusable and dropped
    assert result.peers == (TrackerPeer(host="127.0.0.9", port=6889),)


def test_udp_connection_id_reused_for_a_minute():
    now = [1000.0]
    client = TrackerClient(rng=random.Random(3), retransmit_base=FAST, clock=lambda: now[0])
    steps = iter([0.0, CONNECTION_ID_LIFETIME - 1, 2.0])

    def advance():
        now[0] += next(steps)

    tracker, results = udp_case(honest, client=client, announces=3, between=advance)
    assert all(isinstance(r, AnnounceResult) for r in results)
    # 1st connects; 2nd (same time) and 3rd (59 s after the id was received) reuse it
    assert tracker.actions == ["connect", "announce", "announce", "announce"]
    tracker, results = udp_case(honest, client=client, announces=1)
    # another tracker (another port) gets its own connection id
    assert tracker.actions == ["connect", "announce"]


def test_udp_connection_id_expires():
    now = [0.0]
    client = TrackerClient(rng=random.Random(3), retransmit_base=FAST, clock=lambda: now[0])

    def advance():
        now[0] += CONNECTION_ID_LIFETIME + 1

    tracker, results = udp_case(honest, client=client, announces=2, between=advance)
    assert all(isinstance(r, AnnounceResult) for r in results)
    assert tracker.actions == ["connect", "announce", "connect", "announce"]


def test_udp_retransmits_when_the_first_packet_is_lost():
    def drop_first(request, n):
        return [] if n == 1 else honest(request, n)

    tracker, [result] = udp_case(drop_first)
    assert isinstance(result, AnnounceResult)
    assert tracker.actions == ["connect", "connect", "announce"]
    # BEP 15: a random transaction id per request
    assert tracker.requests[0].transaction_id != tracker.requests[1].transaction_id


def test_udp_retransmits_a_lost_announce():
    def drop_first_announce(request, n):
        return [] if n == 2 else honest(request, n)

    tracker, [result] = udp_case(drop_first_announce)
    assert isinstance(result, AnnounceResult)
    assert tracker.actions == ["connect", "announce", "announce"]
    assert tracker.requests[1].connection_id == tracker.requests[2].connection_id


def test_udp_wrong_transaction_id_and_garbage_are_ignored():
    def tricky(request, n):
        wrong = request.transaction_id ^ 1
        if request.action == "connect":
            return [connect_reply(request, transaction_id=wrong, connection_id=666),
                    b"\x00\x00\x00\x00garbage", connect_reply(request)]
        return [announce_reply(request, transaction_id=wrong), b"\xff" * 30,
                announce_reply(request)]

    tracker, [result] = udp_case(tricky)
    assert isinstance(result, AnnounceResult)
    # no retransmission was needed, and the spoofed connection id was never used
    assert tracker.actions == ["connect", "announce"]
    assert tracker.requests[1].connection_id == 0x1122334455667788


def test_udp_only_wrong_transaction_ids_time_out():
    def spoofer(request, n):
        return [connect_reply(request, transaction_id=request.transaction_id + 1)]

    tracker, [error] = udp_case(spoofer, timeout=1.0)
    assert isinstance(error, TrackerError) and "no answer" in str(error)
    assert tracker.actions[0] == "connect" and len(tracker.actions) > 1  # it retransmitted


def test_udp_error_action_is_a_refusal():
    def refuse(request, n):
        if request.action == "connect":
            return [connect_reply(request)]
        return [error_reply(request, b"Requested download is not authorized.\x00")]

    tracker, [error] = udp_case(refuse)
    assert isinstance(error, TrackerError)
    assert error.failure_reason == "Requested download is not authorized."
    # the connection id was fresh: no reconnect before believing the error
    assert tracker.actions == ["connect", "announce"]


def test_udp_refusal_after_reconnecting_is_believed():
    def refuses_later(request, n):
        if request.action == "connect":
            return [connect_reply(request, connection_id=n)]
        if n == 2:
            return [announce_reply(request)]
        return [error_reply(request, b"banned")]

    client = TrackerClient(rng=random.Random(3), retransmit_base=FAST, clock=lambda: 0.0)
    tracker, results = udp_case(refuses_later, client=client, announces=2)
    assert isinstance(results[0], AnnounceResult)
    assert isinstance(results[1], TrackerError) and results[1].failure_reason == "banned"
    # kept id refused -> one reconnect -> refused again with a fresh id: given up
    assert tracker.actions == ["connect", "announce", "announce", "connect", "announce"]


def test_udp_reconnects_when_a_kept_id_is_refused():
    def forget_after_first(request, n):
        if request.action == "connect":
            return [connect_reply(request, connection_id=n)]
        if request.connection_id == 1 and n > 2:
            return [error_reply(request, b"Connection ID mismatch.")]
        return [announce_reply(request)]

    client = TrackerClient(rng=random.Random(3), retransmit_base=FAST, clock=lambda: 0.0)
    tracker, results = udp_case(forget_after_first, client=client, announces=2)
    assert all(isinstance(r, AnnounceResult) for r in results)
    assert tracker.actions == ["connect", "announce", "announce", "connect", "announce"]


def test_udp_nobody_listening():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # A long retransmission base: the error can only come from the ICMP unreachable.
    client = TrackerClient(retransmit_base=30.0)
    with pytest.raises(TrackerError, match="cannot reach"):
        run(client.announce(f"udp://127.0.0.1:{port}", peer_announce(1), timeout=TIMEOUT))


@settings(max_examples=25, deadline=None)
@given(st.lists(st.binary(max_size=40), max_size=4))
def test_udp_random_datagrams_are_ignored(junk):
    def noisy(request, n):
        return [*junk, *honest(request, n)]

    tracker, [result] = udp_case(noisy)
    assert isinstance(result, AnnounceResult) and tracker.actions == ["connect", "announce"]


def test_udp_silent_tracker_gives_up():
    tracker, [error] = udp_case(lambda request, n: [], timeout=0.5)
    assert isinstance(error, TrackerError) and "0.5" in str(error)


def test_udp_retransmissions_stop_after_n_8():
    client = TrackerClient(rng=random.Random(3), retransmit_base=0.001)
    tracker, [error] = udp_case(lambda request, n: [], client=client)
    assert isinstance(error, TrackerError) and "retransmissions" in str(error)
    # BEP 15: "n starts at 0 and is increased up to 8": 9 transmissions in all
    assert tracker.actions == ["connect"] * 9


def test_udp_concurrent_requests_share_one_core():
    """Announces to two trackers and two at once to the same one, from one client: each
    request gets its own answer; the same tracker connects once (one core, one id)."""

    async def scenario():
        first, t1, url1 = await scripted_udp(honest)
        second, t2, url2 = await scripted_udp(honest)
        client = TrackerClient(rng=random.Random(9), retransmit_base=FAST)
        try:
            results = await asyncio.gather(
                client.announce(url1, peer_announce(1), timeout=TIMEOUT),
                client.announce(url2, peer_announce(2), timeout=TIMEOUT))
            again = await asyncio.gather(
                client.announce(url1, peer_announce(3), timeout=TIMEOUT),
                client.announce(url1, peer_announce(4), timeout=TIMEOUT))
        finally:
            t1.close()
            t2.close()
        return first, second, results + again, client

    first, second, results, client = run(scenario())
    assert all(isinstance(r, AnnounceResult) and r.interval == 1234 for r in results)
    assert first.actions == ["connect", "announce", "announce", "announce"]
    assert second.actions == ["connect", "announce"]
    assert client._udp.operations == 0 and client._timer is None


# --------------------------------------------------------------------------- scripted HTTP


def http_case(answers: list[bytes | Callable[[bytes], bytes]], url_path: str = "/announce",
              request: Announce | None = None):
    """Serve ``answers`` to successive connections; return (request heads, result or error)."""

    async def scenario():
        heads = []

        async def serve(reader, writer):
            head = await reader.readuntil(b"\r\n\r\n")
            heads.append(head)
            answer = answers[min(len(heads), len(answers)) - 1]
            writer.write(answer(head) if callable(answer) else answer)
            with contextlib.suppress(ConnectionError):
                await writer.drain()
            writer.close()

        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            result = await announce(f"http://127.0.0.1:{port}{url_path}",
                                    request or peer_announce(1), timeout=TIMEOUT)
        except TrackerError as e:
            result = e
        finally:
            server.close()
            await server.wait_closed()
        return heads, result, port

    return run(scenario())


def ok(body: bytes, *headers: HttpHeader, status: int = 200, reason: str = "OK") -> bytes:
    return build_http_response(TrackerHttpResponse(version="HTTP/1.0", status=status,
                                                   reason=reason, headers=headers, body=body))


GOOD = encode_body(Container(interval=600, min_interval=300, complete=2, incomplete=5,
                             peers=[Container(ip="127.0.0.7", port=6887)],
                             peers6=[Container(ip="::1", port=6888)],
                             tracker_id=b"tid", warning_message="be nice"))


def test_http_request_head_and_answer():
    heads, result, port = http_case([ok(GOOD)], url_path="/a/announce?passkey=s3cret",
                                    request=peer_announce(1, numwant=30, tracker_id=b"t0"))
    request = parse_http_request(heads[0])
    assert (request.method, request.version, request.path) == ("GET", "HTTP/1.0", "/a/announce")
    assert request.query.startswith("passkey=s3cret&")
    headers = {h.name: h.value for h in request.headers}
    assert headers["Host"] == f"127.0.0.1:{port}"
    message = request.message
    assert (message.info_hash, message.peer_id, message.port, message.event) == (
        HASH, b"-PK0001-000000000001", 7001, "started")
    assert (message.compact, message.numwant, message.key, message.trackerid) == (
        1, 30, b"00000001", b"t0")
    assert result == AnnounceResult(
        interval=600, min_interval=300, complete=2, incomplete=5, warning_message="be nice",
        tracker_id=b"tid", peers=(TrackerPeer(host="127.0.0.7", port=6887),
                                  TrackerPeer(host="::1", port=6888)))


def test_http_gzip_body_is_decoded():
    body = gzip.compress(GOOD)
    _, result, _ = http_case([ok(body, HttpHeader(name="Content-Encoding", value="gzip"))])
    assert isinstance(result, AnnounceResult) and result.interval == 600


def test_http_negative_interval_is_refused():
    _, error, _ = http_case([ok(encode_body(Container(interval=-1, peers=[])))])
    assert isinstance(error, TrackerError) and "interval" in str(error)


def test_http_dictionary_model_peers():
    body = encode_body(Container(interval=60, peers_compact=False, peers=[
        Container(peer_id=b"-XX0000-abcdefghijkl", ip="peer.example", port=1)]))
    _, result, _ = http_case([ok(body)])
    assert result.peers == (TrackerPeer(host="peer.example", port=1,
                                        peer_id=b"-XX0000-abcdefghijkl"),)


def test_http_failure_reason():
    body = encode_body(Container(failure_reason="torrent not registered :("))
    _, error, _ = http_case([ok(body)])
    assert isinstance(error, TrackerError)
    assert error.failure_reason == "torrent not registered :("


@pytest.mark.parametrize(("answer", "cause", "text"), [
    (b"garbage\r\n\r\n", ParseError, "malformed HTTP"),
    (b"", ParseError, "malformed HTTP"),
    (ok(b"d8:intervali5e5:peers5:12345e"), ParseError, "malformed announce"),
    (ok(b"<html>hello</html>"), ParseError, "malformed announce"),
    (ok(b"not found", status=404, reason="Not Found"), ParseError, "HTTP 404"),
    (ok(b"de", HttpHeader(name="Content-Length", value=str(MAX_BODY_SIZE + 1))),
     LimitExceeded, "larger"),
    (b"HTTP/1.0 200 OK\r\n\r\n" + b"x" * (MAX_BODY_SIZE + 40000), LimitExceeded, "over"),
])
def test_http_bad_answers_are_tracker_errors(answer, cause, text):
    _, error, _ = http_case([answer])
    assert isinstance(error, TrackerError) and error.failure_reason is None
    assert text in str(error)
    assert isinstance(error.__cause__, cause)


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_http_mutated_answers_raise_only_tracker_error(data):
    answer = bytearray(ok(GOOD))
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(answer) - 1))
        answer[i] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(answer)))
    _, result, _ = http_case([bytes(answer[:cut])])
    assert isinstance(result, (AnnounceResult, TrackerError))


def test_http_redirect_is_followed():
    def redirect(head):
        return ok(b"", HttpHeader(name="Location", value="/moved/tracker?x=1"), status=302,
                  reason="Found")

    heads, result, _ = http_case([redirect, ok(GOOD)])
    assert isinstance(result, AnnounceResult) and result.interval == 600
    moved = parse_http_request(heads[1])
    assert moved.path == "/moved/tracker" and moved.query == "x=1"


def test_http_redirect_loop_stops():
    loop = ok(b"", HttpHeader(name="Location", value="/announce"), status=301, reason="Moved")
    heads, error, _ = http_case([loop])
    assert isinstance(error, TrackerError) and "redirects" in str(error)
    assert len(heads) == MAX_REDIRECTS + 1


def test_http_connection_refused_and_bad_urls():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    for url in (f"http://127.0.0.1:{port}/announce", "ftp://127.0.0.1/announce",
                "udp://127.0.0.1/announce", "http://127.0.0.1:99999/announce",
                "http://a..b/announce", "http:///announce"):
        with pytest.raises(TrackerError):
            run(announce(url, peer_announce(1), timeout=TIMEOUT))


def test_announce_validates_its_fields():
    for bad in (dict(info_hash=b"x"), dict(port=70000), dict(event="paused"),
                dict(left=-1), dict(key=2 ** 32)):
        fields = dict(info_hash=HASH, peer_id=b"p" * 20, port=1) | bad
        with pytest.raises(LocalProtocolError):
            Announce(**fields)


# --------------------------------------------------------------------------- BEP 12 tiers


def test_tiers_shuffle_once_and_promote_winners():
    tiers = [["a", "b", "c"], ["d", "e"], ["a", "f"]]
    order = list(TrackerTiers(tiers, rng=random.Random(0)))
    assert sorted(order[:3]) == ["a", "b", "c"] and sorted(order[3:5]) == ["d", "e"]
    assert order[5:] == ["f"]  # duplicates kept in their first tier only
    assert len({tuple(TrackerTiers(tiers, rng=random.Random(s)))[:3] for s in range(20)}) > 1
    t = TrackerTiers(tiers, rng=random.Random(0))
    assert list(t) == order  # same seed, same shuffle
    t.succeeded(order[4])
    assert list(t)[3] == order[4] and list(t)[:3] == order[:3]
    with pytest.raises(LocalProtocolError):
        t.succeeded("zzz")
    assert len(t) == 6


def test_announce_tiers_skips_dead_trackers():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/announce"

    async def scenario():
        async with reference_tracker() as server:
            live = urls(server)["http"]
            tiers = TrackerTiers([[dead], [dead + "?b", live]], rng=random.Random(1))
            client = TrackerClient(retransmit_base=FAST)
            url, result = await client.announce_tiers(tiers, peer_announce(1), timeout=TIMEOUT)
            return tiers, url, live, result

    tiers, url, live, result = run(scenario())
    assert url == live and isinstance(result, AnnounceResult)
    assert tiers.tiers[1][0] == live

    async def none_alive():
        tiers = TrackerTiers([[dead], [dead + "?x"]], rng=random.Random(1))
        await TrackerClient().announce_tiers(tiers, peer_announce(1), timeout=TIMEOUT)

    with pytest.raises(TrackerError, match="no tracker answered"):
        run(none_alive())
