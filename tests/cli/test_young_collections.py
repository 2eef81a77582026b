"""``p2pkit dissect`` collects the youngest generation less often while it runs, and puts the
collector's thresholds back however the command ends."""

from __future__ import annotations

import gc

from p2pkit.cli import main, young_collections
from tests.pcap_payloads import CAPTURES

DHT = CAPTURES / "dht-03-p2pkit-libtorrent-bittorrent-dht.pcap"


def test_dissect_raises_the_young_threshold_and_restores_it(capsys, monkeypatch, tmp_path):
    before = gc.get_threshold()
    seen: list[tuple[int, int, int]] = []
    raise_threshold = young_collections.collect_young_less_often

    def recording(*args):
        restore = raise_threshold(*args)
        seen.append(gc.get_threshold())
        return restore

    monkeypatch.setattr("p2pkit.cli.dissect.collect_young_less_often", recording)
    assert main(["dissect", str(DHT)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert sum(" bt-dht " in line for line in lines) > 100
    assert seen and seen[0][0] >= young_collections.YOUNG_THRESHOLD
    assert gc.get_threshold() == before
    # a capture that is no capture (exit 2) restores them too
    damaged = tmp_path / "damaged.pcap"
    damaged.write_bytes(DHT.read_bytes()[:5000])  # cut inside a record: warning, exit 1
    assert main(["dissect", str(damaged)]) == 1
    assert len(seen) == 2
    assert gc.get_threshold() == before


def test_never_lowered():
    before = gc.get_threshold()
    restore = young_collections.collect_young_less_often(1)
    try:
        assert gc.get_threshold() == before
    finally:
        restore()
