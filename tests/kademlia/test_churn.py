"""Session-length churn: the departures match the residual-life law of the Weibull model."""

from __future__ import annotations

import math

import numpy as np
import pytest

from p2pkit.kademlia.churn import ChurnProcess, SessionModel


def _expected_share(model: SessionModel, window: float) -> float:
    """P(residual < window) = (1 / E[L]) ∫_0^window P(L > x) dx for a stationary network."""
    mean = model.scale * math.gamma(1 + 1 / model.shape)
    xs = np.linspace(0, window, 20001)
    survival = np.exp(-(xs / model.scale) ** model.shape)
    return float(np.sum((survival[1:] + survival[:-1]) / 2 * np.diff(xs)) / mean)


@pytest.mark.parametrize(("shape", "median", "window"),
                         [(0.5, 3600.0, 900.0), (0.8, 1800.0, 900.0), (1.0, 600.0, 300.0)])
def test_departures_follow_the_residual_life_law(shape, median, window):
    model = SessionModel(shape=shape, median=median)
    n = 200_000
    gone = model.departures(n, np.random.default_rng(3), window=window)
    p = _expected_share(model, window)
    assert abs(gone.mean() - p) < 5 * math.sqrt(p * (1 - p) / n) + 0.004  # pool of 4n sessions


def test_exponential_sessions_are_memoryless():
    # shape 1: residual lives are exponential with the same mean: 1 - exp(-w / mean)
    model = SessionModel(shape=1.0, median=600.0)
    gone = model.departures(100_000, np.random.default_rng(1), window=600.0)
    assert abs(gone.mean() - 0.5) < 0.01  # the median: half leave within it


def test_the_median_is_the_median():
    model = SessionModel(shape=0.5, median=3600.0)
    sessions = model.scale * np.random.default_rng(2).weibull(0.5, size=200_000)
    assert abs(np.median(sessions) / 3600.0 - 1) < 0.02


def test_bad_models_are_refused():
    for shape, median in ((0, 1), (1, 0), (-1, 5)):
        with pytest.raises(ValueError):
            SessionModel(shape=shape, median=median)


def test_churn_process_bookkeeping():
    model = SessionModel(shape=0.5, median=1800.0)
    pinned = np.array([3, 14, 15])
    churn = ChurnProcess(20_000, model, np.random.default_rng(4), always_online=pinned)
    # the stationary start: half the time online (sessions and gaps alike)
    assert abs(churn.online_at_start / 20_000 - 0.5) < 0.02
    online = churn.online_at_start
    for _ in range(12):
        before = churn.alive.copy()
        step = churn.advance(600.0)
        online += step.arrivals - step.departures
        assert int(churn.alive.sum()) == online
        assert before[step.left].all() and not churn.alive[step.left].any()
        assert churn.alive[step.joined].all()
        assert churn.alive[pinned].all()
        # whoever was offline and is online now came back during the step
        assert set(np.flatnonzero(~before & churn.alive)) <= set(step.joined.tolist())
    assert churn.now == 7200.0
    # stationary renewal: N / (E[on] + E[off]) session ends per second
    rate = churn.departures / 7200.0
    expected = 20_000 / (2 * model.mean)
    assert abs(rate / expected - 1) < 0.1


def test_churn_process_is_seeded_and_time_runs_forwards():
    model = SessionModel(shape=0.7, median=600.0)
    a = ChurnProcess(500, model, np.random.default_rng(2))
    b = ChurnProcess(500, model, np.random.default_rng(2))
    assert a.advance(3600.0).left.tolist() == b.advance(3600.0).left.tolist()
    still = a.alive.copy()
    assert a.advance(0.0).departures == 0 and (a.alive == still).all()
    with pytest.raises(ValueError):
        a.advance(-1.0)
