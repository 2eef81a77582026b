"""p2pkit's servents next to gtk-gnutella's, feature by feature (issue 14).

Three captures, dissected with p2pkit and profiled with :mod:`p2pkit.gnutella.wire_profile`:
five gtk-gnutella 1.2.3 servents on loopback (``gtkg123-plain-up2-3leaves.pcap``: ultrapeers
127.0.0.10 and .14, leaves .11-.13; plain TCP, no UDP), the gtk-gnutella 1.2.2 leaf 10.0.2.15 of
``ndpi-gnutella.pcap`` (deflate, UDP, GUESS: what the loopback capture does not show), and five
p2pkit servents in the loopback capture's roles and addresses with every feature on
(``gnutella-03-p2pkit-servents-all-features.pcap``, ``servent_capture_scenario.py
--all-features``). :data:`REASONS` says why each difference exists:

    python tests/gnutella/servent_comparison.py   # prints the table of docs/guide/gnutella-gtk-gnutella.md
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from p2pkit.capture.dissect import Dissection  # noqa: E402
from p2pkit.gnutella.wire_profile import Feature, profile, side_by_side  # noqa: E402

CAPTURES = ROOT / "tests" / "data" / "captures"
GTKG = CAPTURES / "gtkg123-plain-up2-3leaves.pcap"
NDPI = CAPTURES / "ndpi-gnutella.pcap"
P2PKIT = CAPTURES / "gnutella-03-p2pkit-servents-all-features.pcap"

ULTRAPEERS = {"127.0.0.10", "127.0.0.14"}
LEAVES = {"127.0.0.11", "127.0.0.12", "127.0.0.13"}


def loopback_role(ip: str) -> str | None:
    return "ultrapeer" if ip in ULTRAPEERS else "leaf" if ip in LEAVES else None


def ndpi_role(ip: str) -> str | None:
    return "leaf" if ip == "10.0.2.15" else None


#: Why a feature is on one side only: (section, item) -> reason. Each starts with its kind:
#: *not implemented* (p2pkit lacks it), *gtk-gnutella specific* (no spec asks for it),
#: *not in the spec* (p2pkit does what the spec says where gtk-gnutella does otherwise),
#: *setting* (a flag or a capture's setup, not the code), *scenario* (what the scripted run
#: did), *choice* (both ways are valid and both servents accept both).
NI, GS, NS, SET = ("not implemented", "gtk-gnutella specific", "not in the spec", "setting")
SCEN, CHOICE = "scenario", "choice"
_G2 = f"{GS}: Gnutella2 handshake headers, sent to Shareaza/Foxy hubs (G2 is another protocol)"
_TIME = f"{GS}: time synchronisation over TCP and UDP (msg/time_sync); {NI}"
_OOB3 = (f"{NI}: out-of-band v3 (LIME/11v3, 12v3 with GGEP) and v1; p2pkit speaks v2, which "
         "LimeWire and gtk-gnutella also list")
_HEAD = f"{NI}: HEAD Ping/Pong (LIME/23, 24; msg/head_ping), partial-file queries over UDP"
_TLS = (f"{SET}: the TLS upgrade (gnet-TLS-upgrade §2) is implemented but off by default "
        "(`serve --tls`) and off in this capture, where it would hide every descriptor")
_GUESS_SERVER = (f"{SET}: GUESS as an ultrapeer (§5 GUE, query_keys §2.x.3 QK), shown by "
                 "gtk-gnutella's own key request and query replayed to .10; gtk-gnutella's "
                 "loopback capture had no UDP (its remote ultrapeers send GUE and QK in nDPI, "
                 "frame 763)")
_UDP_OFF = (f"{SET}: answers to UDP pings (the GTKG/7 connect-back); gtk-gnutella's loopback "
            "capture ran without UDP and nothing pinged its nDPI leaf over UDP (the remote "
            "gtk-gnutella ultrapeers' UDP pongs there carry VC, UP and DU too)")
REASONS: dict[tuple[str, ...], str] = {
    ("handshake header", "Accept"): _G2,
    ("handshake header", "Content-Type"): _G2,
    ("handshake header", "X-Hub"): _G2,
    ("handshake header", "X-Hub-Needed"): _G2,
    ("handshake header", "Connection"): _TLS,
    ("handshake header", "Upgrade"): _TLS,
    ("handshake header", "Accept-Encoding"): (
        f"{SET}: deflate (compression §3) is on in p2pkit's capture and was off in gtk-gnutella's "
        "loopback capture; gtk-gnutella's nDPI leaf deflates as p2pkit does"),
    ("handshake header", "Listen-IP"): (
        f"{GS}: gtk-gnutella names its address with `Node` (and `Listen-IP` too, as its nDPI "
        "leaf shows); p2pkit sends `Listen-IP` only"),
    ("handshake header", "Node"): (
        f"{GS}: gtk-gnutella's own name for `Listen-IP`, which p2pkit sends"),
    ("handshake header", "X-Degree"): (
        f"{NS}: gtk-gnutella's leaves also advertise what they would do as ultrapeers; "
        "dynamic_query §2 is an ultrapeer's, and p2pkit's ultrapeers send these"),
    ("handshake header", "X-Ext-Probes"): (
        f"{NI}: extended probes (dynamic_query §: a TTL 2 probe accepted from a peer)"),
    ("handshake header", "X-Guess"): (
        f"{NI}: GUESS §3.4's header says the servent may *send* GUESS queries; p2pkit's "
        "ultrapeers answer them (GUE in their pongs) but p2pkit never sends them"),
    ("handshake header", "X-Live-Since"): f"{GS}: start time of the servent; {NI}",
    ("handshake header", "X-Requeries"): (
        f"{GS}: says whether the servent re-sends its queries (gtk-gnutella: `False`); {NI}"),
    ("handshake header", "X-Token"): f"{GS}: gtk-gnutella's signed version token",
    ("handshake header", "X-Try-Ultrapeers"): (
        f"{NI}: p2pkit's refusals (503) carry no host list (handshaking_0.6 §3.1)"),
    ("TCP descriptor", "pong"): (
        f"{NS}: p2pkit's leaves answer their ultrapeer's pings with a pong (ping-pong §); "
        "gtk-gnutella's leaves did not in its capture"),
    ("TCP descriptor", "push"): (
        f"{SCEN}: p2pkit's leaf asked the hit's push proxy over HTTP first (push_proxy §5), "
        "which sent the Push; gtk-gnutella 1.2.3's hits named no proxy (its ultrapeers did not "
        "acknowledge LIME/21) so its leaf routed a Push"),
    ("vendor message over TCP", "GTKG/10v1 time_sync_reply"): _TIME,
    ("vendor message over TCP", "GTKG/9v1 time_sync_request"): _TIME,
    ("vendor message over TCP", "GTKG/7v1 udp_connect_back"): (
        f"{SET}: gtk-gnutella 1.2.2 sends v1; p2pkit sends v2 (msg/connect_back: the GUID in "
        "the header) and answers both"),
    ("vendor message over TCP", "GTKG/7v2 udp_connect_back"): (
        f"{SET}: UDP was off in gtk-gnutella's loopback capture; its nDPI leaf sends v1"),
    ("vendor message over TCP", "LIME/21v1 push_proxy_request"): (
        f"{GS}: gtk-gnutella's ultrapeer .14 asked .10 too; push_proxy §2 has leaves ask "
        "their ultrapeers, as p2pkit's do"),
    ("vendor message over TCP", "LIME/22v2 push_proxy_acknowledgement"): (
        f"{NS}: p2pkit's ultrapeers acknowledge (push_proxy §3); gtk-gnutella 1.2.3's did not "
        "in its capture (the remote gtk-gnutella ultrapeers of nDPI do)"),
    ("Messages Supported", "GTKG/9v1"): _TIME,
    ("Messages Supported", "GTKG/10v1"): _TIME,
    ("Messages Supported", "GTKG/21v1"): f"{NI}: push-proxy cancel (msg/proxy_cancel)",
    ("Messages Supported", "GTKG/22v1"): f"{GS}: node info request (msg/node_info); {NI}",
    ("Messages Supported", "GTKG/23v1"): f"{GS}: node info reply (msg/node_info); {NI}",
    ("Messages Supported", "GTKG/24v1"): f"{GS}: SVN release notification (msg/GTKG.lst)",
    ("Messages Supported", "GTKG/7v1"): (
        "p2pkit lists v2 only (it answers v1 too, as msg/connect_back asks)"),
    ("Messages Supported", "LIME/11v3"): _OOB3,
    ("Messages Supported", "LIME/12v1"): _OOB3,
    ("Messages Supported", "LIME/12v3"): _OOB3,
    ("Messages Supported", "LIME/13v1", "leaf"): (
        f"{NS}: p2pkit's leaves send the proxying veto but do not list LIME/13 (only an "
        "ultrapeer acts on it, out-of-band-v3); gtk-gnutella lists it in both roles"),
    ("vendor message over TCP", "LIME/13v1 oob_proxy_control"): (
        f"{SET}: p2pkit's UDP-reachable leaves veto out-of-band proxying (out-of-band-v3); "
        "gtk-gnutella's loopback leaves had no UDP and its nDPI leaf sent none"),
    ("GGEP in TCP query_hit", "PUSH", "ultrapeer"): (
        f"{SCEN}: .13's hit (GGEP PUSH, push_proxy §4.1) came to .10 by UDP for the query .10 "
        "proxies, and .10 hands it to .11 over TCP; gtk-gnutella's loopback ultrapeers "
        "acknowledged no push proxy, so its hits carry none"),
    ("UDP descriptor", "vendor_message", "ultrapeer"): (
        f"{SET}: .10 Acks (LIME/11v2) the Reply Number for the query it proxies for .11 "
        "(out-of-band-v3 §Ultrapeer Proxying); no UDP in gtk-gnutella's loopback capture"),
    ("Messages Supported", "LIME/21v2"): f"{NI}: push-proxy request v2",
    ("Messages Supported", "LIME/22v1"): (
        "p2pkit acknowledges with v2 (the port in the message) only"),
    ("Messages Supported", "LIME/23v1"): _HEAD,
    ("Messages Supported", "LIME/23v2"): _HEAD,
    ("Messages Supported", "LIME/24v1"): _HEAD,
    ("Messages Supported", "LIME/24v2"): _HEAD,
    ("Messages Supported", "LIME/5v1"): f"{NI}: UDP crawler ping (IPv6-Ready §2.4.4)",
    ("Features Supported", "F2FT/65535"): f"{GS}: firewall-to-firewall transfers; {NI}",
    ("Features Supported", "PDHT/0"): f"{GS}: gtk-gnutella's passive DHT node; {NI}",
    ("Features Supported", "QRP1/1"): (
        f"{NI}: p2pkit does not list QRP in Features Supported (it speaks QRP, said in the "
        "handshake)"),
    ("Features Supported", "TCPI/0"): f"{NI}: incoming TCP connect-back check (TCPI)",
    ("Features Supported", "TCPI/1"): f"{NI}: incoming TCP connect-back check (TCPI)",
    ("Features Supported", "TLS!/1"): _TLS,
    ("Features Supported", "WHAT/1"): f"{NI}: LimeWire's What-Is-New query",
    ("GGEP in TCP ping", "DHTIPP"): f"{GS}: asks for DHT hosts (gtk-gnutella's DHT); {NI}",
    ("GGEP in TCP ping", "SCP"): (
        f"{NI}: p2pkit's pings do not ask for cached pongs (it answers SCP with IPP over UDP)"),
    ("GGEP in TCP pong", "VC"): "see `TCP descriptor: pong` (leaf)",
    ("GGEP in TCP query", "PR"): f"{NI}: partial files (PFSP) are not shared",
    ("GGEP in TCP query_hit", "BH"): f"{NI}: browse host",
    ("GGEP in TCP query_hit", "CT"): f"{NI}: the file's creation time",
    ("GGEP in TCP query_hit", "GTKGV"): f"{GS}: gtk-gnutella's version",
    ("HTTP request", "GET /get/"): (
        f"{CHOICE}: after a GIV p2pkit asks the 0.4 form the GIV names (`/get/<index>/<name>`), "
        "gtk-gnutella asks `/uri-res/N2R` (HUGE §6.1); both serve both"),
    ("HTTP request", "GET /uri-res/N2R", "ultrapeer"): (
        f"{SCEN}: an ultrapeer downloads in gtk-gnutella's capture, only leaves in p2pkit's"),
    ("HTTP request", "GET /gnutella/push-proxy"): (
        f"{SCEN}: gtk-gnutella's hits named no push proxy in its capture (above)"),
    ("HTTP request", "GET /gnutella/thex"): f"{NI}: THEX (Tiger tree hashes)",
    ("TCP connect-back", "\\n\\n"): (
        f"{SCEN}: p2pkit's leaves answer their ultrapeer's BEAR/7; gtk-gnutella's leaves did "
        "not in its capture (its ultrapeers asked, once each)"),
    ("UDP descriptor", "ping", "leaf"): (
        f"{NI}: gtk-gnutella's leaf pings hosts over UDP (SCP: host discovery; QK: GUESS query "
        "keys); p2pkit pings over UDP only to answer a GTKG/7"),
    ("UDP descriptor", "ping", "ultrapeer"): (
        f"{SET}: the ping that answers a GTKG/7 (msg/connect_back); gtk-gnutella's loopback "
        "capture ran without UDP"),
    ("UDP descriptor", "pong"): _UDP_OFF,
    ("UDP descriptor", "query"): f"{NI}: sending GUESS queries (p2pkit's ultrapeers answer them)",
    ("UDP descriptor", "query_hit"): (
        f"{SET}: an out-of-band hit (out-of-band §E); no UDP in gtk-gnutella's loopback capture"),
    ("UDP descriptor", "unknown"): f"{GS}: gtk-gnutella's DHT messages (0x44); {NI}",
    ("vendor message over UDP", "GTKG/9v1 time_sync_request"): _TIME,
    ("vendor message over UDP", "LIME/11v2 oob_reply_ack"): (
        f"{SET}: out-of-band hits (out-of-band §C-§E); no UDP in gtk-gnutella's loopback capture"),
    ("vendor message over UDP", "LIME/12v2 oob_reply_indication"): (
        f"{SET}: out-of-band hits (out-of-band §C-§E); no UDP in gtk-gnutella's loopback capture"),
    ("GGEP in UDP ping", "DHTIPP"): f"{GS}: asks for DHT hosts; {NI}",
    ("GGEP in UDP ping", "GUE"): f"{NI}: asking for query keys as a GUESS client",
    ("GGEP in UDP ping", "QK"): (
        f"{NI}: asking for query keys as a GUESS client (p2pkit's ultrapeers hand them out)"),
    ("GGEP in UDP ping", "SCP"): (
        f"{NI}: p2pkit's UDP pings do not ask for cached pongs (it answers SCP with IPP)"),
    ("GGEP in UDP ping", "VC"): f"{GS}: the vendor code in a ping",
    ("GGEP in UDP pong", "DU"): _UDP_OFF,
    ("GGEP in UDP pong", "UP"): _UDP_OFF,
    ("GGEP in UDP pong", "VC"): _UDP_OFF,
    ("GGEP in UDP query", "PR"): f"{NI}: sending GUESS queries; partial files",
    ("GGEP in UDP query", "QK"): f"{NI}: sending GUESS queries",
    ("GGEP in UDP query", "SCP"): f"{NI}: sending GUESS queries",
    ("GGEP in UDP query", "Z"): f"{NI}: sending GUESS queries (Z: the hits may be deflated)",
    ("GGEP in UDP pong", "GUE"): _GUESS_SERVER,
    ("GGEP in UDP pong", "QK"): _GUESS_SERVER,
    ("GGEP in UDP pong", "IPP"): (
        f"{SET}: the pong acknowledging a GUESS query that carries SCP (GUESS §10) lists cached "
        "hosts; no UDP in gtk-gnutella's loopback capture (its remote ultrapeers do so in nDPI)"),
    ("GGEP in TCP pong", "GUE"): (
        f"{SET}: pongs of GUESS ultrapeers (here .14's UDP pong) relayed from the pong cache; no "
        "UDP, so no GUESS, in gtk-gnutella's loopback capture"),
    ("GGEP in TCP query", "Z"): (
        f"{SCEN}: the replayed GUESS query's own `Z` (GUESS §11), forwarded to the leaf as "
        "received (`QK` and `SCP` are stripped, §10)"),
    ("UDP descriptor", "query_hit", "ultrapeer"): (
        f"{SET}: hits for the replayed GUESS query, sent to its source over UDP (GUESS §2.2); no "
        "UDP in gtk-gnutella's loopback capture"),
    ("GGEP in UDP query_hit", "H"): (
        f"{SET}: an out-of-band hit, no UDP in gtk-gnutella's loopback capture (its TCP hits "
        "carry H)"),
    ("GGEP in UDP query_hit", "PUSH"): (
        f"{SET}: the firewalled leaf's hit names its push proxy (push_proxy §4.1); "
        "gtk-gnutella's loopback ultrapeers acknowledged no proxy"),
    ("handshake header", "Content-Encoding"): (
        f"{SET}: deflate (compression §3) is on in p2pkit's capture and was off in "
        "gtk-gnutella's loopback capture; gtk-gnutella's nDPI leaf deflates as p2pkit does"),
    ("handshake header", "X-Dynamic-Querying"): (
        f"{NS}: gtk-gnutella's leaves also advertise what they would do as ultrapeers; "
        "dynamic_query §2 is an ultrapeer's, and p2pkit's ultrapeers send these"),
    ("handshake header", "X-Ultrapeer-Query-Routing"): (
        f"{NS}: gtk-gnutella's leaves also advertise ultrapeer QRP; ultrapeer_qrp § is "
        "between ultrapeers, and p2pkit's ultrapeers send it"),
}


def columns() -> list[tuple[str, set[Feature]]]:
    return [("gtk-gnutella 1.2.3 (loopback)", profile(Dissection(GTKG), loopback_role)),
            ("gtk-gnutella 1.2.2 leaf (nDPI)", profile(Dissection(NDPI), ndpi_role)),
            ("p2pkit, all features", profile(Dissection(P2PKIT), loopback_role))]


def table() -> tuple[str, list[tuple[str, str, str]]]:
    return side_by_side(columns(), REASONS)


if __name__ == "__main__":
    text, missing = table()
    print(text, end="")
    for m in missing:
        print("no reason:", m, file=sys.stderr)
