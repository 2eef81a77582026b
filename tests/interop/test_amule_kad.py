"""Live: aMule's Kad (Debian amule-daemon) answers requests built from p2pkit's Kad2 schemas,
and every answer parses strictly and decodes in the dissector.

One ``amuled`` with Kad on and ED2K off runs on 127.0.0.21 inside ``unshare -n`` (the
``netns`` fixture: only ``lo`` up), bounded by ``timeout``; the prober that recorded
``tests/data/captures/kad2-amule.pcap`` talks to it and prints what it received.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections import Counter
from pathlib import Path

from p2pkit.capture.packets import Packet
from p2pkit.kad2.dissect import KadDecoder
from p2pkit.kad2.messages import KadPacket
from tests.interop.conftest import require_executable

ROOT = Path(__file__).resolve().parents[2]
PROBER = ROOT / "tests" / "data" / "captures" / "recording" / "kad2_prober.py"

CONFIG = """[eMule]
Nick=p2pkit-interop
Port=4670
UDPPort=4682
Address=127.0.0.21
ConnectToKad=1
ConnectToED2K=0
Autoconnect=1
UPnPEnabled=0
IPFilterAutoLoad=0
NewVersionCheck=0
TempDir={dir}/Temp
IncomingDir={dir}/Incoming
[ExternalConnect]
AcceptExternalConnections=1
ECAddress=127.0.0.21
ECPort=4712
ECPassword={password}
"""

SCRIPT = """
timeout 45 amuled -c "$1" -o > "$1/amuled.log" 2>&1 &
for i in $(seq 1 100); do ss -uln | grep -q 127.0.0.21:4682 && break; sleep 0.2; done
sleep 1
LINGER=1 timeout 40 "$2" "$3" 127.0.0.21:4682
"""


def test_amule_answers_every_request_and_everything_it_sends_decodes(netns, tmp_path):
    require_executable("amuled")
    require_executable("ss")
    for sub in ("Temp", "Incoming"):
        (tmp_path / sub).mkdir()
    (tmp_path / "amule.conf").write_text(CONFIG.format(
        dir=tmp_path, password=hashlib.md5(b"p2pkit").hexdigest()))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = netns(["bash", "-c", SCRIPT, "kad", str(tmp_path), sys.executable, str(PROBER)],
                 timeout=60, env=env)
    assert done.returncode == 0, (done.stderr, (tmp_path / "amuled.log").read_text()[-2000:])
    received = [json.loads(line) for line in done.stdout.splitlines()]
    decoder = KadDecoder()
    opcodes: Counter = Counter()
    reasons: Counter = Counter()
    for n, datagram in enumerate(received, 1):
        data = bytes.fromhex(datagram["hex"])
        src_ip, src_port = datagram["from"].rsplit(":", 1)
        dst_ip, dst_port = datagram["to"].rsplit(":", 1)
        if data[0] in (0xE4, 0xE5):
            assert KadPacket.build(KadPacket.parse(data)) == data
        [record] = decoder.datagram(Packet(frame=n, time=0.0, transport="udp", src_ip=src_ip,
                                           src_port=int(src_port), dst_ip=dst_ip,
                                           dst_port=int(dst_port), payload=data))
        opcodes[record.message] += 1
        if record.message == "undecoded":
            reasons[(record.fields["reason"], record.fields.get("encryption"))] += 1
    # the answers to every request aMule answers on loopback, and its own firewall checks
    for expected in ("bootstrap_res", "hello_res", "res", "pong", "publish_res", "search_res",
                     "firewalled_res", "firewalled_req", "firewalled2_req", "ping"):
        assert opcodes[expected] >= 1, opcodes
    # the hello_res aMule obfuscates for the peer announcing version 8: only the prober's side
    # is seen here, not its hello_req with its id, so it is labelled, not read
    assert reasons == Counter({("encrypted", "Kad obfuscation"): opcodes["undecoded"]})
    assert opcodes["undecoded"] == 1
