"""Two p2pkit DHT nodes on 127.0.0.1 for multi-target runs: one correct, one mutant that
does not echo transaction ids (``krpc/transaction-id``, as in test_mutants.py, but patched
on the one node's instance so the other stays correct). Served from a thread's event loop,
so a CLI subprocess or ``asyncio.run`` in the test can reach both."""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
from collections.abc import Iterator

from p2pkit.conformance import catalog
from p2pkit.conformance.case import select
from p2pkit.dht.server import DhtServer

#: Sections run against both nodes: the mutant fails the six t-echo cases of the first.
SECTIONS = ("dht/bep5/krpc", "dht/bep5/ping")
#: The cases the mutant fails (those naming its rule).
MUTANT_FAILS = {c.id for c in catalog("dht") if "krpc/transaction-id" in c.rules}


def cases() -> list:
    return list(select(catalog("dht"), list(SECTIONS)))


@contextlib.contextmanager
def two_nodes() -> Iterator[tuple[str, str]]:
    """``(correct, mutant)`` as ``HOST:PORT``."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    servers: list[DhtServer] = []
    try:
        for seed in (7, 8):
            servers.append(asyncio.run_coroutine_threadsafe(
                DhtServer.start("127.0.0.1", 0, rng=random.Random(seed)), loop).result(10))
        node = servers[1].node
        reply = node._reply
        node._reply = lambda message, t, addr: reply(message, t + b"!", addr)
        yield tuple(f"{h}:{p}" for h, p in (s.address for s in servers))
    finally:
        for server in servers:
            loop.call_soon_threadsafe(server.close)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
