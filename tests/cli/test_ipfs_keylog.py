"""``--keylog`` on the IPFS commands that dial: tests/data/captures/ipfs-04-p2pkit-cli-keylog
(recorded by tests/cli/ipfs_keylog_capture_scenario.py inside ``unshare -n``: ``ipfs serve``
without a key log, dialed by ``ipfs ping``, ``identify``, ``dht provide``, ``dht
find-providers`` and ``get``, each with ``--keylog``) decrypts completely with the key log
those commands wrote; the option's errors are one line."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from p2pkit.capture.dissect import dissect
from p2pkit.cli import cli
from p2pkit.ipfs.noise_keylog import parse_noise_keylog

CAPTURE = Path(__file__).parents[1] / "data" / "captures" / "ipfs-04-p2pkit-cli-keylog.pcap"
KEYLOG = CAPTURE.with_suffix(".keylog")


def _sessions(records) -> set:
    return {frozenset((r.src, r.dst)) for r in records if r.message == "noise_handshake"}


def test_the_dialing_commands_key_log_decrypts_every_session():
    keylog = parse_noise_keylog(KEYLOG.read_text())
    records = list(dissect(CAPTURE, secrets={"ipfs": keylog}))
    assert {r.protocol for r in records} == {"ipfs"}
    assert not [r for r in records if r.message == "undecoded" or r.deviations]
    sessions = _sessions(records)
    # one NOISE_SECRETS line per connection: the server wrote none, the commands all of them
    assert len(keylog) == len(sessions) >= 5
    transport = [r for r in records if r.message == "noise_transport"]
    # eight connections: ping, identify, provide (seed dial, lookup, ADD_PROVIDER),
    # find-providers (seed dial, lookup), get; the two seed dials close right after the
    # handshake (they only learn the server's peer id), the six others carry traffic
    assert len(sessions) == 8
    assert len({frozenset((r.src, r.dst)) for r in transport}) == 6
    assert all(r.fields["decrypted"] == r.fields["encrypted"] - 16 for r in transport)
    names = {r.message for r in records}
    assert {"yamux", "ping", "identify", "kad_dht", "bitswap"} <= names
    kad = {r.value.type for r in records if r.message == "kad_dht"}
    assert {"FIND_NODE", "ADD_PROVIDER", "GET_PROVIDERS"} <= kad
    # without the key log: the same sessions, encrypted, nothing decoded inside
    clear = list(dissect(CAPTURE))
    assert _sessions(clear) == sessions
    assert not {"yamux", "ping", "identify", "kad_dht", "bitswap"} & {r.message for r in clear}


def test_every_dialing_command_takes_keylog_and_a_bad_path_is_one_line(tmp_path):
    runner = CliRunner()
    for argv in (["ipfs", "ping"], ["ipfs", "identify"], ["ipfs", "get"],
                 ["ipfs", "dht", "find-providers"], ["ipfs", "dht", "find-peer"],
                 ["ipfs", "dht", "provide"], ["ipfs", "dht", "put"], ["ipfs", "dht", "get"],
                 ["ipfs", "name", "publish"], ["ipfs", "name", "resolve"]):
        out = runner.invoke(cli, [*argv, "--help"])
        assert out.exit_code == 0 and "--keylog FILE" in out.output, argv
    bad = tmp_path / "missing" / "keys.log"
    out = runner.invoke(cli, ["ipfs", "ping", "/ip4/127.0.0.1/tcp/9", "--keylog", str(bad)])
    assert out.exit_code != 0 and "Traceback" not in out.output
    assert str(bad) in out.output and len(out.output.strip().splitlines()) == 1
