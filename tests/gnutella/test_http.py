"""The Gnutella HTTP core: exact request bytes in, exact response head bytes out."""

from __future__ import annotations

import hashlib

import pytest

from p2pkit.core import NEED_DATA, StreamCore
from p2pkit.errors import LimitExceeded, LocalProtocolError, ParseError
from p2pkit.gnutella.events import ConnectionClosed
from p2pkit.gnutella.http import (
    MAX_GIV_SIZE,
    MAX_REQUEST_HEAD,
    REQUEST_TIMEOUT,
    Giv,
    Request,
    Upload,
    build_giv,
    build_request,
    giv_end,
    parse_giv,
    respond,
    target_for,
)
from p2pkit.gnutella.servent import SharedFile
from p2pkit.http1 import ByteRange

DATA = b"0123456789"
FILE = SharedFile(index=1, name="a b.txt", size=len(DATA), sha1=hashlib.sha1(DATA).digest())
EMPTY = SharedFile(index=2, name="empty", size=0, sha1=hashlib.sha1(b"").digest())
SHARED = [FILE, EMPTY]
URN = FILE.urn
COMMON = b"Server: p2pkit/0.1\r\nConnection: close\r\n"
FOUND = (b"Content-Type: application/binary\r\nX-Gnutella-Content-URN: " + URN.encode()
         + b"\r\n")


def test_200_by_urn_huge_6_1():
    r = respond(b"GET /uri-res/N2R?" + URN.encode() + b" HTTP/1.1\r\nHost: x\r\n\r\n", SHARED)
    assert r.head == b"HTTP/1.1 200 OK\r\n" + COMMON + FOUND + b"Content-Length: 10\r\n\r\n"
    assert (r.status, r.file, r.body) == (200, FILE, ByteRange(0, 9))


def test_200_by_index_and_name_lowercase_urn():
    r = respond(b"GET /get/1/a%20b.txt HTTP/1.0\r\n\r\n", SHARED)
    assert (r.status, r.body) == (200, ByteRange(0, 9))
    lower = respond(b"GET /uri-res/N2R?" + URN.lower().encode() + b" HTTP/1.1\r\n\r\n", SHARED)
    assert lower.head == r.head


@pytest.mark.parametrize("value, first, last", [("bytes=2-4", 2, 4), ("bytes=7-", 7, 9),
                                                ("bytes=-3", 7, 9), ("bytes=5-99", 5, 9)])
def test_206_partial_content(value, first, last):
    r = respond(b"GET /get/1/a%20b.txt HTTP/1.1\r\nRange: " + value.encode() + b"\r\n\r\n",
                SHARED)
    assert r.head == (b"HTTP/1.1 206 Partial Content\r\n" + COMMON + FOUND
                      + f"Content-Range: bytes {first}-{last}/10\r\n".encode()
                      + f"Content-Length: {last - first + 1}\r\n\r\n".encode())
    assert r.body == ByteRange(first, last)


@pytest.mark.parametrize("value", ["bytes=10-", "bytes=4-2", "lines=1-2", "bytes=-0"])
def test_416_when_unsatisfiable(value):
    r = respond(b"GET /get/1/a%20b.txt HTTP/1.1\r\nRange: " + value.encode() + b"\r\n\r\n",
                SHARED)
    assert r.head == (b"HTTP/1.1 416 Range Not Satisfiable\r\n" + COMMON
                      + b"Content-Range: bytes */10\r\n\r\n")
    assert (r.status, r.file, r.body) == (416, None, None)


@pytest.mark.parametrize("target", [b"/get/1/other.txt", b"/get/9/a%20b.txt",
                                    b"/uri-res/N2R?urn:sha1:" + b"A" * 32,
                                    b"/uri-res/N2R?urn:sha1:!!", b"/uri-res/N2R?urn:md5:x",
                                    b"/index.html"])
def test_404_not_shared(target):
    r = respond(b"GET " + target + b" HTTP/1.1\r\n\r\n", SHARED)
    assert r.head == b"HTTP/1.1 404 Not Found\r\n" + COMMON + b"Content-Length: 0\r\n\r\n"
    assert r.body is None


@pytest.mark.parametrize("request_bytes", [b"GARBAGE\r\n\r\n", b"GET /get/1/a b HTTP/1.1\r\n\r\n",
                                           b"GET /get/1/x HTTP/1.1\r\nno colon\r\n\r\n",
                                           b"GET /get/1/x GNUTELLA/0.6\r\n\r\n",
                                           b"GET /get/1/x HTTP/1.1\r\n"])
def test_400_malformed(request_bytes):
    r = respond(request_bytes, SHARED)
    assert r.head == b"HTTP/1.1 400 Bad Request\r\n" + COMMON + b"\r\n"
    assert r.body is None


def test_431_head_too_large_and_501_other_methods():
    big = b"GET /get/1/x HTTP/1.1\r\nX-Pad: " + b"p" * MAX_REQUEST_HEAD + b"\r\n\r\n"
    assert respond(big, SHARED).head == (b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
                                         + COMMON + b"\r\n")
    r = respond(b"POST /get/1/a%20b.txt HTTP/1.1\r\n\r\n", SHARED)
    assert r.head == b"HTTP/1.1 501 Not Implemented\r\n" + COMMON + b"\r\n"


def test_head_has_the_get_head_and_no_body():
    get = respond(b"GET /get/1/a%20b.txt HTTP/1.1\r\nRange: bytes=1-2\r\n\r\n", SHARED)
    head = respond(b"HEAD /get/1/a%20b.txt HTTP/1.1\r\nRange: bytes=1-2\r\n\r\n", SHARED)
    assert head.head == get.head and head.status == 206
    assert (head.file, head.body, get.body) == (FILE, None, ByteRange(1, 2))


def test_empty_file():
    r = respond(b"GET /get/2/empty HTTP/1.1\r\n\r\n", SHARED)
    assert r.head.endswith(b"Content-Length: 0\r\n\r\n") and (r.status, r.body) == (200, None)
    assert respond(b"GET /get/2/empty HTTP/1.1\r\nRange: bytes=0-\r\n\r\n", SHARED).status == 416


def test_upload_core_in_pieces():
    request = b"GET /get/1/a%20b.txt HTTP/1.1\r\nRange: bytes=2-4\r\n\r\n"
    up = Upload(SHARED, now=0.0)
    assert isinstance(up, StreamCore) and up.get_timer() == REQUEST_TIMEOUT
    for i in range(len(request) - 1):
        up.receive_data(request[i:i + 1], 0.1)
        assert up.next_event() is NEED_DATA and up.data_to_send() == b""
    up.receive_data(request[-1:], 0.2)
    event = up.next_event()
    assert isinstance(event, Request)
    assert (event.method, event.target, event.headers["range"]) == (
        "GET", "/get/1/a%20b.txt", "bytes=2-4")
    assert event.response == respond(request, SHARED)
    assert up.data_to_send() == event.response.head and up.get_timer() is None
    up.receive_data(b"more", 0.3)  # one request per connection: the rest is not read
    assert up.next_event() is NEED_DATA
    with pytest.raises(LocalProtocolError):
        up.send(event, 0.3)


def test_upload_request_timeout_and_eof():
    up = Upload(SHARED, now=5.0)
    up.receive_data(b"GET /get/1/", 6.0)
    up.handle_timer(5.0 + REQUEST_TIMEOUT - 1)
    assert up.next_event() is NEED_DATA
    up.handle_timer(5.0 + REQUEST_TIMEOUT)
    assert up.data_to_send() == b"HTTP/1.1 408 Request Timeout\r\n" + COMMON + b"\r\n"
    assert up.next_event() == ConnectionClosed(conn_id=None, code=408, reason="Request Timeout",
                                               by_peer=False)
    gone = Upload(SHARED, now=0.0)
    gone.receive_data(b"", 1.0)
    assert isinstance(gone.next_event(), ConnectionClosed) and gone.data_to_send() == b""


def test_upload_oversized_head_is_answered_431():
    up = Upload(SHARED, now=0.0)
    up.receive_data(b"GET /get/1/x HTTP/1.1\r\nX-Pad: " + b"p" * MAX_REQUEST_HEAD, 0.0)
    event = up.next_event()
    assert event.response.status == 431 and event.method == ""
    assert up.data_to_send().startswith(b"HTTP/1.1 431 ")


def test_download_request_bytes():
    assert target_for(urn=URN) == "/uri-res/N2R?" + URN
    assert target_for(file_index=1, file_name="a b.txt") == "/get/1/a%20b.txt"
    with pytest.raises(LocalProtocolError):
        target_for(file_index=1)
    assert build_request("/get/1/a%20b.txt", host="127.0.0.1:6346") == (
        b"GET /get/1/a%20b.txt HTTP/1.1\r\nHost: 127.0.0.1:6346\r\nUser-Agent: p2pkit/0.1\r\n"
        b"Connection: close\r\n\r\n")
    assert build_request("/x", host="h", first=5).endswith(b"Range: bytes=5-\r\n\r\n")
    # what we send is what we serve
    assert respond(build_request(target_for(urn=URN), host="h", first=0, last=0),
                   SHARED).body == ByteRange(0, 0)


def test_giv_line():
    guid = bytes.fromhex("00112233445566778899aabbccddeeff")
    data = build_giv(7, guid, "kilo lima.bin")
    assert data == b"GIV 7:00112233445566778899aabbccddeeff/kilo lima.bin\n\n"
    assert parse_giv(data) == Giv(file_index=7, servent_guid=guid, file_name="kilo lima.bin")
    assert parse_giv(data.upper().replace(b"KILO LIMA.BIN", b"x")).servent_guid == guid
    assert giv_end(data + b"GET ") == len(data) and giv_end(data[:-1]) is None
    for bad in (b"GIV 7:0011/x\n\n", b"GIV x:00112233445566778899aabbccddeeff/x\n\n",
                data[:-1], b"GET / HTTP/1.1\r\n\r\n"):
        with pytest.raises(ParseError):
            parse_giv(bad)
    with pytest.raises(LimitExceeded):
        giv_end(b"GIV 1:" + b"x" * MAX_GIV_SIZE)
    with pytest.raises(LocalProtocolError):
        build_giv(1, b"short", "x")
