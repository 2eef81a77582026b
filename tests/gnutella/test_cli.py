"""``p2pkit gnutella``: search and download against servents on 127.0.0.1, simulate."""

from __future__ import annotations

import asyncio
import json
import threading

from click.testing import CliRunner

from p2pkit.cli.gnutella import gnutella
from p2pkit.gnutella.server import GnutellaServer


class Background:
    """An ultrapeer and a sharing leaf running in a thread's own event loop."""

    def __init__(self, share):
        self.share = share
        self.ready = threading.Event()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_until_complete, args=(self.run(),))

    async def run(self):
        self.up = GnutellaServer(ultrapeer=True, seed=1)
        self.leaf = GnutellaServer(share=self.share, seed=2)
        await self.up.start()
        await self.leaf.start()
        await self.leaf.connect("127.0.0.1", self.up.port)
        await asyncio.wait_for(self.leaf.connected.wait(), 5)
        self.stop = asyncio.Event()
        self.ready.set()
        await asyncio.wait_for(self.stop.wait(), 30)
        await self.leaf.close()
        await self.up.close()

    def __enter__(self):
        self.thread.start()
        assert self.ready.wait(10)
        return self

    def __exit__(self, *exc):
        self.loop.call_soon_threadsafe(self.stop.set)
        self.thread.join(10)


def test_search_and_download(tmp_path):
    share = tmp_path / "share"
    share.mkdir()
    (share / "kilo lima.bin").write_bytes(b"K" * 3000)
    out = tmp_path / "out"
    out.mkdir()
    runner = CliRunner()
    with Background(share) as bg:
        peer = f"127.0.0.1:{bg.up.port}"
        result = runner.invoke(gnutella, ["search", "kilo", "--peer", peer, "--timeout",
                                          "0.5", "--json"])
        assert result.exit_code == 0, result.output
        [hit] = [json.loads(line) for line in result.output.splitlines()]
        assert hit["file_name"] == "kilo lima.bin" and hit["port"] == bg.leaf.port
        result = runner.invoke(gnutella, ["download", "lima", "--peer", peer, "-o", str(out),
                                          "--timeout", "0.5"])
        assert result.exit_code == 0, result.output
    assert (out / "kilo lima.bin").read_bytes() == b"K" * 3000


def test_bad_endpoint():
    result = CliRunner().invoke(gnutella, ["search", "x", "--peer", "nowhere"])
    assert result.exit_code != 0


def test_simulate_json():
    result = CliRunner().invoke(gnutella, ["simulate", "--nodes", "40", "--ttl", "2",
                                           "--queries", "2", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["nodes"] == 40 and doc["ttl"] == 2 and doc["messages_per_query"] > 0


def test_search_and_download_without_hits_say_so_and_exit_1(tmp_path):
    share = tmp_path / "share"
    share.mkdir()
    (share / "kilo.bin").write_bytes(b"K")
    with Background(share) as bg:
        peer = f"127.0.0.1:{bg.up.port}"
        for command in (["search", "zulu"], ["download", "zulu", "-o", str(tmp_path / "out")]):
            result = CliRunner().invoke(gnutella, [*command, "--peer", peer, "--timeout", "0.3"])
            assert result.exit_code == 1, result.output
            assert result.stdout == ""
            assert result.stderr == "p2pkit: no hits for 'zulu' within 0.3 s\n"
    assert not (tmp_path / "out").exists()
