"""FrameScanner (frames as tuples over large blocks) against CaptureReader (record by record):
the same frames, times, bytes and errors on every committed capture and on random, mutated and
truncated files, whatever the block size."""

from __future__ import annotations

import gzip
import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pkit.capture.frame_scan import FrameScanner
from p2pkit.capture.readers import CaptureReader
from tests.pcap_payloads import CAPTURES

COMMITTED = sorted(p.name for p in CAPTURES.glob("*.pcap*"))


def _reference(source) -> tuple[list[tuple], str | None, str]:
    reader = CaptureReader(source)
    frames = [(f.number, f.time, f.linktype, f.data, f.original_length) for f in reader]
    reader.close()
    return frames, _error(reader.error), reader.format


def _scanned(source, block_size: int | None = None) -> tuple[list[tuple], str | None, str]:
    scanner = FrameScanner(source)
    if block_size is not None:
        scanner.block_size = block_size
    frames = [(n, t, lt, bytes(block[start:end]), original)
              for n, t, lt, block, start, end, original in scanner.scan()]
    scanner.close()
    return frames, _error(scanner.error), scanner.format


def _error(error) -> str | None:
    """Type, message, field path and offset: what a user sees, and where."""
    return None if error is None else f"{type(error).__name__}: {error}"


@pytest.mark.parametrize("name", COMMITTED)
def test_committed_captures_give_the_same_frames(name):
    expected = _reference(CAPTURES / name)
    assert expected[0] and expected[1] is None
    assert _scanned(CAPTURES / name) == expected
    # records straddling every block boundary: refills mid-header and mid-data
    assert _scanned(CAPTURES / name, block_size=97) == expected


def test_standard_input_like_stream_and_gzip_give_the_same_frames():
    raw = (CAPTURES / "ndpi-bittorrent.pcap").read_bytes()
    expected = _reference(io.BytesIO(raw))
    assert _scanned(io.BufferedReader(io.BytesIO(raw)), block_size=1000) == expected
    assert _scanned(io.BytesIO(gzip.compress(raw))) == expected


def test_position_advances_to_the_end():
    scanner = FrameScanner(CAPTURES / "ndpi-bittorrent.pcap")
    scanner.block_size = 4096
    positions = [scanner.offset for _ in scanner.scan()]
    assert positions == sorted(positions) and positions[-1] > 0
    assert scanner.offset == (CAPTURES / "ndpi-bittorrent.pcap").stat().st_size


_SOURCES = ["ndpi-bittorrent_utp.pcap", "bt-06-p2pkit-leech-libtorrent.pcap",
            "ndpi-bittorrent_tcp_miss.pcapng"]


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(_SOURCES), st.binary(max_size=24), st.data())
def test_mutated_and_truncated_files_give_the_same_frames_and_errors(name, junk, data):
    raw = bytearray((CAPTURES / name).read_bytes()[:6000])
    at = data.draw(st.integers(0, len(raw) - 1))
    mutated = bytes(raw[:at] + junk + raw[at + data.draw(st.integers(0, len(junk))):])
    cut = mutated[:data.draw(st.integers(0, len(mutated)))]
    block = data.draw(st.sampled_from([16, 17, 200, 1 << 20]))
    for blob in (mutated, cut):
        assert _scanned(io.BytesIO(blob), block) == _reference(io.BytesIO(blob))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300), st.sampled_from([16, 64, 1 << 20]))
def test_random_bytes_give_the_same_errors(junk, block):
    for head in (b"", b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4\x00\x02\x00\x04" + bytes(12)):
        blob = head + junk
        assert _scanned(io.BytesIO(blob), block) == _reference(io.BytesIO(blob))
