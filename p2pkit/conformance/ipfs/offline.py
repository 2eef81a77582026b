"""The IPFS / libp2p rules a capture can be judged by: what each endpoint sent on every libp2p
connection the dissector decoded (:mod:`p2pkit.ipfs.dissect`), with the key log that decrypts
its Noise sessions (``p2pkit conformance check CAPTURE --keylog FILE``).

Rule ids are the live catalog's where the requirement is the same (``ipfs/yamux/ack-new-stream``,
``ipfs/identify/public-key`` …), and the checks reuse the live cases' own pieces where they
are functions of the bytes: ``authenticate_payload`` (through the
dissector's handshake replay, :mod:`p2pkit.ipfs.noise_replay`), the kad-dht peer check of
``p2pkit.conformance.ipfs.kad_dht``, ``provider_key_valid``,
:func:`~p2pkit.ipfs.bitswap.cid_from_prefix`. Most rules need state across the two directions
of a connection: an ACK answers the other side's SYN, a window is what the receiver granted,
a kad-dht answer has its request's type, a block is one the receiver asked for.

What a capture cannot show is not judged: without keys only the clear part (multistream
``/noise``, the handshake's framing) is; the signature rule needs the handshake secrets of one
end (``NOISE_HANDSHAKE_SECRETS``); a connection whose start was not captured has no handshake
to find its keys by.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from p2pkit.conformance.ipfs.kad_dht import K, _peer_ok
from p2pkit.conformance.offline import (
    MAX_FAILURES_KEPT,
    CaptureReport,
    EndpointReport,
    OfflineRule,
    RuleTally,
)
from p2pkit.conformance.verifiers import Check
from p2pkit.errors import P2PKitError
from p2pkit.ipfs.bitswap import cid_from_prefix
from p2pkit.ipfs.bitswap_messages import MAX_BITSWAP_MESSAGE_LENGTH
from p2pkit.ipfs.cid import Cid
from p2pkit.ipfs.kad_dht import provider_key_valid
from p2pkit.ipfs.multiaddr import Multiaddr
from p2pkit.ipfs.multistream import HEADER
from p2pkit.ipfs.noise import MAX_NOISE_MESSAGE
from p2pkit.ipfs.peer_id import PeerId
from p2pkit.ipfs.yamux import INITIAL_WINDOW

__all__ = ["MAX_CONNECTIONS", "RULES", "IpfsJudge", "judge_ipfs"]

PROTOCOL = "ipfs"
#: libp2p connections followed at once (their state is freed when judged at the end).
MAX_CONNECTIONS = 65_536
#: Streams followed per connection.
MAX_STREAMS_PER_CONNECTION = 4096


def _rule(rule: str, level: str, spec: str, title: str) -> OfflineRule:
    # the checks are stateful (judge_ipfs applies them), not per-record verifiers
    return OfflineRule(rule, level, spec, title, lambda record: False, lambda record: Check(True))


#: The IPFS rules of a capture, by id.
RULES: dict[str, OfflineRule] = {r.rule: r for r in (
    _rule("ipfs/valid", "MUST", "libp2p connections §Upgrading connections",
          "every frame decodes (multistream, Noise, yamux, stream messages)"),
    _rule("ipfs/multistream/header", "MUST", "multistream-select §Protocol",
          "each negotiation opens with /multistream/1.0.0"),
    _rule("ipfs/noise/xx-handshake", "MUST", "libp2p-noise §XX",
          "-> e, <- e, ee, s, es, -> s, se: three messages, in turn, message 1 only e"),
    _rule("ipfs/noise/frame-size", "MUST", "libp2p-noise §Wire Format",
          "every Noise message at most 65535 bytes"),
    _rule("ipfs/noise/signed-static-key", "MUST", "libp2p-noise §The libp2p Handshake Payload",
          "the handshake payload's identity_sig signs the static key"),
    _rule("ipfs/yamux/version-0", "MUST", "libp2p-yamux §Version Field",
          "every frame has version 0"),
    _rule("ipfs/yamux/server-even-ids", "SHOULD", "libp2p-yamux §StreamID Field",
          "the dialer opens odd stream ids, the listener even ones"),
    _rule("ipfs/yamux/ack-new-stream", "MUST", "libp2p-yamux §Opening a stream",
          "a SYN is answered with ACK (or RST)"),
    _rule("ipfs/yamux/ping-echo", "MUST", "libp2p-yamux §Length Field",
          "a ping ACK echoes the opaque value of a ping the other side sent"),
    _rule("ipfs/yamux/window", "MUST", "libp2p-yamux §Flow Control",
          "data on a stream stays within the window the receiver granted (256 KiB + updates)"),
    _rule("ipfs/yamux/fin-half-close", "MUST", "libp2p-yamux §Closing a stream",
          "no data on a stream after the sender's own FIN"),
    _rule("ipfs/identify/public-key", "MUST", "libp2p-identify §publicKey",
          "publicKey is the key Noise authenticated for the sender"),
    _rule("ipfs/identify/listen-addrs", "MUST", "libp2p-identify §listenAddrs",
          "every listenAddrs entry is a binary multiaddr"),
    _rule("ipfs/identify/observed-addr", "SHOULD", "libp2p-identify §observedAddr",
          "observedAddr is the receiver's address as the capture shows it"),
    _rule("ipfs/identify/agent-version", "INFO", "libp2p-identify §agentVersion",
          "agentVersion names the implementation"),
    _rule("ipfs/identify/protocol-version", "SHOULD", "libp2p-identify §protocolVersion",
          "protocolVersion is set"),
    _rule("ipfs/kad/response-type", "MUST", "libp2p-kad-dht §RPC messages",
          "an answer has the type of the request it answers"),
    _rule("ipfs/kad/find-node", "MUST", "libp2p-kad-dht §RPC messages",
          "FIND_NODE and GET_PROVIDERS answers carry at most k valid closerPeers"),
    _rule("ipfs/kad/provider-key", "MUST", "libp2p-kad-dht §RPC messages",
          "ADD_PROVIDER and GET_PROVIDERS keys are CID multihashes"),
    _rule("ipfs/bitswap/block-matches-cid", "MUST", "ipfs-bitswap-protocol §Bitswap 1.1.0",
          "every block sent hashes (prefix and data) to a CID the receiver asked for"),
    _rule("ipfs/bitswap/message-size", "MUST",
          "ipfs-bitswap-protocol §Bitswap 1.0.0: Protocol Format",
          "messages are at most 4 MiB"),
    _rule("ipfs/bitswap/dont-have", "SHOULD", "ipfs-bitswap-protocol §Bitswap 1.2.0",
          "a want with sendDontHave is answered: the block, Have or DontHave"),
)}
#: Dissector deviations judged by a rule of their own (not ``ipfs/valid``).
_DEVIATION_RULES = {"ipfs/noise-signature": "ipfs/noise/signed-static-key"}


@dataclass
class _Stream:
    opener: str | None = None
    acked: bool = False
    #: address -> data bytes it sent; window the other side granted it; whether it sent FIN.
    sent: dict[str, int] = field(default_factory=dict)
    granted: dict[str, int] = field(default_factory=dict)
    fin: set[str] = field(default_factory=set)
    protocol: str | None = None
    #: kad-dht: request types the opener sent, not answered yet.
    requests: list[str] = field(default_factory=list)


@dataclass
class _Connection:
    dialer: str | None = None
    steps: list[tuple[str, int]] = field(default_factory=list)
    #: address -> the peer id it proved in the handshake (replayed from logged secrets).
    peers: dict[str, PeerId] = field(default_factory=dict)
    streams: dict[int, _Stream] = field(default_factory=dict)
    #: address -> opaque values of the yamux pings it sent (SYN).
    pings: dict[str, set[int]] = field(default_factory=dict)
    #: (sender, yamux stream or None, layer) whose first multistream line was seen.
    opened: set[tuple[str, int | None, str | None]] = field(default_factory=set)
    #: address -> CIDs it asked for; -> CIDs with sendDontHave not answered yet (and frame).
    wanted: dict[str, set[Cid]] = field(default_factory=dict)
    dont_have: dict[str, dict[Cid, Any]] = field(default_factory=dict)


class IpfsJudge:
    """Judges ``ipfs`` records one at a time (:meth:`record`), then :meth:`finish`."""

    def __init__(self, report: CaptureReport, endpoint: str | None) -> None:
        self.report = report
        self.endpoint = endpoint
        self.connections: dict[frozenset[str], _Connection] = {}

    def who(self, address: str) -> EndpointReport | None:
        if self.endpoint is not None and address != self.endpoint:
            return None
        who = self.report.endpoints.get(address)
        if who is None:
            who = self.report.endpoints[address] = EndpointReport(address)
        if "ipfs/valid" not in who.tallies:
            for rule in RULES.values():
                who.tallies.setdefault(rule.rule, RuleTally(rule))
        return who

    def verdict(self, address: str, frame: int, rule: str, reason: str | None) -> None:
        """``reason`` None: the rule holds; a string: it does not."""
        who = self.who(address)
        if who is None:
            return
        tally = who.tallies[rule]
        tally.checked += 1
        if reason is not None:
            tally.failed += 1
            if len(tally.failures) < MAX_FAILURES_KEPT:
                tally.failures.append((frame, reason))

    def connection(self, record: Any) -> _Connection | None:
        key = frozenset((record.src, record.dst))
        conn = self.connections.get(key)
        if conn is None:
            if len(self.connections) >= MAX_CONNECTIONS:
                return None
            conn = self.connections[key] = _Connection()
        return conn

    # -- records -----------------------------------------------------------------------------

    def record(self, record: Any) -> None:
        conn = self.connection(record)
        if conn is None:
            return
        who = self.who(record.src)
        if who is not None:
            who.messages += 1
        valid = [d for d in record.deviations if d.rule not in _DEVIATION_RULES]
        self.verdict(record.src, record.frame, "ipfs/valid",
                     f"{valid[0].rule}: {valid[0].message}" if valid else None)
        handler = getattr(self, f"_on_{record.message}", None)
        if handler is not None:
            handler(conn, record)

    def _on_multistream(self, conn: _Connection, r: Any) -> None:
        key = (r.src, r.fields.get("stream_id"), r.fields.get("layer"))
        if key in conn.opened:
            return
        conn.opened.add(key)
        line = r.fields["line"]
        self.verdict(r.src, r.frame, "ipfs/multistream/header",
                     None if line == HEADER else f"the first line is {line!r}")

    def _on_noise_handshake(self, conn: _Connection, r: Any) -> None:
        step = r.fields["step"]
        if step == 1:
            conn.dialer = r.src
        expected = len(conn.steps) + 1
        sender_ok = conn.dialer is not None and (r.src == conn.dialer) == (step != 2)
        why = None
        if step != expected or not sender_ok:
            why = f"handshake message {step} where message {expected} was due"
        elif step == 1 and r.fields.get("payload"):
            why = "message 1 carries a payload (libp2p sends only e)"
        conn.steps.append((r.src, step))
        self.verdict(r.src, r.frame, "ipfs/noise/xx-handshake", why)
        self._frame_size(r)
        if "signature" in r.fields:
            ok = r.fields["signature"] == "valid"
            self.verdict(r.src, r.frame, "ipfs/noise/signed-static-key",
                         None if ok else r.fields["signature"])
            if ok and r.fields.get("peer_id"):
                conn.peers[r.src] = PeerId.from_text(r.fields["peer_id"])

    def _on_noise_transport(self, conn: _Connection, r: Any) -> None:
        self._frame_size(r)

    def _frame_size(self, r: Any) -> None:
        size = r.length - 2
        self.verdict(r.src, r.frame, "ipfs/noise/frame-size",
                     None if size <= MAX_NOISE_MESSAGE else f"a {size}-byte Noise message")

    def _on_undecoded(self, conn: _Connection, r: Any) -> None:
        for d in r.deviations:
            if d.message.startswith("yamux header"):
                self.verdict(r.src, r.frame, "ipfs/yamux/version-0", d.message)

    # -- yamux -------------------------------------------------------------------------------

    def _on_yamux(self, conn: _Connection, r: Any) -> None:
        h = r.value
        self.verdict(r.src, r.frame, "ipfs/yamux/version-0", None)
        other = r.dst
        if h.type == "ping":
            if h.flags.SYN:
                pending = conn.pings.setdefault(r.src, set())
                if len(pending) < 64:
                    pending.add(h.length)
            elif h.flags.ACK:
                pending = conn.pings.get(other, set())
                ok = h.length in pending
                pending.discard(h.length)
                self.verdict(r.src, r.frame, "ipfs/yamux/ping-echo",
                             None if ok else f"a ping ACK with opaque {h.length} nobody sent")
            return
        if h.stream_id == 0 or h.type not in ("data", "window_update"):
            return
        s = conn.streams.get(h.stream_id)
        if s is None:
            if len(conn.streams) >= MAX_STREAMS_PER_CONNECTION:
                return
            s = conn.streams[h.stream_id] = _Stream()
        if h.flags.SYN and s.opener is None:
            s.opener = r.src
            odd = h.stream_id % 2 == 1
            dialer = conn.dialer is None or r.src == conn.dialer
            self.verdict(r.src, r.frame, "ipfs/yamux/server-even-ids",
                         None if odd == dialer else
                         f"{'dialer' if dialer else 'listener'} opened stream {h.stream_id}")
        elif s.opener is not None and s.opener != r.src and not s.acked:
            s.acked = True
            ok = h.flags.ACK or h.flags.RST
            self.verdict(r.src, r.frame, "ipfs/yamux/ack-new-stream",
                         None if ok else f"stream {h.stream_id}'s first answer has no ACK")
        if h.type == "window_update":
            s.granted[other] = s.granted.get(other, 0) + h.length
        elif h.length:
            if r.src in s.fin:
                self.verdict(r.src, r.frame, "ipfs/yamux/fin-half-close",
                             f"{h.length} bytes on stream {h.stream_id} after its FIN")
            s.sent[r.src] = s.sent.get(r.src, 0) + h.length
            window = INITIAL_WINDOW + s.granted.get(r.src, 0)
            self.verdict(r.src, r.frame, "ipfs/yamux/window",
                         None if s.sent[r.src] <= window else
                         f"{s.sent[r.src]} bytes on stream {h.stream_id}, window {window}")
        if h.flags.FIN:
            if r.src not in s.fin:
                self.verdict(r.src, r.frame, "ipfs/yamux/fin-half-close", None)
            s.fin.add(r.src)

    # -- stream messages ---------------------------------------------------------------------

    def _on_identify(self, conn: _Connection, r: Any) -> None:
        m = r.value
        proved = conn.peers.get(r.src)
        if proved is not None:
            try:
                told = PeerId.from_public_key(m.publicKey) if m.publicKey else None
            except (P2PKitError, ValueError) as e:
                told, why = None, f"publicKey does not decode: {e}"
            else:
                why = None if told == proved else f"publicKey is {told}'s, Noise proved {proved}"
            self.verdict(r.src, r.frame, "ipfs/identify/public-key", why)
        bad = None
        for raw in m.listenAddrs:
            try:
                Multiaddr.from_bytes(raw)
            except P2PKitError as e:
                bad = f"listenAddrs entry {raw.hex()} is no multiaddr: {e}"
                break
        self.verdict(r.src, r.frame, "ipfs/identify/listen-addrs", bad)
        host, _, port = r.dst.rpartition(":")
        host = host.strip("[]")
        why = "no observedAddr"
        if m.observedAddr:
            try:
                values = {n: str(v) for n, v in Multiaddr.from_bytes(m.observedAddr)}
                why = None if (values.get("tcp") == port and
                               values.get("ip4", values.get("ip6")) == host) else \
                    f"observedAddr {Multiaddr.from_bytes(m.observedAddr)}, the receiver is {r.dst}"
            except P2PKitError as e:
                why = f"observedAddr is no multiaddr: {e}"
        self.verdict(r.src, r.frame, "ipfs/identify/observed-addr", why)
        self.verdict(r.src, r.frame, "ipfs/identify/agent-version",
                     None if m.agentVersion else "no agentVersion")
        self.verdict(r.src, r.frame, "ipfs/identify/protocol-version",
                     None if m.protocolVersion else "no protocolVersion")
        who = self.who(r.src)
        if who is not None and m.agentVersion:
            who.implementation = m.agentVersion

    def _on_kad_dht(self, conn: _Connection, r: Any) -> None:
        m = r.value
        s = conn.streams.get(r.fields["stream_id"])
        if s is None or s.opener is None:
            return
        kind = str(m.type)
        if kind in ("ADD_PROVIDER", "GET_PROVIDERS") and r.src == s.opener:
            self.verdict(r.src, r.frame, "ipfs/kad/provider-key",
                         None if provider_key_valid(m.key) else
                         f"{kind} key {bytes(m.key).hex()} is no CID multihash")
        if r.src == s.opener:
            if len(s.requests) < 64:
                s.requests.append(kind)
            return
        # ADD_PROVIDER may be echoed (ipfs-kad-dht §Content Provider Advertisement) or not
        # (go and js answer nothing): an unanswered one is skipped
        while s.requests and s.requests[0] == "ADD_PROVIDER" and kind != "ADD_PROVIDER":
            s.requests.pop(0)
        asked = s.requests.pop(0) if s.requests else None
        self.verdict(r.src, r.frame, "ipfs/kad/response-type",
                     None if asked == kind else f"answered {kind} to {asked or 'no request'}")
        if kind in ("FIND_NODE", "GET_PROVIDERS"):
            why = f"{len(m.closerPeers)} closerPeers, more than k = {K}" \
                if len(m.closerPeers) > K else None
            for peer in m.closerPeers:
                if why is None and (bad := _peer_ok(peer)) is not None:
                    why = f"closerPeers entry: {bad}"
            self.verdict(r.src, r.frame, "ipfs/kad/find-node", why)

    def _on_bitswap(self, conn: _Connection, r: Any) -> None:
        m = r.value
        self.verdict(r.src, r.frame, "ipfs/bitswap/message-size",
                     None if r.length <= MAX_BITSWAP_MESSAGE_LENGTH + 10 else
                     f"a {r.length}-byte message")
        other = r.dst
        if m.wantlist:
            wanted = conn.wanted.setdefault(r.src, set())
            pending = conn.dont_have.setdefault(r.src, {})
            for entry in m.wantlist.entries:
                try:
                    cid = Cid.from_bytes(entry.block)
                except P2PKitError:
                    continue
                if entry.cancel:
                    pending.pop(cid, None)
                    continue
                if len(wanted) < 100_000:
                    wanted.add(cid)
                if entry.sendDontHave and len(pending) < 100_000:
                    pending[cid] = r
        answered = conn.dont_have.get(other, {})
        for block in m.payload:
            try:
                cid = cid_from_prefix(block.prefix, block.data)
            except P2PKitError as e:
                self.verdict(r.src, r.frame, "ipfs/bitswap/block-matches-cid",
                             f"a block whose prefix does not give a CID: {e}")
                continue
            asked = conn.wanted.get(other, set())
            ok = cid in asked or any(c.multihash == cid.multihash for c in asked)
            self.verdict(r.src, r.frame, "ipfs/bitswap/block-matches-cid",
                         None if ok else f"block {cid} was not asked for")
            self._answered(answered, cid, r)
        for presence in m.blockPresences:
            try:
                self._answered(answered, Cid.from_bytes(presence.cid), r)
            except P2PKitError:
                continue

    def _answered(self, pending: dict[Cid, Any], cid: Cid, r: Any) -> None:
        if pending.pop(cid, None) is not None:
            self.verdict(r.src, r.frame, "ipfs/bitswap/dont-have", None)

    # -- the end -----------------------------------------------------------------------------

    def finish(self) -> None:
        for conn in self.connections.values():
            for pending in conn.dont_have.values():
                for cid, request in pending.items():
                    self.verdict(request.dst, request.frame, "ipfs/bitswap/dont-have",
                                 f"no block, Have or DontHave for {cid}")
        self.connections.clear()



def judge_ipfs(records: Iterable[Any], report: CaptureReport,
               endpoint: str | None = None) -> CaptureReport:
    """Apply :data:`RULES` to the ``ipfs`` records of a capture (only ``endpoint``'s, when
    given), in capture order."""
    judge = IpfsJudge(report, endpoint)
    for record in records:
        if record.protocol == PROTOCOL:
            judge.record(record)
    judge.finish()
    return report
