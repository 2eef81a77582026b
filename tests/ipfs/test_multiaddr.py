"""Multiaddrs (multiaddr.md): the spec's example, every supported protocol, errors."""

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from p2pkit.errors import LimitExceeded, ParseError
from p2pkit.ipfs.multiaddr import MAX_COMPONENTS, Multiaddr, MultiaddrBinary
from p2pkit.ipfs.peer_id import PeerId

PEER = "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA"

ADDRS = [
    "/ip4/127.0.0.1/udp/1234",
    "/ip4/127.0.0.1/tcp/4001/p2p/" + PEER,
    "/ip6/::1/tcp/4001",
    "/ip6/fe80::1/udp/4001/quic-v1",
    "/dns/example.com/tcp/443/tls/ws",
    "/dns4/example.com/tcp/1234/tls/ws/tls",
    "/dns6/example.com/udp/4001/quic-v1/webtransport",
    "/dnsaddr/bootstrap.libp2p.io",
    "/ip4/1.2.3.4/tcp/1234/tls/sni/example.com/http",
    "/ip4/127.0.0.1/tcp/4001/noise",
    "/ip4/127.0.0.1/tcp/4001/wss",
    "/ip4/1.2.3.4/tcp/1/p2p/" + PEER + "/p2p-circuit/p2p/QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N",
    "/unix/tmp/p2p.sock",
    "/ip4/10.0.0.0/ipcidr/8",
]


def test_spec_example():
    # §Encoding: "/ip4/127.0.0.1/udp/1234" is "0x4 0x7f 0x0 0x0 0x1 0x91 0x2 0x4 0xd2"
    assert bytes(Multiaddr.from_text("/ip4/127.0.0.1/udp/1234")) == bytes(
        [0x4, 0x7F, 0x0, 0x0, 0x1, 0x91, 0x2, 0x4, 0xD2])


@pytest.mark.parametrize("text", ADDRS)
def test_text_binary_round_trip(text):
    m = Multiaddr.from_text(text)
    assert str(m) == text
    assert Multiaddr.from_bytes(bytes(m)) == m


def test_values_and_aliases():
    m = Multiaddr.from_text("/ip4/127.0.0.1/tcp/4001/ipfs/" + PEER)
    assert m.value_for("ip4") == ipaddress.IPv4Address("127.0.0.1")
    assert m.value_for("tcp") == 4001
    assert str(m).endswith("/p2p/" + PEER)
    # the CID form of a peer id is accepted and shown as base58btc
    cid_form = PeerId.from_text(PEER).to_cid_text()
    assert cid_form.startswith("bafz")
    m2 = Multiaddr.from_text("/p2p/" + cid_form)
    assert m2.peer_id == Multiaddr.from_text("/p2p/" + PEER).peer_id


@pytest.mark.parametrize("text,offset", [
    ("ip4/1.2.3.4", 0), ("/ip4/1.2.3.999", 5), ("/ip4/1.2.3.4/tcp/70000", 17),
    ("/nosuch/1", 1), ("/ip4/1.2.3.4/tcp", 13), ("/p2p/notapeer", 5),
])
def test_text_errors(text, offset):
    with pytest.raises(ParseError) as e:
        Multiaddr.from_text(text)
    assert e.value.protocol == "multiaddr" and e.value.offset == offset


def test_binary_errors():
    with pytest.raises(ParseError) as e:
        Multiaddr.from_bytes(bytes.fromhex("047f000001") + b"\x99\x99\x01")
    assert e.value.offset == 5 and "unknown" in e.value.reason
    with pytest.raises(ParseError) as e:
        Multiaddr.from_bytes(bytes.fromhex("047f0000"))
    assert e.value.offset is not None
    with pytest.raises(LimitExceeded):
        Multiaddr.from_bytes(b"\x06\x00\x01" * (MAX_COMPONENTS + 1))


_component = st.one_of(
    st.builds(lambda a: ("ip4", ipaddress.IPv4Address(a)), st.integers(0, 2**32 - 1)),
    st.builds(lambda a: ("ip6", ipaddress.IPv6Address(a)), st.integers(0, 2**128 - 1)),
    st.builds(lambda p: ("tcp", p), st.integers(0, 65535)),
    st.builds(lambda p: ("udp", p), st.integers(0, 65535)),
    st.builds(lambda d: ("dns", d), st.from_regex(r"[a-z][a-z0-9.-]{0,30}", fullmatch=True)),
    st.sampled_from([("tls", None), ("noise", None), ("ws", None), ("quic-v1", None)]),
)


@given(st.lists(_component, max_size=6))
def test_round_trip(components):
    m = Multiaddr(tuple(components))
    assert Multiaddr.from_bytes(bytes(m)) == m
    assert Multiaddr.from_text(str(m)) == m if components else True


@given(st.binary(max_size=40))
def test_random_bytes_raise_only_parse_error(data):
    try:
        MultiaddrBinary.parse(data)
    except ParseError:
        pass
