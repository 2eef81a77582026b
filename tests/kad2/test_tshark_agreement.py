"""p2pkit's Kad2 decoding against tshark's eDonkey/Kademlia dissector on the aMule capture.

tshark 4.0 decodes Kad only with ``-d udp.port==P,edonkey``; where it names an opcode, p2pkit
names the same one, with the same ids, ports, Kad versions, strings and addresses. What tshark
does not decode is pinned: it shows KADEMLIA2_PING (0x60), KADEMLIA2_PONG (0x61) and
KADEMLIA_FIREWALLED2_REQ (0x53) as "Unknown" (packed or not), obfuscated packets as plain UDP
(p2pkit reads them with the receiver's id seen earlier),
and names KADEMLIA2_PUBLISH_NOTES_REQ without reading its body.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections import Counter

import pytest

from p2pkit.capture.dissect import dissect
from tests.pcap_payloads import CAPTURES

TSHARK = shutil.which("tshark")
pytestmark = pytest.mark.skipif(
    TSHARK is None and os.environ.get("CI") != "true",
    reason="tshark is not installed (apt-get install tshark); CI requires it",
)
CAPTURE = CAPTURES / "kad2-amule.pcap"
PORTS = (4682, 4692, 4702)
FIELDS = ("_ws.col.Info", "edonkey.kademlia.tcp_port", "edonkey.kademlia.version",
          "edonkey.kademlia.peer.id", "edonkey.kademlia.target.id",
          "edonkey.kademlia.tag.value.string", "edonkey.kademlia.ip",
          "edonkey.kademlia_filesize")


def tshark_frames() -> dict[int, dict[str, list[str]]]:
    assert TSHARK is not None, "tshark must be installed in CI"
    cmd = [TSHARK, "-r", str(CAPTURE), *[x for p in PORTS for x in ("-d", f"udp.port=={p},edonkey")],
           "-T", "fields", "-E", "occurrence=a", "-E", "aggregator=|", "-e", "frame.number",
           *[x for f in FIELDS for x in ("-e", f)]]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=120).stdout
    frames = {}
    for line in out.splitlines():
        number, *values = line.split("\t")
        frames[int(number)] = {f: [v for v in value.split("|") if v]
                               for f, value in zip(FIELDS, values)}
    return frames


def opcode_of(info: str) -> str | None:
    """``Kademlia UDP: KADEMLIA2_HELLO_REQ`` -> ``hello_req``; None for Unknown or no Kad."""
    if "Kademlia" not in info or info.endswith("Unknown"):
        return None
    name = info.rsplit(": ", 1)[1]
    return name.split("_", 1)[1].lower()


def _strings(value, out):
    if isinstance(value, dict):
        if value.get("type") == "string":
            out.append(value["value"])
        for v in value.values():
            _strings(v, out)
    elif isinstance(value, list):
        for v in value:
            _strings(v, out)
    return out


def test_opcodes_and_fields_agree_where_tshark_decodes():
    theirs = tshark_frames()
    ours = {r.frame: r for r in dissect(CAPTURE)}
    unknown_to_tshark = Counter()
    body_unread_by_tshark = Counter()
    compared = 0
    for frame, fields in theirs.items():
        record = ours[frame]
        opcode = opcode_of(fields["_ws.col.Info"][0]) if fields["_ws.col.Info"] else None
        if opcode is None:
            unknown_to_tshark[record.message] += 1
            continue
        compared += 1
        assert record.message == opcode, frame
        f = record.fields
        if "tcp_port" in f and fields["edonkey.kademlia.tcp_port"]:
            assert str(f["tcp_port"]) == fields["edonkey.kademlia.tcp_port"][0], frame
        if "version" in f:
            assert fields["edonkey.kademlia.version"] == [str(f["version"])], frame
        if record.message in ("bootstrap_res", "hello_req", "hello_res"):
            assert fields["edonkey.kademlia.peer.id"] == [f["client_id"].upper()], frame
        if "target" in f and record.message != "search_res":
            assert fields["edonkey.kademlia.target.id"] == [f["target"].upper()], frame
        strings = sorted(_strings(f, []))
        if strings and not fields["edonkey.kademlia.tag.value.string"]:
            body_unread_by_tshark[record.message] += 1
        else:
            assert sorted(fields["edonkey.kademlia.tag.value.string"]) == strings, frame
        if record.message == "firewalled_res":
            assert fields["edonkey.kademlia.ip"] == [f["ip"]]
        if "file_size" in f and record.message == "search_source_req":
            assert fields["edonkey.kademlia_filesize"] == [str(f["file_size"])]
    assert compared == 78
    # what tshark 4.0 leaves undecoded, and p2pkit decodes or labels
    assert unknown_to_tshark == Counter({"ping": 9, "pong": 6, "firewalled2_req": 6,
                                         "hello_res": 3})  # the 3 obfuscated, read by p2pkit
    # tshark names KADEMLIA2_PUBLISH_NOTES_REQ but does not read its body (file, source, tags)
    assert body_unread_by_tshark == Counter({"publish_notes_req": 3})
