"""pcap/pcapng readers on the committed real captures, compressed copies and damaged files."""

from __future__ import annotations

import gzip
import io
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pkit.capture.readers import (
    LINKTYPE_ETHERNET,
    MAX_RECORD_LENGTH,
    CaptureReader,
    PcapFileHeaderBE,
    PcapRecordHeaderBE,
    read_frames,
)
from p2pkit.errors import LimitExceeded, ParseError
from tests.pcap_payloads import CAPTURES

# Frame counts stated by the traces' README (independent of this reader).
KNOWN_FRAME_COUNTS = {"ndpi-bittorrent.pcap": 299, "ndpi-gnutella.pcap": 3905}


@pytest.mark.parametrize("name", sorted(p.name for p in CAPTURES.glob("*.pcap*")))
def test_every_committed_capture_reads_cleanly(name):
    reader = CaptureReader(CAPTURES / name)
    frames = list(reader)
    reader.close()
    assert reader.error is None
    assert frames and [f.number for f in frames] == list(range(1, len(frames) + 1))
    assert all(f.original_length >= len(f.data) for f in frames)
    assert all(b.time >= a.time - 1 for a, b in zip(frames, frames[1:]))
    if name in KNOWN_FRAME_COUNTS:
        assert len(frames) == KNOWN_FRAME_COUNTS[name]
    magic = (CAPTURES / name).read_bytes()[:4]
    assert reader.format == ("pcapng" if magic == b"\x0a\x0d\x0d\x0a" else "pcap")


def test_gzip_compressed_capture_gives_the_same_frames(tmp_path):
    src = CAPTURES / "ndpi-bittorrent_tcp_miss.pcapng"
    packed = tmp_path / "x.pcapng.gz"
    packed.write_bytes(gzip.compress(src.read_bytes()))
    assert list(read_frames(packed)) == list(read_frames(src))
    assert list(read_frames(io.BytesIO(packed.read_bytes()))) == list(read_frames(src))


def _pcap_be(records: list[bytes], nanoseconds: bool = False) -> bytes:
    magic = 0xA1B23C4D if nanoseconds else 0xA1B2C3D4
    out = PcapFileHeaderBE.build(dict(magic_number=magic, major_version=2, minor_version=4,
                                      thiszone=0, sigfigs=0, snaplen=65535,
                                      linktype=LINKTYPE_ETHERNET))
    for i, data in enumerate(records):
        out += PcapRecordHeaderBE.build(dict(ts_seconds=10 + i, ts_fraction=250, captured_length=len(data),
                                             original_length=len(data) + 1))
        out += data
    return out


def test_big_endian_and_nanosecond_pcap():
    frames = list(read_frames(io.BytesIO(_pcap_be([b"ab", b"cde"], nanoseconds=True))))
    assert [(f.data, f.original_length, f.linktype) for f in frames] == [
        (b"ab", 3, LINKTYPE_ETHERNET), (b"cde", 4, LINKTYPE_ETHERNET)]
    assert frames[0].time == pytest.approx(10 + 250e-9)


def test_truncated_file_keeps_earlier_frames_and_reports_offset():
    data = (CAPTURES / "ndpi-bittorrent.pcap").read_bytes()
    full = list(read_frames(io.BytesIO(data)))
    reader = CaptureReader(io.BytesIO(data[:-7]))
    frames = list(reader)
    assert frames == full[:-1]
    assert isinstance(reader.error, ParseError)
    assert reader.error.offset == full[-1].file_offset + 16


def test_two_gigabyte_length_field_is_refused_before_reading():
    data = bytearray(_pcap_be([b"ab", b"cd"]))
    struct.pack_into(">I", data, 24 + 16 + 2 + 8, 2_000_000_000)  # second record's caplen
    reader = CaptureReader(io.BytesIO(bytes(data)))
    frames = list(reader)
    assert [f.data for f in frames] == [b"ab"]
    assert isinstance(reader.error, LimitExceeded)
    assert str(MAX_RECORD_LENGTH) in str(reader.error)


def test_not_a_capture():
    reader = CaptureReader(io.BytesIO(b"GET / HTTP/1.1\r\n\r\n"))
    assert list(reader) == []
    assert "not a pcap" in str(reader.error)


def test_pcapng_block_length_bound():
    data = bytearray((CAPTURES / "ndpi-bittorrent_tcp_miss.pcapng").read_bytes())
    good = list(read_frames(io.BytesIO(bytes(data))))
    shb_len = struct.unpack_from("<I", data, 4)[0]
    struct.pack_into("<I", data, shb_len + 4, 0x7FFFFFF0)  # the next block claims ~2 GB
    reader = CaptureReader(io.BytesIO(bytes(data)))
    assert list(reader) == [] and good
    assert isinstance(reader.error, LimitExceeded)


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=400), st.sampled_from(["ndpi-bittorrent_tcp_miss.pcapng",
                                                 "ndpi-bittorrent_utp.pcap"]), st.data())
def test_random_and_mutated_files_never_raise(junk, name, data):
    raw = bytearray((CAPTURES / name).read_bytes()[:3000])
    i = data.draw(st.integers(0, len(raw) - 1))
    raw[i:i + len(junk[:8])] = junk[:8]
    for blob in (junk, bytes(raw), bytes(raw[: data.draw(st.integers(0, len(raw)))])):
        reader = CaptureReader(io.BytesIO(blob))
        for frame in reader:
            assert len(frame.data) <= MAX_RECORD_LENGTH
        assert reader.error is None or isinstance(reader.error, ParseError)
