"""The IPFS catalog can fail: mutants of p2pkit's node, each breaking one rule, fail exactly
the cases that name that rule (``Case.rule`` or ``Case.depends``) and no other.

The node runs in the test's event loop, in the same process as the harness: every mutant
patches only the node's side (the responder / yamux server / listener), never the harness's
initiator cores."""

from __future__ import annotations

import pytest

from p2pkit.conformance import catalog
from p2pkit.ipfs import bitswap, kad_dht, multistream, noise, yamux
from p2pkit.ipfs.bitswap_messages import BitswapMessageFrame
from p2pkit.ipfs.host import Host
from p2pkit.ipfs.keys import Ed25519Identity
from p2pkit.ipfs.noise_payload import NoiseHandshakePayload
from p2pkit.ipfs.peer_id import PeerId
from tests.conformance.ipfs_helpers import run_against_own_node

CASES = [c for c in catalog("ipfs") if c.level != "INFO"]


def _expected(*rules: str) -> set[str]:
    return {c.id for c in CASES if set(c.rules) & set(rules)}


def mutant_signature_unchecked(monkeypatch: pytest.MonkeyPatch) -> None:
    """The responder takes the identity key without checking identity_sig."""
    original = noise.NoiseSession._authenticate

    def authenticate(self, payload):
        if self.initiator:
            return original(self, payload)
        parsed = NoiseHandshakePayload.parse(payload)
        muxers = tuple(parsed.extensions.stream_muxers) if parsed.extensions else ()
        return PeerId.from_public_key(parsed.identity_key), parsed.identity_key, muxers
    monkeypatch.setattr(noise.NoiseSession, "_authenticate", authenticate)


def mutant_pong_wrong_opaque(monkeypatch: pytest.MonkeyPatch) -> None:
    """The yamux server answers a ping with another opaque value."""
    original = yamux.YamuxSession._header

    def header(self, type_, sid, length, **flags):
        if type_ == "ping" and flags.get("ACK") and not self.client:
            length = (length + 1) & 0xFFFFFFFF
        original(self, type_, sid, length, **flags)
    monkeypatch.setattr(yamux.YamuxSession, "_header", header)


def mutant_no_na(monkeypatch: pytest.MonkeyPatch) -> None:
    """The listener answers an unknown protocol with "not available" instead of ``na``."""
    original = multistream.MultistreamNegotiation._write

    def write(self, line):
        original(self, "not available" if line == multistream.NA and not self.dialer
                 else line)
    monkeypatch.setattr(multistream.MultistreamNegotiation, "_write", write)


def mutant_identify_foreign_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """Identify carries another identity's public key."""
    original = Host.identify_message
    other = Ed25519Identity(b"\x07" * 32)

    def identify_message(self, connection):
        return {**original(self, connection), "publicKey": other.public_key}
    monkeypatch.setattr(Host, "identify_message", identify_message)


def mutant_provider_any_peer(monkeypatch: pytest.MonkeyPatch) -> None:
    """ADD_PROVIDER records every providerPeers entry, whoever sent it."""
    def add(self, request, sender, now):
        if not kad_dht.provider_key_valid(request.key):
            return None
        for p in request.providerPeers:
            self.add_provider(request.key, PeerId(p.id), list(p.addrs), now)
        return None
    monkeypatch.setattr(kad_dht.KadDhtServer, "_add_provider", add)


def mutant_block_corrupted(monkeypatch: pytest.MonkeyPatch) -> None:
    """Bitswap sends the block with one byte changed."""
    original = bitswap.BitswapEngine._answers

    def answers(self, ledger):
        out = original(self, ledger)
        for message in out:
            message["payload"] = [{**b, "data": bytes([b["data"][0] ^ 1]) + b["data"][1:]}
                                  for b in message.get("payload", [])]
        return out
    monkeypatch.setattr(bitswap.BitswapEngine, "_answers", answers)


def mutant_no_ack(monkeypatch: pytest.MonkeyPatch) -> None:
    """The yamux server accepts streams without ever sending ACK."""
    original = yamux.YamuxSession._ack_flags

    def ack_flags(self, stream):
        if self.client:
            return original(self, stream)
        stream.ack_pending = False
        return {}
    monkeypatch.setattr(yamux.YamuxSession, "_ack_flags", ack_flags)


def mutant_bitswap_answers_on_s_want(monkeypatch: pytest.MonkeyPatch) -> None:
    """Bitswap answers come back on the stream the wants came on (what py-libp2p 0.8.1
    does), not on a stream of the node's own."""
    from p2pkit.ipfs.host import HostConnection

    async def send_bitswap(self, messages, timeout=10.0):
        sid = next(reversed(self._bitswap_in))
        for message in messages:
            self._write(self.core.send_stream(sid, BitswapMessageFrame.build(message),
                                              self._now()))
    monkeypatch.setattr(HostConnection, "send_bitswap", send_bitswap)


MUTANTS = [
    (mutant_signature_unchecked, ("ipfs/noise/verify-signature",)),
    (mutant_pong_wrong_opaque, ("ipfs/yamux/ping",)),
    (mutant_no_na, ("ipfs/multistream/na",)),
    (mutant_identify_foreign_key, ("ipfs/identify/public-key",)),
    (mutant_provider_any_peer, ("ipfs/kad/provider-sender",)),
    (mutant_block_corrupted, ("ipfs/bitswap/block-cid",)),
    (mutant_no_ack, ("ipfs/yamux/ack",)),
    # the other Bitswap cases judge the answer wherever it comes: only these two fail
    (mutant_bitswap_answers_on_s_want, ("ipfs/bitswap/s-receive",)),
]


@pytest.mark.parametrize(("mutate", "rules"), MUTANTS, ids=[m.__name__ for m, _ in MUTANTS])
def test_mutant_fails_exactly_its_cases(monkeypatch: pytest.MonkeyPatch, mutate,
                                        rules: tuple[str, ...]) -> None:
    mutate(monkeypatch)
    expected = _expected(*rules)
    assert expected, f"no case names {rules}"
    report = run_against_own_node(CASES, check_target=False, timeout=1.0)
    report.strict = True
    failing = {r.case.id for r in report.results if r.verdict in (
        "fail", "non-strict", "target-died", "skipped")}
    assert failing == expected, {"unexpected": sorted(failing - expected),
                                 "missed": sorted(expected - failing)}
