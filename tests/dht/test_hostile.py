"""The DHT server against oversized datagrams (issue 13): each is refused with its real size."""

from __future__ import annotations

import asyncio
import logging

from p2pkit import bencode
from p2pkit.dht.server import RECEIVE_SIZE, DhtServer
from tests.dht.test_server import run


def ping_of(size: int) -> bytes:
    return bencode.encode({b"t": b"aa", b"y": b"q", b"q": b"ping",
                           b"a": {b"id": b"x" * 20, b"pad": b"p" * size}})


def test_oversized_datagrams_are_reported_with_their_real_size(caplog):
    """Before: a datagram over RECEIVE_SIZE reached the node cut, reported as 8192 bytes."""
    big = ping_of(20_000)

    async def main():
        server = await DhtServer.start("127.0.0.1", 0)
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            asyncio.DatagramProtocol, local_addr=("127.0.0.9", 0))
        try:
            transport.sendto(big, server.address)
            transport.sendto(ping_of(5000), server.address)  # under RECEIVE_SIZE: the node's
            await asyncio.sleep(0.3)
            client = await DhtServer.start("127.0.0.8", 0)
            done = await client.ping(server.address, timeout=5)  # still serving
            assert done.node_id == server.node.id
            client.close()
            return server.oversized, server.node.stats.get("malformed", 0)
        finally:
            transport.close()
            server.close()

    with caplog.at_level(logging.DEBUG, logger="p2pkit.dht.server"):
        oversized, malformed = run(main())
    assert (oversized, malformed) == (1, 1)
    [record] = [r for r in caplog.records if "dropped" in r.getMessage()]
    assert f"datagram of {len(big)} bytes" in record.getMessage()
    assert str(RECEIVE_SIZE) in record.getMessage()
