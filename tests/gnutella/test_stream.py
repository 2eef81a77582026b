"""The stream reader: any split, deflated links, refusals, limits before buffering."""

from __future__ import annotations

import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pkit.errors import LimitExceeded, ParseError
from p2pkit.gnutella.descriptors import Descriptor
from p2pkit.gnutella.stream import DescriptorFrame, StreamReader
from tests.pcap_payloads import tcp_streams

GTKG = "gtkg123-plain-up2-3leaves.pcap"
PING = Descriptor.build(dict(guid=bytes(range(16)), type="ping", ttl=1, hops=0, extensions=[]))
CONNECT = b"GNUTELLA CONNECT/0.6\r\nAccept-Encoding: deflate\r\n\r\n"
FINAL = b"GNUTELLA/0.6 200 OK\r\nContent-Encoding: deflate\r\n\r\n"


def frames_of(chunks):
    reader = StreamReader()
    out = []
    for chunk in chunks:
        out += reader.feed(chunk)
    reader.close()
    return out


def test_any_split_gives_the_same_frames():
    data = next(d for (s, _), d in tcp_streams(GTKG).items()
                if d.startswith(b"GNUTELLA CONNECT") and len(d) > 2000)
    whole = frames_of([data])
    assert frames_of([data[i:i + 7] for i in range(0, len(data), 7)]) == whole
    assert frames_of([data[i:i + 1] for i in range(0, 1500)] + [data[1500:]]) == whole


def test_deflated_link_after_the_client_final_block():
    """compression §3: the client's final block says Content-Encoding: deflate."""
    deflater = zlib.compressobj()
    body = deflater.compress(PING * 3) + deflater.flush(zlib.Z_SYNC_FLUSH)
    reader = StreamReader()
    frames = reader.feed(CONNECT + FINAL + body[:5])
    frames += reader.feed(body[5:])
    reader.close()
    descriptors = [f for f in frames if isinstance(f, DescriptorFrame)]
    assert reader.compressed and [f.offset for f in descriptors] == [0, 23, 46]
    assert all(f.compressed and f.data == PING for f in descriptors)


def test_refused_connection():
    reader = StreamReader()
    reader.feed(b"GNUTELLA/0.6 503 Busy\r\n\r\n")
    assert reader.state == "rejected"
    with pytest.raises(ParseError):
        reader.feed(PING)


def test_oversized_length_refused_before_payload():
    reader = StreamReader(handshake=False, max_payload_length=100)
    with pytest.raises(LimitExceeded) as e:
        reader.feed(PING[:19] + (101).to_bytes(4, "little"))
    assert e.value.offset == 19 and reader.buffered == 23
    with pytest.raises(LimitExceeded):
        reader.feed(b"more")  # stays failed


def test_truncated_stream_reported():
    reader = StreamReader(handshake=False)
    reader.feed(PING + PING[:10])
    with pytest.raises(ParseError) as e:
        reader.close()
    assert "10 bytes" in str(e.value)


def test_not_gnutella():
    with pytest.raises(ParseError):
        StreamReader().feed(b"GET /uri-res/N2R?urn:sha1:ABC HTTP/1.1\r\n\r\n")


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=200), st.booleans())
def test_random_bytes_raise_only_parse_error(data, handshake):
    reader = StreamReader(handshake=handshake)
    try:
        reader.feed(data)
        reader.close()
    except ParseError:
        pass
