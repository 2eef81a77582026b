"""``p2pkit ipfs``: peer ids and keys, and a served host answering ping and identify over TCP
on 127.0.0.1 (a real ``python -m p2pkit ipfs serve`` subprocess, bounded by --duration)."""

from __future__ import annotations

import json
import os
import random
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from p2pkit.cli import cli

ROOT = Path(__file__).parents[2]


def invoke(*args):
    return CliRunner().invoke(cli, list(args), prog_name="p2pkit")


def test_id_decodes_the_spec_examples():
    out = invoke("ipfs", "id", "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA", "--json")
    assert out.exit_code == 0, out.output
    doc = json.loads(out.stdout)
    assert doc["key_type"] == "Ed25519" and doc["cid"].startswith("bafz")
    out = invoke("ipfs", "id", "QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N")
    assert out.exit_code == 0 and "key" not in out.stdout.split("\n", 1)[1]


def test_add_prints_the_cid(tmp_path):
    path = tmp_path / "hello.txt"
    path.write_bytes(b"hello world\n")
    out = invoke("ipfs", "add", str(path))
    assert out.stdout.strip() == "bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4"
    out = invoke("ipfs", "add", str(path), "--profile", "unixfs-v0-2015", "--json")
    assert json.loads(out.stdout)["cid"] == "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"
    out = CliRunner().invoke(cli, ["ipfs", "add", "-"], input=b"", prog_name="p2pkit")
    assert out.stdout.strip() == "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"


def test_car_export_then_import(tmp_path):
    path = tmp_path / "data.bin"
    path.write_bytes(random.Random(1).randbytes(1_280_000))  # five chunks and a parent
    out = invoke("ipfs", "car", "export", str(path), "-o", str(tmp_path / "x.car"), "--json",
                 "--profile", "importer-default")
    assert out.exit_code == 0, out.output
    exported = json.loads(out.stdout)
    assert exported["root"] == invoke("ipfs", "add", str(path), "--profile",
                                      "importer-default").stdout.strip()
    out = invoke("ipfs", "car", "import", str(tmp_path / "x.car"), "--json")
    assert out.exit_code == 0, out.output
    doc = json.loads(out.stdout)
    assert doc["roots"] == [exported["root"]] and doc["blocks"] == exported["blocks"] == 6


def test_key_then_id(tmp_path):
    key = tmp_path / "peer.key"
    out = invoke("ipfs", "key", str(key))
    assert out.exit_code == 0, out.output
    peer = out.stdout.strip()
    assert peer.startswith("12D3KooW") and (key.stat().st_mode & 0o777) == 0o600
    again = invoke("ipfs", "id", "--key", str(key), "--json")
    assert json.loads(again.stdout)["id"] == peer


def test_serve_ping_identify(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    content = random.Random(3).randbytes(700_000)
    (tmp_path / "content.bin").write_bytes(content)
    out = invoke("ipfs", "car", "export", str(tmp_path / "content.bin"), "-o",
                 str(tmp_path / "content.car"), "--json", "--profile", "importer-default")
    root = json.loads(out.stdout)["root"]
    proc = subprocess.Popen([sys.executable, "-m", "p2pkit", "ipfs", "serve", "--listen",
                             "/ip4/127.0.0.1/tcp/0", "--duration", "60", "--json",
                             "--car", str(tmp_path / "content.car")],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        line = b""
        deadline = time.monotonic() + 60
        while b"\n" not in line and time.monotonic() < deadline:
            ready, _, _ = select.select([proc.stdout], [], [], 0.5)
            if ready:
                line += os.read(proc.stdout.fileno(), 4096)
            elif proc.poll() is not None:
                break
        listening = json.loads(line.decode().splitlines()[0])
        addr = listening["address"]
        assert addr.endswith("/p2p/" + listening["id"])
        out = invoke("ipfs", "ping", addr, "-c", "2", "--json", "--timeout", "10")
        assert out.exit_code == 0, out.output
        doc = json.loads(out.stdout)
        assert doc["id"] == listening["id"] and len(doc["rtt_ms"]) == 2
        out = invoke("ipfs", "identify", addr, "--json", "--timeout", "10")
        assert out.exit_code == 0, out.output
        info = json.loads(out.stdout)
        assert info["id"] == listening["id"] and "/ipfs/ping/1.0.0" in info["protocols"]
        assert info["signedPeerRecord"] is True
        # Bitswap: the served CAR's file, fetched back
        out = invoke("ipfs", "get", root, "--peer", addr, "-o", str(tmp_path / "got.bin"),
                     "--json")
        assert out.exit_code == 0, out.output
        assert (tmp_path / "got.bin").read_bytes() == content
        assert json.loads(out.stdout)["blocks"] == 4  # three leaves and the root
        # kad-dht: a provider record stored on the served host, then found there
        cid = "bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4"
        out = invoke("ipfs", "dht", "find-providers", cid, "--peer", addr, "--timeout", "10")
        assert out.exit_code == 1  # nobody provides it yet
        out = invoke("ipfs", "dht", "provide", cid, "--peer", addr, "--addr",
                     "/ip4/127.0.0.1/tcp/9", "--json")
        assert out.exit_code == 0, out.output
        doc = json.loads(out.stdout)
        provider = doc["provider"]
        assert doc["stored_on"] == [listening["id"]]
        out = invoke("ipfs", "dht", "find-providers", cid, "--peer", addr, "--json")
        assert out.exit_code == 0, out.output
        assert json.loads(out.stdout)["providers"] == [
            {"id": provider, "addrs": ["/ip4/127.0.0.1/tcp/9"]}]
        out = invoke("ipfs", "dht", "find-peer", listening["id"], "--peer", addr, "--json")
        assert out.exit_code == 0, out.output
        assert json.loads(out.stdout)["found"] is True
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            pytest.fail("ipfs serve did not stop on SIGTERM")
    assert proc.returncode == 0


def test_add_directory_into_a_repo_then_serve_it_and_get_it(tmp_path):
    """add -r --repo writes the blocks; a served repo gives the tree back over Bitswap; the
    server's key log decrypts the session it served."""
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "empty").mkdir()
    (tree / "a.txt").write_bytes(b"alpha\n")
    (tree / "sub" / "big.bin").write_bytes(random.Random(5).randbytes(600_000))
    out = invoke("ipfs", "add", "-r", str(tree), "--repo", str(tmp_path / "repo"),
                 "--profile", "importer-default")
    assert out.exit_code == 0, out.output
    root = out.stdout.strip()
    assert invoke("ipfs", "add", str(tree)).exit_code != 0  # a directory needs -r
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "p2pkit", "ipfs", "serve", "--listen",
                             "/ip4/127.0.0.1/tcp/0", "--duration", "60", "--json",
                             "--repo", str(tmp_path / "repo"),
                             "--keylog", str(tmp_path / "keys.log")],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        line = b""
        deadline = time.monotonic() + 60
        while b"\n" not in line and time.monotonic() < deadline:
            ready, _, _ = select.select([proc.stdout], [], [], 0.5)
            if ready:
                line += os.read(proc.stdout.fileno(), 4096)
            elif proc.poll() is not None:
                break
        addr = json.loads(line.decode().splitlines()[0])["address"]
        out = invoke("ipfs", "get", root, "--peer", addr, "-o", str(tmp_path / "got"),
                     "--json")
        assert out.exit_code == 0, out.output
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    got = tmp_path / "got"
    assert sorted(p.relative_to(got).as_posix() for p in got.rglob("*")) == \
        ["a.txt", "empty", "sub", "sub/big.bin"]
    assert (got / "sub" / "big.bin").read_bytes() == (tree / "sub" / "big.bin").read_bytes()
    assert json.loads(out.stdout)["bytes"] == 600_006
    keys = (tmp_path / "keys.log").read_text().split("\n")
    assert sum(line.startswith("NOISE_SECRETS ") for line in keys) == 1
