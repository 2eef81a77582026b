"""Magnet URIs (BEP 9 §magnet URI format, BEP 53, BEP 19): parse, build, round-trip, errors."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pkit.bittorrent.wire.magnet import MagnetLink, PeerAddress
from p2pkit.bittorrent.wire.metainfo import Metainfo
from p2pkit.errors import BuildError, ParseError

TORRENTS = Path(__file__).parents[2] / "data" / "torrents"
# Info-hashes recorded by the traffic README (tests/data/README.md), not computed by p2pkit.
V1 = bytes.fromhex("8e3f4515b630cdb09dfc315577611036fc7ac773")
V2 = bytes.fromhex("53a4c27da212ea02bba649b6bc62c681e0ba1a49bb46cf5e3ff543eee19398a9")


def common(uri: str, **expected) -> MagnetLink:
    """Parse, check the expected fields, and check that the rebuilt URI parses back equal."""
    link = MagnetLink.parse(uri)
    for key, value in expected.items():
        assert getattr(link, key) == value, key
    assert MagnetLink.parse(link.to_uri()) == link
    assert str(link) == link.to_uri()
    return link


def test_v1_hex_and_base32_name_the_same_torrent():
    hex_link = common(f"magnet:?xt=urn:btih:{V1.hex()}&dn=payload-02.bin",
                      info_hash_v1=V1, info_hash_v2=None, display_name="payload-02.bin")
    b32 = base64.b32encode(V1).decode()
    assert len(b32) == 32
    assert common(f"magnet:?xt=urn:btih:{b32}&dn=payload-02.bin") == hex_link
    assert common(f"magnet:?xt=urn:btih:{b32.lower()}").info_hash_v1 == V1
    assert common(f"MAGNET:?XT=urn:BTIH:{V1.hex().upper()}").info_hash_v1 == V1


def test_v2_multihash_and_hybrid():
    common(f"magnet:?xt=urn:btmh:1220{V2.hex()}", info_hash_v2=V2, info_hash_v1=None)
    hybrid = common(f"magnet:?xt=urn:btih:{V1.hex()}&xt=urn:btmh:1220{V2.hex()}",
                    info_hash_v1=V1, info_hash_v2=V2)
    assert hybrid.to_uri().startswith(f"magnet:?xt=urn:btih:{V1.hex()}&xt=urn:btmh:1220")
    # Numbered exact topics, as some clients write them.
    assert common(f"magnet:?xt.1=urn:btih:{V1.hex()}&xt.2=urn:btmh:1220{V2.hex()}") == hybrid


def test_trackers_web_seeds_peers_select_only_and_length():
    uri = (f"magnet:?xt=urn:btih:{V1.hex()}&dn=a+b%20c&tr=http%3A%2F%2F127.0.0.1%3A6969%2Fannounce"
           "&tr=udp://127.0.0.2:6969&ws=http://127.0.0.1/seed/&x.pe=127.0.0.2:6881"
           "&x.pe=[::1]:6882&x.pe=peer.example:7000&so=0,2,4-6&xl=2097152&foo=bar")
    link = common(
        uri,
        display_name="a b c",
        trackers=("http://127.0.0.1:6969/announce", "udp://127.0.0.2:6969"),
        web_seeds=("http://127.0.0.1/seed/",),
        peers=(PeerAddress(host="127.0.0.2", port=6881), PeerAddress(host="::1", port=6882),
               PeerAddress(host="peer.example", port=7000)),
        select_only=(range(0, 1), range(2, 3), range(4, 7)),
        exact_length=2097152,
        extra=(("foo", "bar"),),
    )
    assert [i for i in range(10) if link.selects(i)] == [0, 2, 4, 5, 6]
    assert "x.pe=[::1]:6882" in link.to_uri() and "so=0,2,4-6" in link.to_uri()
    assert all(MagnetLink(info_hash_v1=V1).selects(i) for i in range(3))


def test_reserved_characters_survive_a_round_trip():
    link = MagnetLink(info_hash_v1=V1, display_name="a&b=c+d #?%",
                      trackers=("http://t/announce?passkey=1&x=2",))
    assert MagnetLink.parse(link.to_uri()) == link


@pytest.mark.parametrize(("uri", "path", "at"), [
    ("http://x", "", "http"),
    ("magnet:?dn=x", "xt", "dn=x"),
    (f"magnet:?xt=urn:btih:{V1.hex()[:-1]}g", "xt", "urn:btih"),
    ("magnet:?xt=urn:btih:abc", "xt", "urn:btih"),
    (f"magnet:?xt=urn:btmh:1114{V2.hex()}", "xt", "urn:btmh"),
    (f"magnet:?xt=urn:btmh:1220{V2.hex()[:-2]}", "xt", "urn:btmh"),
    (f"magnet:?xt=urn:btih:{V1.hex()}&xt=urn:btih:{bytes(20).hex()}", "xt", "urn:btih:0000"),
    (f"magnet:?xt=urn:btih:{V1.hex()}&x.pe=127.0.0.1:0", "x.pe", "127.0.0.1:0"),
    (f"magnet:?xt=urn:btih:{V1.hex()}&x.pe=127.0.0.1", "x.pe", "127.0.0.1"),
    (f"magnet:?xt=urn:btih:{V1.hex()}&so=3-1", "so", "3-1"),
    (f"magnet:?xt=urn:btih:{V1.hex()}&so=1,,2", "so", "1,,2"),
    (f"magnet:?xt=urn:btih:{V1.hex()}&xl=-5", "xl", "-5"),
    (f"magnet:?xt=urn:btih:{V1.hex()}&dn", "dn", "dn"),
    (f"magnet:?xt=urn:btih:{V1.hex()}&dn=%FF", "dn", "%FF"),
])
def test_bad_magnets_name_parameter_and_offset(uri, path, at):
    with pytest.raises(ParseError) as info:
        MagnetLink.parse(uri)
    err = info.value
    assert err.protocol == "magnet" and err.path == path
    assert uri[err.offset:].startswith(at)


def test_building_checks_values():
    with pytest.raises(BuildError):
        MagnetLink()
    with pytest.raises(BuildError):
        MagnetLink(info_hash_v1=bytes(19))
    with pytest.raises(BuildError):
        MagnetLink(info_hash_v1=V1, select_only=(range(3, 3),))
    with pytest.raises(BuildError):
        PeerAddress(host="h", port=70000)


@pytest.mark.parametrize(("name", "v1", "v2"), [
    ("bt-02-libtorrent-magnet-ut_metadata-pex.torrent", V1, None),
    ("bt-05-libtorrent-v2-magnet.torrent", None, V2),
])
def test_from_metainfo_of_libtorrent_torrents(name, v1, v2):
    meta = Metainfo.parse((TORRENTS / name).read_bytes())
    link = MagnetLink.from_metainfo(meta, peers=[PeerAddress(host="127.0.0.2", port=6881)])
    assert (link.info_hash_v1, link.info_hash_v2, link.display_name) == (v1, v2, meta.name)
    uri = link.to_uri()
    if v2:
        # BEP 9: "the multihash formatted, hex encoded full infohash".
        assert f"xt=urn:btmh:1220{v2.hex()}" in uri
    assert common(uri) == link


def test_from_metainfo_flattens_tracker_tiers():
    from p2pkit.bittorrent.wire.create import create_from_contents

    meta = Metainfo.parse(create_from_contents(
        "x", b"data", version="hybrid", trackers=["http://a/", ["http://b/", "http://a/"]],
        web_seeds=["http://w/"]))
    link = MagnetLink.from_metainfo(meta)
    assert link.trackers == ("http://a/", "http://b/") and link.web_seeds == ("http://w/",)
    assert (link.info_hash_v1, link.info_hash_v2) == (meta.info_hash_v1, meta.info_hash_v2)


# --- properties --------------------------------------------------------------------------------

text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=20)
host = st.one_of(
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).map(str),
    st.from_regex(r"[a-z][a-z0-9.-]{0,15}", fullmatch=True),
)
ranges = st.tuples(st.integers(0, 1000), st.integers(0, 5)).map(lambda t: range(t[0], sum(t) + 1))


@settings(max_examples=100, deadline=None)
@given(
    v1=st.none() | st.binary(min_size=20, max_size=20),
    v2=st.none() | st.binary(min_size=32, max_size=32),
    display_name=st.none() | text,
    trackers=st.lists(text, max_size=3).map(tuple),
    web_seeds=st.lists(text, max_size=2).map(tuple),
    peers=st.lists(st.builds(PeerAddress, host=host, port=st.integers(1, 65535)),
                   max_size=3).map(tuple),
    select_only=st.lists(ranges, max_size=4).map(tuple),
    exact_length=st.none() | st.integers(0, 2**63),
)
def test_build_then_parse_round_trips(v1, v2, display_name, trackers, web_seeds, peers,
                                      select_only, exact_length):
    if v1 is None and v2 is None:
        v1 = bytes(20)
    link = MagnetLink(info_hash_v1=v1, info_hash_v2=v2, display_name=display_name,
                      trackers=trackers, web_seeds=web_seeds, peers=peers,
                      select_only=select_only, exact_length=exact_length)
    assert MagnetLink.parse(link.to_uri()) == link


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.text(max_size=80), st.text(max_size=80).map(lambda s: "magnet:?" + s),
                 st.lists(st.sampled_from(["xt=urn:btih:", "xt=urn:btmh:1220", "x.pe=", "so=",
                                           "xl=", "&", "=", "[", "]", ":", "-", ",", "%", "0",
                                           "a", "ff", V1.hex()]), max_size=12)
                 .map(lambda parts: "magnet:?" + "".join(parts))))
def test_random_text_raises_only_parse_error(uri):
    try:
        MagnetLink.parse(uri)
    except ParseError as e:
        assert e.offset is None or 0 <= e.offset <= len(uri)
