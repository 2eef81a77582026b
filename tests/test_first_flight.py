"""``p2pkit.first_flight``: the listening socket carries Linux's ``TCP_DEFER_ACCEPT``."""

from __future__ import annotations

import asyncio
import socket

import pytest

from p2pkit.first_flight import defer_accept


@pytest.mark.skipif(not hasattr(socket, "TCP_DEFER_ACCEPT"), reason="Linux's TCP_DEFER_ACCEPT")
def test_sets_the_option_on_the_listening_socket():
    async def main():
        server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        try:
            sock = server.sockets[0]
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT) == 0
            assert defer_accept(server)
            # the kernel keeps it in SYN-ACK retransmissions: at least the second asked for
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT) >= 1
        finally:
            server.close()
            await server.wait_closed()

    asyncio.run(main())
