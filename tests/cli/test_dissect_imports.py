"""A summary run of each kind of committed capture imports only what it meets: no other
protocol's decoders, no ``--filter`` compiler, no progress bar (``rich``) when standard error
is not a terminal; a decoder's import that creeps back into start-up fails here."""

from __future__ import annotations

import subprocess
import sys

from tests.pcap_payloads import CAPTURES

NOT_FOR_ANY = ["rich", "p2pkit.capture.filters"]
KINDS = {
    "bt-06-p2pkit-leech-libtorrent.pcap": (
        ["p2pkit.bittorrent.wire.messages"],
        ["p2pkit.gnutella.descriptors", "p2pkit.gnutella.stream", "p2pkit.dht.dissect",
         "p2pkit.dht.krpc", "p2pkit.kad2.dissect", "p2pkit.ipfs.noise"]),
    "dht-02-bep44-put-get.pcap": (
        ["p2pkit.dht.dissect"],
        ["p2pkit.gnutella.stream", "p2pkit.gnutella.deferred", "p2pkit.bittorrent.wire.messages",
         "p2pkit.kad2.dissect", "p2pkit.rpcudp.dissect", "p2pkit.ipfs.multistream"]),
    "gnutella-02-p2pkit-servents.pcap": (
        ["p2pkit.gnutella.descriptor_records"],
        ["p2pkit.dht.dissect", "p2pkit.dht.krpc", "p2pkit.bittorrent.tracker.dissect",
         "p2pkit.kad2.dissect", "p2pkit.ipfs.noise"]),
    "tracker-01-opentracker-libtorrent-aria2.pcap": (
        ["p2pkit.bittorrent.tracker.dissect"],
        ["p2pkit.gnutella.stream", "p2pkit.gnutella.descriptors", "p2pkit.kad2.dissect",
         "p2pkit.ipfs.multistream"]),
}


def test_a_summary_run_imports_only_what_it_meets():
    script = ("import sys\nfrom p2pkit.cli import main\nstatus = main(['dissect', sys.argv[1]])\n"
              "sys.stdout.flush()\nprint(status, ' '.join(sorted(sys.modules)), file=sys.stderr)")
    for name, (needed, unneeded) in KINDS.items():
        done = subprocess.run([sys.executable, "-c", script, str(CAPTURES / name)],
                              capture_output=True, text=True, timeout=120, check=True)
        status, modules = done.stderr.split(" ", 1)
        modules = set(modules.split())
        assert status == "0" and done.stdout.count("\n") > 10, name
        assert set(needed) <= modules, name
        assert modules.isdisjoint(NOT_FOR_ANY + unneeded), (name, modules & set(unneeded))
