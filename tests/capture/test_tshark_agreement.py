"""p2pkit's dissector against Wireshark's tshark on every committed real BitTorrent capture.

Per frame, the peer-wire messages tshark decodes must be decoded by p2pkit too, with the same
key fields (piece index and begin, request length, DHT port). Where p2pkit decodes more, the
test says why: tshark 4.0 does not know BEP 52 ids 21-23 and loses framing after them, does not
resynchronise a stream that starts mid-message, and drops messages that follow a PDU
reassembled across segments in the same segment (see ../shared/INTEROP.md). Those extras are
pinned per capture so a change in either tool shows up.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections import Counter, defaultdict

import pytest

from p2pkit.bittorrent.wire.messages import MESSAGE_IDS
from p2pkit.capture.dissect import dissect
from tests.pcap_payloads import CAPTURES

TSHARK = shutil.which("tshark")
pytestmark = pytest.mark.skipif(
    TSHARK is None and os.environ.get("CI") != "true",
    reason="tshark is not installed (apt-get install tshark); CI requires it",
)

FIELDS = ("bittorrent.msg.type", "bittorrent.piece.index", "bittorrent.piece.begin",
          "bittorrent.piece.length", "bittorrent.port")


def tshark_frames(name: str) -> dict[int, dict[str, Counter]]:
    """frame -> field -> multiset of values, from ``tshark -T fields``."""
    assert TSHARK is not None, "tshark must be installed in CI"
    cmd = [TSHARK, "-r", str(CAPTURES / name), "-Y", "bittorrent", "-T", "fields",
           "-E", "occurrence=a", "-E", "aggregator=,", "-e", "frame.number",
           *[x for f in FIELDS for x in ("-e", f)]]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=120).stdout
    frames: dict[int, dict[str, Counter]] = {}
    for line in out.splitlines():
        number, *values = line.split("\t")
        frames[int(number)] = {
            field: Counter(int(v, 0) for v in value.split(",") if v)
            for field, value in zip(FIELDS, values)
        }
    return frames


def our_frames(name: str) -> dict[int, dict[str, Counter]]:
    frames: dict[int, dict[str, Counter]] = defaultdict(lambda: defaultdict(Counter))
    for r in dissect(CAPTURES / name):
        if r.protocol != "bittorrent" or r.message not in MESSAGE_IDS:
            continue
        f = frames[r.frame]
        f["bittorrent.msg.type"][MESSAGE_IDS[r.message]] += 1
        if "index" in r.fields and r.message not in ("hash_request", "hashes", "hash_reject"):
            f["bittorrent.piece.index"][r.fields["index"]] += 1
        if "begin" in r.fields:
            f["bittorrent.piece.begin"][r.fields["begin"]] += 1
        if "length" in r.fields and r.message in ("request", "cancel", "reject_request"):
            f["bittorrent.piece.length"][r.fields["length"]] += 1
        if r.message == "port":
            f["bittorrent.port"][r.fields["port"]] += 1
    return frames


def compare(name: str) -> tuple[Counter, Counter]:
    """(what tshark decodes that we miss, what we decode that tshark misses), by msg type."""
    theirs, ours = tshark_frames(name), our_frames(name)
    missing: Counter = Counter()
    extra: Counter = Counter()
    for frame in set(theirs) | set(ours):
        t = theirs.get(frame, {})
        o = ours.get(frame, {})
        for field in FIELDS:
            tc, oc = t.get(field, Counter()), o.get(field, Counter())
            if field == "bittorrent.msg.type":
                missing += tc - oc
                extra += oc - tc
            elif tc - oc:
                missing[(frame, field)] += 1
    return missing, extra


def test_libtorrent_magnet_pex_agrees_exactly():
    missing, extra = compare("bt-02-libtorrent-magnet-ut_metadata-pex.pcap")
    assert missing == Counter()
    assert extra == Counter()


def test_v2_capture_agrees_and_decodes_bep52_beyond_tshark():
    missing, extra = compare("bt-05-libtorrent-v2-magnet.pcap")
    assert missing == Counter()
    # tshark stops after hash_request (21): these are what p2pkit decodes past that point.
    assert extra[MESSAGE_IDS["hash_request"]] == 1
    assert extra[MESSAGE_IDS["hashes"]] == 1
    assert set(extra) <= {MESSAGE_IDS[m] for m in ("hash_request", "hashes", "interested",
                                                   "unchoke", "allowed_fast", "have_none")}


@pytest.mark.parametrize("name", ["bt-06-p2pkit-leech-libtorrent.pcap",
                                  "bt-07-p2pkit-seed-aria2.pcap"])
def test_p2pkit_peer_sessions_agree_exactly(name):
    missing, extra = compare(name)
    assert missing == Counter()
    assert extra == Counter()


def test_mse_capture_agrees():
    missing, extra = compare("ndpi-bittorrent_tcp_miss.pcapng")
    assert missing == Counter()
    assert extra == Counter()


def test_rc4_mse_capture_agrees_that_nothing_decodes():
    """bt-08 (RC4 from the first byte): tshark shows continuation data, p2pkit an
    ``undecoded``/``encrypted`` record per direction (tests/capture/test_undecoded.py)."""
    missing, extra = compare("bt-08-libtorrent-mse-rc4.pcap")
    assert missing == Counter()
    assert extra == Counter()


def test_ndpi_capture_decodes_everything_tshark_does_and_more():
    missing, extra = compare("ndpi-bittorrent.pcap")
    assert missing == Counter()
    # have_none after a reassembled extension handshake in the same segment (tshark drops
    # the tail), and a direction that starts mid-stream (tshark cannot resynchronise). In
    # 198.100.146.9:60163, a length prefix above the peer framer's MAX_MESSAGE_LENGTH is
    # taken for garbage (the dissector frames with the framer's limit), so it resynchronises
    # onto six 16 KiB pieces tshark never reaches.
    assert set(extra) <= {MESSAGE_IDS[m] for m in ("have_none", "bitfield", "have", "piece")}
    assert extra[MESSAGE_IDS["have_none"]] >= 10
    assert extra[MESSAGE_IDS["piece"]] == 6


UTP_FIELDS = ("bt-utp.type", "bt-utp.connection_id", "bt-utp.seq_nr", "bt-utp.ack_nr")
UTP_TYPES = {"st_data": 0, "st_fin": 1, "st_state": 2, "st_reset": 3, "st_syn": 4}


def tshark_utp(name: str, port: int) -> dict[int, tuple[int, ...]]:
    assert TSHARK is not None, "tshark must be installed in CI"
    cmd = [TSHARK, "-r", str(CAPTURES / name), "-d", f"udp.port=={port},bt-utp",
           "--enable-heuristic", "bt_utp_udp", "-Y", "bt-utp", "-T", "fields",
           "-e", "frame.number", *[x for f in UTP_FIELDS for x in ("-e", f)]]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=120).stdout
    return {int(n): tuple(int(v, 0) for v in rest)
            for n, *rest in (line.split("\t") for line in out.splitlines())}


@pytest.mark.parametrize(("name", "port"), [("bt-04-libtorrent-utp-only.pcap", 6881),
                                            ("ndpi-bittorrent_utp.pcap", 40959)])
def test_utp_headers_agree_with_tshark(name, port):
    theirs = tshark_utp(name, port)
    records = {r.frame: r for r in dissect(CAPTURES / name) if r.protocol == "bt-utp"}
    ours = {frame: (UTP_TYPES[r.message], r.fields["connection_id"], r.fields["seq_nr"],
                    r.fields["ack_nr"]) for frame, r in records.items()}
    assert theirs and all(ours.get(frame) == value for frame, value in theirs.items())
    # p2pkit also decodes packets whose extension chain holds libtorrent's close-reason
    # extension (type 3), which tshark 4.0 leaves undissected; nothing else is extra.
    extra = set(ours) - set(theirs)
    assert extra
    assert all(records[f].fields["extensions"][0]["type"] == 3 for f in extra)


def test_utp_gso_payloads_agree_with_tshark_on_their_first_packet():
    """tshark 4.0 takes a payload captured before UDP GSO cut it for one uTP packet: its first
    header agrees with p2pkit's first packet of that frame; p2pkit's others are its own."""
    name = "bt-11-p2pkit-utp-gso.pcap"
    theirs = tshark_utp(name, 6881)
    first: dict = {}
    count: Counter = Counter()
    for r in dissect(CAPTURES / name):
        if r.protocol == "bt-utp":
            first.setdefault(r.frame, r)
            count[r.frame] += 1
    ours = {frame: (UTP_TYPES[r.message], r.fields["connection_id"], r.fields["seq_nr"],
                    r.fields["ack_nr"]) for frame, r in first.items()}
    assert ours == theirs
    assert max(count.values()) == 44  # a 64,108-byte payload: 44 packets of 1457 bytes


KRPC_KINDS = {"Request": "query", "Response": "response", "Error": "error"}


def tshark_krpc(name: str) -> dict[int, dict[str, str]]:
    """frame -> {"kind", "t", "method"?} from tshark's PDML tree (bt-dht has no plain fields
    for them: the method and transaction id are tree labels)."""
    import xml.etree.ElementTree as ET

    assert TSHARK is not None, "tshark must be installed in CI"
    pdml = subprocess.run([TSHARK, "-r", str(CAPTURES / name), "-Y", "bt-dht", "-T", "pdml"],
                          capture_output=True, check=True, timeout=300).stdout
    frames: dict[int, dict[str, str]] = {}
    for packet in ET.fromstring(pdml).iter("packet"):
        number = int(next(f.get("show") for f in packet.iter("field")
                          if f.get("name") == "frame.number"))
        proto = next(p for p in packet.iter("proto") if p.get("name") == "bt-dht")
        entry: dict[str, str] = {}
        for field in proto.findall("field"):
            label, _, value = (field.get("showname") or "").partition(": ")
            if label == "Message type":
                entry["kind"] = KRPC_KINDS.get(value, value)
            elif label == "Transaction ID":
                entry["t"] = value
            elif label == "Request type":
                entry["method"] = value
            elif label == "Error":  # tshark 4.0 ends its tree after an error list
                entry.setdefault("kind", "error")
        frames[number] = entry
    return frames


@pytest.mark.parametrize("name", ["dht-02-bep44-put-get.pcap", "ndpi-bittorrent_utp.pcap",
                                  "dht-03-p2pkit-libtorrent-bittorrent-dht.pcap"])
def test_krpc_kind_method_and_transaction_agree_with_tshark(name):
    theirs = tshark_krpc(name)
    ours = {r.frame: r for r in dissect(CAPTURES / name) if r.protocol == "bt-dht"}
    assert theirs and set(theirs) <= set(ours)
    for frame, t in theirs.items():
        r = ours[frame]
        assert r.message == t["kind"]
        if "t" in t:
            assert r.fields["transaction_id"] == t["t"]
        if "method" in t:
            assert r.fields["method"] == t["method"]


def test_krpc_responses_know_their_method():
    # p2pkit names the method of responses and errors (matched to their query by transaction
    # id and endpoints), which tshark's KRPC dissector cannot.
    records = [r for r in dissect(CAPTURES / "dht-02-bep44-put-get.pcap")
               if r.protocol == "bt-dht" and r.message != "query"]
    named = Counter(r.fields.get("method") for r in records)
    assert named[None] <= 0.05 * len(records)
    assert {"get", "put", "get_peers", "find_node"} <= set(named)


def tshark_gnutella(name: str, ports: range) -> dict[int, Counter]:
    assert TSHARK is not None, "tshark must be installed in CI"
    decode_as = [x for p in ports for x in ("-d", f"tcp.port=={p},gnutella")]
    cmd = [TSHARK, "-r", str(CAPTURES / name), *decode_as, "-Y", "gnutella.header",
           "-T", "fields", "-E", "occurrence=a", "-E", "aggregator=,", "-e", "frame.number",
           "-e", "gnutella.header.payload", "-e", "gnutella.header.ttl", "-e",
           "gnutella.header.hops", "-e", "gnutella.header.id"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=120).stdout
    frames: dict[int, Counter] = {}
    for line in out.splitlines():
        number, types, ttls, hops, guids = line.split("\t")
        frames[int(number)] = Counter(zip(map(int, types.split(",")), map(int, ttls.split(",")),
                                          map(int, hops.split(",")), guids.split(",")))
    return frames


@pytest.mark.parametrize("name", ["gtkg123-plain-up2-3leaves.pcap",
                                  "gnutella-02-p2pkit-servents.pcap"])
def test_gnutella_descriptor_headers_agree_with_tshark(name):
    from p2pkit.gnutella.descriptors import PAYLOAD_TYPES

    theirs = tshark_gnutella(name, range(6346, 6351))
    ours: dict[int, Counter] = defaultdict(Counter)
    for r in dissect(CAPTURES / name):
        if r.protocol == "gnutella" and r.message in PAYLOAD_TYPES:
            ours[r.frame][(PAYLOAD_TYPES[r.message], r.fields["ttl"], r.fields["hops"],
                           r.fields["guid"])] += 1
    assert sum(sum(c.values()) for c in theirs.values()) > 30
    # every descriptor tshark decodes, in the same frames, with the same header fields
    assert all(not (c - ours.get(f, Counter())) for f, c in theirs.items())
    if name.startswith("gtkg"):
        assert dict(ours) == theirs  # and nothing more
    # (p2pkit's own capture: tshark skips descriptors sent in the segment that ends a
    # handshake, which p2pkit decodes)


def test_http_tracker_requests_agree_with_tshark_http():
    name = "tracker-01-opentracker-libtorrent-aria2.pcap"
    assert TSHARK is not None, "tshark must be installed in CI"
    out = subprocess.run([TSHARK, "-r", str(CAPTURES / name), "-Y", "http.request", "-T",
                          "fields", "-e", "frame.number", "-e", "http.request.uri"],
                         capture_output=True, text=True, check=True, timeout=120).stdout
    theirs = {int(n): uri for n, uri in (line.split("\t") for line in out.splitlines())}
    ours = {r.frame: r for r in dissect(CAPTURES / name)
            if r.protocol == "bt-tracker-http" and r.fields["direction"] == "request"}
    assert set(ours) == set(theirs)
    for frame, uri in theirs.items():
        assert uri.startswith(ours[frame].fields["path"])
        assert ours[frame].message in uri  # "announce" or "scrape"


#: Every committed capture, and how it is compared with tshark above. A capture added without
#: an entry here fails this test, so none escapes the comparison silently.
COVERAGE = {
    "bt-02-libtorrent-magnet-ut_metadata-pex.pcap": "peer wire: exact agreement",
    "bt-04-libtorrent-utp-only.pcap": "uTP headers agree; tshark does not reassemble uTP, so "
                                      "the BitTorrent messages inside are p2pkit's alone "
                                      "(checked against the torrent in test_dissect)",
    "bt-05-libtorrent-v2-magnet.pcap": "peer wire agrees; p2pkit alone past BEP 52 ids",
    "bt-06-p2pkit-leech-libtorrent.pcap": "peer wire: exact agreement",
    "bt-07-p2pkit-seed-aria2.pcap": "peer wire: exact agreement",
    "bt-08-libtorrent-mse-rc4.pcap": "MSE/PE with RC4: neither decodes a message (p2pkit "
                                     "labels both directions encrypted)",
    "bt-09-p2pkit-leech-libtorrent-mse.pcap": "MSE/PE with RC4: neither decodes a message "
                                              "without its key log; with it, p2pkit's "
                                              "messages are checked against the torrent in "
                                              "tests/bittorrent/test_dissect_mse.py",
    "bt-10-p2pkit-seed-transmission-mse.pcap": "as bt-09 (p2pkit seeding to transmission "
                                               "over MSE/RC4)",
    "bt-11-p2pkit-utp-gso.pcap": "uTP sent with UDP GSO: tshark takes each coalesced payload "
                                 "for one packet, whose header agrees with p2pkit's first; "
                                 "p2pkit splits them (tests/bittorrent/test_dissect_utp_gso.py)",
    "dht-02-bep44-put-get.pcap": "KRPC kind, method, transaction id",
    "dht-03-p2pkit-libtorrent-bittorrent-dht.pcap": "KRPC kind, method, transaction id",
    "gtkg123-plain-up2-3leaves.pcap": "Gnutella descriptor headers: exact agreement",
    "kad2-amule.pcap": "eMule Kad2: opcodes and fields agree where tshark decodes "
                       "(tests/kad2/test_tshark_agreement.py)",
    "kademlia-py-rpcudp.pcap": "tshark 4.0 has no rpcudp/msgpack dissector; checked in "
                               "tests/rpcudp",
    "gnutella-02-p2pkit-servents.pcap": "Gnutella descriptor headers: all of tshark's found",
    "gnutella-03-p2pkit-servents-all-features.pcap": "deflated links and Gnutella over UDP, "
                                                     "which tshark 4.0 does not decode; "
                                                     "checked in tests/gnutella/"
                                                     "test_servent_capture.py",
    "ndpi-bittorrent.pcap": "peer wire: tshark's messages all found, p2pkit decodes more",
    "ndpi-bittorrent_tcp_miss.pcapng": "peer wire after MSE: exact agreement",
    "ndpi-bittorrent_utp.pcap": "uTP headers and KRPC",
    "ndpi-gnutella.pcap": "tshark 4.0 decodes no Gnutella 0.6 here (no handshake parsing, no "
                          "deflate); p2pkit's decoding is checked in tests/gnutella",
    "tracker-01-opentracker-libtorrent-aria2.pcap": "HTTP tracker requests; tshark 4.0 has no "
                                                    "UDP tracker dissector",
    "ipfs-01-p2pkit-hosts.pcap": "tshark 4.0 has no libp2p dissector; p2pkit's decoding is "
                                 "checked in tests/ipfs/test_dissect.py",
    "ipfs-02-p2pkit-js-libp2p.pcap": "tshark 4.0 has no libp2p dissector; p2pkit's decoding is "
                                     "checked in tests/ipfs/test_dissect.py",
    "ipfs-03-p2pkit-js-libp2p-keylog.pcap": "tshark 4.0 has no libp2p dissector nor Noise "
                                            "decryption; checked in "
                                            "tests/ipfs/test_dissect_keylog.py",
    "ipfs-05-p2pkit-py-libp2p-keylog.pcap": "tshark 4.0 has no libp2p dissector nor Noise "
                                            "decryption; checked in "
                                            "tests/conformance/test_ipfs_offline.py",
    "ipfs-04-p2pkit-cli-keylog.pcap": "tshark 4.0 has no libp2p dissector nor Noise decryption;"
                                      " checked in tests/cli/test_ipfs_keylog.py",
}


def test_every_committed_capture_is_compared():
    committed = {p.name for p in CAPTURES.iterdir() if p.suffix in (".pcap", ".pcapng")}
    assert committed <= set(COVERAGE), sorted(committed - set(COVERAGE))
