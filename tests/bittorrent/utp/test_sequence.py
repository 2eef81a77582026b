"""16-bit sequence arithmetic and the reorder buffer (BEP 29 §seq_nr)."""

from hypothesis import given
from hypothesis import strategies as st

from p2pkit.bittorrent.utp.sequence import ReorderBuffer, seq_after, seq_distance


@given(st.integers(0, 0xFFFF), st.integers(1, 0x7FFF))
def test_after_and_distance_across_the_wrap(a, step):
    b = (a + step) & 0xFFFF
    assert seq_after(a, b) and not seq_after(b, a)
    assert seq_distance(a, b) == step


@given(start=st.integers(0, 0xFFFF), order=st.permutations(range(40)))
def test_any_arrival_order_comes_out_in_order(start, order):
    buf = ReorderBuffer(next_seq=start, limit=64)
    out = []
    for i in order:
        assert buf.add((start + i) & 0xFFFF, i)
        out += [item for _, item in buf.drain()]
    assert out == list(range(40)) and len(buf) == 0
    assert buf.next_seq == (start + 40) & 0xFFFF
    assert not buf.add(start, "again")  # delivered already: behind


def test_limit_and_duplicates():
    buf = ReorderBuffer(next_seq=0xFFF0, limit=16)
    assert buf.add(0xFFF0 + 15 & 0xFFFF, "last in window")
    assert not buf.add(0xFFF0 + 16 & 0xFFFF, "out of window")
    assert buf.add(0xFFF5, "x") and not buf.add(0xFFF5, "dup")
    assert buf.received_after(0xFFF3, 4) == [2]
    buf.skip_to_nearest()
    assert buf.next_seq == 0xFFF5
