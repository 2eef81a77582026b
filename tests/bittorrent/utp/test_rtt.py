"""BEP 29 §timeouts: rtt, rtt_var, timeout."""

from p2pkit.bittorrent.utp.rtt import MAX_TIMEOUT, MIN_TIMEOUT, RoundTripTimer


def test_formula_of_bep_29():
    timer = RoundTripTimer()
    timer.sample(0.100)
    timer.sample(0.180)
    # delta = rtt - packet_rtt; rtt_var += (|delta| - rtt_var)/4; rtt += (packet_rtt - rtt)/8
    rtt_var = 0.05 + (0.08 - 0.05) / 4
    rtt = 0.1 + 0.08 / 8
    assert abs(timer.rtt - rtt) < 1e-12 and abs(timer.rtt_var - rtt_var) < 1e-12
    assert timer.timeout == MIN_TIMEOUT  # max(rtt + 4 rtt_var, 500 ms)
    timer.sample(0.5)
    assert timer.timeout > MIN_TIMEOUT


def test_timeouts_double_up_to_the_cap_and_reset():
    timer = RoundTripTimer()
    for _ in range(10):
        timer.backoff()
    assert timer.timeout == MAX_TIMEOUT
    timer.reset_backoff()
    assert timer.timeout == 1.0
