"""Noise key logs: the line format, parsing with offsets, and what a host writes."""

from __future__ import annotations

import asyncio
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pkit.errors import ParseError
from p2pkit.ipfs.host import Host
from p2pkit.ipfs.keys import Ed25519Identity
from p2pkit.ipfs.noise_keylog import (
    NoiseHandshakeEntry,
    NoiseKeyLogEntry,
    NoiseKeyLogWriter,
    format_noise_entry,
    parse_noise_keylog,
)

ENTRY = NoiseKeyLogEntry(initiator="[::1]:5000", responder="127.0.0.2:4001",
                         initiator_ephemeral=bytes(range(32)), initiator_key=bytes(range(1, 33)),
                         responder_key=bytes(range(2, 34)), handshake_hash=bytes(range(3, 35)))


def test_line_round_trip_and_lookup(tmp_path):
    writer = NoiseKeyLogWriter(tmp_path / "k.log")
    writer.write(ENTRY)
    writer.close()
    text = (tmp_path / "k.log").read_text()
    assert text == format_noise_entry(ENTRY) + "\n"
    assert text.split()[:3] == ["NOISE_SECRETS", "[::1]:5000", "127.0.0.2:4001"]
    # one file shared with MSE peers and TLS programs: their lines are skipped
    log = parse_noise_keylog("# c\n\nMSE_SECRET a b c d e\nCLIENT_RANDOM aa bb\n" + text)
    assert len(log) == 1 and log.find(bytes(range(32))) == ENTRY
    assert log.find(bytes(32)) is None


@pytest.mark.parametrize("line,why", [
    ("NOISE_SECRETS a b", "3 fields"),
    ("NOISE_SECRETS a b " + " ".join(["00" * 32] * 3) + " " + "00" * 31, "32 bytes"),
    ("NOISE_SECRETS a b " + " ".join(["zz" * 32] * 4), "non-hexadecimal"),
])
def test_malformed_lines_name_their_offset(line, why):
    with pytest.raises(ParseError, match=why) as e:
        parse_noise_keylog("# first line\n" + line + "\n")
    assert e.value.offset == len("# first line\n") and e.value.protocol == "noise-keylog"


def test_hosts_log_the_keys_both_ends_use(tmp_path):
    """Both hosts of one connection write the same line: the keys their Noise sessions use."""
    path = tmp_path / "keys.log"

    async def scenario():
        writer = NoiseKeyLogWriter(path)
        server = Host(Ed25519Identity(bytes(range(32))), rng=random.Random(1), keylog=writer)
        client = Host(Ed25519Identity(bytes(range(1, 33))), rng=random.Random(2), keylog=writer)
        addr = await server.listen("127.0.0.1", 0)
        try:
            c = await client.dial(addr, timeout=5)
            await c.ping(1, timeout=5)
            accepted = next(iter(server.connections))
            local = c.writer.get_extra_info("sockname")
            return (c.core._noise.keys, accepted.core._noise.keys, local,
                    addr.value_for("tcp"))
        finally:
            await client.close()
            await server.close()
            writer.close()

    client_keys, server_keys, local, port = asyncio.run(asyncio.wait_for(scenario(), 30))
    everything = path.read_text().splitlines()
    lines = [line for line in everything if line.startswith("NOISE_SECRETS ")]
    assert len(everything) == 4 and len(lines) == 2 and lines[0] == lines[1]
    entry = parse_noise_keylog(lines[0]).find(bytes.fromhex(lines[0].split()[3]))
    assert (entry.initiator, entry.responder) == (f"{local[0]}:{local[1]}", f"127.0.0.1:{port}")
    # the dialer sends with the initiator's key, the listener with the responder's
    assert client_keys == (entry.initiator_key, entry.responder_key)
    assert server_keys == (entry.responder_key, entry.initiator_key)
    assert entry.initiator_key != entry.responder_key
    # each end also logged its own handshake secrets: their roles, under the same session
    roles = sorted(line.split()[2] for line in everything
                   if line.startswith("NOISE_HANDSHAKE_SECRETS ") and
                   line.split()[1] == entry.initiator_ephemeral.hex())
    assert roles == ["initiator", "responder"]


def test_handshake_entries_round_trip():
    entry = NoiseHandshakeEntry(initiator_ephemeral=bytes(range(32)), role="responder",
                                static_secret=bytes(range(1, 33)),
                                ephemeral_secret=bytes(range(2, 34)))
    log = parse_noise_keylog(format_noise_entry(entry) + "\n")
    assert log.find_handshake(bytes(range(32))) == entry and len(log) == 0
    with pytest.raises(ParseError, match="role"):
        parse_noise_keylog(format_noise_entry(entry).replace("responder", "listener"))


def test_serve_keylog_unwritable_is_one_line(tmp_path):
    from click.testing import CliRunner

    from p2pkit.cli import cli

    done = CliRunner().invoke(cli, ["ipfs", "serve", "--listen", "/ip4/127.0.0.1/tcp/0",
                                    "--duration", "0.1", "--keylog",
                                    str(tmp_path / "missing" / "k.log")],
                              catch_exceptions=False, prog_name="p2pkit")
    assert done.exit_code not in (0, None) and "Traceback" not in done.output
    assert len(done.stderr.strip().splitlines()) == 1 and "k.log" in done.stderr


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(st.just("NOISE_SECRETS"), st.just("NOISE_HANDSHAKE_SECRETS"),
                          st.text(max_size=70)), max_size=8))
def test_any_text_parses_or_fails_with_an_offset(words):
    text = " ".join(words) + "\n" + "\n".join(words)
    try:
        parse_noise_keylog(text)
    except ParseError as e:
        assert e.protocol == "noise-keylog" and 0 <= e.offset <= len(text.encode())
