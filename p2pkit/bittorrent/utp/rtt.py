"""Round-trip time and the retransmission timeout of one uTP connection (BEP 29 §timeouts).

"Every packet that is ACKed [...] should be used to update an rtt (round trip time) and
rtt_var (rtt variance) measurement. [...] The rtt and rtt_var is only updated for packets that
were sent only once." and::

    delta = rtt - packet_rtt
    rtt_var += (abs(delta) - rtt_var) / 4;
    rtt += (packet_rtt - rtt) / 8;
    timeout = max(rtt + rtt_var * 4, 500);

"The initial timeout is set to 1000 milliseconds [...] For every packet consecutive subsequent
packet that times out, the timeout is doubled." Times here are seconds.

>>> timer = RoundTripTimer()
>>> timer.timeout
1.0
>>> timer.sample(0.2); round(timer.rtt, 3), round(timer.timeout, 3)
(0.2, 0.6)
>>> timer.backoff(); round(timer.timeout, 3)
1.2
"""

from __future__ import annotations

__all__ = ["INITIAL_TIMEOUT", "MAX_TIMEOUT", "MIN_TIMEOUT", "RoundTripTimer"]

#: BEP 29 §timeouts: "The initial timeout is set to 1000 milliseconds".
INITIAL_TIMEOUT = 1.0
#: BEP 29 §timeouts: "the minimum timeout for a packet is 1/2 second".
MIN_TIMEOUT = 0.5
#: Ceiling of the doubled timeout (libutp and libtorrent cap it too).
MAX_TIMEOUT = 30.0


class RoundTripTimer:
    """``rtt``, ``rtt_var`` and the current ``timeout`` (with its doubling on timeouts)."""

    def __init__(self) -> None:
        self.rtt: float | None = None
        self.rtt_var = 0.0
        self._base_timeout = INITIAL_TIMEOUT
        self.timeout = INITIAL_TIMEOUT

    def sample(self, packet_rtt: float) -> None:
        """A packet sent once was acknowledged ``packet_rtt`` seconds after it left."""
        if self.rtt is None:  # RFC 6298 §2.2, as libutp: the first sample sets both
            self.rtt = packet_rtt
            self.rtt_var = packet_rtt / 2
        else:
            delta = self.rtt - packet_rtt
            self.rtt_var += (abs(delta) - self.rtt_var) / 4
            self.rtt += (packet_rtt - self.rtt) / 8
        self._base_timeout = max(self.rtt + self.rtt_var * 4, MIN_TIMEOUT)
        self.timeout = self._base_timeout

    def backoff(self) -> None:
        """A timeout fired: the next one is twice as far (up to :data:`MAX_TIMEOUT`)."""
        self.timeout = min(self.timeout * 2, MAX_TIMEOUT)

    def reset_backoff(self) -> None:
        """Something was acknowledged: back to the measured timeout."""
        self.timeout = self._base_timeout
