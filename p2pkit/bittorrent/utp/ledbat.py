"""LEDBAT congestion control of one uTP connection (BEP 29 §congestion control).

"The overall goal of the uTP congestion control is to use one way buffer delay as the main
congestion measurement [...] CCONTROL_TARGET is the buffering delay that the uTP accepts on the
uplink. Currently the delay target is set to 100 ms." The delay of our packets is what the
other end reports in ``timestamp_difference_microseconds``; its minimum over the last minutes
(the *base delay*, :class:`DelayHistory`) stands for the propagation delay, and what lies above
it is queueing. Then::

    delay_factor = off_target / CCONTROL_TARGET;
    window_factor = outstanding_packet / max_window;
    scaled_gain = MAX_CWND_INCREASE_PACKETS_PER_RTT * delay_factor * window_factor;
    max_window += scaled_gain;

"When a packet is lost, the max_window is multiplied by 0.5 to mimic TCP." A timeout sets it to
the smallest packet (§timeouts). Like libutp, a connection starts in slow start (the window
grows by what each ack acknowledges) until a loss or until the queueing delay reaches half the
target; like libtorrent, a timeout starts it again, up to half the window it had.

>>> cc = Ledbat(packet_size=1000)
>>> cc.on_ack(acked=1000, delay_sample=50_000, now=0.0)   # first sample: the base delay
>>> cc.max_window > 2 * 1000
True
>>> cc.on_loss(); cc.slow_start
False
"""

from __future__ import annotations

__all__ = ["CCONTROL_TARGET", "DelayHistory", "Ledbat", "MAX_CWND_INCREASE_BYTES_PER_RTT",
           "MIN_WINDOW"]

#: BEP 29: "Currently the delay target is set to 100 ms" (microseconds here, as the header).
CCONTROL_TARGET = 100_000
#: libutp's MAX_CWND_INCREASE_BYTES_PER_RTT: the window grows at most this much per RTT.
MAX_CWND_INCREASE_BYTES_PER_RTT = 3000
#: BEP 29 §timeouts: "the smallest packet size (150 bytes)".
MIN_WINDOW = 150
#: Base delay history: one minimum per minute, over this many minutes (libutp: 13).
DELAY_BASE_HISTORY = 13
#: Largest congestion window (bytes): far above any loopback bandwidth-delay product.
MAX_WINDOW = 16 * 1024 * 1024
_WRAP = 1 << 32


class DelayHistory:
    """Minimum one-way delays per minute over :data:`DELAY_BASE_HISTORY` minutes.

    Samples are 32-bit microsecond values whose origin is arbitrary (the two clocks are not
    synchronised), compared modulo 2**32: ``a`` is smaller than ``b`` when ``b - a`` wraps to
    less than half the space.
    """

    def __init__(self) -> None:
        self.minutes: list[int] = []
        self._minute_start: float | None = None

    @staticmethod
    def _less(a: int, b: int) -> bool:
        return 0 < (b - a) % _WRAP < _WRAP // 2

    def add(self, sample: int, now: float) -> None:
        if self._minute_start is None or now - self._minute_start >= 60.0:
            self._minute_start = now
            self.minutes.append(sample)
            del self.minutes[:-DELAY_BASE_HISTORY]
        elif self._less(sample, self.minutes[-1]):
            self.minutes[-1] = sample

    @property
    def base(self) -> int | None:
        if not self.minutes:
            return None
        best = self.minutes[0]
        for value in self.minutes[1:]:
            if self._less(value, best):
                best = value
        return best

    def queueing(self, sample: int) -> int:
        """``sample`` minus the base delay (0 when it is the minimum)."""
        base = self.base
        if base is None:
            return 0
        above = (sample - base) % _WRAP
        return above if above < _WRAP // 2 else 0


class Ledbat:
    """The congestion window (``max_window``, bytes) of one connection."""

    def __init__(self, *, packet_size: int, target: int = CCONTROL_TARGET) -> None:
        self.packet_size = packet_size
        self.target = target
        self.max_window = float(2 * packet_size)
        self.slow_start = True
        #: Slow start ends at this window (set by a timeout, as TCP's ssthresh).
        self.ssthresh = float(MAX_WINDOW)
        self.history = DelayHistory()
        #: Latest queueing delay seen (microseconds).
        self.our_delay = 0

    def on_ack(self, *, acked: int, delay_sample: int | None, now: float) -> None:
        """``acked`` bytes were acknowledged by a packet whose ``timestamp_difference`` was
        ``delay_sample`` (None: the other end had no measurement yet, as in its first
        packet)."""
        if acked <= 0:
            return
        if delay_sample is not None:
            self.history.add(delay_sample, now)
            self.our_delay = self.history.queueing(delay_sample)
        off_target = self.target - self.our_delay
        if self.slow_start:
            if self.our_delay > self.target // 2 or self.max_window >= self.ssthresh:
                self.slow_start = False
            else:
                self.max_window = min(self.max_window + acked, MAX_WINDOW)
                return
        delay_factor = off_target / self.target
        window_factor = min(acked, self.max_window) / max(self.max_window, acked)
        gain = MAX_CWND_INCREASE_BYTES_PER_RTT * delay_factor * window_factor
        self.max_window = min(max(self.max_window + gain, MIN_WINDOW), MAX_WINDOW)

    def on_loss(self) -> None:
        """BEP 29 §congestion control: "the max_window is multiplied by 0.5"."""
        self.slow_start = False
        self.max_window = max(self.max_window * 0.5, MIN_WINDOW)

    def on_timeout(self) -> None:
        """BEP 29 §timeouts: the window goes down to the smallest packet (one packet may
        always be in flight, §congestion control: "An implementation MAY violate the above
        rule if the max_window is smaller than the packet size")."""
        self.ssthresh = max(self.max_window * 0.5, 2 * self.packet_size)
        self.slow_start = True  # as libtorrent: grow back quickly, up to half the old window
        self.max_window = MIN_WINDOW
