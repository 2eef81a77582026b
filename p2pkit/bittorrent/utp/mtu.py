"""Path MTU discovery of one uTP connection: the largest datagram that gets through.

BEP 29 §packet sizes: "In order to have as little impact as possible on slow congested links,
uTP adjusts its packet size down to as small as 150 bytes per packet. [...] For links with
higher bandwidth, larger packets are used" and libutp and libtorrent both search the path MTU.
This is libtorrent's search (``utp_stream.cpp``: ``init_mtu``, ``update_mtu_limits``), on
datagram sizes (UDP payload bytes, the uTP header included):

* ``floor`` starts at what every IPv4 path carries (576-byte IP packets less the IP and UDP
  headers, :data:`MIN_DATAGRAM`), ``ceiling`` at what the link carries: libtorrent 2.0 always
  takes Ethernet's 1500 (``utp_socket_manager::mtu_for_dest``), and p2pkit does the same by
  default (:data:`ETHERNET_MTU`). Only when the application opts in (the peer's
  ``utp_mtu="interface"``, for p2pkit peers among themselves) is it the local interface's MTU
  (the driver asks the kernel: ``IP_MTU`` of a UDP socket connected to the peer). Neither
  libtorrent 2.0.8 nor transmission 3.00 takes datagrams of tens of KB (measured: both stall
  downloading from p2pkit on a loopback of MTU 65536 when it sends them), and a lost probe,
  resent whole, would never reach them. The packet size is the midpoint of the two.
* The probe (below) is sent with the don't-fragment bit set and no kernel path-MTU cache
  consulted (``IP_MTU_DISCOVER`` = ``IP_PMTUDISC_PROBE`` around that one send, as libtorrent
  sets it), so a probe too large for some hop is dropped rather than fragmented.
* One data packet at a time larger than ``floor`` is the *probe*. Acknowledged: ``floor``
  rises to its size. Lost (resent after duplicate or selective acks, a tail loss probe, or
  timed out): ``ceiling`` falls to its size less one. Either way the size becomes the new
  midpoint, a binary search. A lost probe does not halve the congestion window.
* A lost probe is resent as an ordinary datagram (a :class:`bytes`, not an :class:`MtuProbe`),
  which the driver sends without the don't-fragment bit: IP fragments it if it must (as
  libtorrent resends it).
* The search ends when ``ceiling - floor`` is under :data:`SEARCH_DONE` bytes; the size is then
  ``floor``. A probe lost when the search had ended (``floor > ceiling`` after the update) is
  taken as chance loss, as libtorrent does: ``ceiling`` goes back to ``floor`` and the search
  restarts from half way between the minimum and it.

>>> mtu = PathMtu(ceiling=1472)
>>> mtu.size, mtu.floor
(1010, 548)
>>> mtu.probe_acked(1010); mtu.size
1241
>>> mtu.probe_lost(1241); mtu.ceiling, mtu.size
(1240, 1125)
"""

from __future__ import annotations

__all__ = ["ETHERNET_MTU", "HEADERS", "MAX_DATAGRAM", "MIN_DATAGRAM", "SEARCH_DONE", "MtuProbe",
           "PathMtu", "datagram_ceiling"]

#: IPv4 (20) and UDP (8) header bytes; IPv6 is 40 + 8.
HEADERS = {4: 28, 6: 48}
#: RFC 791: every IPv4 host accepts 576-byte packets; less the IPv4 and UDP headers.
MIN_DATAGRAM = 576 - HEADERS[4]
#: Largest UDP payload in one IPv4 packet (65535 - 20 - 8).
MAX_DATAGRAM = 65507
#: Link MTU assumed when the driver cannot ask the kernel (Ethernet's).
ETHERNET_MTU = 1500
#: The search stops when floor and ceiling are this close (bytes).
SEARCH_DONE = 16


def datagram_ceiling(link_mtu: int, ip_version: int = 4) -> int:
    """Largest uTP datagram an interface of MTU ``link_mtu`` carries in one IP packet.

    >>> datagram_ceiling(1500), datagram_ceiling(65536), datagram_ceiling(1500, 6)
    (1472, 65507, 1452)
    """
    return max(MIN_DATAGRAM, min(link_mtu - HEADERS[ip_version], MAX_DATAGRAM))


class MtuProbe(bytes):
    """A datagram that is an MTU probe: the driver sends it with the don't-fragment bit set
    (``IP_PMTUDISC_PROBE``); every other datagram goes without it."""

    __slots__ = ()


class PathMtu:
    """The binary search of the datagram size (see the module docstring)."""

    def __init__(self, *, ceiling: int, floor: int = MIN_DATAGRAM) -> None:
        self.floor = min(floor, ceiling)
        self.ceiling = ceiling
        #: Size of the datagrams sent now (bytes of UDP payload).
        self.size = (self.floor + self.ceiling) // 2 if self.searching else self.floor
        #: Size of the probe in flight (None: no probe in flight).
        self.probing: int | None = None
        #: Probes acknowledged and lost (counters).
        self.acked = 0
        self.lost = 0

    @property
    def searching(self) -> bool:
        return self.ceiling - self.floor >= SEARCH_DONE

    def wants_probe(self, size: int) -> bool:
        """Whether a datagram of ``size`` bytes, about to be sent, is to be the probe."""
        return self.probing is None and size > self.floor and self.searching

    def start_probe(self, size: int) -> None:
        self.probing = size

    def probe_acked(self, size: int) -> None:
        """The probe of ``size`` bytes got through: the path carries at least that."""
        self.acked += 1
        self.floor = max(self.floor, size)
        self._update()

    def probe_lost(self, size: int) -> None:
        """The probe of ``size`` bytes was lost (or refused by the kernel)."""
        self.lost += 1
        self.ceiling = min(self.ceiling, size - 1)
        self._update()

    def _update(self) -> None:
        if self.floor > self.ceiling:
            # libtorrent: a probe dropped in steady state is assumed lost by chance; the
            # search restarts half way down, in case the path did change.
            self.ceiling = self.floor
            self.floor = (MIN_DATAGRAM + self.ceiling) // 2
        self.size = self.floor if not self.searching else (self.floor + self.ceiling) // 2
        self.probing = None
