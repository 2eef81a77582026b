"""The two-sample tests: right size under the null, power against a real difference."""

from __future__ import annotations

import random

import pytest

from p2pkit.kademlia.two_sample import _gamma_q, chi_square_2samp, ks_2samp


def _histogram(values):
    out: dict[int, int] = {}
    for v in values:
        out[v] = out.get(v, 0) + 1
    return out


@pytest.mark.parametrize(("df", "critical"), [(1, 3.841), (4, 9.488), (10, 18.307)])
def test_chi_square_critical_values(df, critical):
    # the 5 % critical values of chi-square tables
    assert _gamma_q(df / 2, critical / 2) == pytest.approx(0.05, abs=2e-4)


def test_size_and_power():
    rng = random.Random(1)

    def hops(rate):
        return [min(7, 1 + int(rng.expovariate(rate))) for _ in range(300)]

    null_ks = [ks_2samp(hops(0.7), hops(0.7)).p_value for _ in range(200)]
    null_chi = [chi_square_2samp(_histogram(hops(0.7)), _histogram(hops(0.7))).p_value
                for _ in range(200)]
    assert sum(p < 0.05 for p in null_ks) <= 0.08 * 200  # conservative on integers
    assert 0.01 * 200 <= sum(p < 0.05 for p in null_chi) <= 0.09 * 200
    shifted = [chi_square_2samp(_histogram(hops(0.7)), _histogram(hops(0.5))).p_value
               for _ in range(50)]
    assert sum(p < 0.05 for p in shifted) >= 0.8 * 50


def test_ks_statistic_is_the_largest_cdf_gap():
    assert ks_2samp([1, 2, 3], [1, 2, 3]).statistic == 0
    assert ks_2samp([1, 1, 2, 2], [2, 2, 2, 2]).statistic == pytest.approx(0.5)
    with pytest.raises(ValueError):
        ks_2samp([], [1])
