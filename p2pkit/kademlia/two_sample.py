"""Two-sample tests: do two simulation cores give the same distributions?

The node core and the array core of the DHT simulator must agree on hop counts and success
within sampling error (issue 17). Two standard tests, written out so that no statistics
package is needed:

* :func:`ks_2samp`: the two-sample Kolmogorov-Smirnov test (the largest gap between the two
  empirical distribution functions, with the asymptotic Kolmogorov distribution for the
  p-value, as in Press et al., *Numerical Recipes*, §14.3.3). On integer data such as hop
  counts it is conservative (its p-values are too large), so it is paired with
* :func:`chi_square_2samp`: Pearson's chi-square test of homogeneity on a 2 × m table of
  counts, categories with small counts pooled into their neighbour until every expected count
  is at least 5, p-value from the regularized upper incomplete gamma function.

>>> round(ks_2samp([1, 2, 3, 4] * 50, [1, 2, 3, 4] * 50).p_value, 3)
1.0
>>> ks_2samp([1] * 100, [2] * 100).p_value < 1e-6
True
>>> chi_square_2samp({2: 50, 3: 50}, {2: 50, 3: 50}).p_value
1.0
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

__all__ = ["TwoSampleResult", "chi_square_2samp", "ks_2samp"]


@dataclass(frozen=True)
class TwoSampleResult:
    """A test statistic and its p-value (small: the samples differ)."""

    statistic: float
    p_value: float


def _kolmogorov_q(x: float) -> float:
    """Q_KS(x) = 2 Σ (-1)^(j-1) exp(-2 j² x²), the Kolmogorov survival function."""
    if x < 0.2:
        return 1.0
    total = 0.0
    for j in range(1, 101):
        term = 2 * (-1) ** (j - 1) * math.exp(-2 * j * j * x * x)
        total += term
        if abs(term) < 1e-12:
            break
    return max(0.0, min(1.0, total))


def ks_2samp(a: Sequence[float], b: Sequence[float]) -> TwoSampleResult:
    """Two-sample Kolmogorov-Smirnov: ``D = sup |F_a - F_b|`` and its asymptotic p-value."""
    if not a or not b:
        raise ValueError("both samples need values")
    xs, ys = sorted(a), sorted(b)
    n, m = len(xs), len(ys)
    i = j = 0
    d = 0.0
    while i < n and j < m:
        value = min(xs[i], ys[j])
        while i < n and xs[i] == value:
            i += 1
        while j < m and ys[j] == value:
            j += 1
        d = max(d, abs(i / n - j / m))
    effective = math.sqrt(n * m / (n + m))
    return TwoSampleResult(d, _kolmogorov_q((effective + 0.12 + 0.11 / effective) * d))


def _gamma_q(s: float, x: float) -> float:
    """The regularized upper incomplete gamma Q(s, x) (Numerical Recipes §6.2)."""
    if x <= 0:
        return 1.0
    if x < s + 1:  # series for P, then Q = 1 - P
        term = total = 1.0 / s
        a = s
        for _ in range(1000):
            a += 1
            term *= x / a
            total += term
            if abs(term) < abs(total) * 1e-15:
                break
        return max(0.0, 1.0 - total * math.exp(-x + s * math.log(x) - math.lgamma(s)))
    b = x + 1 - s  # continued fraction for Q (Lentz)
    c = 1e300
    d = 1 / b
    h = d
    for i in range(1, 1000):
        an = -i * (i - s)
        b += 2
        d = an * d + b
        d = 1e-300 if abs(d) < 1e-300 else d
        c = b + an / c
        c = 1e-300 if abs(c) < 1e-300 else c
        d = 1 / d
        step = d * c
        h *= step
        if abs(step - 1) < 1e-15:
            break
    return min(1.0, math.exp(-x + s * math.log(x) - math.lgamma(s)) * h)


def chi_square_2samp(a: Mapping[int, int], b: Mapping[int, int]) -> TwoSampleResult:
    """Pearson's chi-square test that two histograms (value -> count) come from one
    distribution; neighbouring categories are pooled until every expected count is >= 5."""
    keys = sorted(set(a) | set(b))
    rows = [[a.get(k, 0), b.get(k, 0)] for k in keys]
    na, nb = sum(r[0] for r in rows), sum(r[1] for r in rows)
    if not na or not nb:
        raise ValueError("both histograms need counts")
    share = min(na, nb) / (na + nb)
    pooled: list[list[int]] = []
    for r in rows:
        if pooled and sum(pooled[-1]) * share < 5:
            pooled[-1] = [pooled[-1][0] + r[0], pooled[-1][1] + r[1]]
        else:
            pooled.append(list(r))
    while len(pooled) > 1 and sum(pooled[-1]) * share < 5:
        last = pooled.pop()
        pooled[-1] = [pooled[-1][0] + last[0], pooled[-1][1] + last[1]]
    if len(pooled) < 2:
        return TwoSampleResult(0.0, 1.0)
    total = na + nb
    chi = 0.0
    for x, y in pooled:
        column = x + y
        for observed, size in ((x, na), (y, nb)):
            expected = column * size / total
            chi += (observed - expected) ** 2 / expected
    return TwoSampleResult(chi, _gamma_q((len(pooled) - 1) / 2, chi / 2))
