"""BEP 29 §congestion control: LEDBAT around the 100 ms target."""

from p2pkit.bittorrent.utp.ledbat import MIN_WINDOW, DelayHistory, Ledbat


def steady(cc: Ledbat, delay_us: int, rounds: int = 50) -> None:
    for i in range(rounds):
        cc.on_ack(acked=1400, delay_sample=10_000 + delay_us, now=i * 0.01)


def test_window_grows_below_target_and_shrinks_above():
    cc = Ledbat(packet_size=1400)
    steady(cc, 0)  # the base delay: 10 ms
    grown = cc.max_window
    assert grown > 2 * 1400
    steady(cc, 150_000, rounds=1)  # 150 ms of queueing: ends slow start
    assert not cc.slow_start
    before = cc.max_window
    steady(cc, 150_000)
    assert cc.max_window < before
    before = cc.max_window
    steady(cc, 20_000)
    assert cc.max_window > before


def test_loss_halves_and_timeout_drops_to_the_smallest_packet():
    cc = Ledbat(packet_size=1400)
    cc.max_window = 100_000.0
    cc.on_loss()
    assert cc.max_window == 50_000.0
    cc.on_timeout()
    assert cc.max_window == MIN_WINDOW


def test_base_delay_is_the_minimum_over_minutes_and_wraps():
    history = DelayHistory()
    history.add(0xFFFFFF00, 0.0)  # clocks are not synchronised: values wrap
    history.add(0x00000100, 1.0)
    assert history.base == 0xFFFFFF00
    assert history.queueing(0x00000100) == 0x200
    for minute in range(1, 15):
        history.add(0x10000, minute * 60.0)
    assert history.base == 0x10000  # the old minimum aged out after 13 minutes
