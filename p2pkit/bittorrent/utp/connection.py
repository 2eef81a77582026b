"""One uTP connection, sans-I/O: the BEP 29 state machine, reliability and windows.

Specs: BEP 29 §connection setup (ids and the first sequence numbers), §type (ST_DATA, ST_FIN,
ST_STATE, ST_RESET, ST_SYN), §Selective ACK, §congestion control (:mod:`.ledbat`), §timeouts
(:mod:`.rtt`), §packet loss, §packet sizes. The states are the table of :mod:`.states`.

The multiplexer (:mod:`.multiplexer`) owns connections, hands each its parsed packets
(:meth:`UtpConnection.receive`) and calls :meth:`UtpConnection.flush` to collect datagrams;
events go to the list it passes in. Choices this implementation makes:

* Packet size (BEP 29 §packet sizes): data packets fill datagrams of the size the path MTU
  search of :mod:`.mtu` has reached (libtorrent's binary search between 548 bytes and what the
  local interface carries, one probe with the don't-fragment bit at a time).
* Sequence numbers: the initiator starts at a random ``seq_nr`` (BEP 29 shows 1; libutp and
  libtorrent pick random ones); the acceptor's ST_STATE reply carries the ``seq_nr`` its first
  ST_DATA will have (as libutp and libtorrent do), so the initiator sets ``ack_nr`` to one less.
* Acks: received data is acknowledged once per :meth:`flush` (the driver flushes once per read
  batch, as libutp's deferred acks), and within a batch at least every :data:`ACK_EVERY`
  packets or :data:`ACK_EVERY_BYTES` bytes; at once when a packet is missing (with a selective
  ACK of up to :data:`SACK_BITS` packets); a data packet carries the ack too.
* Loss (§packet loss): the oldest unacknowledged packet is resent after 3 duplicate acks
  (ST_STATE packets repeating ``ack_nr``: as RFC 5681 §2, a packet carrying data is no
  duplicate ack), and any packet with 3 or more selectively acknowledged packets after it, found by walking only
  the bitmask's span (at most :data:`SACK_BITS` + 1 numbers, never the whole send buffer); a
  resent packet is resent again when 3 packets sent after its resend are acknowledged (its
  resend was lost too: without this, each lost resend costs a timeout, 500 ms at least); the
  window halves at most once per window of data. A timeout resends every unacknowledged packet as the window
  allows (which is one packet, §timeouts).
* Receive side: at most :data:`REORDER_LIMIT` packets past the next expected one are held
  (others are out of window and ignored), and at most :data:`RECEIVE_WINDOW` bytes counting what
  the application has not taken yet; ``wnd_size`` advertises what is left.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

from p2pkit.bittorrent.utp.events import (
    Connected,
    ConnectionClosed,
    ConnectionKey,
    DataReceived,
    StreamEnded,
)
from p2pkit.bittorrent.utp.ledbat import Ledbat
from p2pkit.bittorrent.utp.mtu import ETHERNET_MTU, MtuProbe, PathMtu, datagram_ceiling
from p2pkit.bittorrent.utp.rtt import RoundTripTimer
from p2pkit.bittorrent.utp.sequence import SEQ_MASK, ReorderBuffer, seq_after, seq_distance
from p2pkit.bittorrent.utp.states import (
    CLOSED,
    CONNECTED,
    FIN_SENT,
    SYN_RECV,
    SYN_SENT,
    next_state,
)
from p2pkit.bittorrent.wire.utp import HEADER_SIZE, acked_sequence_numbers, build_plain_packet
from p2pkit.core import Event
from p2pkit.errors import LocalProtocolError

__all__ = ["ACK_EVERY", "ACK_EVERY_BYTES", "MAX_SEND_BUFFER", "RECEIVE_WINDOW", "REORDER_LIMIT",
           "SACK_BITS", "UtpConnection"]

#: Bytes received and not yet taken by the application, reorder buffer included.
RECEIVE_WINDOW = 1024 * 1024
#: Packets held past the next expected one (BEP 29 bounds what is in flight; further is
#: out of window).
REORDER_LIMIT = 1024
#: Packets a selective ACK reports (a 32-byte bitmask).
SACK_BITS = 256
#: Bytes the application may queue for sending before :meth:`UtpConnection.send` refuses.
MAX_SEND_BUFFER = 32 * 1024 * 1024
#: Retransmissions of our ST_SYN before the connection is given up (1 + 2 + 4 s).
MAX_SYN_RESENDS = 3
#: Consecutive timeouts of one connection before it is given up.
MAX_TIMEOUTS = 7
#: Seconds an accepted connection may wait for its first ST_DATA (half-open).
HALF_OPEN_TIMEOUT = 10.0
#: Seconds without sending anything before an ST_STATE keep-alive (libutp: 29 s).
KEEPALIVE_INTERVAL = 29.0
#: Seconds waited, once our FIN is acknowledged, for the remote's FIN.
FIN_LINGER = 5.0
#: Data packets, or bytes, received before an ack is sent at once (else once per flush).
ACK_EVERY = 16
ACK_EVERY_BYTES = RECEIVE_WINDOW // 4
#: Shortest tail loss probe timer (seconds).
TLP_MIN = 0.01
#: Packets resent because of one incoming selective ACK, at most.
MAX_FAST_RESENDS = 4

_US = 1_000_000
_U32 = 0xFFFFFFFF


def timestamp_us(now: float) -> int:
    """``now`` (seconds) as BEP 29's ``timestamp_microseconds``: 32 bits, wrapping."""
    return int(now * _US) & _U32


class DataRun:
    """Payloads received in order on one connection, queued as one event: the multiplexer
    hands it out as one :class:`~.events.DataReceived` (their concatenation), so a read of many
    packets costs one event, not one per packet."""

    __slots__ = ("chunks", "key")

    def __init__(self, key: ConnectionKey, chunks: list[bytes]) -> None:
        self.key = key
        self.chunks = chunks


@dataclass(slots=True)
class _Sent:
    """A packet sent and not yet acknowledged."""

    seq: int
    type: str
    payload: bytes
    sent_at: float
    transmissions: int = 1
    sacked: bool = False
    #: Counted out of ``cur_window`` until it is sent again (a timeout or a loss).
    need_resend: bool = False
    #: Marked lost by duplicate or selective acks: resent at once, whatever the window (it
    #: replaces a packet the network dropped).
    fast: bool = False
    #: The path MTU probe (:mod:`.mtu`).
    probe: bool = False
    #: ``seq_nr`` of the next new packet when this one was last resent: packets from there on
    #: left after the resend.
    resent_mark: int | None = None


class UtpConnection:
    """One connection: ids, sequence numbers, send and receive buffers, timers.

    Build with :meth:`initiate` (we send ST_SYN) or :meth:`accept` (a remote's ST_SYN).
    """

    def __init__(self, *, key: ConnectionKey, send_id: int, seq_nr: int, state: str, now: float,
                 events: deque[Event], outgoing: list[tuple[bytes, Any]],
                 mtu: PathMtu | None = None) -> None:
        self.key = key
        self.address = key[0]
        self.recv_id = key[1]
        self.send_id = send_id
        self.state = state
        self.events = events
        self.outgoing = outgoing
        #: BEP 29: "seq_nr" of the next packet we send; "ack_nr" the last we received in order.
        self.seq_nr = seq_nr
        self.ack_nr = 0
        self.recv: ReorderBuffer[bytes | None] = ReorderBuffer(limit=REORDER_LIMIT)
        self.reorder_bytes = 0
        #: Bytes delivered in events the application has not taken yet (the multiplexer
        #: lowers it as they are taken).
        self.unread = 0
        #: Bytes the application took but holds unread (it paused reading).
        self.held = 0
        self.fin_seq: int | None = None
        self.fin_received = False
        self.send_buffer = bytearray()
        self.close_requested = False
        self.fin_sent_seq: int | None = None
        self.sent: dict[int, _Sent] = {}
        #: Packets of ``sent`` marked for resending (flush walks ``sent`` only when some are).
        self.resends = 0
        #: Payload bytes in ``sent``, and how many of its packets were selectively acked.
        self.sent_bytes = 0
        self.sacked_count = 0
        self.cur_window = 0
        self.peer_window = RECEIVE_WINDOW
        self.reply_micro = 0
        self.last_ack: int | None = None
        self.duplicate_acks = 0
        #: No second halving of the window before this packet is acknowledged.
        self.loss_seq: int | None = None
        self.rtt = RoundTripTimer()
        self.mtu = mtu or PathMtu(ceiling=datagram_ceiling(ETHERNET_MTU))
        self.cc = Ledbat(packet_size=self.mtu.size - HEADER_SIZE)
        self.bytes_unacked = 0
        self.timeouts = 0
        self.rto_at: float | None = None
        #: When the tail loss probe fires (None: not armed, or already sent for this flight).
        self.tlp_at: float | None = None
        self.created = now
        self.last_sent = now
        self.last_received = now
        self.fin_acked_at: float | None = None
        self.ack_pending = False
        #: The receive window our last packet advertised (``wnd_size``).
        self.advertised = RECEIVE_WINDOW
        #: The payloads of consecutive in-order packets, one event until it is taken.
        self._run: DataRun | None = None
        self.packets_unacked = 0
        self.probe_at: float | None = None
        #: Counters: packets sent, resent, received; duplicates; packets ignored; timeouts
        #: (BEP 29 §timeouts) and fast resends (§packet loss).
        self.stats = {"sent": 0, "resent": 0, "received": 0, "duplicates": 0, "ignored": 0,
                      "timeouts": 0, "fast resends": 0, "tail probes": 0}

    # -- construction ------------------------------------------------------------------------

    @classmethod
    def initiate(cls, *, key: ConnectionKey, seq_nr: int, now: float, events: deque[Event],
                 outgoing: list[tuple[bytes, Any]], mtu: PathMtu | None = None) -> UtpConnection:
        """BEP 29 §connection setup: "c.conn_id_recv = rand(); c.conn_id_send =
        c.conn_id_recv + 1", then ST_SYN with "conn_id=c.rcv_conn_id" and "seq_nr=c.seq_nr++"."""
        conn = cls(key=key, send_id=(key[1] + 1) & SEQ_MASK, seq_nr=seq_nr, state=SYN_SENT,
                   now=now, events=events, outgoing=outgoing, mtu=mtu)
        conn._send_new("st_syn", b"", now)
        return conn

    @classmethod
    def accept(cls, *, address: Any, syn: Any, seq_nr: int, now: float, events: deque[Event],
               outgoing: list[tuple[bytes, Any]], mtu: PathMtu | None = None) -> UtpConnection:
        """BEP 29 §connection setup, the acceptor: "c.receive_conn_id = pkt.conn_id+1",
        send id the SYN's id, "c.seq_nr = rand()", "c.ack_nr = pkt.seq_nr", answered with
        ST_STATE."""
        key = (address, (syn.connection_id + 1) & SEQ_MASK)
        conn = cls(key=key, send_id=syn.connection_id, seq_nr=seq_nr, state=SYN_RECV, now=now,
                   events=events, outgoing=outgoing, mtu=mtu)
        conn.ack_nr = syn.seq_nr
        conn.recv.next_seq = (syn.seq_nr + 1) & SEQ_MASK
        conn.peer_window = syn.wnd_size
        conn._note_timestamp(syn, now)
        conn.ack_pending = True
        return conn

    # -- the application's side --------------------------------------------------------------

    def send(self, data: bytes) -> None:
        """Queue ``data`` for sending (BEP 29 §ST_DATA)."""
        if self.close_requested or self.state == CLOSED:
            raise LocalProtocolError("uTP connection is closing: no more data can be sent")
        if len(self.send_buffer) + len(data) > MAX_SEND_BUFFER:
            raise LocalProtocolError(f"more than {MAX_SEND_BUFFER} bytes queued on a uTP "
                                     "connection")
        self.send_buffer += data

    @property
    def buffered(self) -> int:
        """Bytes queued or in flight (not yet acknowledged)."""
        return len(self.send_buffer) + self.sent_bytes

    def close(self) -> None:
        """Send ST_FIN once the queued data is out (BEP 29 §ST_FIN)."""
        self.close_requested = True

    def abort(self, now: float, reason: str = "aborted") -> None:
        """Send ST_RESET and forget the connection (BEP 29 §ST_RESET)."""
        if self.state != CLOSED:
            self._emit("st_reset", self.seq_nr, b"", now)
            self._finish(reason)

    @property
    def half_open(self) -> bool:
        return self.state == SYN_RECV

    # -- receiving ---------------------------------------------------------------------------

    def _note_timestamp(self, pkt: Any, now: float) -> None:
        # BEP 29 §timestamp_difference_microseconds: "the difference between the local time
        # and the timestamp in the last received packet, at the time the last packet was
        # received".
        self.reply_micro = (timestamp_us(now) - pkt.timestamp_microseconds) & _U32

    def receive(self, pkt: Any, now: float) -> None:
        """A packet of this connection (its ``connection_id`` matched ``recv_id``)."""
        kind = pkt.type
        if self.state == CLOSED:
            return
        if kind == "st_reset":
            if self.fin_received and set(self.sent) <= {self.fin_sent_seq}:
                # The remote finished, took everything we sent and freed its side: the reset
                # answers our FIN (or its ack) arriving after that. A clean close.
                self._finish("closed")
                return
            self._finish("refused" if self.state == SYN_SENT else "reset")
            return
        if kind == "st_syn":
            if pkt.seq_nr == self.ack_nr and self.state == SYN_RECV:
                self.ack_pending = True  # the remote resent its SYN: our ST_STATE was lost
            return
        target = next_state(self.state, kind)
        if target is None or not self._ack_is_valid(pkt):
            self.stats["ignored"] += 1  # an ack of something never sent: hostile or stale
            return
        self.stats["received"] += 1
        self.last_received = now
        self._note_timestamp(pkt, now)
        if self.state == SYN_SENT:
            # The acceptor's ST_STATE carries the seq_nr of its first ST_DATA.
            self.ack_nr = (pkt.seq_nr - 1) & SEQ_MASK
            self.recv.next_seq = pkt.seq_nr
            self.state = target
            self.events.append(Connected(key=self.key))
        elif kind in ("st_data", "st_fin") and not self._receive_payload(pkt, kind, now):
            return
        else:
            self.state = target
        self._process_acks(pkt, now)
        self._check_finished(now)

    def receive_in_order(self, header: tuple[int, ...], data: bytes, now: float) -> bool:
        """The common case of :meth:`receive`, in fewer steps: the ST_DATA packet ``data``
        (its fixed header already unpacked, ``header``, without extensions) is the next one
        expected on a connected connection, nothing is held out of order, and neither side
        has sent its FIN. Returns False, having changed nothing, for any other packet:
        :meth:`receive` then takes it. The effect is the same as :meth:`receive`'s (a test
        holds the two equal packet by packet)."""
        seq = header[6]
        recv = self.recv
        ack_nr = header[7]
        last_sent = (self.seq_nr - 1) & SEQ_MASK
        if (seq != recv.next_seq or self.state != CONNECTED or recv.pending
                or self.fin_seq is not None or self.fin_sent_seq is not None
                or (ack_nr != last_sent and (seq_after(last_sent, ack_nr) or seq_distance(
                    ack_nr, last_sent) > len(self.sent) + REORDER_LIMIT))):
            return False  # (the ack check is _ack_is_valid's: the slow path counts it ignored)
        size = len(data) - HEADER_SIZE
        if size + self.reorder_bytes + self.unread + self.held > RECEIVE_WINDOW:
            return False
        self.stats["received"] += 1
        self.last_received = now
        self.reply_micro = (int(now * _US) - header[3]) & _U32
        recv.next_seq = (seq + 1) & SEQ_MASK
        self.ack_nr = seq
        self.unread += size
        events = self.events
        if events and events[-1] is self._run:
            self._run.chunks.append(data[HEADER_SIZE:])
        else:
            self._run = DataRun(self.key, [data[HEADER_SIZE:]])
            events.append(self._run)
        # _count_for_ack, with nothing held out of order
        self.ack_pending = True
        self.packets_unacked += 1
        self.bytes_unacked += size
        if self.packets_unacked >= ACK_EVERY or self.bytes_unacked >= ACK_EVERY_BYTES:
            self._emit("st_state", self.seq_nr, b"", now)
        if self.sent and ack_nr != self.last_ack:
            self._acks(ack_nr, header[5], header[4], [], now, True)
        else:  # what _acks does when nothing is in flight or nothing new is acknowledged
            self.peer_window = header[5]
            self.last_ack = ack_nr
            if not self.sent or (self.loss_seq is not None
                                 and not seq_after(ack_nr, self.loss_seq)):
                self.loss_seq = None
        return True

    def _ack_is_valid(self, pkt: Any) -> bool:
        """``ack_nr`` must acknowledge something sent: from the packet before the oldest one
        in flight up to the last one sent."""
        last_sent = (self.seq_nr - 1) & SEQ_MASK
        if self.state == SYN_SENT:
            return pkt.type != "st_state" or pkt.ack_nr == last_sent
        behind = seq_distance(pkt.ack_nr, last_sent)
        return behind <= len(self.sent) + REORDER_LIMIT and not seq_after(last_sent, pkt.ack_nr)

    def _receive_payload(self, pkt: Any, kind: str, now: float) -> bool:
        """Hold an ST_DATA payload or the ST_FIN mark; deliver what is in order. False when
        the packet is out of window (ignored altogether)."""
        seq = pkt.seq_nr
        recv = self.recv
        if (kind == "st_data" and seq == recv.next_seq and not recv.pending
                and self.fin_seq is None):
            # In order with nothing held (nearly every packet): delivered at once.
            payload = pkt.payload
            size = len(payload)
            if size + self.unread + self.held > RECEIVE_WINDOW:
                self.stats["ignored"] += 1
                return False
            self.state = next_state(self.state, kind) or self.state
            recv.next_seq = (seq + 1) & SEQ_MASK
            self.ack_nr = seq
            if size:
                self.unread += size
                self.events.append(DataReceived(key=self.key, data=payload))
            self._count_for_ack(size, now)
            return True
        payload = pkt.payload if kind == "st_data" else None
        if self.recv.is_behind(seq) or seq in self.recv.pending:
            self.stats["duplicates"] += 1
            self.ack_pending = True  # our ack was lost: say it again
            return True
        if self.fin_seq is not None and seq_after(self.fin_seq, seq):
            self.stats["ignored"] += 1  # BEP 29 §ST_FIN: nothing comes after the FIN
            return False
        size = len(payload or b"")
        if size + self.reorder_bytes + self.unread + self.held > RECEIVE_WINDOW or not self.recv.add(
                seq, payload):
            self.stats["ignored"] += 1
            return False
        self.state = next_state(self.state, kind) or self.state
        self.reorder_bytes += size
        if kind == "st_fin":
            self.fin_seq = seq
        for done_seq, item in self.recv.drain():
            self.ack_nr = done_seq
            if item is None:
                self.fin_received = True
                self.events.append(StreamEnded(key=self.key))
                self.recv.pending.clear()
                self.reorder_bytes = 0
                break
            self.reorder_bytes -= len(item)
            if item:
                self.unread += len(item)
                self.events.append(DataReceived(key=self.key, data=item))
        self._count_for_ack(size, now)
        return True

    def _count_for_ack(self, size: int, now: float) -> None:
        """An ack is due: with the next flush, or at once after :data:`ACK_EVERY` packets or
        :data:`ACK_EVERY_BYTES`, and at once when a packet is missing (with a selective ACK,
        as TCP does, RFC 5681 §4.2: one lost ack must not leave a sender whose window is full
        waiting for its timeout)."""
        self.ack_pending = True
        self.packets_unacked += 1
        self.bytes_unacked += size
        if (self.packets_unacked >= ACK_EVERY or self.bytes_unacked >= ACK_EVERY_BYTES
                or self.recv.pending):
            self._emit("st_state", self.seq_nr, b"", now)

    def _process_acks(self, pkt: Any, now: float) -> None:
        self._acks(pkt.ack_nr, pkt.wnd_size, pkt.timestamp_difference_microseconds,
                   acked_sequence_numbers(pkt) if pkt.extensions else [], now,
                   pkt.type in ("st_data", "st_fin"))

    def _acks(self, ack_nr: int, wnd_size: int, difference: int, sacked: list[int],
              now: float, carries_data: bool) -> None:
        """What one packet acknowledges: ``ack_nr`` and below, and ``sacked`` (BEP 29
        §Selective ACK); ``wnd_size`` and ``difference`` (the delay sample) with it;
        ``carries_data``: an ST_DATA or ST_FIN (never a duplicate ack)."""
        self.peer_window = wnd_size
        sent = self.sent
        if not sent:
            # Nothing in flight (the receiving side of a transfer): nothing to acknowledge.
            self.last_ack = ack_nr
            self.loss_seq = None
            if self.fin_sent_seq is not None and self.fin_acked_at is None:
                self.fin_acked_at = now
            return
        acked_bytes = 0
        progressed = False
        # Cumulative: everything up to ack_nr (BEP 29 §timeouts: "the range (last_ack_nr,
        # ack_nr]").
        while sent:
            seq = next(iter(sent))
            if seq_after(ack_nr, seq):
                break
            packet = sent.pop(seq)
            self.sent_bytes -= len(packet.payload)
            if packet.sacked:
                self.sacked_count -= 1
            acked_bytes += self._acked(packet, now)
            progressed = True
        # Selective (BEP 29 §Selective ACK).
        for seq in sacked:
            packet = sent.get(seq)
            if packet is not None and not packet.sacked:
                acked_bytes += self._acked(packet, now)
                packet.sacked = True
                self.sacked_count += 1
                progressed = True
        if progressed:
            self.timeouts = 0
            self.rtt.reset_backoff()
            self.duplicate_acks = 0
            self.rto_at = now + self.rtt.timeout if self._in_flight() else None
            self._arm_tail_probe(now)
        elif sent and ack_nr == self.last_ack and not carries_data:
            # RFC 5681 §2: a duplicate ack "carries no data". The other side's data packets
            # repeat its ack_nr as long as nothing new arrived (dozens per read on a bulk
            # transfer): counted, they marked the thin direction's packets (a peer's requests)
            # lost in flight and halved its window down to one packet. A loss there is seen
            # by the selective ACK the other side sends at once on a gap, or the tail probe.
            self.duplicate_acks += 1
        self.last_ack = ack_nr
        if self.loss_seq is not None and not seq_after(ack_nr, self.loss_seq):
            self.loss_seq = None
        self.cc.on_ack(acked=acked_bytes, delay_sample=difference or None, now=now)
        self._detect_loss(ack_nr, sacked, now)
        if (self.fin_sent_seq is not None and self.fin_sent_seq not in sent
                and self.fin_acked_at is None):
            self.fin_acked_at = now

    def _acked(self, packet: _Sent, now: float) -> int:
        """A packet acknowledged (cumulatively or selectively): leave the window, and give an
        RTT sample when it was sent once (BEP 29 §timeouts)."""
        if packet.sacked:
            return 0
        if packet.probe:
            packet.probe = False
            self.mtu.probe_acked(len(packet.payload) + HEADER_SIZE)
        if packet.need_resend:
            packet.need_resend = False  # acknowledged before its resend left
            self.resends -= 1
        else:
            self.cur_window -= len(packet.payload)
        if packet.transmissions == 1:
            self.rtt.sample(now - packet.sent_at)
        return len(packet.payload)

    def _in_flight(self) -> bool:
        return len(self.sent) > self.sacked_count

    def _detect_loss(self, ack_nr: int, sacked: list[int], now: float) -> None:
        """BEP 29 §packet loss: 3 duplicate acks, or 3 packets acknowledged past one.

        Only the span the selective ACK covers is walked (``ack_nr + 1`` up to its highest
        bit, at most :data:`SACK_BITS` + 1 numbers), from the top down, counting the packets
        acknowledged past each number: a packet sent once is lost when 3 are; a resent one when
        3 sent after its resend are."""
        sent = self.sent
        if not sent:
            return
        lost: list[_Sent] = []
        if self.duplicate_acks >= 3:
            oldest = sent[next(iter(sent))]
            if not oldest.sacked and oldest.transmissions < 2 + self.timeouts:
                lost.append(oldest)
            self.duplicate_acks = 0
        if sacked:
            # Early retransmit (RFC 5827): with 3 packets or fewer in flight, 3 can never be
            # acknowledged past a hole; 2 then suffice (1 would resend on mere reordering; a
            # lone packet after a hole is the tail loss probe's case).
            threshold = 2 if len(sent) <= 3 else 3
            span = seq_distance(ack_nr, sacked[-1])
            after = 0
            #: Packets acknowledged at distance >= d, for the distances walked so far.
            acked_from: dict[int, int] = {}
            holes = []
            for distance in range(span, 0, -1):
                packet = sent.get((ack_nr + distance) & SEQ_MASK)
                if packet is not None:
                    if packet.sacked:
                        after += 1
                    elif not packet.need_resend and packet not in lost:
                        if packet.transmissions == 1:
                            if after >= threshold:
                                holes.append(packet)
                        elif packet.resent_mark is not None:
                            mark = seq_distance(ack_nr, packet.resent_mark)
                            if acked_from.get(mark, 0) >= threshold:
                                holes.append(packet)
                acked_from[distance] = after
            lost += holes[::-1][:MAX_FAST_RESENDS]  # the oldest first: they hold up ack_nr
        congestion = False
        for packet in lost:
            if not packet.need_resend:
                packet.need_resend = True
                self.resends += 1
                packet.fast = True
                self.cur_window -= len(packet.payload)
                congestion = congestion or not packet.probe  # a lost probe is no congestion
                self._probe_lost(packet)
        self.stats["fast resends"] += len(lost)
        if congestion and self.loss_seq is None:
            self.cc.on_loss()
            self.loss_seq = (self.seq_nr - 1) & SEQ_MASK

    def _probe_lost(self, packet: _Sent) -> None:
        """The path MTU probe was lost: lower the ceiling (:mod:`.mtu`); it is resent as an
        ordinary datagram (without the don't-fragment bit: IP fragments it if it must). A lost
        probe does not halve the window (the loss says nothing of congestion)."""
        if packet.probe:
            packet.probe = False
            self.mtu.probe_lost(len(packet.payload) + HEADER_SIZE)

    def _check_finished(self, now: float) -> None:
        if self.state == FIN_SENT and self.fin_acked_at is not None and self.fin_received:
            self._finish("closed")

    def _finish(self, reason: str) -> None:
        if self.state == CLOSED:
            return
        self.state = CLOSED
        self.sent.clear()
        self.sent_bytes = self.sacked_count = self.resends = 0
        self.recv.pending.clear()
        self.send_buffer.clear()
        self.events.append(ConnectionClosed(key=self.key, reason=reason))

    # -- sending -----------------------------------------------------------------------------

    def _emit(self, kind: str, seq: int, payload: bytes, now: float, probe: bool = False) -> None:
        """Build one packet and queue it for the socket (an :class:`~.mtu.MtuProbe` when it
        is the path MTU probe)."""
        window = max(RECEIVE_WINDOW - self.reorder_bytes - self.unread - self.held, 0)
        self.advertised = window
        connection_id = self.recv_id if kind == "st_syn" else self.send_id
        pending = self.recv.pending
        offsets = None
        if kind == "st_state" and pending:
            ack_nr = self.ack_nr
            if len(pending) < SACK_BITS:
                offsets = sorted(d for s in pending
                                 if 2 <= (d := seq_distance(ack_nr, s)) < 2 + SACK_BITS)
            else:
                offsets = [d for d in range(2, 2 + SACK_BITS) if (ack_nr + d) & SEQ_MASK in pending]
        # The header packed by the struct derived from the schema (equal to its build).
        datagram = build_plain_packet(kind, connection_id, timestamp_us(now), self.reply_micro,
                                      window, seq, self.ack_nr, payload, offsets)
        self.outgoing.append((MtuProbe(datagram) if probe else datagram, self.address))
        self.stats["sent"] += 1
        self.last_sent = now
        if kind != "st_syn":
            self.ack_pending = False
            self.packets_unacked = 0
            self.bytes_unacked = 0

    def _send_new(self, kind: str, payload: bytes, now: float) -> None:
        seq = self.seq_nr
        self.seq_nr = (seq + 1) & SEQ_MASK
        if not self._in_flight():
            self.rto_at = now + self.rtt.timeout
            self.tlp_at = None
        size = len(payload)
        probe = kind == "st_data" and self.mtu.wants_probe(size + HEADER_SIZE)
        if probe:
            self.mtu.start_probe(size + HEADER_SIZE)
        self.sent[seq] = _Sent(seq=seq, type=kind, payload=payload, sent_at=now, probe=probe)
        self.sent_bytes += size
        self.cur_window += size
        if self.tlp_at is None:
            self._arm_tail_probe(now)
        self._emit(kind, seq, payload, now, probe)

    def _window(self) -> float:
        return min(self.cc.max_window, self.peer_window)

    def _may_send(self, size: int, now: float) -> bool:
        """BEP 29 §congestion control: "A socket may only send a packet if cur_window +
        packet_size is less than or equal to min(max_window, wnd_size)" (one packet may go
        when nothing is in flight: a zero window is probed once per timeout)."""
        if self.cur_window + size <= self._window():
            return True
        if self.cur_window == 0:
            if self.peer_window >= size or self.peer_window >= self.cc.max_window:
                return True  # the congestion window is below one packet (§timeouts)
            if self.probe_at is None:
                self.probe_at = now + self.rtt.timeout
            elif now >= self.probe_at:
                self.probe_at = None
                return True
        return False

    def flush(self, now: float) -> None:
        """Queue what may be sent now: resends, new data, the FIN, or a lone ack."""
        if self.state in (CLOSED, SYN_SENT):
            return
        for packet in self.sent.values() if self.resends else ():
            if packet.need_resend and not packet.sacked:
                if not packet.fast and not self._may_send(len(packet.payload), now):
                    break
                packet.need_resend = packet.fast = False
                self.resends -= 1
                packet.transmissions += 1
                packet.resent_mark = self.seq_nr
                packet.sent_at = now
                self.cur_window += len(packet.payload)
                self.stats["resent"] += 1
                if self.rto_at is None:
                    self.rto_at = now + self.rtt.timeout
                self._emit(packet.type, packet.seq, packet.payload, now, packet.probe)
        buffer = self.send_buffer
        while buffer:
            size = min(len(buffer), self.mtu.size - HEADER_SIZE)
            if not self._may_send(size, now):
                break
            payload = bytes(buffer[:size])
            del buffer[:size]
            self._send_new("st_data", payload, now)
        if self.close_requested and not buffer and self.fin_sent_seq is None:
            self.fin_sent_seq = self.seq_nr
            self.state = next_state(self.state, "close") or self.state
            self._send_new("st_fin", b"", now)
        if self.ack_pending:
            self._emit("st_state", self.seq_nr, b"", now)

    # -- time --------------------------------------------------------------------------------

    def get_timer(self) -> float | None:
        if self.state == CLOSED:
            return None
        times = [self.last_sent + KEEPALIVE_INTERVAL]
        if self.rto_at is not None:
            times.append(self.rto_at)
        if self.tlp_at is not None:
            times.append(self.tlp_at)
        if self.probe_at is not None:
            times.append(self.probe_at)
        if self.state == SYN_RECV:
            times.append(self.created + HALF_OPEN_TIMEOUT)
        if self.fin_acked_at is not None:
            times.append(self.fin_acked_at + FIN_LINGER)
        return min(times)

    def handle_timer(self, now: float) -> None:
        if self.state == CLOSED:
            return
        if self.state == SYN_RECV and now >= self.created + HALF_OPEN_TIMEOUT:
            self._finish("timed out")
            return
        if self.fin_acked_at is not None and now >= self.fin_acked_at + FIN_LINGER:
            self._finish("closed")
            return
        if self.rto_at is not None and now >= self.rto_at:
            self._timeout(now)
        elif self.tlp_at is not None and now >= self.tlp_at:
            self._tail_probe(now)
        if self.state != CLOSED and now >= self.last_sent + KEEPALIVE_INTERVAL:
            self.ack_pending = True

    def _arm_tail_probe(self, now: float) -> None:
        """Tail loss probe (RFC 8985 §7, as TCP does it): no ack for ``2 × rtt`` (at least
        :data:`TLP_MIN` s) while data is in flight, and the newest unacknowledged packet is
        sent again, once, so that the acks it draws reveal losses at the tail of a flight (which
        no later packet can report) long before BEP 29's timeout (500 ms at least)."""
        rtt = self.rtt.rtt
        if rtt is None or not self._in_flight() or self.state == SYN_SENT:
            self.tlp_at = None
            return
        self.tlp_at = now + max(2 * rtt, TLP_MIN)

    def _tail_probe(self, now: float) -> None:
        self.tlp_at = None
        for packet in reversed(self.sent.values()):
            if not packet.sacked:
                if not packet.need_resend:
                    packet.need_resend = packet.fast = True
                    self.resends += 1
                    self.cur_window -= len(packet.payload)
                    self._probe_lost(packet)
                    self.stats["tail probes"] += 1
                return

    def _timeout(self, now: float) -> None:
        """BEP 29 §timeouts: no ack within ``timeout``: the window goes down to one packet,
        everything in flight is sent again, and the timeout doubles."""
        if not self._in_flight():
            self.rto_at = None
            return
        self.timeouts += 1
        self.stats["timeouts"] += 1
        if self.state == SYN_SENT:
            syn = self.sent[next(iter(self.sent))]
            if syn.transmissions > MAX_SYN_RESENDS:
                self._finish("timed out")
                return
            self.rtt.backoff()
            syn.transmissions += 1
            syn.sent_at = now
            self.stats["resent"] += 1
            self._emit("st_syn", syn.seq, b"", now)
            self.rto_at = now + self.rtt.timeout
            return
        if self.fin_received and list(self.sent) == [self.fin_sent_seq] and self.timeouts > 2:
            # Everything but our FIN is acknowledged and the remote finished too: it closed
            # and freed its side, so nobody is left to acknowledge the FIN.
            self._finish("closed")
            return
        if self.timeouts > MAX_TIMEOUTS:
            self.abort(now, "timed out")
            return
        self.cc.on_timeout()
        self.rtt.backoff()
        for packet in self.sent.values():
            if not packet.sacked and not packet.need_resend:
                packet.need_resend = True
                self.resends += 1
                self.cur_window -= len(packet.payload)
                self._probe_lost(packet)
        self.rto_at = now + self.rtt.timeout
