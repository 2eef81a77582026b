"""Shared fixtures for the CLI tests: the command tree, a busy port, small valid inputs."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import click
import pytest

from p2pkit.bittorrent.wire.create import create_torrent
from p2pkit.cli import cli


def walk(command: click.Command = cli, path: tuple[str, ...] = ()
         ) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    """Every command of the tree, groups included, with its path (``("bt", "info")``)."""
    yield path, command
    if isinstance(command, click.Group):
        ctx = click.Context(command)
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            assert sub is not None, name
            yield from walk(sub, (*path, name))


def leaves() -> list[tuple[str, ...]]:
    """The path of every runnable (non-group) command."""
    return [path for path, command in walk() if not isinstance(command, click.Group)]


@pytest.fixture(scope="module")
def busy_port() -> Iterator[int]:
    """A port number taken on 127.0.0.1 for both TCP (listening) and UDP."""
    for _ in range(20):
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        tcp.bind(("127.0.0.1", 0))
        port = tcp.getsockname()[1]
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            udp.bind(("127.0.0.1", port))
        except OSError:
            tcp.close()
            udp.close()
            continue
        tcp.listen(1)
        try:
            yield port
        finally:
            tcp.close()
            udp.close()
        return
    pytest.fail("no port free for both TCP and UDP")


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A valid torrent and its data, an empty file, a garbage file, a directory, a plain
    file, and a path that does not exist."""
    root = tmp_path_factory.mktemp("cli-inputs")
    data = root / "data"
    (data / "album").mkdir(parents=True)
    (data / "album" / "a.bin").write_bytes(b"a" * 40000)
    torrent = root / "album.torrent"
    torrent.write_bytes(create_torrent(data / "album", piece_length=16384))
    (root / "empty").write_bytes(b"")
    (root / "garbage").write_bytes(b"\xffnot what it claims to be\x00" * 3)
    (root / "dir").mkdir()
    (root / "plain").write_bytes(b"x")
    return {"torrent": torrent, "data": data, "empty": root / "empty",
            "garbage": root / "garbage", "dir": root / "dir", "plain": root / "plain",
            "missing": root / "missing", "root": root}
