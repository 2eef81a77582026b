"""The stream runner's own discipline: the preflight's one-line reasons, a target that dies
mid-run (target-died, then the restart hook), the run's deadline, magnet-only runs."""

from __future__ import annotations

import asyncio
import random
import socket
from pathlib import Path

import pytest

from p2pkit.bittorrent.peer.client import TorrentClient
from p2pkit.bittorrent.wire.metainfo import Metainfo
from p2pkit.conformance import catalog
from p2pkit.conformance.bittorrent import BitTorrentWire, TorrentFacts
from p2pkit.conformance.case import select
from p2pkit.conformance.runner import TargetError
from p2pkit.conformance.stream_runner import preflight, run_stream_cases
from tests.conformance.bt_helpers import SILENCE, run_against_own_seeder, write_torrent

LOCAL = ("127.0.0.1", 0)
#: The unknown-message-id robustness case sends this frame; the mutant below dies on it.
KILLER = bytes.fromhex("0000000263ff")


async def _seeder(root: Path, torrent: bytes, *, fragile: bool = False) -> TorrentClient:
    client = TorrentClient(Metainfo.parse(torrent), root, listen=LOCAL, trackers=False,
                           rng=random.Random(3))
    if fragile:  # crashes (stops listening, drops every peer) on an unknown message id
        received = client._received

        def _received(proto, data):
            if KILLER in data:
                client._server.close()
                for p in list(client._protocols.values()):
                    p.transport.abort()
                return
            received(proto, data)
        client._received = _received
    await client.start()
    return client


def test_preflight_reasons(tmp_path: Path) -> None:
    torrent = write_torrent(tmp_path, "v1")
    wire = BitTorrentWire(TorrentFacts.from_torrent(torrent))

    async def scenario() -> list[str]:
        reasons = []
        with socket.socket() as s:  # a port nothing listens on
            s.bind(LOCAL)
            closed = s.getsockname()[1]
        try:
            await preflight(("127.0.0.1", closed), wire, timeout=1.0)
        except TargetError as e:
            reasons.append(str(e))

        async def http(reader, writer):
            writer.write(b"HTTP/1.1 400 Bad Request\r\n\r\n")
            await writer.drain()
            writer.close()
        server = await asyncio.start_server(http, *LOCAL)
        try:
            await preflight(server.sockets[0].getsockname()[:2], wire, timeout=1.0)
        except TargetError as e:
            reasons.append(str(e))
        finally:
            server.close()
        client = await _seeder(tmp_path, torrent)
        try:
            other = BitTorrentWire(TorrentFacts(info_hash=b"\x01" * 20))
            await preflight(("127.0.0.1", client.listen_port), other, timeout=1.0)
        except TargetError as e:
            reasons.append(str(e))
        finally:
            await client.close()
        return reasons

    nothing, another, unknown = asyncio.run(scenario())
    assert "cannot connect" in nothing and "nothing listens" in nothing
    assert "not bittorrent" in another and "another protocol" in another
    assert "closed the connection" in unknown and "0101010101" in unknown


def _cases():
    """A case, the robustness case the fragile seeder dies on, then three more."""
    every = catalog("bittorrent")
    return (select(every, ["bittorrent/bep3/handshake/pstr"])
            + select(every, ["bittorrent/bep3/robustness/unknown-message-id"])
            + select(every, ["bittorrent/bep3/keep-alive"]))


def test_a_target_that_dies_and_the_restart_hook(tmp_path: Path) -> None:
    torrent = write_torrent(tmp_path, "v1")
    wire = BitTorrentWire(TorrentFacts.from_torrent(torrent))

    async def scenario(restart: bool):
        clients = [await _seeder(tmp_path, torrent, fragile=True)]

        async def again():
            clients.append(await _seeder(tmp_path, torrent))
            return ("127.0.0.1", clients[-1].listen_port)
        try:
            return await run_stream_cases(
                _cases(), ("127.0.0.1", clients[0].listen_port), wire, silence=SILENCE,
                timeout=1.0, rng=random.Random(1), restart=again if restart else None)
        finally:
            for c in clients:
                await c.close()

    died = asyncio.run(scenario(restart=False))
    verdicts = [r.verdict for r in died.results]
    assert verdicts[0] == "pass"
    assert verdicts[1:] == ["target-died"] * (len(verdicts) - 1)
    assert "no well-behaved session" in died.results[1].reason
    assert not died.ok
    restarted = asyncio.run(scenario(restart=True))
    assert [r.verdict for r in restarted.results] == ["pass", "target-died"] + ["pass"] * (
        len(verdicts) - 2), [r.reason for r in restarted.results]


def test_deadline_skips_the_rest(tmp_path: Path) -> None:
    report = run_against_own_seeder(tmp_path, _cases(), version="v1", deadline=0.0)
    assert {r.verdict for r in report.results} == {"skipped"}
    assert report.ok


def test_magnet_only_marks_torrent_cases_unsupported(tmp_path: Path) -> None:
    torrent = write_torrent(tmp_path, "hybrid")
    meta = Metainfo.parse(torrent)
    magnet = f"magnet:?xt=urn:btih:{meta.info_hash_v1.hex()}"
    cases = select(catalog("bittorrent"), ["bittorrent/bep3/bitfield", "bittorrent/bep9"])

    async def scenario():
        client = await _seeder(tmp_path, torrent)
        try:
            return await run_stream_cases(
                cases, ("127.0.0.1", client.listen_port),
                BitTorrentWire(TorrentFacts.from_magnet(magnet)), silence=SILENCE,
                rng=random.Random(2))
        finally:
            await client.close()

    report = asyncio.run(scenario())
    by = {r.case.id: r for r in report.results}
    for case in cases:
        if "torrent" in case.tags:
            assert by[case.id].verdict == "unsupported", case.id
            assert "--torrent" in by[case.id].reason
    # the metadata cases need only the info-hash: the data must hash to it
    assert by["bittorrent/bep9/data/verifies"].verdict == "pass"


@pytest.mark.parametrize("strict", [False, True])
def test_reports_of_a_stream_run(tmp_path: Path, strict: bool,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from p2pkit.bittorrent.peer import connection
    from p2pkit.conformance.reporters import html, json_report, junit

    # a seeder that closes on an unknown ut_metadata msg_type (as p2pkit's did before issue
    # 11): one failing case whose exchanges the reports must show
    monkeypatch.setattr(connection, "_unknown_msg_type", lambda payload: False)
    report = run_against_own_seeder(tmp_path, select(catalog("bittorrent"), [
        "bittorrent/bep9/request"]), version="v1", strict=strict)
    document = json_report.to_document(report)
    assert json_report.validate(document) == []
    failed = [c for c in document["cases"] if c["verdict"] == "fail"]
    assert [c["id"] for c in failed] == ["bittorrent/bep9/request/unknown-msg-type-ignored"]
    assert failed[0]["exchanges"][-2]["received_fields"]["closed"] == "eof"
    html.write(report, tmp_path / "r.html")
    junit.write(report, tmp_path / "r.xml")
    assert "ut_metadata" in (tmp_path / "r.html").read_text()
