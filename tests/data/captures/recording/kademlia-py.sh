#!/bin/bash
# Records tests/data/captures/kademlia-py-rpcudp.pcap. Run inside a fresh network namespace:
#   unshare -rn bash kademlia-py.sh OUTDIR   (PY: a venv with `pip install kademlia==2.2.3`)
set -u
OUT=${1:-/tmp/kad2-rpc}
PY=${PY:-/tmp/kad2-scratch/bin/python}
HERE=$(cd "$(dirname "$0")" && pwd)
ip link set lo up; ip link set lo mtu 1500
tcpdump -i lo -s 0 -B 65536 -w "$OUT/kademlia.pcap" udp port 8468 2>"$OUT/tcpdump.log" &
TD=$!
sleep 1
timeout 30 "$PY" "$HERE/kademlia_py_nodes.py"
sleep 1
kill "$TD"; wait "$TD"
