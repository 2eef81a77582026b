"""Path MTU discovery (BEP 29 §packet sizes; libtorrent's binary search): the search alone,
and two cores on a path that drops probes above its MTU."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from p2pkit.bittorrent.utp.mtu import (
    MIN_DATAGRAM,
    SEARCH_DONE,
    MtuProbe,
    PathMtu,
    datagram_ceiling,
)
from p2pkit.core import MemoryNetwork

from .conftest import A, UtpPair


def search(path: int, ceiling: int) -> PathMtu:
    """Run the search against a path that carries datagrams of at most ``path`` bytes."""
    mtu = PathMtu(ceiling=ceiling)
    for _ in range(40):
        if not mtu.searching:
            break
        size = mtu.size
        assert mtu.wants_probe(size)
        mtu.start_probe(size)
        (mtu.probe_acked if size <= path else mtu.probe_lost)(size)
    return mtu


@given(path=st.integers(MIN_DATAGRAM, 65507), ceiling=st.integers(MIN_DATAGRAM, 65507))
def test_the_binary_search_ends_within_search_done_of_the_path_mtu(path, ceiling):
    mtu = search(path, ceiling)
    assert not mtu.searching and mtu.probing is None
    assert mtu.size == mtu.floor <= min(path, ceiling)
    assert min(path, ceiling) - mtu.size < SEARCH_DONE
    assert mtu.acked + mtu.lost <= 17  # a binary search over 16 bits


def test_loopback_and_ethernet_ceilings():
    assert search(65507, datagram_ceiling(65536)).size > 65507 - SEARCH_DONE
    assert search(1472, datagram_ceiling(1500)).size > 1472 - SEARCH_DONE
    # No probe once the search is over, and none smaller than what is known to pass.
    mtu = search(1300, 1472)
    assert not mtu.wants_probe(1472) and not mtu.wants_probe(200)


def test_a_probe_lost_in_steady_state_restarts_the_search_half_way_down():
    mtu = PathMtu(ceiling=1000, floor=990)
    assert not mtu.searching
    mtu.probe_lost(900)  # a loss at or below the floor: the path may have changed
    assert mtu.ceiling == 990 and mtu.floor == (MIN_DATAGRAM + 990) // 2 and mtu.searching


class PathWithMtu(MemoryNetwork):
    """Datagrams above ``path_mtu`` bytes: a probe (don't-fragment) is dropped, as a router
    would; any other is fragmented by IP and arrives, unless ``receiver_limit`` (a receiver
    whose buffer is that small: libtorrent 2.0, transmission 3.00) drops it too."""

    def __init__(self, path_mtu: int, receiver_limit: bool = False, **kwargs) -> None:
        super().__init__(**kwargs)
        self.path_mtu = path_mtu
        self.receiver_limit = receiver_limit
        self.probes: list[tuple[int, bool]] = []

    def send_datagram(self, src, dst, data):
        if type(data) is MtuProbe:
            self.probes.append((len(data), len(data) <= self.path_mtu))
        if len(data) > self.path_mtu and (type(data) is MtuProbe or self.receiver_limit):
            self.sent += 1
            self.lost += 1
            return
        super().send_datagram(src, dst, bytes(data))


def test_two_cores_find_the_path_mtu_and_lose_no_data():
    net = PathWithMtu(1200, seed=4, latency=(0.01, 0.01))
    pair = UtpPair(net)
    pair.a.link_mtu = pair.b.link_mtu = lambda address: 9000  # a jumbo-frame interface
    key = pair.connect()
    data = random.Random(3).randbytes(8 << 20)
    pair.a.send(key, data)
    pair.end_a.pump()
    net.run(until=120.0, stop=lambda: len(pair.received["b"]) == len(data))
    assert bytes(pair.received["b"]) == data
    mtu = pair.a.connections[key].mtu
    assert 1200 - SEARCH_DONE < mtu.size <= 1200 and not mtu.searching
    assert mtu.ceiling < 9000 - 28  # lowered by lost probes
    assert any(ok for _, ok in net.probes) and any(not ok for _, ok in net.probes)
    assert len(net.probes) == mtu.acked + mtu.lost <= 17
    # lost probes were found by the tail loss probe, and did not halve the window
    conn = pair.a.connections[key]
    assert conn.stats["timeouts"] == 0 and conn.loss_seq is None


def test_the_ceiling_is_the_interface_mtu_for_each_address():
    pair = UtpPair(MemoryNetwork(seed=1))
    pair.a.link_mtu = lambda address: {"10.0.0.2": 65536}[address[0]]
    key = pair.connect()
    assert pair.a.connections[key].mtu.ceiling == 65507
    pair.a.link_mtu = None
    key = pair.a.connect(A, now=0.0)
    assert pair.a.connections[key].mtu.ceiling == 1472  # Ethernet's without a driver's answer


def test_the_endpoint_caps_the_ceiling_at_ethernet_unless_asked():
    import asyncio

    from p2pkit.bittorrent.utp.endpoint import UtpEndpoint, interface_mtu

    async def ceilings():
        found = {}
        for policy in ("ethernet", "interface"):
            endpoint = await UtpEndpoint.bind("127.0.0.1", 0, mtu=policy)
            try:
                found[policy] = endpoint.core.link_mtu(("127.0.0.1", 9))
            finally:
                endpoint.close()
        return found

    found = asyncio.run(ceilings())
    loopback = interface_mtu(("127.0.0.1", 9))
    assert found == {"ethernet": min(loopback, 1500), "interface": loopback}
