"""Robustness: malformed, oversized, truncated and out-of-range input, and floods.

Whatever the target does with the bad input (ignore it, or close this connection), a fresh,
well-behaved session afterwards must be served: the runner proves it after each case. BEP 3
names no error handling; the MUST every swarm relies on is that one bad peer does not bring a
peer down."""

from __future__ import annotations

from p2pkit import bencode
from p2pkit.bittorrent.wire.messages import Handshake, PeerMessage
from p2pkit.conformance.bittorrent._common import (
    _handshake_fields,
    bt_case,
    opening,
    unchoked,
)
from p2pkit.conformance.case import Computed, Raw, Step
from p2pkit.conformance.stream_verifiers import SessionRule
from p2pkit.conformance.verifiers import Anything

SPEC = "BEP 3 §peer protocol"
FRAMING = ("The peer wire protocol consists of a handshake followed by a never-ending stream "
           "of length-prefixed messages.")
PSTR = ("The handshake starts with character ninteen (decimal) followed by the string "
        "'BitTorrent protocol'.")
TYPES = "All non-keepalive messages start with a single byte which gives their type."
LAYOUT = ("The first byte of the bitfield corresponds to indices 0 - 7 from high bit to low "
          "bit, respectively. The next one 8-15, etc.")
SPARE = "Spare bits at the end are set to zero."
ONLY_FIRST = "'bitfield' is only ever sent as the first message."
HAVE = ("The 'have' message's payload is a single number, the index which that downloader just "
        "completed and checked the hash of.")
DICTIONARY = "The payload of the handshake message is a bencoded dictionary."


def _hello(ctx: object) -> bytes:
    return Handshake.build(_handshake_fields(ctx.info_hash, ctx.peer_id))


def _robust(name: str, title: str, data: bytes | Computed, *, requirement: str = FRAMING,
            spec: str = SPEC, fast: bool = True, repeat: int = 1, setup=None,
            expect=None, rule: str = "bep3/robustness", level: str = "MUST",
            tags: tuple[str, ...] = ()) -> object:
    steps = [*(opening(fast=fast) if setup is None else setup),
             Step(send=Raw(data), repeat=repeat, wait=0.2 if repeat > 1 else None,
                  expect=Anything() if expect is None else expect)]
    return bt_case(id=f"bep3/robustness/{name}", title=title, spec=spec,
                   requirement=requirement, level=level, rule=rule, robustness=True,
                   steps=steps, tags=tags)


def _no_handshake_back(answer: object, ctx: object) -> str:
    if answer.session.of_type("handshake"):
        return "the target answered a handshake that does not start with 19 'BitTorrent " \
               "protocol'"
    return ""


def _bitfield(ctx: object, size: int, spare: bool = False) -> bytes:
    n = ctx.facts.piece_count
    bits = bytearray((n + 7) // 8 + size)
    if spare and n % 8:
        bits[-1] = 0x01
    return PeerMessage.build(dict(type="bitfield", bitfield=bytes(bits)))


_REQUEST = PeerMessage.build(dict(type="request", index=0, begin=0, length=16384))
#: No handshake back. Closing is what a plaintext-only peer does; a peer that accepts MSE/PE
#: (BEP 8 in the wild: aria2) may wait for more bytes of what could be a key exchange.
_NOT_A_HANDSHAKE = SessionRule(_no_handshake_back, "no handshake back (closing, or waiting "
                               "for an MSE key exchange)", silence=True)

CASES = [
    bt_case(id="bep3/robustness/wrong-pstr", title="a handshake with another protocol string",
            spec=SPEC, requirement=PSTR, level="MUST", rule="bep3/handshake/bad-pstr",
            robustness=True,
            steps=[Step(send=Raw(Computed(lambda ctx: b"\x13BitTorrent protocoX"
                                          + _hello(ctx)[20:], "pstr 'BitTorrent protocoX'")),
                        expect=_NOT_A_HANDSHAKE)]),
    bt_case(id="bep3/robustness/wrong-pstrlen", title="a handshake whose length byte is 18",
            spec=SPEC, requirement=PSTR, level="MUST", rule="bep3/handshake/bad-pstr",
            robustness=True,
            steps=[Step(send=Raw(Computed(lambda ctx: b"\x12" + _hello(ctx)[1:],
                                          "pstrlen 18")), expect=_NOT_A_HANDSHAKE)]),
    bt_case(id="bep3/robustness/http-request", title="an HTTP request instead of a handshake",
            spec=SPEC, requirement=PSTR, level="MUST", rule="bep3/handshake/bad-pstr",
            robustness=True,
            steps=[Step(send=Raw(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + bytes(40)),
                        expect=_NOT_A_HANDSHAKE)]),
    bt_case(id="bep3/robustness/truncated-handshake", title="half a handshake, then nothing",
            spec=SPEC, requirement=PSTR, level="MUST", rule="bep3/robustness",
            robustness=True,
            steps=[Step(send=Raw(Computed(lambda ctx: _hello(ctx)[:30], "handshake[:30]")),
                        expect=Anything())]),
    _robust("unknown-message-id", "a message with id 99", bytes.fromhex("0000000263ff"),
            requirement=TYPES),
    _robust("huge-length-prefix", "a length prefix of 2^31", bytes.fromhex("80000000") +
            bytes(64)),
    _robust("oversized-message", "a 2 MiB message", (2 * 1024 * 1024 + 1).to_bytes(4, "big") +
            b"\x07" + bytes(2 * 1024 * 1024)),
    _robust("truncated-message", "a request cut after 9 of its 17 bytes", _REQUEST[:9]),
    _robust("short-request", "a request with a 5-byte payload",
            bytes.fromhex("0000000606") + bytes(5)),
    _robust("long-have", "a have with 8 bytes of payload", bytes.fromhex("0000000904") +
            bytes(8), requirement=HAVE),
    _robust("have-out-of-range", "a have for piece 2^32 - 1",
            PeerMessage.build(dict(type="have", index=0xFFFF_FFFF)), requirement=HAVE),
    _robust("bitfield-too-long", "a bitfield one byte too long",
            Computed(lambda ctx: _bitfield(ctx, 1), "a bitfield one byte too long"),
            fast=False, requirement=LAYOUT, tags=("torrent",)),
    _robust("bitfield-too-short", "an empty bitfield",
            PeerMessage.build(dict(type="bitfield", bitfield=b"")), fast=False,
            requirement=LAYOUT),
    _robust("bitfield-spare-bits", "a bitfield with its last spare bit set",
            Computed(lambda ctx: _bitfield(ctx, 0, spare=True), "spare bit set"), fast=False,
            requirement=SPARE, tags=("torrent",)),
    _robust("bitfield-twice", "a second bitfield after requests",
            Computed(lambda ctx: _bitfield(ctx, 0) + _REQUEST + _bitfield(ctx, 0),
                     "bitfield, request, bitfield"), fast=False, requirement=ONLY_FIRST, tags=("torrent",)),
    _robust("garbage-after-handshake", "1000 bytes of noise after the handshake",
            bytes((i * 37 + 11) % 256 for i in range(1000))),
    _robust("bad-extension-handshake", "an extension handshake that is not bencoding",
            PeerMessage.build(dict(type="extended", extended_id=0, payload=b"d1:m" + b"l" * 50)),
            spec="BEP 10 §handshake message", requirement=DICTIONARY),
    _robust("deep-extension-handshake", "an extension handshake nested 5000 deep",
            PeerMessage.build(dict(type="extended", extended_id=0, payload=b"d1:m" + b"l" *
                                   5000 + b"e" * 5001)),
            spec="BEP 10 §handshake message", requirement=DICTIONARY),
    _robust("huge-extension-handshake", "a 1 MiB extension handshake",
            PeerMessage.build(dict(type="extended", extended_id=0, payload=bencode.encode(
                {b"m": {}, b"zz": b"x" * (1 << 20)}))),
            spec="BEP 10 §handshake message", requirement=DICTIONARY),
    _robust("flood-requests-choked", "2000 requests while choked", _REQUEST, repeat=2000),
    _robust("flood-keep-alives", "5000 keep-alives in one burst", bytes(4 * 5000)),
    _robust("flood-requests-unchoked", "1000 copies of one request, unchoked", _REQUEST,
            repeat=1000, setup=[*opening(fast=False), unchoked()]),
    _robust("flood-have", "10000 have messages", Computed(lambda ctx: b"".join(
        PeerMessage.build(dict(type="have", index=i % ctx.facts.piece_count))
        for i in range(10000)), "10000 haves"), requirement=HAVE, tags=("torrent",)),
    _robust("close-mid-handshake", "the handshake's first byte, then a close",
            b"\x13", setup=[], requirement=PSTR),
]
