"""BEP 3 §peer protocol: the handshake (pstr, reserved bytes, info-hash, peer id) and what the
reserved bits switch on or off (BEP 5 DHT, BEP 6 fast extension, BEP 10 extension protocol)."""

from __future__ import annotations

from p2pkit.bittorrent.wire.messages import Handshake
from p2pkit.conformance.bittorrent._common import (
    AVAILABILITY,
    UNCHOKE_WAIT,
    _handshake_fields,
    bt_case,
    handshake,
    opening,
    request,
    unchoked,
    wire,
)
from p2pkit.conformance.case import INFO_HASH, Computed, Raw, Step
from p2pkit.conformance.stream_verifiers import Receives, SessionRule, StaysOpen
from p2pkit.conformance.verifiers import Length, Satisfies

SPEC = "BEP 3 §peer protocol"
PSTR = ("The handshake starts with character ninteen (decimal) followed by the string "
        "'BitTorrent protocol'.")
RESERVED = ("After the fixed headers come eight reserved bytes, which are all zero in all "
            "current implementations.")
ECHO = "If both sides don't send the same value, they sever the connection."
PEER_ID = ("After the download hash comes the 20-byte peer id which is reported in tracker "
           "requests and contained in peer lists in tracker responses.")
FRAMING = ("The peer wire protocol consists of a handshake followed by a never-ending stream "
           "of length-prefixed messages.")
FAST_ONLY_BOTH = "The extension is enabled only if both ends of the connection set this bit."
EXT_BIT = ("So (reserved_byte[5] & 0x10) is the expression to use for checking if the client "
           "supports extended messaging.")
DHT_PORT = ("Peer receiving a handshake indicating the remote peer supports the DHT should send "
            "a PORT message.")

FAST_MESSAGES = ("have_all", "have_none", "suggest_piece", "reject_request", "allowed_fast")


def _hello(ctx: object) -> bytes:
    return Handshake.build(_handshake_fields(ctx.info_hash, ctx.peer_id))


def _plain_hello(ctx: object) -> bytes:
    return Handshake.build(_handshake_fields(ctx.info_hash, ctx.peer_id, fast=False, ext=False))


def _other_hash(ctx: object) -> bytes:
    return bytes(b ^ 0x5A for b in ctx.info_hash)


def _closed_unserved(answer: object, ctx: object) -> str | None:
    wrong = _other_hash(ctx)
    for m in answer.session.of_type("handshake"):
        if m["info_hash"] == wrong:
            return "the target answered a handshake for an info-hash it does not serve"
    return "" if answer.closed else None


def _no_messages(*types: str, text: str) -> SessionRule:
    def rule(answer: object, ctx: object) -> str:
        for m in answer.session.messages:
            if m["type"] in types:
                return f"received a {m['type']} ({text})"
        return ""
    return SessionRule(rule, f"no {'/'.join(types)} in the whole session", silence=True)


CASES = [
    bt_case(
        id="bep3/handshake/pstr", title="the handshake starts with 19 and 'BitTorrent protocol'",
        spec=SPEC, requirement=PSTR, level="MUST", rule="bep3/handshake/pstr",
        steps=[handshake(expect=Receives("handshake", length=68))]),
    bt_case(
        id="bep3/handshake/info-hash-echo", title="the answer carries the same info-hash",
        spec=SPEC, requirement=ECHO, level="MUST", rule="bep3/handshake/info-hash-echo",
        steps=[handshake(expect=Receives("handshake", info_hash=INFO_HASH))]),
    bt_case(
        id="bep3/handshake/peer-id", title="the answer carries a 20-byte peer id of its own",
        spec=SPEC, requirement=PEER_ID, level="MUST", rule="bep3/handshake/peer-id",
        steps=[handshake(expect=Receives("handshake", peer_id=Satisfies(
            lambda v, ctx: len(v) == 20 and v != ctx.peer_id,
            "20 bytes, not the harness's own peer id")))]),
    bt_case(
        id="bep3/handshake/unknown-info-hash", title="a handshake for a torrent the target "
        "does not serve is dropped", spec=SPEC, requirement=ECHO, level="MUST",
        rule="bep3/handshake/unknown-info-hash",
        # it asks for no handshake from the target: a wrong pstr cannot spoil it
        needs_handshake=False,
        steps=[handshake(info_hash=Computed(_other_hash, "an info-hash it does not serve"),
                         expect=SessionRule(_closed_unserved, "the target closes without "
                                            "a handshake for that info-hash",
                                            pending="the connection stayed open"))]),
    bt_case(
        id="bep3/handshake/reserved-unknown-bits", title="unknown reserved bits are ignored",
        spec=SPEC, requirement=RESERVED, level="SHOULD", rule="bep3/handshake/reserved",
        steps=[handshake(unknown=0x8000_0000_0000_0000 | 0x0000_0100_0000_0000),
               Step(send=request(0), expect=StaysOpen())]),
    bt_case(
        id="bep3/handshake/all-zero-reserved", title="a plain BEP 3 handshake (all reserved "
        "bits zero) is served", spec=SPEC, requirement=RESERVED, level="MUST",
        rule="bep3/handshake/reserved",
        steps=[handshake(fast=False, ext=False), unchoked()]),
    bt_case(
        id="bep3/handshake/split", title="a handshake arriving in three TCP segments",
        spec=SPEC, requirement=FRAMING, level="MUST", rule="bep3/stream-framing",
        steps=[Step(send=Raw(Computed(lambda ctx: _plain_hello(ctx)[:7], "handshake[:7]")),
                    wait=0.1),
               Step(send=Raw(Computed(lambda ctx: _plain_hello(ctx)[7:40], "handshake[7:40]")),
                    wait=0.1),
               Step(send=Raw(Computed(lambda ctx: _plain_hello(ctx)[40:], "handshake[40:]")),
                    expect=Receives("handshake")), unchoked()]),
    bt_case(
        id="bep3/handshake/with-first-messages", title="the handshake and interested in one "
        "segment", spec=SPEC, requirement=FRAMING, level="MUST", rule="bep3/stream-framing",
        steps=[Step(send=Raw(Computed(
            lambda ctx: _plain_hello(ctx) + bytes.fromhex("0000000102"),
            "a BEP 3 handshake (no reserved bit) + interested")), wait=UNCHOKE_WAIT,
            expect=Receives("unchoke"))]),
    bt_case(
        id="bep3/handshake/no-fast-messages-without-bit", title="no BEP 6 message when the "
        "harness does not set the fast bit", spec="BEP 6 §Fast Extension",
        requirement=FAST_ONLY_BOTH, level="MUST", rule="bep6/enabled-by-both",
        steps=[*opening(fast=False), unchoked(), Step(send=request(0), name="piece",
                                                      expect=Receives("piece")),
               Step(send=wire("cancel", index=0, begin=0, length=16384),
                    expect=_no_messages(*FAST_MESSAGES, text="the harness has no fast bit"))]),
    bt_case(
        id="bep3/handshake/no-extended-without-bit", title="no BEP 10 message when the "
        "harness does not set the extension bit", spec="BEP 10 §Extension Protocol",
        requirement=EXT_BIT, level="MUST", rule="bep10/enabled-by-both",
        steps=[*opening(ext=False), unchoked(),
               Step(send=None, expect=_no_messages(
                   "extended", "extended_handshake", "ut_metadata", "ut_pex",
                   text="the harness has no extension bit"))]),
    bt_case(
        id="bep3/handshake/availability-after-handshake", title="what the target has comes "
        "after its handshake", spec="BEP 3 §peer messages",
        requirement="'bitfield' is only ever sent as the first message.", level="MUST",
        rule="bep3/bitfield/first",
        steps=[handshake(), Step(send=None, expect=Receives(AVAILABILITY, session=True))],
        tags=("torrent",)),
    bt_case(
        id="bep5/handshake/port-message", title="a DHT-capable peer sends PORT to a DHT peer",
        spec="BEP 5 §BitTorrent Protocol Extension", requirement=DHT_PORT, level="SHOULD",
        rule="bep5/port-message", extension="BEP 5",
        steps=[handshake(dht=True),
               Step(send=None, expect=Receives("port", port=Satisfies(
                   lambda v, ctx: 0 < v < 65536, "a UDP port")))]),
    bt_case(
        id="bep3/handshake/peer-id-prefix", title="the target's peer id (client and version)",
        spec=SPEC, requirement=PEER_ID, level="INFO", rule="bep3/handshake/peer-id",
        steps=[handshake(expect=Receives("handshake", peer_id=Length(20)))]),
]
