"""The push proxy's HTTP request (push_proxy §5): parsing and building on real bytes, hostile
requests, the ultrapeer turning one into a Push to its leaf, and the answers over a socket."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pkit.errors import ParseError
from p2pkit.gnutella.events import Push
from p2pkit.gnutella.push_proxy import (
    build_push_proxy_request,
    parse_push_proxy_request,
    parse_push_proxy_status,
    push_proxy_response,
)
from p2pkit.gnutella.server import GnutellaServer
from tests.gnutella.test_servent import Network

GUID = bytes.fromhex("8dff3102abe3ca80e8621e7d2a494427")


def test_request_round_trip_and_gtk_gnutella_form():
    head = build_push_proxy_request(GUID, ("127.0.0.9", 6349), host="127.0.0.1:6346")
    assert head.startswith(b"GET /gnutella/push-proxy?ServerId=RX7TCAVL4PFIB2DCDZ6SUSKEE4 ")
    assert b"\r\nX-Node: 127.0.0.9:6349\r\n" in head
    request = parse_push_proxy_request(head)
    assert (request.servent_id, request.node) == (GUID, ("127.0.0.9", 6349))
    # gtk-gnutella's own resource, GUID in hex; base32 in lowercase and padded is read too
    for target in (f"/gnet/push-proxy?guid={GUID.hex()}",
                   "/gnutella/push-proxy?ServerId=rx7tcavl4pfib2dcdz6suskee4%3D%3D%3D%3D%3D%3D"):
        again = parse_push_proxy_request(
            f"GET {target} HTTP/1.1\r\nX-Node: 10.0.0.1:1\r\n\r\n".encode())
        assert again.servent_id == GUID


@pytest.mark.parametrize("head, path", [
    (b"GET /gnutella/push-proxy HTTP/1.1\r\nX-Node: 1.2.3.4:5\r\n\r\n", "ServerId"),
    (b"GET /gnutella/push-proxy?ServerId=AAAA HTTP/1.1\r\nX-Node: 1.2.3.4:5\r\n\r\n",
     "ServerId"),
    (b"GET /gnutella/push-proxy?ServerId=!!! HTTP/1.1\r\nX-Node: 1.2.3.4:5\r\n\r\n",
     "ServerId"),
    (b"GET /gnutella/push-proxy?ServerId=RX7TCAVL4PFIB2DCDZ6SUSKEE4 HTTP/1.1\r\n\r\n",
     "X-Node"),
    (b"GET /gnutella/push-proxy?ServerId=RX7TCAVL4PFIB2DCDZ6SUSKEE4 HTTP/1.1\r\n"
     b"X-Node: 1.2.3.4:99999\r\n\r\n", "X-Node"),
    (b"GET /get/1/a HTTP/1.1\r\nX-Node: 1.2.3.4:5\r\n\r\n", "target"),
])
def test_malformed_requests_name_their_field(head, path):
    with pytest.raises(ParseError) as caught:
        parse_push_proxy_request(head)
    assert caught.value.path == path


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_raise_only_parse_error(data):
    try:
        parse_push_proxy_request(b"GET /gnutella/push-proxy?" + data + b"\r\n\r\n")
    except ParseError:
        pass


def test_responses():
    assert parse_push_proxy_status(push_proxy_response(410)) == 410
    assert push_proxy_response(400).startswith(b"HTTP/1.1 400 Push Proxy: Bad Request\r\n")


def test_ultrapeer_pushes_its_leaf_with_file_index_zero():
    n = Network(seed=4)
    n.add("up", "ultrapeer", vendor_messages=True)
    leaf = n.add("fw", "leaf", ["kilo.bin"], firewalled=True, vendor_messages=True)
    n.link("fw", "up")
    n.pump(1.0)
    up = n.nodes["up"]
    assert set(up.proxied) == {leaf.guid}  # LIME/21 from the leaf, LIME/22 back
    assert not up.proxy_push(GUID, ("127.0.0.9", 6349), 2.0)  # not our leaf: 410
    assert up.proxy_push(leaf.guid, ("127.0.0.9", 6349), 2.0)
    n.pump(2.0)
    [push] = n.events("fw", Push)
    d = push.descriptor
    assert (d.file_index, d.ttl, d.hops, d.ip_address, d.port) == (0, 1, 0, "127.0.0.9", 6349)
    up.close("fw", 3.0)
    n.pump(3.0)
    assert not up.proxied  # the leaf's entry went with its connection


def test_answers_over_a_socket():
    async def ask(port, head):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(head)
        answer = await asyncio.wait_for(reader.read(), 5)
        writer.close()
        return parse_push_proxy_status(answer)

    async def run():
        up = GnutellaServer(ultrapeer=True, seed=11)
        await up.start()
        try:
            unknown = build_push_proxy_request(GUID, ("127.0.0.1", 9), host="x")
            assert await ask(up.port, unknown) == 410
            bad = b"GET /gnutella/push-proxy?ServerId=AA HTTP/1.1\r\nX-Node: 1.2.3.4:5\r\n\r\n"
            assert await ask(up.port, bad) == 400
        finally:
            await up.close()

    asyncio.run(asyncio.wait_for(run(), 20))
