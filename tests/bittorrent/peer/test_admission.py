"""Admission control of the seeder (issue 13): silent sockets cannot keep a downloader out.

Attackers open connections and send one byte each (never a handshake); the well-behaved
downloader must still get in at once, whether the attackers share its address or not, and
even when they reconnect as soon as they are evicted. Loopback only (127.0.0.1 and
127.0.0.2, both on ``lo``), a few dozen sockets, every wait bounded.
"""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from p2pkit.bittorrent.peer.client import MAX_CONNECTIONS_PER_ADDRESS, TorrentClient
from p2pkit.bittorrent.peer.connection import HANDSHAKE_TIMEOUT
from p2pkit.bittorrent.wire.create import create_torrent
from p2pkit.bittorrent.wire.metainfo import Metainfo
from tests.bittorrent.album import write_album

#: Well under HANDSHAKE_TIMEOUT: before the fix the downloader waited for it (or forever).
DOWNLOAD_TIMEOUT = 8.0
assert DOWNLOAD_TIMEOUT < HANDSHAKE_TIMEOUT


@pytest.fixture
def torrent(tmp_path):
    files = write_album(tmp_path / "seed", {"one.bin": 100_000}, seed=5)
    meta = Metainfo.parse(create_torrent(tmp_path / "seed" / "album", piece_length=16384))
    return meta, tmp_path / "seed", files


class Attacker:
    """``count`` connections from ``source`` that send one byte each and then stay silent;
    with ``reconnect``, each evicted one is replaced at once."""

    def __init__(self, port, source, count, *, reconnect=False):
        self.port, self.source, self.count, self.reconnect = port, source, count, reconnect
        self.writers = []
        self.evicted = 0
        self._tasks = []

    async def _one(self):
        while True:
            try:
                reader, writer = await asyncio.open_connection(
                    "127.0.0.1", self.port, local_addr=(self.source, 0))
            except OSError:
                await asyncio.sleep(0.05)
                continue
            writer.write(b"\x13")
            self.writers.append(writer)
            with contextlib.suppress(ConnectionError):  # refused with its byte unread: a reset
                await reader.read()  # until the seeder closes it
            self.evicted += 1
            self.writers.remove(writer)
            writer.close()
            if not self.reconnect:
                return
            await asyncio.sleep(0.01)

    async def __aenter__(self):
        self._tasks = [asyncio.ensure_future(self._one()) for _ in range(self.count)]
        for _ in range(100):  # until the seeder has seen them all
            await asyncio.sleep(0.02)
            if len(self.writers) + self.evicted >= self.count:
                break
        await asyncio.sleep(0.2)
        return self

    async def __aexit__(self, *exc):
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, OSError):
                await task
        for writer in self.writers:
            writer.close()


async def _download(meta, seed_root, leech_root, *, source, attackers, reconnect=False):
    seeder = TorrentClient(meta, seed_root, listen=("127.0.0.1", 0), trackers=False,
                           max_peers=12)
    await seeder.start()
    try:
        async with Attacker(seeder.listen_port, source, attackers, reconnect=reconnect) as bad:
            incoming = [p for p in seeder._protocols.values() if not p.outgoing]
            assert len(incoming) <= seeder.max_peers
            if source == "127.0.0.2":
                assert len(incoming) <= MAX_CONNECTIONS_PER_ADDRESS
            leecher = TorrentClient(meta, leech_root, listen=("127.0.0.1", 0),
                                    trackers=False, peers=[("127.0.0.1", seeder.listen_port)])
            await leecher.start()
            try:
                await asyncio.wait_for(leecher.wait_complete(), DOWNLOAD_TIMEOUT)
            finally:
                await leecher.close()
            return leecher, bad.evicted
    finally:
        await seeder.close()


@pytest.mark.parametrize("source", ["127.0.0.1", "127.0.0.2"], ids=["same-address",
                                                                     "other-address"])
def test_silent_connections_cannot_keep_a_downloader_out(torrent, tmp_path, source):
    meta, seed_root, files = torrent
    leecher, evicted = asyncio.run(_download(meta, seed_root, tmp_path / "leech",
                                             source=source, attackers=30))
    assert leecher.session.complete and evicted > 0
    assert (tmp_path / "leech" / "album" / "one.bin").read_bytes() == files["one.bin"]


def test_attackers_reconnecting_at_once_still_lose_to_a_handshake(torrent, tmp_path):
    meta, seed_root, _ = torrent
    leecher, _ = asyncio.run(_download(meta, seed_root, tmp_path / "leech",
                                       source="127.0.0.1", attackers=20, reconnect=True))
    assert leecher.session.complete


def test_per_address_limit_keeps_handshaken_peers(torrent, tmp_path):
    """Eviction only takes connections without a handshake: handshaken peers stay."""
    meta, seed_root, _ = torrent

    async def scenario():
        seeder = TorrentClient(meta, seed_root, listen=("127.0.0.1", 0), trackers=False,
                               max_per_address=2)
        await seeder.start()
        leechers = []
        try:
            for i in range(3):
                leecher = TorrentClient(meta, tmp_path / f"leech{i}", listen=("127.0.0.1", 0),
                                        trackers=False, peers=[("127.0.0.1", seeder.listen_port)])
                await leecher.start()
                leechers.append(leecher)
                await asyncio.sleep(0.3)
            incoming = [p for p in seeder._protocols.values() if not p.outgoing]
            return len(incoming)
        finally:
            for leecher in leechers:
                await leecher.close()
            await seeder.close()

    assert asyncio.run(scenario()) == 2


def test_an_exception_on_one_peers_bytes_drops_that_peer_only(torrent, tmp_path, monkeypatch,
                                                             caplog):
    from p2pkit.bittorrent.peer.session import TorrentSession

    meta, seed_root, _ = torrent
    original = TorrentSession.receive_data

    def buggy(self, peer, data, now):
        if data.startswith(b"boom"):
            raise RuntimeError("a bug one peer can reach")
        return original(self, peer, data, now)

    monkeypatch.setattr(TorrentSession, "receive_data", buggy)

    async def scenario():
        # plaintext: with MSE allowed, "boom" would be the start of a key, never the session's
        seeder = TorrentClient(meta, seed_root, listen=("127.0.0.1", 0), trackers=False,
                               encryption="plaintext")
        await seeder.start()
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", seeder.listen_port)
            writer.write(b"boom")
            assert await asyncio.wait_for(reader.read(), 5) == b""
            writer.close()
            assert seeder._protocols == {} and seeder.session.peers == {}
            leecher = TorrentClient(meta, tmp_path / "leech", listen=("127.0.0.1", 0),
                                    trackers=False, peers=[("127.0.0.1", seeder.listen_port)])
            await leecher.start()
            try:
                await asyncio.wait_for(leecher.wait_complete(), DOWNLOAD_TIMEOUT)
            finally:
                await leecher.close()
            return leecher.session.complete
        finally:
            await seeder.close()

    with caplog.at_level("WARNING", logger="p2pkit.bittorrent.peer.client"):
        assert asyncio.run(scenario())
    assert len([r for r in caplog.records if "a bug one peer" in r.getMessage()]) == 1


def test_eviction_takes_the_oldest_silent_socket_before_a_first_flight(torrent, tmp_path):
    """The eviction order: sockets that sent less than a first flight (BEP 3's pstrlen and
    pstr), oldest first; a connection that sent its first flight goes only after them, however
    early it came. Under "idlest first" (received nothing for longest) the first-flight
    connection, which came first and has been silent since, was the victim."""
    from p2pkit.bittorrent.peer.client import FIRST_FLIGHT_BYTES

    meta, seed_root, _ = torrent

    async def connect(port, data):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(data)
        await writer.drain()
        await asyncio.sleep(0.1)  # the seeder has read it
        return reader, writer

    async def closed(reader):
        try:
            return await asyncio.wait_for(reader.read(), 0.5) == b""
        except TimeoutError:
            return False
        except ConnectionError:  # closed with bytes unread: a reset
            return True

    async def scenario():
        seeder = TorrentClient(meta, seed_root, listen=("127.0.0.1", 0), trackers=False,
                               max_peers=3)
        seeder.eviction_grace = 0.0  # the order alone (the grace has its own test)
        await seeder.start()
        port = seeder.listen_port
        try:
            flight = b"\x13BitTorrent protocol"
            assert len(flight) == FIRST_FLIGHT_BYTES
            early = await connect(port, flight)  # first, then silent: a handshake under way
            one, two = await connect(port, b"\x13"), await connect(port, b"\x13")
            three = await connect(port, b"\x13")  # full: evicts the oldest one-byte socket
            assert await closed(one[0]) and not await closed(early[0])
            await connect(port, b"\x13")  # evicts the next oldest without a first flight
            assert await closed(two[0]) and not await closed(early[0])
            assert not await closed(three[0])
            for _, writer in (early, one, two, three):
                writer.close()
        finally:
            await seeder.close()

    asyncio.run(scenario())


def test_a_first_flight_still_in_the_kernel_counts(torrent, tmp_path):
    """In a burst of accepts the seeder reads no socket: a connection whose first flight waits
    unread in the kernel is not the victim; the one-byte socket after it is."""
    meta, seed_root, _ = torrent

    async def scenario():
        seeder = TorrentClient(meta, seed_root, listen=("127.0.0.1", 0), trackers=False,
                               max_peers=2)
        seeder.eviction_grace = 0.0
        await seeder.start()
        port = seeder.listen_port
        try:
            early_r, early_w = await asyncio.open_connection("127.0.0.1", port)
            early_w.write(b"\x13")  # accepted (TCP_DEFER_ACCEPT waits for a first byte)
            await asyncio.sleep(0.1)
            (proto,) = [p for p in seeder._protocols.values() if not p.outgoing]
            proto.transport.pause_reading()  # as if the loop had not come to it yet
            early_w.write(b"BitTorrent protocol" + bytes(8))
            await early_w.drain()
            one_r, one_w = await asyncio.open_connection("127.0.0.1", port)
            one_w.write(b"\x13")
            await asyncio.sleep(0.1)
            assert proto.received == 1 and proto.unread() == 27
            _, new_w = await asyncio.open_connection("127.0.0.1", port)  # full: one must go
            new_w.write(b"\x13")
            assert await asyncio.wait_for(one_r.read(), 2) == b""
            assert not early_w.is_closing() and proto.transport is not None
            assert not proto.transport.is_closing()
            for writer in (early_w, one_w, new_w):
                writer.close()
        finally:
            await seeder.close()

    asyncio.run(scenario())


def test_a_silent_newcomer_does_not_replace_a_recent_silent_socket(torrent, tmp_path):
    """Within ``eviction_grace`` a connection that has sent nothing yet is replaced only by a
    newcomer that has sent a first flight: a silent newcomer is refused; after the grace the
    oldest goes."""
    meta, seed_root, _ = torrent

    async def scenario():
        seeder = TorrentClient(meta, seed_root, listen=("127.0.0.1", 0), trackers=False,
                               max_peers=2)
        seeder.eviction_grace = 0.5
        await seeder.start()
        port = seeder.listen_port
        writers = []
        try:
            readers = []
            for _ in range(3):
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(b"\x13")
                readers.append(reader)
                writers.append(writer)
                await asyncio.sleep(0.05)
            first, second, third = readers
            with contextlib.suppress(ConnectionError):  # refused (a reset: its byte unread)
                assert await asyncio.wait_for(third.read(), 2) == b""
            assert third.at_eof() or third.exception() is not None
            await asyncio.sleep(0.6)
            _, late = await asyncio.open_connection("127.0.0.1", port)
            late.write(b"\x13")
            writers.append(late)
            assert await asyncio.wait_for(first.read(), 2) == b""  # past its grace: evicted
            with contextlib.suppress(TimeoutError):
                assert await asyncio.wait_for(second.read(), 0.3) != b""
        finally:
            for writer in writers:
                writer.close()
            await seeder.close()

    asyncio.run(scenario())
