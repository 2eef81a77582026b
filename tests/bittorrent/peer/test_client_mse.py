"""TorrentClient with Message Stream Encryption (MSE (Vuze wiki)) over real TCP on 127.0.0.1:
the three policies against each other, the key log, fallback, and hostile key exchanges.

(libtorrent, aria2 and transmission over MSE run inside ``unshare -n``: tests/interop.)
"""

from __future__ import annotations

import asyncio
import random

import pytest

from p2pkit.bittorrent.mse.connection import MseConnection
from p2pkit.bittorrent.mse.keylog import parse_keylog
from p2pkit.bittorrent.mse.keys import public_key
from p2pkit.bittorrent.peer.client import TorrentClient
from p2pkit.bittorrent.wire.create import create_torrent
from p2pkit.bittorrent.wire.metainfo import Metainfo
from tests.bittorrent.album import write_album

LOCAL = ("127.0.0.1", 0)


@pytest.fixture
def album(tmp_path):
    files = write_album(tmp_path / "seed", {"one.bin": 300_001, "two.bin": 70_000}, seed=5)
    meta = Metainfo.parse(create_torrent(tmp_path / "seed" / "album", piece_length=32768))
    return tmp_path / "seed", files, meta


def same(root, files) -> bool:
    return all((root / "album" / n).read_bytes() == d for n, d in files.items())


async def fetch(meta, seed_root, leech_root, *, seed_enc, leech_enc, keylog=None,
                timeout=20.0, before=None):
    seeder = TorrentClient(meta, seed_root, listen=LOCAL, trackers=False, encryption=seed_enc,
                           keylog=keylog)
    await seeder.start()
    address = ("127.0.0.1", seeder.listen_port)
    if before is not None:
        await before(address)
    leecher = TorrentClient(meta, leech_root, listen=LOCAL, trackers=False, peers=[address],
                            encryption=leech_enc, keylog=keylog)
    await leecher.start()
    try:
        await asyncio.wait_for(leecher.wait_complete(), timeout)
    finally:
        await leecher.close()
        await seeder.close()
    return leecher


@pytest.mark.parametrize("seed_enc,leech_enc,method", [
    ("require", "require", "rc4"),
    ("prefer", "prefer", "rc4"),
    ("prefer", "require", "rc4"),
    ("require", "prefer", "rc4"),
])
def test_encrypted_download_and_its_key_log(album, tmp_path, seed_enc, leech_enc, method):
    seed_root, files, meta = album
    keylog = tmp_path / "keys.log"
    leecher = asyncio.run(fetch(meta, seed_root, tmp_path / "leech", seed_enc=seed_enc,
                                leech_enc=leech_enc, keylog=keylog))
    assert leecher.session.complete and same(tmp_path / "leech", files)
    lines = keylog.read_text().splitlines()
    assert len(lines) == 2 and len(set(lines)) == 1  # both sides logged the same connection
    log = parse_keylog(keylog.read_text())
    entry, side = log.find(*lines[0].split()[1:3])
    assert side == "initiator" and entry.method == method
    assert entry.info_hash == meta.info_hash
    assert entry.responder.endswith(f":{leecher.initial_peers[0][1]}")


def test_plaintext_leecher_is_accepted_by_a_preferring_seeder(album, tmp_path):
    seed_root, files, meta = album
    keylog = tmp_path / "keys.log"
    asyncio.run(fetch(meta, seed_root, tmp_path / "leech", seed_enc="prefer",
                      leech_enc="plaintext", keylog=keylog))
    assert same(tmp_path / "leech", files) and keylog.read_text() == ""


def test_preferring_leecher_falls_back_to_plaintext(album, tmp_path):
    seed_root, files, meta = album
    leecher = asyncio.run(fetch(meta, seed_root, tmp_path / "leech", seed_enc="plaintext",
                                leech_enc="prefer"))
    assert same(tmp_path / "leech", files)
    assert leecher._plaintext_peers == {leecher.initial_peers[0]}


def test_requiring_leecher_never_talks_plaintext(album, tmp_path):
    seed_root, _, meta = album
    with pytest.raises(TimeoutError):
        asyncio.run(fetch(meta, seed_root, tmp_path / "leech", seed_enc="plaintext",
                          leech_enc="require", timeout=3.0))


# -- hostile key exchanges: each drops only its own connection --------------------------------


async def _read_until_closed(reader, limit=5.0) -> bool:
    """True once the seeder closes or resets the connection (TimeoutError if it does not)."""
    try:
        while await asyncio.wait_for(reader.read(65536), limit):
            pass
    except ConnectionResetError:
        pass
    return True


def test_hostile_key_exchanges_drop_only_their_connection(album, tmp_path):
    seed_root, files, meta = album
    closed: dict[str, bool] = {}
    stalled = []

    async def hostile(address):
        rng = random.Random(7)
        key = public_key(rng.getrandbits(160))

        async def attempt(name, data):
            reader, writer = await asyncio.open_connection(*address)
            writer.write(data)
            await writer.drain()
            closed[name] = await _read_until_closed(reader)
            writer.close()

        # padding over 512: Ya and 600 bytes with no HASH('req1', S)
        await attempt("padding", key + rng.randbytes(600))
        # garbage after the key exchange: a HASH('req1', S) nobody could compute
        await attempt("garbage", key + bytes(20) + rng.randbytes(600))
        # crypto_provide offering plaintext only to a seeder that requires RC4
        a = MseConnection.initiator(info_hash=meta.info_hash, rng=rng, now=0.0, provide=0x01)
        a.send_payload(b"\x13BitTorrent protocol")
        reader, writer = await asyncio.open_connection(*address)
        writer.write(a.data_to_send())
        a.receive_data(await asyncio.wait_for(reader.readexactly(96), 5), 0.0)
        writer.write(a.data_to_send())
        await writer.drain()
        closed["crypto_provide"] = await _read_until_closed(reader)
        writer.close()
        # a key exchange that never completes: half a key, then silence (kept open)
        reader, writer = await asyncio.open_connection(*address)
        writer.write(key[:40])
        stalled.append(writer)

    leecher = asyncio.run(fetch(meta, seed_root, tmp_path / "leech", seed_enc="require",
                                leech_enc="require", before=hostile))
    assert closed == {"padding": True, "garbage": True, "crypto_provide": True}
    assert leecher.session.complete and same(tmp_path / "leech", files)


def test_a_key_exchange_that_never_ends_is_dropped_while_others_are_served(
        album, tmp_path, monkeypatch):
    """Half a public key, then silence: the peer's handshake timeout (shortened here from 30 s)
    closes that connection; a leecher meanwhile downloads everything."""
    import p2pkit.bittorrent.peer.connection as connection

    monkeypatch.setattr(connection, "HANDSHAKE_TIMEOUT", 1.0)
    seed_root, files, meta = album
    outcome = {}

    async def stall(address):
        reader, writer = await asyncio.open_connection(*address)
        writer.write(public_key(12345)[:40])
        await writer.drain()

        async def watch():
            loop = asyncio.get_running_loop()
            start = loop.time()
            outcome["closed"] = await _read_until_closed(reader, limit=10.0)
            outcome["after"] = loop.time() - start
            writer.close()

        outcome["task"] = asyncio.ensure_future(watch())

    async def scenario():
        leecher = await fetch(meta, seed_root, tmp_path / "leech", seed_enc="prefer",
                              leech_enc="prefer", before=stall)
        # the seeder is closed by fetch(); the stalled socket was closed before that
        await outcome["task"]
        return leecher

    leecher = asyncio.run(scenario())
    assert same(tmp_path / "leech", files) and leecher.session.complete
    assert outcome["closed"] is True


def test_cli_download_with_encryption_and_key_log(album, tmp_path, capsys):
    """``p2pkit bt download --encryption require --keylog FILE`` against a requiring seeder."""
    from p2pkit.bittorrent.wire.create import create_torrent as create
    from p2pkit.cli import main

    seed_root, files, meta = album
    torrent = tmp_path / "album.torrent"
    torrent.write_bytes(create(seed_root / "album", piece_length=32768))
    keylog = tmp_path / "cli.keylog"

    async def serve() -> int:
        seeder = TorrentClient(meta, seed_root, listen=LOCAL, trackers=False,
                               encryption="require")
        await seeder.start()
        loop = asyncio.get_running_loop()
        status = await loop.run_in_executor(None, main, [
            "bt", "download", str(torrent), "-o", str(tmp_path / "cli"), "--listen",
            "127.0.0.1:0", "--peer", f"127.0.0.1:{seeder.listen_port}", "--no-trackers",
            "--timeout", "20", "-q", "--encryption", "require", "--keylog", str(keylog)])
        await seeder.close()
        return status

    assert asyncio.run(serve()) == 0
    assert same(tmp_path / "cli", files)
    assert [line.split()[5] for line in keylog.read_text().splitlines()] == ["rc4"]
    status = main(["bt", "download", str(torrent), "-o", str(tmp_path / "x"),
                   "--encryption", "sometimes"])
    err = capsys.readouterr().err
    assert status == 2 and "sometimes" in err


def test_hostile_responders_are_dropped_while_the_download_goes_on(album, tmp_path):
    """p2pkit dials two hostile MSE responders and one good seeder: one answers a
    crypto_select that was not offered (plaintext, to a leecher that requires RC4), the other
    garbage after its public key. Both connections are dropped; the download completes."""
    from p2pkit.bittorrent.mse.keys import Rc4, rc4_key, shared_secret
    from p2pkit.bittorrent.wire.mse import CryptoSelect

    seed_root, files, meta = album
    dropped: dict[str, bool] = {}
    closing = []  # set once the test starts closing the leecher
    xb = 0xB0B0B0B0B0B0B0B0B0B0B0B0B0B0B0B0B0B0B0B0

    def hostile(kind):
        async def handle(reader, writer):
            ya = await reader.readexactly(96)
            writer.write(public_key(xb))
            if kind == "select":
                s = shared_secret(ya, xb)
                select = CryptoSelect.build(dict(crypto_select=0x01, pad_d=b""))
                writer.write(Rc4(rc4_key(b"keyB", s, meta.info_hash)).update(select))
            else:
                writer.write(random.Random(9).randbytes(600))
            await _read_until_closed(reader)
            dropped[kind] = not closing  # dropped by the leecher, not by its shutdown
            writer.close()
        return handle

    async def scenario():
        servers = [await asyncio.start_server(hostile(k), "127.0.0.1", 0)
                   for k in ("select", "garbage")]
        seeder = TorrentClient(meta, seed_root, listen=LOCAL, trackers=False,
                               encryption="require")
        await seeder.start()
        peers = [("127.0.0.1", s.sockets[0].getsockname()[1]) for s in servers]
        leecher = TorrentClient(meta, tmp_path / "leech", listen=LOCAL, trackers=False,
                                peers=[*peers, ("127.0.0.1", seeder.listen_port)],
                                encryption="require")
        await leecher.start()
        try:
            await asyncio.wait_for(leecher.wait_complete(), 20)
            for _ in range(100):
                if len(dropped) == 2:
                    break
                await asyncio.sleep(0.05)
        finally:
            closing.append(True)
            await leecher.close()
            await seeder.close()
            for server in servers:
                server.close()
        return leecher

    leecher = asyncio.run(scenario())
    assert dropped == {"select": True, "garbage": True}
    assert leecher.session.complete and same(tmp_path / "leech", files)
