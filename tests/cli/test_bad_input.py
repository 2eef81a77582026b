"""Every subcommand, run as a new user might get it wrong: non-zero exit, one line, no traceback.

The table below holds bad arguments for each runnable command of the tree; a command added
without cases fails :func:`test_every_command_has_bad_input_cases`. Servers get ``--duration``
or ``--timeout`` with the bad argument, so a command that wrongly accepted it would still stop.
"""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from p2pkit.cli import cli
from tests.cli.conftest import leaves

H = "127.0.0.1"
HASH = "ab" * 20

#: Command path -> lists of arguments after it. ``{name}`` is filled from the ``files``
#: fixture, ``{busy}`` with the busy port.
CASES: dict[tuple[str, ...], list[list[str]]] = {
    ("bencode",): [["{missing}"], ["{dir}"], ["{empty}"], ["{garbage}"], ["-"], [],
                   ["--no-such-option", "{garbage}"]],
    ("bt", "info"): [["{missing}"], ["{dir}"], ["{empty}"], ["{garbage}"], ["-"], []],
    ("bt", "magnet"): [["not-a-magnet"], ["magnet:?xt=urn:btih:zz"], []],
    ("bt", "create"): [["{missing}", "-o", "{root}/x.torrent"],
                       ["{plain}", "-o", "{root}/x.torrent", "--v1", "--v2"],
                       ["{plain}", "-o", "{root}/x.torrent", "--v2", "--hybrid"],
                       ["{plain}", "-o", "{root}/x.torrent", "--piece-length", "1000"],
                       ["{plain}", "-o", "{missing}/x.torrent"],
                       ["{plain}", "-o", "{root}/x.torrent", "--tracker", "no-url"],
                       ["{plain}", "-o", "{root}/x.torrent", "--web-seed", "ftp:/x"],
                       ["{plain}"]],
    ("bt", "seed"): [["{missing}", "--data", "{data}", "--duration", "2"],
                     ["{empty}", "--data", "{data}", "--duration", "2"],
                     ["{dir}", "--data", "{data}", "--duration", "2"],
                     ["{torrent}", "--data", "{missing}", "--duration", "2"],
                     ["{torrent}", "--data", "{data}", "--listen", f"{H}:99999"],
                     ["{torrent}", "--data", "{data}", "--listen", f"{H}:{{busy}}",
                      "--no-trackers", "-q", "--duration", "2"],
                     ["{torrent}", "--data", "{data}", "--peer", "nowhere"],
                     ["{torrent}", "--data", "{dir}", "--listen", f"{H}:0", "--no-trackers",
                      "-q", "--duration", "2"],
                     ["{torrent}", "--data", "{data}", "--bootstrap", f"{H}:0"]],
    ("bt", "download"): [["{missing}", "-o", "{root}/dl", "--timeout", "2"],
                         ["{garbage}", "-o", "{root}/dl", "--timeout", "2"],
                         ["{torrent}", "-o", "{plain}", "--timeout", "2"],
                         ["{torrent}", "-o", "{root}/dl", "--peer", f"{H}:0"],
                         ["{torrent}", "-o", "{root}/dl", "--peer", "[::1"],
                         ["{torrent}", "-o", "{root}/dl", "--listen", f"{H}:{{busy}}",
                          "--no-trackers", "-q", "--timeout", "2"],
                         ["magnet:?xt=urn:btih:zz", "-o", "{root}/dl"]],
    ("bt", "tracker"): [["--listen", f"{H}:99999"], ["--listen", f"{H}:{{busy}}"],
                        ["--listen", f"{H}:0", "--allow", "abcd"], ["--no-http", "--no-udp"],
                        ["--listen", "::1:6969"]],
    ("dht", "serve"): [["--listen", f"{H}:99999"], ["--listen", f"{H}:{{busy}}"],
                       ["--listen", f"{H}:0", "--node-id", "zz", "--duration", "2"],
                       ["--listen", f"{H}:0", "--bootstrap", f"{H}:0", "--duration", "2"],
                       ["--listen", "nowhere", "--duration", "2"]],
    ("dht", "ping"): [["nowhere"], [f"{H}:99999"], ["[::1"], [],
                      [f"{H}:1", "--listen", f"{H}:{{busy}}", "--timeout", "2"]],
    ("dht", "find-node"): [["zz", "--bootstrap", f"{H}:1"], [HASH],
                           [HASH, "--bootstrap", "nowhere"]],
    ("dht", "get-peers"): [["zz", "--bootstrap", f"{H}:1"], [HASH],
                           [HASH, "--bootstrap", f"{H}:1", "--salt", "s"]],
    ("dht", "get"): [["zz", "--bootstrap", f"{H}:1"], [HASH, "--bootstrap", f"{H}:70000"]],
    ("dht", "announce"): [[HASH, "--bootstrap", f"{H}:1"],
                          [HASH, "--port", "0", "--bootstrap", f"{H}:1"],
                          ["zz", "--port", "1", "--bootstrap", f"{H}:1"]],
    ("dht", "put"): [["x", "--seed", "00", "--bootstrap", f"{H}:1"],
                     ["x", "--seq", "1", "--bootstrap", f"{H}:1"],
                     ["x", "--seed", "07" * 32, "--bootstrap", f"{H}:1"]],
    ("dht", "simulate"): [["--nodes", "0"], ["--nodes", "1"], ["--churn", "1"],
                          ["--loss", "-1"], ["--join", "no-such-join"], ["--lookups", "0"]],
    ("dissect",): [["{missing}"], ["{dir}"], ["{empty}"], ["{garbage}"], ["-"], [],
                   ["{garbage}", "--no-undecoded"], ["{missing}", "--no-undecoded"],
                   ["{garbage}", "--no-undecoded=yes"]],
    ("conformance", "run"): [["nosuch", "--target", f"{H}:6881"], ["dht"],
                             ["dht", "--target", f"{H}:99999"], ["dht", "--target", "nowhere"],
                             ["dht", "--target", f"{H}:6881", "--cases", "no/such/*"],
                             ["dht", "--target", f"{H}:6881", "--timeout", "0"],
                             ["tracker"], ["tracker", "--target", f"{H}:6969"],
                             ["tracker", "--target", "https://127.0.0.1/announce"],
                             ["tracker", "--target", "udp://127.0.0.1"],
                             ["tracker", "--target", "http://127.0.0.1:99999/announce"],
                             ["tracker", "--target", "http://[::1/announce"],
                             ["tracker", "--target", f"http://{H}:1/announce", "--timeout", "1"],
                             ["tracker", "--target", f"udp://{H}:1", "--timeout", "1"],
                             ["tracker", "--target", f"udp://{H}:6969", "--cases",
                              "tracker/bep3/*"],
                             ["bittorrent", "--target", f"{H}:1"],
                             ["bittorrent", "--target", f"{H}:1", "--torrent", "{missing}"],
                             ["bittorrent", "--target", f"{H}:1", "--torrent", "{dir}"],
                             ["bittorrent", "--target", f"{H}:1", "--torrent", "{garbage}"],
                             ["bittorrent", "--target", f"{H}:1", "--torrent", "{empty}"],
                             ["bittorrent", "--target", f"{H}:1", "--torrent", "-"],
                             ["bittorrent", "--target", f"{H}:1", "--magnet", "not-a-magnet"],
                             ["bittorrent", "--target", f"{H}:1", "--torrent", "{torrent}",
                              "--magnet", f"magnet:?xt=urn:btih:{HASH}"],
                             ["bittorrent", "--target", f"{H}:1", "--torrent", "{torrent}"],
                             ["bittorrent", "--torrent", "{torrent}"],
                             ["dht", "--target", f"{H}:6881", "--torrent", "{torrent}"],
                             ["dht", "--target", f"{H}:6881", "--magnet", "x"]],
    ("conformance", "record"): [["{missing}", "--endpoint", f"{H}:6881", "-o", "{root}/t"],
                                ["{garbage}", "--endpoint", f"{H}:6881", "-o", "{root}/t"],
                                ["{garbage}", "-o", "{root}/t"],
                                ["--proxy", f"{H}:0", "-o", "{root}/t", "--duration", "1"],
                                ["--proxy", f"{H}:0", "--to", "nowhere", "-o", "{root}/t"],
                                ["{missing}", "--endpoint", f"{H}:6881"]],
    ("conformance", "replay"): [["{missing}", "--target", f"{H}:6881"], ["{dir}", "--target",
                                f"{H}:6881"], ["no-such-trace", "--target", f"{H}:6881"],
                                [], ["{missing}"], ["{missing}", "--target", "nowhere"]],
    ("conformance", "check"): [["{missing}"], ["{dir}"], ["{empty}"], ["{garbage}"], ["-"], [],
                               ["{garbage}", "--endpoint", "nowhere"]],
    ("gnutella", "serve"): [["--listen", f"{H}:99999"], ["--listen", f"{H}:{{busy}}"],
                            ["--share", "{missing}", "--duration", "2"],
                            ["--share", "{plain}", "--duration", "2"],
                            ["--peer", "nowhere", "--duration", "2"]],
    ("gnutella", "search"): [["x"], ["x", "--peer", "nowhere"], ["x", "--peer", f"{H}:99999"],
                             ["--peer", f"{H}:1"], ["x", "--peer", f"{H}:1", "--urn", "bad"],
                             ["--peer", f"{H}:1", "--urn", "urn:sha1:bad"],
                             ["x", "--peer", f"{H}:1", "--timeout", "2"]],
    ("gnutella", "download"): [["x"], ["x", "--peer", "nowhere"], ["--peer", f"{H}:1"],
                               ["x", "--peer", f"{H}:1", "-o", "{plain}"],
                               ["x", "--peer", f"{H}:1", "--timeout", "2"]],
    ("gnutella", "simulate"): [["--nodes", "0"], ["--nodes", "1"], ["--ttl", "0"],
                               ["--ttl", "99"], ["--queries", "0"],
                               ["--topology", "no-such-topology"]],
    ("ipfs", "id"): [["notapeer"], ["/ip4/1.2.3.4/tcp/1"], ["--key", "{missing}"],
                     ["--key", "{garbage}"], ["--key", "{dir}"]],
    ("ipfs", "key"): [["{missing}/x.key"], ["{plain}"], []],
    ("ipfs", "add"): [["{missing}"], ["{dir}"], [], ["{plain}", "--profile", "nosuch"]],
    ("ipfs", "car", "export"): [["{missing}", "-o", "{root}/x.car"], ["{plain}"],
                                ["{plain}", "-o", "{missing}/x.car"]],
    ("ipfs", "car", "import"): [["{missing}"], ["{dir}"], ["{empty}"], ["{garbage}"], ["-"], []],
    ("ipfs", "serve"): [["--listen", f"/ip4/{H}/udp/1"], ["--listen", "nowhere"],
                        ["--listen", f"/ip4/{H}/tcp/{{busy}}", "--duration", "2"],
                        ["--listen", f"/ip4/{H}/tcp/0", "--key", "{garbage}", "--duration", "2"],
                        ["--listen", f"/ip4/{H}/tcp/0", "--car", "{garbage}", "--duration", "2"],
                        ["--listen", f"/ip4/{H}/tcp/0", "--bootstrap", "nowhere"],
                        ["--listen", f"/ip4/{H}/tcp/0", "--bootstrap", "/dns4/example.com/tcp/1"],
                        ["--listen", f"/ip4/{H}/tcp/0", "--refresh-interval", "0"]],
    ("ipfs", "ping"): [["nowhere"], [], [f"/ip4/{H}/tcp/1", "--timeout", "2"],
                       ["/dns4/example.com/tcp/1"], [f"/ip4/{H}/tcp/1", "--count", "0"]],
    ("ipfs", "identify"): [["nowhere"], [f"/ip4/{H}/tcp/1", "--timeout", "2"]],
    ("ipfs", "get"): [["notacid", "--peer", f"/ip4/{H}/tcp/1", "-o", "{root}/x"],
                      ["bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4",
                       "--peer", f"/ip4/{H}/tcp/1", "-o", "{root}/x", "--timeout", "2"],
                      ["bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4",
                       "-o", "{root}/x"]],
    ("ipfs", "dht", "find-providers"): [["notacid", "--peer", f"/ip4/{H}/tcp/1"],
                                        ["bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4"],
                                        ["bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4",
                                         "--peer", f"/ip4/{H}/tcp/1", "--timeout", "2"]],
    ("ipfs", "dht", "find-peer"): [["notapeer", "--peer", f"/ip4/{H}/tcp/1"],
                                   ["12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA",
                                    "--peer", "/dns4/example.com/tcp/1"]],
    ("ipfs", "dht", "provide"): [["notacid", "--peer", f"/ip4/{H}/tcp/1"],
                                 ["bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4",
                                  "--peer", f"/ip4/{H}/tcp/1", "--addr", "nowhere"]],
    ("ipfs", "dht", "put"): [["/v/x", "{plain}", "--peer", f"/ip4/{H}/tcp/1"],
                             ["/pk/notapeer", "{plain}", "--peer", f"/ip4/{H}/tcp/1"],
                             ["/pk/12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA",
                              "{garbage}", "--peer", f"/ip4/{H}/tcp/1"],
                             ["/ipns/12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA",
                              "{missing}", "--peer", f"/ip4/{H}/tcp/1"]],
    ("ipfs", "dht", "get"): [["/v/x", "--peer", f"/ip4/{H}/tcp/1"],
                             ["/ipns/notapeer", "--peer", f"/ip4/{H}/tcp/1"],
                             ["/ipns/12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA",
                              "--peer", f"/ip4/{H}/tcp/1", "--timeout", "2"],
                             ["/ipns/12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA",
                              "--peer", f"/ip4/{H}/tcp/1", "--quorum", "0"]],
    ("ipfs", "name", "publish"): [["/ipfs/x", "--key", "{garbage}", "--peer", f"/ip4/{H}/tcp/1"],
                                  ["/ipfs/x", "--key", "{missing}", "--peer", f"/ip4/{H}/tcp/1"],
                                  ["/ipfs/x", "--peer", f"/ip4/{H}/tcp/1"]],
    ("ipfs", "name", "resolve"): [["notapeer", "--peer", f"/ip4/{H}/tcp/1"],
                                  ["12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA",
                                   "--peer", "nowhere"],
                                  ["12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA",
                                   "--peer", f"/ip4/{H}/tcp/1", "--timeout", "2"]],
    ("tutorial", "check"): [["5", "{plain}"], ["1", "{missing}"], ["1", "{garbage}"],
                            ["one"], []],
    ("tutorial", "list"): [["--no-such-option"]],
}

#: Unknown names anywhere in the tree.
UNKNOWN = [["no-such-command"], ["bt", "no-such-command"], ["dht", "no-such-command"],
           ["gnutella", "no-such-command"], ["bt", "info", "--no-such-option", "x"]]


def test_every_command_has_bad_input_cases():
    assert set(leaves()) == set(CASES), "add bad-input cases for new commands"


def _params():
    for path, cases in CASES.items():
        for args in cases:
            yield pytest.param([*path, *args], id=" ".join([*path, *args]))
    for args in UNKNOWN:
        yield pytest.param(args, id=" ".join(args))


@pytest.mark.parametrize("argv", list(_params()))
def test_bad_input_fails_with_one_line(argv, files, busy_port):
    fill = {k: str(v) for k, v in files.items()} | {"busy": str(busy_port)}
    argv = [a.format(**fill) for a in argv]
    result = CliRunner().invoke(cli, argv, input=b"", catch_exceptions=False,
                                prog_name="p2pkit")
    assert result.exit_code not in (0, None), result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("p2pkit"), lines[0]
