"""Reference servents on loopback (127.0.0.1 only, ephemeral ports): find and download."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib

from p2pkit.gnutella.http import respond
from p2pkit.gnutella.server import GnutellaServer, download, share_directory


def make_share(tmp_path, name, files):
    directory = tmp_path / name
    directory.mkdir()
    for file_name, data in files.items():
        (directory / file_name).write_bytes(data)
    return directory


async def network(tmp_path):
    up = GnutellaServer(ultrapeer=True, seed=1)
    a = GnutellaServer(share=make_share(tmp_path, "a", {"alpha notes.txt": b"A" * 5000}), seed=2)
    b = GnutellaServer(share=make_share(tmp_path, "b", {"bravo_charlie.ogg": bytes(range(256)) * 40}),
                       seed=3)
    c = GnutellaServer(seed=4)
    for s in (up, a, b, c):
        await s.start()
    for leaf in (a, b, c):
        await leaf.connect("127.0.0.1", up.port)
    await asyncio.wait_for(asyncio.gather(*(s.connected.wait() for s in (a, b, c))), 5)
    await asyncio.sleep(0.2)  # QRP tables reach the ultrapeer
    return up, a, b, c


def test_share_directory(tmp_path):
    share = make_share(tmp_path, "s", {"x.bin": b"xyz", "a.txt": b""})
    files = share_directory(share)
    assert [(f.index, f.name, f.size) for f in files] == [(1, "a.txt", 0), (2, "x.bin", 3)]
    assert files[1].sha1 == hashlib.sha1(b"xyz").digest()


def test_leaves_find_and_download_each_other(tmp_path):
    async def run():
        up, a, b, c = await network(tmp_path)
        try:
            hits = await c.search("bravo charlie", timeout=0.5)
            assert [(h.file_name, h.port) for h in hits] == [("bravo_charlie.ogg", b.port)]
            data = await download(hits[0])
            assert data == bytes(range(256)) * 40
            part = await download(hits[0], by_urn=False, first=10, last=19)
            assert part == bytes(range(10, 20))
            hits = await b.search("alpha", timeout=0.5)
            assert [h.file_name for h in hits] == ["alpha notes.txt"]
            assert await download(hits[0], by_urn=False) == b"A" * 5000
            by_urn = await c.search("", urn=hits[0].urn, timeout=0.5)
            assert [h.file_name for h in by_urn] == ["alpha notes.txt"]
            assert await c.search("nothing here", timeout=0.3) == []
            assert up.core.received["route_table_update"] >= 4  # QRP from every leaf
            assert a.core.received["query"] == 2  # "bravo charlie" and "nothing" never reach a
        finally:
            for s in (c, b, a, up):
                await s.close()

    asyncio.run(asyncio.wait_for(run(), 30))


def test_firewalled_leaf_serves_through_push_and_giv(tmp_path):
    """The hit carries the push flag; the Push goes through the ultrapeer, either along the
    hit's route or asked of the leaf's push proxy over HTTP; GIV comes back."""
    async def run():
        up = GnutellaServer(ultrapeer=True, seed=5)  # vendor messages on: the push proxy
        hidden = GnutellaServer(share=make_share(tmp_path, "fw", {"kilo lima.bin": b"k" * 999}),
                                seed=6, firewalled=True)
        seeker = GnutellaServer(seed=7)
        servers = (up, hidden, seeker)
        for s in servers:
            await s.start()
        for leaf in (hidden, seeker):
            await leaf.connect("127.0.0.1", up.port)
        await asyncio.wait_for(asyncio.gather(hidden.connected.wait(), seeker.connected.wait()),
                               5)
        await asyncio.sleep(0.2)
        try:
            [hit] = await seeker.search("kilo", timeout=0.5)
            assert hit.push and hit.servent_id == hidden.core.guid
            # without push proxies: the Push goes along the hit's route
            direct = dataclasses.replace(hit, proxies=())
            assert await seeker.fetch(direct, timeout=5) == b"k" * 999
            assert up.core.received["push"] == 1 and hidden.core.received["push"] == 1
            # push_proxy §4.1: the hit names the ultrapeer as the leaf's push proxy (LIME/21-22)
            assert hit.proxies == (("127.0.0.1", up.port),)
            # push_proxy §5: asked over HTTP, the proxy answers 202 and pushes (FileIndex 0)
            assert await seeker.fetch(hit, timeout=5) == b"k" * 999
            assert up.core.received["push"] == 1 and up.core.sent["push"] == 2  # one relayed
            assert hidden.core.received["push"] == 2
            # a proxy that is not ours (410) is skipped, then the Gnutella route is used
            stray = dataclasses.replace(hit, proxies=(("127.0.0.1", seeker.port), *hit.proxies))
            assert await seeker.fetch(stray, timeout=5) == b"k" * 999
            assert hidden.core.received["push"] == 3
        finally:
            for s in reversed(servers):
                await s.close()

    asyncio.run(asyncio.wait_for(run(), 30))


def test_http_answers_over_a_socket_are_the_cores(tmp_path):
    """The driver writes the head http.respond() decided, then exactly the chosen bytes."""
    async def run():
        server = GnutellaServer(share=make_share(tmp_path, "h", {"f.bin": bytes(range(100))}),
                                seed=9)
        await server.start()

        async def ask(request):
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(request)
            data = await asyncio.wait_for(reader.read(), 5)
            writer.close()
            return data

        try:
            for request, body in [
                (b"HEAD /get/1/f.bin HTTP/1.1\r\n\r\n", b""),
                (b"GET /get/1/f.bin HTTP/1.1\r\nRange: bytes=90-\r\n\r\n", bytes(range(90, 100))),
                (b"GET /get/1/f.bin HTTP/1.1\r\nRange: bytes=100-\r\n\r\n", b""),
                (b"GET /get/2/nope HTTP/1.1\r\n\r\n", b""),
            ]:
                assert await ask(request) == respond(request, server.core.shared).head + body
        finally:
            await server.close()

    asyncio.run(asyncio.wait_for(run(), 20))
