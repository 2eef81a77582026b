#!/bin/bash
# Records tests/data/captures/kad2-amule.pcap: three amuled (aMule 2.3.3, Debian) with Kad on,
# ED2K off, on 127.0.0.21-23, probed by kad2_prober.py. Run as: unshare -rn bash kad2-amule.sh OUTDIR
# (inside a fresh network namespace: nothing leaves loopback). Config dirs come from
# make-amule-config (below); every process is bounded by timeout.
set -u
OUT=${1:-/tmp/kad2-lab}
HERE=$(cd "$(dirname "$0")" && pwd)
ip link set lo up; ip link set lo mtu 1500
tcpdump -i lo -s 0 -B 65536 -w "$OUT/kad2-amule.pcap" udp 2>"$OUT/tcpdump.log" &
TD=$!
for i in 1 2 3; do timeout 75 amuled -c "$OUT/a$i" -o > "$OUT/a$i.log" 2>&1 & done
sleep 6
timeout 60 python "$HERE/kad2_prober.py" 127.0.0.21:4682 127.0.0.22:4692 127.0.0.23:4702
sleep 1
kill "$TD"; wait "$TD"
wait
