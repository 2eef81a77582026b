"""MSE key logs: the line format, parsing with offsets, lookups by direction."""

from __future__ import annotations

import pytest

from p2pkit.bittorrent.mse.keylog import (
    KeyLogEntry,
    KeyLogWriter,
    format_entry,
    parse_keylog,
)
from p2pkit.errors import ParseError

ENTRY = KeyLogEntry(initiator="[::1]:5000", responder="127.0.0.2:6881",
                    info_hash=bytes(range(20)), secret=bytes(range(96)), method="plaintext")


def test_line_round_trip_and_lookup(tmp_path):
    writer = KeyLogWriter(tmp_path / "k.log")
    writer.write(ENTRY)
    writer.close()
    text = (tmp_path / "k.log").read_text()
    assert text == format_entry(ENTRY) + "\n"
    assert text.split()[3] == bytes(range(20)).hex() and text.split()[5] == "plaintext"
    log = parse_keylog("# comment\n\nCLIENT_RANDOM aa bb\n" + text)
    assert log.find("[::1]:5000", "127.0.0.2:6881") == (ENTRY, "initiator")
    assert log.find("127.0.0.2:6881", "[::1]:5000") == (ENTRY, "responder")
    assert log.find("127.0.0.2:6881", "127.0.0.3:1") is None


@pytest.mark.parametrize("line,why", [
    ("MSE_SECRET a b", "3 fields"),
    ("MSE_SECRET a b " + "00" * 20 + " " + "00" * 95 + " rc4", "96-byte"),
    ("MSE_SECRET a b " + "zz" * 20 + " " + "00" * 96 + " rc4", "non-hexadecimal"),
    ("MSE_SECRET a b " + "00" * 20 + " " + "00" * 96 + " des", "method"),
])
def test_malformed_lines_name_their_offset(line, why):
    with pytest.raises(ParseError, match=why) as e:
        parse_keylog("# first line\n" + line + "\n")
    assert e.value.offset == len("# first line\n") and e.value.protocol == "mse-keylog"


def test_entry_validation():
    with pytest.raises(ValueError):
        KeyLogEntry(initiator="a", responder="b", info_hash=bytes(19), secret=bytes(96),
                    method="rc4")
