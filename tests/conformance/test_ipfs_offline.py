"""``conformance check --keylog`` on libp2p captures: the IPFS rules judge every endpoint of
tests/data/captures/ipfs-03 (p2pkit ↔ js-libp2p 3.3.11 and Helia 7, decrypted with the key
log p2pkit's host wrote); records of that capture edited to break a rule are caught at the
edited frame, and only by that rule; ipfs-01, ipfs-02 (re-recorded with key logs) and ipfs-04
(the dialing CLI commands' own key log) are judged decrypted too."""

from __future__ import annotations

import copy
import dataclasses
import json

import pytest

from p2pkit.capture.dissect import dissect
from p2pkit.conformance.ipfs.offline import RULES, judge_ipfs
from p2pkit.conformance.offline import CaptureReport, check_capture
from p2pkit.ipfs.keys import Ed25519Identity
from p2pkit.ipfs.noise_keylog import parse_noise_keylog
from tests.conformance.test_cli import CAPTURES, _cli

CAPTURE = CAPTURES / "ipfs-03-p2pkit-js-libp2p-keylog.pcap"
KEYLOG = CAPTURE.with_suffix(".keylog")
JS = "js-libp2p/3.3.11 node/22.23.5"


@pytest.fixture(scope="module")
def records():
    return list(dissect(CAPTURE, secrets={"ipfs": parse_noise_keylog(KEYLOG.read_text())}))


def _judge(records):
    return judge_ipfs(records, CaptureReport(capture="edited"))


def _failed(report) -> dict[str, list]:
    return {rule: t.failures for e in report.endpoints.values() for rule, t in e.tallies.items()
            if t.failed}


def test_every_endpoint_passes_with_the_key_log():
    report = check_capture(CAPTURE, secrets={"ipfs": parse_noise_keylog(KEYLOG.read_text())})
    assert report.ok and not _failed(report)
    assert len(report.endpoints) == 7
    checked = {rule for e in report.endpoints.values() for rule, t in e.tallies.items()
               if t.checked}
    assert checked == set(RULES)  # every rule met at least once in real traffic
    js = [e for e in report.endpoints.values() if e.implementation == JS]
    assert len(js) == 1 and js[0].tallies["ipfs/kad/response-type"].checked == 3
    assert js[0].tallies["ipfs/noise/signed-static-key"].checked == 1


def test_without_keys_only_the_clear_part_is_judged():
    report = check_capture(CAPTURE)
    checked = {rule for e in report.endpoints.values() for rule, t in e.tallies.items()
               if t.checked}
    assert checked == {"ipfs/valid", "ipfs/multistream/header", "ipfs/noise/xx-handshake",
                       "ipfs/noise/frame-size"}


def _edit(records, message, predicate, change):
    """A copy of ``records`` where the first ``message`` record ``predicate`` accepts is
    changed by ``change(record)`` (on copies of it, its fields and its value)."""
    out = list(records)
    for i, r in enumerate(out):
        if r.message == message and predicate(r):
            edited = dataclasses.replace(r, fields=copy.deepcopy(r.fields),
                                         value=copy.deepcopy(r.value))
            change(edited)
            out[i] = edited
            return out, edited.frame
    raise AssertionError(f"no {message} record to edit")


def _other_key(r):
    r.value.publicKey = Ed25519Identity(bytes(range(5, 37))).public_key


def _window(r):
    r.value.length = 300 * 1024


def _corrupt_block(r):
    r.value.payload[0].data = b"x" + r.value.payload[0].data[1:]


def _answer_type(r):
    r.value.type = "PING"


def _forged(r):
    r.fields["signature"] = "noise: the identity signature of the static key does not verify"


def _odd_listener(r):
    r.value.stream_id = 9


@pytest.mark.parametrize("message,predicate,change,rule", [
    ("identify", lambda r: True, _other_key, "ipfs/identify/public-key"),
    ("yamux", lambda r: r.value.type == "data" and r.value.length > 1000, _window,
     "ipfs/yamux/window"),
    ("bitswap", lambda r: bool(r.value.payload), _corrupt_block,
     "ipfs/bitswap/block-matches-cid"),
    ("kad_dht", lambda r: r.fields["type"] == "FIND_NODE" and r.value.closerPeers,
     _answer_type, "ipfs/kad/response-type"),
    ("noise_handshake", lambda r: r.fields["step"] == 2, _forged,
     "ipfs/noise/signed-static-key"),
], ids=["public-key", "window", "block-cid", "kad-type", "signature"])
def test_an_edited_record_fails_its_rule(records, message, predicate, change, rule):
    edited, frame = _edit(records, message, predicate, change)
    failed = _failed(_judge(edited))
    assert set(failed) == {rule}
    assert failed[rule][0][0] == frame


def test_a_missing_handshake_message(records):
    """Drop the listener's handshake message: message 3 comes out of turn."""
    first = next(r for r in records if r.message == "noise_handshake" and r.fields["step"] == 2)
    kept = [r for r in records if r is not first and not (
        r.message == "noise_handshake" and r.src == first.src and r.dst == first.dst
        and r.fields["step"] == 2 and r.frame == first.frame)]
    failed = _failed(_judge(kept))
    assert "ipfs/noise/xx-handshake" in failed
    assert "message 3 where message 2 was due" in failed["ipfs/noise/xx-handshake"][0][1]


def test_cli_check_with_keylog():
    done = _cli("conformance", "check", str(CAPTURE), "--keylog", str(KEYLOG), "--json")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["ok"] and {e["implementation"] for e in doc["endpoints"]} >= {JS, "p2pkit/0.1.0"}
    done = _cli("conformance", "check", str(CAPTURE), "--keylog", "/nonexistent/k")
    assert done.returncode != 0 and len(done.stderr.strip().splitlines()) == 1
    assert "Traceback" not in done.stderr


def test_py_libp2p_endpoints_pass_with_the_key_log():
    # ipfs-05: p2pkit ↔ py-libp2p 0.8.1 both ways (tests/interop/test_py_libp2p_interop.py)
    capture = CAPTURES / "ipfs-05-p2pkit-py-libp2p-keylog.pcap"
    report = check_capture(capture, secrets={"ipfs": parse_noise_keylog(
        capture.with_suffix(".keylog").read_text())})
    assert report.ok and not _failed(report)
    py = [e for e in report.endpoints.values() if e.implementation == "py-libp2p/0.8.1"]
    assert len(py) == 2 and len(report.endpoints) == 4
    served = [e for e in py if e.tallies["ipfs/bitswap/block-matches-cid"].checked]
    assert len(served) == 1 and served[0].tallies["ipfs/kad/response-type"].checked == 4


#: The other libp2p captures recorded with a key log, and rules only decryption reaches.
KEYED = {
    "ipfs-01-p2pkit-hosts.pcap": {"ipfs/yamux/window", "ipfs/identify/public-key"},
    "ipfs-02-p2pkit-js-libp2p.pcap": {"ipfs/yamux/ping-echo", "ipfs/kad/response-type",
                                      "ipfs/kad/provider-key", "ipfs/identify/public-key"},
    "ipfs-04-p2pkit-cli-keylog.pcap": {"ipfs/kad/provider-key", "ipfs/bitswap/block-matches-cid",
                                       "ipfs/identify/public-key"},
}


@pytest.mark.parametrize("name", sorted(KEYED))
def test_the_other_keyed_captures_are_judged_decrypted(name):
    capture = CAPTURES / name
    keyed = check_capture(capture, secrets={"ipfs": parse_noise_keylog(
        capture.with_suffix(".keylog").read_text())})
    assert keyed.ok and not _failed(keyed)
    checked = {rule for e in keyed.endpoints.values() for rule, t in e.tallies.items()
               if t.checked}
    assert KEYED[name] <= checked
    clear = check_capture(capture)
    assert not KEYED[name] & {rule for e in clear.endpoints.values()
                              for rule, t in e.tallies.items() if t.checked}
