"""The IPFS DHT simulation: provider records expire after 48 h (ipfs-kad-dht.md §Provide
Validity), republishing every 22 h keeps them (§Provider Record Republish Interval), churn
takes holders away."""

from __future__ import annotations

import numpy as np
import pytest

from p2pkit.ipfs.dht_simulation import REPUBLISH_INTERVAL, ProviderRecords, simulate_providers
from p2pkit.ipfs.kad_dht import PROVIDE_VALIDITY
from p2pkit.ipfs.kad_refresh import RefreshPolicy
from p2pkit.kademlia.churn import SessionModel

HOUR = 3600.0


def test_validity_boundaries():
    records = ProviderRecords(keys=2, nodes=4)
    records.store(1, np.array([1, 3]), now=100.0)
    assert not records.holders(0, now=100.0).any()  # another key
    assert records.holders(1, now=100.0).tolist() == [False, True, False, True]
    last = 100.0 + PROVIDE_VALIDITY
    assert records.holders(1, now=np.nextafter(last, 0)).tolist() == [False, True, False, True]
    assert not records.holders(1, now=last).any()  # "discard the record after expiration"
    # a republish 22 h later: valid until 22 h + 48 h
    records.store(1, np.array([3]), now=100.0 + REPUBLISH_INTERVAL)
    assert records.holders(1, now=last).tolist() == [False, False, False, True]
    assert not records.holders(1, now=last + REPUBLISH_INTERVAL).any()
    # offline holders do not answer; a restart with an empty datastore forgets
    alive = np.array([True, True, True, False])
    assert not records.holders(1, now=last, alive=alive).any()
    records.forget(np.array([3]))
    assert not records.holders(1, now=last).any()
    with pytest.raises(ValueError):
        ProviderRecords(keys=0, nodes=4)


def test_without_churn_records_live_48_hours_unless_republished():
    common = dict(nodes=300, keys=3, hours=50, seed=2, sessions=None, sample_every=2 * HOUR,
                  refresh=RefreshPolicy(interval=2 * HOUR))
    once = simulate_providers(republish=False, **common)
    kept = simulate_providers(republish=True, **common)
    assert [s.success for s in once.samples] == [1.0] * 24 + [0.0] * 2  # 0..46 h, then 48, 50
    assert [s.success for s in kept.samples] == [1.0] * 26
    assert all(s.live_holders == 20 for s in kept.samples)
    assert once.samples[-1].live_holders == 0
    # a failed lookup walks to the end: more queries than one that meets a holder
    assert once.samples[-1].queries_all > kept.samples[-1].queries_all


def test_churn_without_a_persistent_datastore_loses_holders():
    common = dict(nodes=300, keys=4, hours=20, seed=3, republish=False,
                  sessions=SessionModel(shape=0.5, median=0.5 * HOUR), sample_every=4 * HOUR,
                  refresh=RefreshPolicy(interval=HOUR))
    kept = simulate_providers(persistent=True, **common)
    lost = simulate_providers(persistent=False, **common)
    assert kept.departures == lost.departures > 300  # the same churn, seeded
    assert 100 < kept.samples[0].online < 200
    assert kept.samples[0].live_holders == lost.samples[0].live_holders == 20  # stored on 20 that answered
    assert lost.mean("live_holders", since_hours=8) < kept.mean("live_holders", since_hours=8)


def test_bad_parameters():
    with pytest.raises(ValueError):
        simulate_providers(nodes=10, keys=1, hours=1)
    with pytest.raises(ValueError):
        simulate_providers(nodes=100, keys=1, hours=0)
