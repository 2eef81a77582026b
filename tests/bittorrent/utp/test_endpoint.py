"""The asyncio driver on real UDP sockets (127.0.0.1): what a protocol sees."""

from __future__ import annotations

import asyncio
import random

from p2pkit.bittorrent.utp.endpoint import UtpEndpoint


class Collect(asyncio.Protocol):
    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.done = asyncio.get_running_loop().create_future()

    def data_received(self, data: bytes) -> None:
        self.chunks.append(data)

    def eof_received(self) -> bool:
        if not self.done.done():
            self.done.set_result(None)
        return False


def test_a_read_batch_reaches_the_protocol_in_few_calls_and_in_order():
    data = random.Random(5).randbytes(1 << 20)

    async def run():
        receiver = Collect()

        def accepted(stream) -> None:
            stream.set_protocol(receiver)
            receiver.connection_made(stream)

        server = await UtpEndpoint.bind("127.0.0.1", 0, on_accept=accepted)
        client = await UtpEndpoint.bind("127.0.0.1", 0)
        try:
            stream, _ = await client.connect(server.address, asyncio.Protocol, timeout=5.0)
            conn = client.core.connections[stream.key]
            stream.write(data)
            stream.close()
            await asyncio.wait_for(receiver.done, 30.0)
            return receiver.chunks, conn.stats["sent"], conn.mtu.ceiling
        finally:
            client.close()
            server.close()

    chunks, packets, ceiling = asyncio.run(run())
    assert b"".join(chunks) == data
    assert ceiling <= 1472  # Ethernet's ceiling unless utp_mtu="interface"
    assert packets > 700, packets  # 1 MiB in datagrams of at most 1472 bytes
    assert len(chunks) * 2 < packets, (len(chunks), packets)  # a read batch: one call
