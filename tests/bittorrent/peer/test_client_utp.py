"""TorrentClient over uTP (BEP 29) on 127.0.0.1: p2pkit peers only.

(libtorrent over uTP runs inside ``unshare -n``: tests/interop/test_utp_interop.py.)
"""

from __future__ import annotations

import asyncio
import random

import pytest

from p2pkit.bittorrent.peer.client import TorrentClient
from p2pkit.bittorrent.utp.endpoint import UtpEndpoint, UtpStream
from p2pkit.bittorrent.wire.create import create_torrent
from p2pkit.bittorrent.wire.metainfo import Metainfo
from p2pkit.bittorrent.wire.utp import UtpPacket
from tests.bittorrent.album import write_album

LOCAL = ("127.0.0.1", 0)


@pytest.fixture
def album(tmp_path):
    files = write_album(tmp_path / "seed", {"one.bin": 1_500_001, "two.bin": 70_000}, seed=9)
    meta = Metainfo.parse(create_torrent(tmp_path / "seed" / "album", piece_length=65536))
    return tmp_path / "seed", files, meta


def same(root, files) -> bool:
    return all((root / "album" / n).read_bytes() == d for n, d in files.items())


async def fetch(meta, seed_root, leech_root, *, seed_transport, leech_transport,
                encryption="prefer", during=None, timeout=30.0, **seed_options):
    seeder = TorrentClient(meta, seed_root, listen=LOCAL, trackers=False,
                           transport=seed_transport, encryption=encryption, **seed_options)
    await seeder.start()
    address = ("127.0.0.1", seeder.listen_port)
    leecher = TorrentClient(meta, leech_root, listen=LOCAL, trackers=False, peers=[address],
                            transport=leech_transport, encryption=encryption)
    transports = set()
    connected = leecher._connected

    def record(proto):  # every connection's transport, however short-lived the download
        transports.add(type(proto.transport).__name__)
        connected(proto)

    leecher._connected = record
    await leecher.start()
    try:
        if during is not None:
            await during(address)
        await asyncio.wait_for(leecher.wait_complete(), timeout)
    finally:
        await leecher.close()
        await seeder.close()
    return leecher, transports


@pytest.mark.parametrize("encryption", ["prefer", "plaintext"])
def test_download_over_utp_only(album, tmp_path, encryption):
    seed_root, files, meta = album
    leecher, transports = asyncio.run(fetch(meta, seed_root, tmp_path / "leech",
                                            seed_transport="utp", leech_transport="utp",
                                            encryption=encryption))
    assert leecher.session.complete and same(tmp_path / "leech", files)
    assert transports == {"UtpStream"}
    assert leecher._server is None  # uTP only: no TCP listener


def test_both_dials_utp_first(album, tmp_path):
    seed_root, files, meta = album
    leecher, transports = asyncio.run(fetch(meta, seed_root, tmp_path / "leech",
                                            seed_transport="both", leech_transport="both"))
    assert same(tmp_path / "leech", files) and transports == {"UtpStream"}


def test_both_falls_back_to_tcp_when_utp_is_not_answered(album, tmp_path):
    seed_root, files, meta = album
    leecher, transports = asyncio.run(fetch(meta, seed_root, tmp_path / "leech",
                                            seed_transport="tcp", leech_transport="both"))
    assert same(tmp_path / "leech", files) and transports == {"_SelectorSocketTransport"}


def test_utp_shares_the_dht_port_and_both_keep_working(album, tmp_path):
    from p2pkit.dht.server import DhtServer

    seed_root, files, meta = album

    async def scenario():
        router = await DhtServer.start("127.0.0.1", 0, rng=random.Random(1))
        try:
            seeder = TorrentClient(meta, seed_root, listen=LOCAL, trackers=False,
                                   transport="utp", dht_bootstrap=[router.address],
                                   rng=random.Random(2))
            await seeder.start()
            assert seeder.dht.address[1] == seeder.listen_port == seeder.utp.address[1]
            leecher = TorrentClient(meta, tmp_path / "leech", listen=LOCAL, trackers=False,
                                    transport="utp", dht_bootstrap=[router.address],
                                    rng=random.Random(3))
            loop = asyncio.get_running_loop()
            for _ in range(200):  # until the seeder's announce_peer reached the router
                if router.node.peers.peers(meta.info_hash, loop.time()):
                    break
                await asyncio.sleep(0.05)
            await leecher.start()
            try:
                await asyncio.wait_for(leecher.wait_complete(), 30)
                transports = {type(p.transport).__name__ for p in leecher._protocols.values()}
            finally:
                await leecher.close()
                await seeder.close()
        finally:
            router.close()
        return leecher, transports

    leecher, transports = asyncio.run(scenario())
    assert same(tmp_path / "leech", files)
    assert transports <= {"UtpStream"}


def test_a_syn_flood_on_the_port_does_not_stop_the_download(album, tmp_path):
    import socket

    seed_root, files, meta = album

    async def flood(address):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            for i in range(3000):
                sock.sendto(UtpPacket.build({
                    "type": "st_syn", "version": 1, "extensions": [], "connection_id": i,
                    "timestamp_microseconds": 0, "timestamp_difference_microseconds": 0,
                    "wnd_size": 65536, "seq_nr": i, "ack_nr": 0, "payload": b""}), address)
                if i % 200 == 0:
                    await asyncio.sleep(0)

    leecher, transports = asyncio.run(fetch(meta, seed_root, tmp_path / "leech",
                                            seed_transport="utp", leech_transport="utp",
                                            during=flood))
    assert same(tmp_path / "leech", files) and transports == {"UtpStream"}


def test_utp_stream_is_an_asyncio_transport():
    assert issubclass(UtpStream, asyncio.Transport)


def test_port_zero_takes_another_pair_when_the_udp_port_is_taken(album, monkeypatch):
    import socket

    seed_root, _, meta = album
    blockers = []
    real_bind = UtpEndpoint.bind

    async def bind(host, port, **kwargs):
        if not blockers:  # the first port the system gave TCP is busy over UDP
            blocker = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            blocker.bind((host, port))
            blockers.append(blocker)
        return await real_bind(host, port, **kwargs)

    monkeypatch.setattr(UtpEndpoint, "bind", bind)

    async def scenario():
        client = TorrentClient(meta, seed_root, listen=LOCAL, trackers=False, transport="both")
        await client.start()
        ports = (client.listen_port, client.utp.address[1],
                 client._server.sockets[0].getsockname()[1])
        await client.close()
        return ports

    try:
        listen, udp, tcp = asyncio.run(scenario())
        busy = blockers[0].getsockname()[1]
    finally:
        blockers[0].close()
    assert listen == udp == tcp != busy


def test_a_pex_contact_without_the_utp_flag_is_dialled_over_tcp_at_once(album, tmp_path):
    """transport="both": a contact whose BEP 11 flags lack 0x04 is not tried over uTP (which
    would cost UTP_CONNECT_TIMEOUT against a TCP-only peer); one with it is."""
    from p2pkit.bittorrent.peer.session import PeersDiscovered

    seed_root, files, meta = album

    async def run():
        seeder = TorrentClient(meta, seed_root, listen=LOCAL, trackers=False, transport="both")
        await seeder.start()
        address = ("127.0.0.1", seeder.listen_port)
        leecher = TorrentClient(meta, tmp_path / "leech", listen=LOCAL, trackers=False,
                                transport="both")
        transports = []
        connected = leecher._connected

        def record(proto):
            transports.append(proto.transport.get_extra_info("transport", "tcp"))
            connected(proto)

        leecher._connected = record
        await leecher.start()
        try:
            leecher.session._events.append(PeersDiscovered(addresses=(address,), utp=(False,)))
            leecher._pump()
            await asyncio.wait_for(leecher.wait_complete(), 2.0)  # under UTP_CONNECT_TIMEOUT
        finally:
            await leecher.close()
            await seeder.close()
        return leecher, transports, address

    leecher, transports, address = asyncio.run(run())
    assert same(tmp_path / "leech", files) and transports == ["tcp"]
    assert leecher._utp_hint == {address: False}
