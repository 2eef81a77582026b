"""UDP segmentation offload for uTP's own socket (Linux): many datagrams per system call.

uTP sends payloads of up to the path MTU (1472-byte datagrams by default, what real clients take,
:mod:`.mtu`), so a bulk transfer is one datagram per ~1.4 KB; a Python system call per datagram
on each side is what bounds its throughput. Linux moves many datagrams in one call both ways,
and the datagrams on the wire stay the same (each an ordinary uTP packet, BEP 29 §header format):

* **GSO** (``UDP_SEGMENT``, Linux 4.18, ``udp(7)``): one ``sendmsg`` carries N datagrams of equal
  size, concatenated (the last one may be shorter), with a control message giving that size; the
  kernel (or the network card) cuts them apart. :class:`SegmentingSender` groups consecutive
  datagrams to one address so.
* **GRO** (``UDP_GRO``, Linux 5.0): datagrams of one flow arriving together are handed to
  ``recvmsg`` as one buffer with a control message giving the segment size;
  :func:`split_coalesced` cuts it back into datagrams.

Both are detected at run time: a kernel (or a route, or a device) that refuses them answers
``ENOPROTOOPT``, ``EINVAL``, ``EIO`` or ``EOPNOTSUPP``, after which the sender falls back to one
``sendto`` per datagram for good, and a socket without ``UDP_GRO`` gets one datagram per
``recvmsg`` (a buffer without the control message is one datagram).
"""

from __future__ import annotations

import errno
import logging
import socket
import struct
from collections.abc import Iterable
from typing import Any

from p2pkit.bittorrent.utp.mtu import MtuProbe
from p2pkit.core import Address

__all__ = ["MAX_SEGMENTS", "UDP_GRO", "UDP_SEGMENT", "SegmentingSender", "enable_gro",
           "split_coalesced"]

log = logging.getLogger(__name__)

#: ``<linux/udp.h>``: the socket options the ``socket`` module does not name.
UDP_SEGMENT, UDP_GRO = 103, 104
#: Datagrams per ``sendmsg``, at most (the kernel's ``UDP_MAX_SEGMENTS`` is 64 or more).
MAX_SEGMENTS = 64
#: Bytes of one ``sendmsg``, at most: the UDP payload of one IPv4 packet of 64 KiB.
MAX_SEND = 65507
#: Errors that mean "no segmentation offload here" (udp(7), ``udp_send_skb``).
REFUSED = frozenset({errno.ENOPROTOOPT, errno.EINVAL, errno.EIO, errno.EOPNOTSUPP})
_SIZE = struct.Struct("=H")
_GRO_SIZE = struct.Struct("=i")
#: Room for the ``UDP_GRO`` control message in ``recvmsg``.
GRO_CONTROL_SIZE = socket.CMSG_SPACE(_GRO_SIZE.size) if hasattr(socket, "CMSG_SPACE") else 0


def enable_gro(sock: socket.socket) -> bool:
    """Ask for coalesced reads (``UDP_GRO``); False where the kernel has no such option."""
    if not hasattr(sock, "recvmsg") or not GRO_CONTROL_SIZE:
        return False
    try:
        sock.setsockopt(socket.IPPROTO_UDP, UDP_GRO, 1)
    except OSError:
        return False
    return True


def split_coalesced(data: bytes, ancdata: list[tuple[int, int, bytes]]) -> list[bytes]:
    """The datagrams of one ``recvmsg`` buffer: cut at the segment size its ``UDP_GRO``
    control message gives (the last one may be shorter), or the buffer itself without one.

    >>> split_coalesced(b"aabbc", [(socket.IPPROTO_UDP, UDP_GRO, _GRO_SIZE.pack(2))])
    [b'aa', b'bb', b'c']
    >>> split_coalesced(b"aabbc", [])
    [b'aabbc']
    """
    for level, kind, value in ancdata:
        if level == socket.IPPROTO_UDP and kind == UDP_GRO and len(value) >= _GRO_SIZE.size:
            size = _GRO_SIZE.unpack_from(value)[0]
            if 0 < size < len(data):
                view = memoryview(data)
                return [bytes(view[i:i + size]) for i in range(0, len(data), size)]
            break
    return [data]


def segment_runs(datagrams: Iterable[tuple[bytes, Address]]
                 ) -> list[tuple[list[bytes], Address]]:
    """Group consecutive datagrams to one address into runs one GSO ``sendmsg`` can carry:
    all of one size but the last (which may be shorter), at most :data:`MAX_SEGMENTS` and
    :data:`MAX_SEND` bytes. A path MTU probe (:class:`~.mtu.MtuProbe`) is a run of its own (it
    goes with the don't-fragment bit). The order of the datagrams is kept.

    >>> [(len(run), addr) for run, addr in segment_runs(
    ...     [(b"x" * 4, "a"), (b"y" * 4, "a"), (b"z", "a"), (b"w" * 4, "a"), (b"v", "b")])]
    [(3, 'a'), (1, 'a'), (1, 'b')]
    """
    runs: list[tuple[list[bytes], Address]] = []
    run: list[bytes] = []
    run_addr: Any = None
    size = total = 0
    for data, addr in datagrams:
        n = len(data)
        if (run and addr == run_addr and n <= size and len(run) < MAX_SEGMENTS
                and total + n <= MAX_SEND and type(data) is not MtuProbe
                and len(run[-1]) == size):
            run.append(data)
            total += n
            continue
        if run:
            runs.append((run, run_addr))
        run, run_addr, size, total = [data], addr, n, n
        if type(data) is MtuProbe:
            runs.append((run, run_addr))
            run, size = [], 0
    if run:
        runs.append((run, run_addr))
    return runs


class SegmentingSender:
    """Sends a batch of datagrams with as few system calls as GSO allows.

    ``send_one(data, addr)`` sends one datagram (and handles probes and errors: the endpoint's
    own ``sendto``); GSO runs of two or more datagrams go out with one ``sendmsg`` whose
    control message is ``UDP_SEGMENT`` with the run's datagram size. ``enabled`` turns False,
    for good, at the first refusal, and the run is sent one datagram at a time.
    """

    def __init__(self, sock: socket.socket, send_one: Any, *, enabled: bool = True) -> None:
        self._sock = sock
        self._send_one = send_one
        self.enabled = enabled and hasattr(sock, "sendmsg")
        #: System calls made, and datagrams sent (their ratio is the batching achieved).
        self.calls = 0
        self.datagrams = 0

    def send(self, datagrams: list[tuple[bytes, Address]]) -> None:
        if not self.enabled or len(datagrams) < 2:
            self._send_each(datagrams)
            return
        sendmsg = self._sock.sendmsg
        for run, addr in segment_runs(datagrams):
            if len(run) == 1 or not self.enabled:
                self._send_each([(data, addr) for data in run])
                continue
            try:
                sendmsg(run, [(socket.IPPROTO_UDP, UDP_SEGMENT, _SIZE.pack(len(run[0])))], 0,
                        addr)
            except (BlockingIOError, InterruptedError):
                pass  # a full socket buffer drops the run, as a full link would
            except OSError as e:
                if e.errno in REFUSED and self.enabled:
                    log.debug("uTP: no UDP segmentation offload (%s); one datagram per call", e)
                    self.enabled = False
                    self._send_each([(data, addr) for data in run])
                    continue
                log.debug("uTP: cannot send to %s: %s", addr, e)
            self.calls += 1
            self.datagrams += len(run)

    def _send_each(self, datagrams: list[tuple[bytes, Address]]) -> None:
        send_one = self._send_one
        for data, addr in datagrams:
            send_one(data, addr)
        self.calls += len(datagrams)
        self.datagrams += len(datagrams)
