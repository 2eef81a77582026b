"""``p2pkit dht``: the commands against nodes served on loopback in a background thread."""

from __future__ import annotations

import asyncio
import json
import random
import threading

import pytest
from click.testing import CliRunner

from p2pkit.cli.dht import dht
from p2pkit.dht import items
from p2pkit.dht.server import DhtServer


@pytest.fixture(scope="module")
def nodes():
    """Three nodes on 127.0.0.1-3 in a thread's event loop; yields their HOST:PORT."""
    loop = asyncio.new_event_loop()
    started = threading.Event()
    servers = []

    async def start():
        for i in range(3):
            servers.append(await DhtServer.start(f"127.0.0.{i + 1}", 0,
                                                 rng=random.Random(i)))
        for server in servers[1:]:
            await server.bootstrap([servers[0].address], timeout=10)
        started.set()

    thread = threading.Thread(target=lambda: (loop.run_until_complete(start()),
                                              loop.run_forever()), daemon=True)
    thread.start()
    assert started.wait(30)
    yield [f"{s.address[0]}:{s.address[1]}" for s in servers]
    for s in servers:
        loop.call_soon_threadsafe(s.close)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


def invoke(*args):
    result = CliRunner().invoke(dht, [str(a) for a in args], catch_exceptions=False)
    return result


def test_ping(nodes):
    result = invoke("ping", nodes[0], "--listen", "127.0.0.10:0", "--json")
    assert result.exit_code == 0
    assert len(json.loads(result.output)["id"]) == 40
    assert "id" in invoke("ping", nodes[1], "--listen", "127.0.0.10:0").output


def test_announce_then_get_peers(nodes):
    info_hash = "ab" * 20
    result = invoke("announce", info_hash, "--port", 7777, "--bootstrap", nodes[0],
                    "--listen", "127.0.0.11:0", "--json")
    assert result.exit_code == 0 and json.loads(result.output)["stored"] >= 2
    result = invoke("get-peers", info_hash, "--bootstrap", nodes[1], "--listen", "127.0.0.12:0")
    assert result.exit_code == 0 and "127.0.0.11:7777" in result.output


def test_put_then_get(nodes):
    seed = "07" * 32
    result = invoke("put", "hi there", "--seed", seed, "--seq", 4, "--salt", "s",
                    "--bootstrap", nodes[0], "--listen", "127.0.0.13:0")
    assert result.exit_code == 0 and "stored on" in result.output
    target = items.mutable_target(items.public_key(bytes.fromhex(seed)), b"s").hex()
    result = invoke("get", target, "--salt", "s", "--bootstrap", nodes[2],
                    "--listen", "127.0.0.14:0", "--json")
    item = json.loads(result.output)["item"]
    assert (item["v"], item["seq"], item["mutable"]) == ("hi there", 4, True)
    result = invoke("find-node", target, "--bootstrap", nodes[2], "--listen", "127.0.0.14:0")
    assert result.output.count("127.0.0.") == 3


@pytest.mark.parametrize("args", [
    ["get-peers", "zz", "--bootstrap", "127.0.0.1:1"],
    ["get-peers", "ab" * 20, "--bootstrap", "nowhere"],
    ["put", "x", "--seed", "00", "--bootstrap", "127.0.0.1:1"],
])
def test_bad_input_is_one_line(args):
    result = CliRunner().invoke(dht, args, catch_exceptions=False)
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert len(result.stderr.splitlines()) == 1 and result.stdout == ""


def test_serve_reports_as_json_lines():
    result = invoke("serve", "--listen", "127.0.0.20:0", "--duration", 0.3,
                    "--status-every", 0.1, "--json")
    assert result.exit_code == 0
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert result.stderr == "p2pkit: dht serve stopped (after 0.3 s)\n"
    assert lines[0]["event"] == "listening" and lines[0]["host"] == "127.0.0.20"
    assert lines[-1]["event"] == "status" and len(lines[0]["id"]) == 40


def test_lookup_that_finds_nothing_says_so_and_exits_1(nodes):
    result = invoke("get-peers", "cd" * 20, "--bootstrap", nodes[0], "--listen", "127.0.0.15:0")
    assert result.exit_code == 1 and "peers: 0" in result.stdout
    assert result.stderr == "p2pkit: no peers found\n"
    result = invoke("get", "cd" * 20, "--bootstrap", nodes[0], "--listen", "127.0.0.15:0",
                    "--json")
    assert result.exit_code == 1 and json.loads(result.stdout)["item"] is None
    assert result.stderr == "p2pkit: no item found\n"
