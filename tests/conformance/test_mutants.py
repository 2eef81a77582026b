"""The suite can fail: mutants of p2pkit's DHT node, each breaking one rule, fail exactly the
cases that name that rule (``Case.rule`` or ``Case.depends``) and no other."""

from __future__ import annotations

import pytest

from p2pkit import bencode
from p2pkit.conformance import catalog
from p2pkit.conformance.runner import TargetError
from p2pkit.dht import node as node_module
from p2pkit.dht.items import ItemStore
from p2pkit.dht.node import Node
from p2pkit.dht.tokens import Tokens
from tests.conformance.helpers import not_passing, run_against_own_node
from tests.conformance.test_own_node import KNOWN_SHOULD_DEVIATIONS


def _expected(*rules: str) -> set[str]:
    return {c.id for c in catalog("dht") if set(c.rules) & set(rules)}


def _rewrite_last(node: Node, change) -> None:
    """Apply ``change`` to the bencoded dictionary of the datagram the node queued last."""
    data, addr = node._outbox[-1]
    raw = bencode.decode(data)
    change(raw)
    node._outbox[-1] = (bencode.encode(raw), addr)


def mutant_transaction_id(monkeypatch: pytest.MonkeyPatch) -> None:
    original = Node._reply
    monkeypatch.setattr(Node, "_reply", lambda self, message, t, addr: original(
        self, message, t + b"!", addr))


def mutant_token_unchecked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Tokens, "check", lambda self, token, ip, now: True)


def mutant_wrong_error_code(monkeypatch: pytest.MonkeyPatch) -> None:
    original = Node._reply

    def reply(self, message, t, addr):
        if message.get("y") == "e" and int(message.e.code) == 204:
            message.e.code = 203  # "Method Unknown" reported as a protocol error
        return original(self, message, t, addr)
    monkeypatch.setattr(Node, "_reply", reply)


def mutant_ping_id_length(monkeypatch: pytest.MonkeyPatch) -> None:
    original = Node._answer_ping

    def answer_ping(self, msg, addr, now):
        answer = original(self, msg, addr, now)
        self._mutate_next = True
        return answer

    reply = Node._reply

    def reply_then_cut(self, message, t, addr):
        reply(self, message, t, addr)
        if getattr(self, "_mutate_next", False):
            self._mutate_next = False
            _rewrite_last(self, lambda raw: raw[b"r"].__setitem__(b"id", raw[b"r"][b"id"][:19]))
    monkeypatch.setattr(Node, "_answer_ping", answer_ping)
    monkeypatch.setitem(node_module._HANDLERS, "ping", answer_ping)
    monkeypatch.setattr(Node, "_reply", reply_then_cut)


def mutant_implied_port_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    original = Node._answer_announce_peer

    def announce(self, msg, addr, now):
        msg.a.pop("implied_port", None)
        return original(self, msg, addr, now)
    monkeypatch.setattr(Node, "_answer_announce_peer", announce)
    monkeypatch.setitem(node_module._HANDLERS, "announce_peer", announce)


def mutant_no_ip_field(monkeypatch: pytest.MonkeyPatch) -> None:
    reply = Node._reply

    def reply_without_ip(self, message, t, addr):
        reply(self, message, t, addr)
        _rewrite_last(self, lambda raw: raw.pop(b"ip", None))
    monkeypatch.setattr(Node, "_reply", reply_without_ip)


def mutant_seq_unchecked(monkeypatch: pytest.MonkeyPatch) -> None:
    original = ItemStore.put

    def put(self, arguments, now):
        if arguments.get("k") is not None and arguments.get("cas") is None:
            salt = arguments.get("salt") or b""
            from p2pkit.dht.items import mutable_target
            target = mutable_target(arguments.k, salt)
            stored = self.get(target, now)
            if stored is not None and stored.seq >= arguments.seq:
                self._items.pop(target, None)  # forget the newer item: any seq is accepted
        return original(self, arguments, now)
    monkeypatch.setattr(ItemStore, "put", put)


MUTANTS = [
    (mutant_transaction_id, ("krpc/transaction-id",)),
    (mutant_token_unchecked, ("dht/token/checked",)),
    (mutant_wrong_error_code, ("bep5/errors/method-unknown",)),
    (mutant_ping_id_length, ("bep5/ping/response",)),
    (mutant_implied_port_ignored, ("bep5/announce_peer/implied-port",)),
    (mutant_no_ip_field, ("bep42/ip-field",)),
    (mutant_seq_unchecked, ("bep44/seq",)),
]


@pytest.mark.parametrize(("mutate", "rules"), MUTANTS, ids=[m.__name__ for m, _ in MUTANTS])
def test_mutant_fails_exactly_its_cases(monkeypatch: pytest.MonkeyPatch, mutate,
                                        rules: tuple[str, ...]) -> None:
    mutate(monkeypatch)
    expected = _expected(*rules)
    assert expected, f"no case names {rules}"
    report = run_against_own_node()
    # the node's own (SHOULD) deviations stay; the mutant adds exactly the cases of its rule
    assert not_passing(report) == expected | KNOWN_SHOULD_DEVIATIONS
    assert not any(r.verdict == "target-died" for r in report.results)


def test_mutant_that_ignores_queries(monkeypatch: pytest.MonkeyPatch) -> None:
    """A target that answers nothing is not a DHT node: the run refuses to start."""
    monkeypatch.setattr(Node, "_on_query", lambda self, msg, addr, now: None)
    with pytest.raises(TargetError, match="no answer to a KRPC ping"):
        run_against_own_node(timeout=0.5)
    # Forced past the check, every case fails, as target-died: nothing answers the probe.
    from p2pkit.conformance.case import select
    report = run_against_own_node(select(catalog("dht"), ["dht/bep5/ping/*"]),
                                  check_target=False, timeout=0.5)
    assert {r.verdict for r in report.results} == {"target-died"}
