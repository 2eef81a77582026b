"""The BitTorrent catalog can fail: mutants of p2pkit's peer, each breaking one rule, fail
exactly the cases that name that rule (``Case.rule`` or ``Case.depends``) and no other.

The peer is patched in-process (the seeder runs in the test's event loop); the mutants run
the catalog without its INFO cases (never failures) and its PEX cases (a seed of one
connection sends no PEX: unsupported whatever the mutant)."""

from __future__ import annotations

from pathlib import Path

import pytest

from p2pkit.bittorrent.peer import connection as connection_module
from p2pkit.bittorrent.peer import events as ev
from p2pkit.bittorrent.peer import session as session_module
from p2pkit.bittorrent.peer.connection import PeerConnection
from p2pkit.bittorrent.peer.session import TorrentSession
from p2pkit.bittorrent.wire.messages import PSTR, PeerMessage
from p2pkit.conformance import catalog
from tests.conformance.bt_helpers import run_against_own_seeder
from tests.conformance.test_bt_own_peer import KNOWN_MUST_DEVIATIONS, KNOWN_V2_DEVIATIONS

CASES = [c for c in catalog("bittorrent")
         if c.level != "INFO" and not c.id.startswith("bittorrent/bep11/")]
#: The seeder's own deviations (hybrid torrent), there with or without a mutant.
BASELINE = KNOWN_MUST_DEVIATIONS | KNOWN_V2_DEVIATIONS


def _expected(*rules: str) -> set[str]:
    return {c.id for c in CASES if set(c.rules) & set(rules)}


def _rewrite_sent(monkeypatch: pytest.MonkeyPatch, kind: type, change) -> None:
    """Rewrite the bytes the peer builds for events of ``kind``."""
    original = PeerConnection.send

    def send(self, event, now):
        data = original(self, event, now)
        return change(self, data) if isinstance(event, kind) else data
    monkeypatch.setattr(PeerConnection, "send", send)


def _set_receiver(monkeypatch: pytest.MonkeyPatch, kind: str, handler) -> None:
    monkeypatch.setattr(PeerConnection, "_on_" + kind, handler)
    monkeypatch.setitem(connection_module._RECEIVERS, kind, handler)


def mutant_wrong_pstr(monkeypatch: pytest.MonkeyPatch) -> None:
    _rewrite_sent(monkeypatch, ev.Handshake,
                  lambda conn, data: data.replace(PSTR, b"BitTorrent protocoX", 1))


def mutant_info_hash_not_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    _rewrite_sent(monkeypatch, ev.Handshake, lambda conn, data: data[:28] + bytes(
        b ^ 0xFF for b in data[28:48]) + data[48:])


def mutant_bitfield_spare_bits(monkeypatch: pytest.MonkeyPatch) -> None:
    _rewrite_sent(monkeypatch, ev.Bitfield,
                  lambda conn, data: data[:-1] + bytes([data[-1] | 0x01]))


def mutant_piece_outside_bitfield(monkeypatch: pytest.MonkeyPatch) -> None:
    """Announces every piece but 0 in its bitfield, and serves piece 0 all the same."""
    _rewrite_sent(monkeypatch, ev.Bitfield,
                  lambda conn, data: data[:5] + bytes([data[5] & 0x7F]) + data[6:])


def mutant_no_reject_on_choke(monkeypatch: pytest.MonkeyPatch) -> None:
    original = PeerConnection._on_request

    def on_request(self, msg, now):
        queued = len(self._outgoing)
        original(self, msg, now)
        if self.am_choking:
            del self._outgoing[queued:]  # the reject BEP 6 asks for is never sent
    _set_receiver(monkeypatch, "request", on_request)


def mutant_bitfield_after_have_all(monkeypatch: pytest.MonkeyPatch) -> None:
    original = TorrentSession._on_Interested

    def on_interested(self, peer, state, event, now):
        original(self, peer, state, event, now)
        if state.conn.fast:
            bits = bytes([0xFF]) * ((self.picker.piece_count + 7) // 8)
            state.out.append(PeerMessage.build(dict(type="bitfield", bitfield=bits)))
    monkeypatch.setattr(TorrentSession, "_on_Interested", on_interested)
    monkeypatch.setitem(session_module._HANDLERS, ev.Interested, on_interested)


def mutant_have_all_and_bitfield(monkeypatch: pytest.MonkeyPatch) -> None:
    original = TorrentSession._after_geometry

    def after_geometry(self, peer, now):
        fast = self.peers[peer].conn.fast
        original(self, peer, now)
        if fast and peer in self.peers:
            bits = bytes([0xFF]) * ((self.picker.piece_count + 7) // 8)
            self.peers[peer].out.append(PeerMessage.build(dict(type="bitfield",
                                                               bitfield=bits)))
    monkeypatch.setattr(TorrentSession, "_after_geometry", after_geometry)


def mutant_request_beyond_piece_end(monkeypatch: pytest.MonkeyPatch) -> None:
    """Checks a request's index, not where its block ends (reads run into the next piece)."""
    monkeypatch.setattr(PeerConnection, "_check_block",
                        lambda self, index, begin, length, what: self._check_index(index, what))


def mutant_keep_alive_closes(monkeypatch: pytest.MonkeyPatch) -> None:
    def on_keep_alive(self, msg, now):
        raise self._fail("keep-alive")
    _set_receiver(monkeypatch, "keep_alive", on_keep_alive)


def mutant_unrequested_piece_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    original = PeerConnection._on_piece

    def on_piece(self, msg, now):
        if (msg["index"], msg["begin"], len(msg["piece"])) not in self._sent:
            self.unrequested_bytes += len(msg["piece"])  # kept quiet, even with BEP 6
            return
        original(self, msg, now)
    _set_receiver(monkeypatch, "piece", on_piece)


def mutant_unknown_msg_type_closes(monkeypatch: pytest.MonkeyPatch) -> None:
    """The seeder before issue 11: a ut_metadata msg_type it does not know closes."""
    monkeypatch.setattr(connection_module, "_unknown_msg_type", lambda payload: False)


def mutant_no_leaf_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """The seeder before issue 11: base-layer-0 hash requests are rejected."""
    monkeypatch.setattr(TorrentSession, "_leaf_pieces", lambda self, event: None)


MUTANTS = [
    (mutant_wrong_pstr, ("bep3/handshake/pstr",)),
    (mutant_info_hash_not_echoed, ("bep3/handshake/info-hash-echo",)),
    (mutant_bitfield_spare_bits, ("bep3/bitfield/spare-bits",)),
    (mutant_piece_outside_bitfield, ("bep3/piece/announced",)),
    (mutant_no_reject_on_choke, ("bep6/reject/on-choke",)),
    (mutant_bitfield_after_have_all, ("bep6/have/only-first",)),
    (mutant_have_all_and_bitfield, ("bep6/have/exactly-one",)),
    (mutant_request_beyond_piece_end, ("bep3/request/block-bounds",)),
    (mutant_keep_alive_closes, ("bep3/keep-alive",)),
    (mutant_unrequested_piece_kept, ("bep6/piece/unrequested",)),
    (mutant_unknown_msg_type_closes, ("bep9/unknown-msg-type",)),
    (mutant_no_leaf_hashes, ("bep52/hash-request/leaf-layer",)),
]


@pytest.mark.parametrize(("mutate", "rules"), MUTANTS, ids=[m.__name__ for m, _ in MUTANTS])
def test_mutant_fails_exactly_its_cases(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        mutate, rules: tuple[str, ...]) -> None:
    mutate(monkeypatch)
    expected = _expected(*rules)
    assert expected, f"no case names {rules}"
    report = run_against_own_seeder(tmp_path, CASES, check_target=False, timeout=1.0)
    failing = {r.case.id for r in report.results if r.verdict in (
        "fail", "non-strict", "target-died", "skipped")}
    assert failing - BASELINE == expected - BASELINE, {
        "unexpected": sorted(failing - expected - BASELINE),
        "missed": sorted(expected - failing - BASELINE)}
