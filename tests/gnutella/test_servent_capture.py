"""p2pkit's servent on the wire, next to gtk-gnutella 1.2.3's (issues 6 and 14).

Both captures are dissected with p2pkit: tests/data/captures/gtkg123-plain-up2-3leaves.pcap
(five gtk-gnutella servents) and gnutella-02-p2pkit-servents.pcap (five p2pkit servents in the
same roles and addresses, recorded by tests/gnutella/servent_capture_scenario.py). The headers
and GGEP extensions each side sends are compared; every difference is listed with its reason.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path

from p2pkit.capture.dissect import Dissection
from p2pkit.gnutella.udp import oob_address
from p2pkit.gnutella.wire_profile import profile
from tests.gnutella import servent_comparison
from tests.pcap_payloads import CAPTURES

GTKG = CAPTURES / "gtkg123-plain-up2-3leaves.pcap"
P2PKIT = CAPTURES / "gnutella-02-p2pkit-servents.pcap"

#: Headers gtk-gnutella sends that p2pkit does not, and why.
NOT_SENT_BY_P2PKIT = {
    "Node": "gtk-gnutella's name for the listening address; p2pkit sends Listen-IP, the name "
            "the handshake documents use",
    "X-Dynamic-Querying": "dynamic querying is off in this plain capture (serve --dynamic-query; "
                          "on in gnutella-03)",
    "X-Requeries": "gtk-gnutella's re-query setting, not implemented",
    "X-Degree": "sent with dynamic querying, off in this plain capture (on in gnutella-03)",
    "X-Ext-Probes": "extended probe queries are not implemented",
    "X-Live-Since": "uptime advertisement, not implemented",
    "X-Token": "gtk-gnutella's vendor authentication token",
}
#: Headers p2pkit sends that gtk-gnutella does not, and why.
NOT_SENT_BY_GTKG = {
    "Listen-IP": "the documented name of gtk-gnutella's Node header",
    "Accept-Encoding": "gtk-gnutella ran with link compression off in this capture (it offers "
                       "and uses deflate by default: ndpi-gnutella.pcap)",
}
#: Vendor messages gtk-gnutella sends that p2pkit does not, and why.



def _dissect(path):
    d = Dissection(path)
    records = [r for r in d if r.protocol == "gnutella"]
    return d, records


def _headers(records) -> dict[str, set[str]]:
    by_kind: dict[str, set[str]] = defaultdict(set)
    for r in records:
        if r.message == "handshake":
            by_kind[r.fields["kind"]].update(name for name, _ in r.fields["headers"])
    return by_kind


def _ggep_ids(records) -> dict[str, set[str]]:
    out: dict[str, set[str]] = defaultdict(set)

    def walk(value, ids):
        if isinstance(value, dict):
            if value.get("kind") == "ggep":
                ids.update(e["id"] for e in value.get("extensions") or ())
            for v in value.values():
                walk(v, ids)
        elif isinstance(value, (list, tuple)):
            for v in value:
                walk(v, ids)

    for r in records:
        if r.message != "handshake" and r.value is not None:
            walk(r.value, out[r.message])
    return out


def test_p2pkit_capture_decodes_completely():
    d, records = _dissect(P2PKIT)
    kinds = Counter(r.message for r in records)
    assert not {"unknown", "malformed"} & set(kinds)
    for needed in ("handshake", "ping", "pong", "query", "query_hit", "route_table_update",
                   "push", "giv", "http_request", "http_response", "bye"):
        assert kinds[needed] >= 1, needed
    assert all(getattr(x.decoder, "failed", None) is None
               for x in d.dissector._directions.values() if x.decoder is not None)


def test_handshake_headers_match_gtk_gnutella_but_for_the_listed_features():
    gtkg = _headers(_dissect(GTKG)[1])
    ours = _headers(_dissect(P2PKIT)[1])
    assert set(ours) == set(gtkg) == {"connect", "response"}
    for kind in ("connect", "response"):
        missing = gtkg[kind] - ours[kind]
        extra = ours[kind] - gtkg[kind]
        assert missing <= set(NOT_SENT_BY_P2PKIT), (kind, missing)
        assert extra <= set(NOT_SENT_BY_GTKG) | {"X-Ultrapeer-Needed"}, (kind, extra)
    # the headers the issue names, sent by both
    for name in ("User-Agent", "X-Ultrapeer", "X-Query-Routing", "Remote-IP", "Bye-Packet",
                 "Pong-Caching", "GGEP"):
        assert name in ours["connect"] and name in gtkg["connect"], name


def test_ggep_where_gtk_gnutella_uses_it():
    gtkg = _ggep_ids(_dissect(GTKG)[1])
    ours = _ggep_ids(_dissect(P2PKIT)[1])
    # pongs: vendor code and ultrapeer slots as gtk-gnutella; DU (daily uptime) is not sent
    assert gtkg["pong"] - ours["pong"] == {"DU"} and ours["pong"] <= gtkg["pong"]
    # query hits carry the file's SHA-1 as GGEP H, as gtk-gnutella's do; BH (browse host),
    # CT (creation time) and GTKGV (vendor version) are gtk-gnutella extras
    assert "H" in ours["query_hit"] and "H" in gtkg["query_hit"]
    assert gtkg["query_hit"] - ours["query_hit"] == {"BH", "CT", "GTKGV"}
    # gtk-gnutella's pings ask for cached pongs (SCP) and its queries accept partial files
    # (PR); p2pkit's servent implements neither, so it sends no GGEP there
    assert gtkg["ping"] == {"SCP"} and not ours["ping"]
    assert gtkg["query"] == {"PR"} and not ours["query"]
    # no GGEP where gtk-gnutella has none
    for kind in ("push", "bye", "route_table_update"):
        assert not ours[kind] and not gtkg[kind]


def test_ttl_and_hops_along_forwarded_queries():
    _, records = _dissect(P2PKIT)
    by_guid: dict[str, list] = defaultdict(list)
    for r in records:
        if r.message == "query":
            by_guid[r.fields["guid"]].append((r.fields["hops"], r.fields["ttl"]))
    forwarded = [seen for seen in by_guid.values() if len({h for h, _ in seen}) > 1]
    assert forwarded
    for seen in forwarded:  # every hop: hops + 1, TTL - 1, so TTL + hops is constant
        assert len({h + t for h, t in seen}) == 1


def _vendor(records) -> dict[tuple[str, str], Counter]:
    """(sender role, vendor message name) -> count; roles by the capture's addresses."""
    out: dict[str, Counter] = defaultdict(Counter)
    for r in records:
        if r.message in ("vendor_message", "standard_vendor_message"):
            role = "ultrapeer" if r.src.split(":")[0] in ("127.0.0.10", "127.0.0.14") else "leaf"
            out[role][r.fields.get("name")] += 1
    return out


def test_vendor_messages_as_gtk_gnutella_sends_them():
    """Both send Messages-Supported and Features-Supported on every link, TCP connect-back,
    push-proxy requests from leaves; p2pkit's ultrapeers acknowledge them (gtk-gnutella's did
    not in this capture); gtk-gnutella's leaves report query status, as p2pkit's do."""
    gtkg = _vendor(_dissect(GTKG)[1])
    ours = _vendor(_dissect(P2PKIT)[1])
    for role in ("ultrapeer", "leaf"):
        for name in ("messages_supported", "features_supported"):
            assert gtkg[role][name] >= 1 and ours[role][name] >= 1, (role, name)
    assert gtkg["leaf"]["tcp_connect_back"] and ours["leaf"]["tcp_connect_back"]
    assert gtkg["leaf"]["push_proxy_request"] and ours["leaf"]["push_proxy_request"]
    assert ours["ultrapeer"]["push_proxy_acknowledgement"] == ours["leaf"]["push_proxy_request"]
    assert not gtkg["ultrapeer"]["push_proxy_acknowledgement"]
    assert gtkg["leaf"]["query_status_response"] and ours["leaf"]["query_status_response"]
    # what p2pkit says it supports is a subset of gtk-gnutella's list: no GTKG/7 (no UDP),
    # no time sync, node info or OOB
    supported = {}
    for path in (GTKG, P2PKIT):
        [r] = [r for r in _dissect(path)[1] if r.fields.get("name") == "messages_supported"][:1]
        supported[path] = {(m["vendor"], m["selector"]) for m in r.fields["messages"]}
    assert supported[P2PKIT] < supported[GTKG]
    assert supported[GTKG] - supported[P2PKIT] >= {("GTKG", 7), ("GTKG", 9), ("LIME", 11)}


def test_hsep_and_ultrapeer_qrp_as_gtk_gnutella():
    for path in (GTKG, P2PKIT):
        records = _dissect(path)[1]
        hsep = [r for r in records if r.message == "hsep"]
        assert hsep, path
        for r in hsep:  # HSEP §: a leaf sends its OWN triple alone; V[0] is (1,*,*)
            assert r.fields["triples"][0]["nodes"] == 1
            if r.src.split(":")[0] not in ("127.0.0.10", "127.0.0.14"):
                assert len(r.fields["triples"]) == 1
        # QRP tables both ways over the ultrapeer link (ultrapeer_qrp §)
        up_link = {(r.src.split(":")[0], r.dst.split(":")[0]) for r in records
                   if r.message == "route_table_update"}
        assert {("127.0.0.10", "127.0.0.14"), ("127.0.0.14", "127.0.0.10")} <= up_link, path


def test_both_captures_run_plain_links():
    """Like for like: gtk-gnutella ran with link compression off, and so did p2pkit's servents
    here (they deflate by default: tests/gnutella/test_deflate.py). Neither upgraded to TLS."""
    for path in (GTKG, P2PKIT):
        for kind, names in _headers(_dissect(path)[1]).items():
            assert "Content-Encoding" not in names and "Upgrade" not in names, (path, kind)


# --- every feature on (issue 14): gnutella-03 and the comparison table in the docs --------------

ALL = CAPTURES / "gnutella-03-p2pkit-servents-all-features.pcap"
DOC = Path(__file__).resolve().parents[2] / "docs" / "guide" / "gnutella-gtk-gnutella.md"


def test_comparison_table_in_the_docs_is_the_captures():
    """docs/guide/gnutella-gtk-gnutella.md holds what servent_comparison.py prints, and every
    difference between p2pkit and gtk-gnutella has its reason."""
    text, missing = servent_comparison.table()
    assert missing == []
    doc = DOC.read_text()
    start = doc.index("<!-- table: tests/gnutella/servent_comparison.py -->\n")
    block = doc[doc.index("\n", start) + 1:doc.index("<!-- end of table -->")]
    assert block == text
    # the table is not empty talk: these rows are there, with these marks
    rows = {line.split(" | ")[0] + " | " + line.split(" | ")[1]: line.split(" | ")[2:5]
            for line in text.splitlines()[2:]}
    assert rows["| handshake header: `X-Dynamic-Querying` | ultrapeer"] == ["✓", "–", "✓"]
    assert rows["| UDP descriptor: `query_hit` | leaf"] == ["–", "–", "✓"]
    assert rows["| GGEP in UDP query: `QK` | leaf"] == ["–", "✓", "–"]
    assert rows["| Messages Supported: `GTKG/7v2` | leaf"] == ["✓", "✓", "✓"]


def test_every_feature_shows_in_the_all_features_capture():
    d, records = _dissect(ALL)
    assert all(getattr(x.decoder, "failed", None) is None
               for x in d.dissector._directions.values() if x.decoder is not None)
    assert not {"unknown", "malformed"} & {r.message for r in records}
    udp = [r for r in records if r.transport == "udp"]
    names = [r.fields.get("name") or r.message for r in udp]
    # msg/connect_back: a GTKG/7v2 over TCP, answered by a UDP ping under its GUID
    asks = {r.fields["guid"] for r in records
            if r.transport == "tcp" and r.fields.get("name") == "udp_connect_back"}
    pings = {r.fields["guid"] for r in udp if r.message == "ping"}
    assert asks and asks <= pings
    # out-of-band §C-§E: LIME/12v2 from .13 to the address in the query's GUID, LIME/11v2
    # back, then the hit over UDP; the hit never crosses TCP
    i = next(i for i, r in enumerate(udp) if names[i] == "oob_reply_indication"
             and r.dst == "127.0.0.12:6348")
    assert names[i:i + 3] == ["oob_reply_indication", "oob_reply_ack", "query_hit"]
    indication, ack, hit = udp[i:i + 3]
    assert indication.src == "127.0.0.13:6349" and indication.dst == "127.0.0.12:6348"
    assert oob_address(bytes.fromhex(hit.fields["guid"])) == ("127.0.0.12", 6348)
    assert ack.fields["body"]["wanted"] >= 1
    tcp_hits = {r.fields["guid"] for r in records
                if r.transport == "tcp" and r.message == "query_hit"}
    assert hit.fields["guid"] not in tcp_hits
    # dynamic_query §2: the leaf's query (TTL 7 from .12) leaves .10 as a TTL 2 probe
    kilo = [r for r in records if r.message == "query" and r.fields["guid"] == hit.fields["guid"]]
    assert [(r.src.split(":")[0], r.fields["ttl"], r.fields["hops"]) for r in kilo][:2] == [
        ("127.0.0.12", 7, 0), ("127.0.0.10", 2, 1)]
    # push_proxy §5: the downloader asks .14 over HTTP, 202, a Push to .13, GIV, the file
    http = [(r.src.split(":")[0], r.fields.get("target") or r.fields.get("status"))
            for r in records if r.message in ("http_request", "http_response")]
    assert ("127.0.0.14", 202) in http
    assert any(t and str(t).startswith("/gnutella/push-proxy?ServerId=") for _, t in http)
    assert [r.message for r in records if r.message in ("push", "giv")] == ["push", "giv"]
    # GUESS (query_keys §2.x, GUESS §2.2): gtk-gnutella's key request and query, replayed to
    # .10 from 127.0.0.15, get a key, an ack pong under the query's GUID and .11's hit by UDP
    guess = [r for r in udp if "127.0.0.15" in r.src or "127.0.0.15" in r.dst]
    assert [(r.src.split(":")[0], r.message) for r in guess] == [
        ("127.0.0.15", "ping"), ("127.0.0.10", "pong"), ("127.0.0.15", "query"),
        ("127.0.0.10", "pong"), ("127.0.0.10", "query_hit")]
    ids = [[e["id"] for b in r.fields["extensions"] for e in b["extensions"]] for r in guess[:4]]
    assert "QK" in ids[1] and "GUE" in ids[1] and "QK" in ids[2] and "QK" not in ids[3]
    assert guess[3].fields["guid"] == guess[4].fields["guid"] == guess[2].fields["guid"]
    assert [x["file_name"] for x in guess[4].fields["results"]] == ["pinkfloyd live.txt"]
    # out-of-band-v3 §Ultrapeer Proxying: .11 (no UDP) asks `kilo`; .10 sends it under a GUID
    # naming 127.0.0.10:6346, Acks .13's Reply Number, and hands the UDP hit to .11 over TCP
    # under .11's own GUID
    [asked] = [r for r in records if r.message == "query" and r.src.startswith("127.0.0.11:")
               and r.fields["search_criteria"] == "kilo"]
    [sent] = [r for r in records if r.message == "query" and r.src == "127.0.0.10:6346"
              and r.fields["guid"][8:26] == asked.fields["guid"][8:26]]
    proxied = bytes.fromhex(sent.fields["guid"])
    assert oob_address(proxied) == ("127.0.0.10", 6346) and sent.fields["min_speed"]["oob_reply"]
    assert [(r.src, r.fields.get("name") or r.message) for r in udp
            if r.fields["guid"] == proxied.hex()] == [
        ("127.0.0.13:6349", "oob_reply_indication"), ("127.0.0.10:6346", "oob_reply_ack"),
        ("127.0.0.13:6349", "query_hit")]
    [handed] = [r for r in records if r.message == "query_hit" and r.transport == "tcp"
                and r.dst.startswith("127.0.0.11:") and r.fields["guid"] == asked.fields["guid"]]
    assert handed.src == "127.0.0.10:6346"
    # deflate on every link, both ways (compression §3)
    finals = [r for r in records if r.message == "handshake"
              and dict(r.fields["headers"]).get("Content-Encoding") == "deflate"]
    assert len({(r.src, r.dst) for r in finals}) == 8  # 4 links x 2 directions


def test_wire_profile_reads_gtk_gnutella():
    """The profile of gtk-gnutella's loopback capture: its ultrapeers' pongs carry VC, UP, DU;
    its leaves list GTKG/7v2 and send BEAR/12 (real bytes, frames of gtkg123)."""
    features = profile(_dissect(GTKG)[1], servent_comparison.loopback_role)
    assert {("ultrapeer", "GGEP in TCP pong", i) for i in ("VC", "UP", "DU")} <= features
    assert ("leaf", "Messages Supported", "GTKG/7v2") in features
    assert ("leaf", "vendor message over TCP", "BEAR/12v1 query_status_response") in features
    assert not {f for f in features if f[1].startswith("UDP")}  # no UDP in that capture
