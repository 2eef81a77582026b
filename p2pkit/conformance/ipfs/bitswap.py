"""Bitswap (ipfs-bitswap-protocol.md): want-have, want-block, DontHave, blocks and their CIDs.

The harness is the client *C*: it opens ``s_want`` for ``/ipfs/bitswap/1.2.0`` and writes
:data:`~p2pkit.ipfs.bitswap_messages.BitswapMessageFrame` messages; the target answers on a
stream of its own (``s_receive``), which the harness accepts. Only ``bitswap/s-receive``
judges which stream the answer came on; the other cases judge the answer wherever it came
(py-libp2p 0.8.1 writes it back on ``s_want``), so each case fails for its own rule only. Cases wanting a block the
target has need one of its CIDs (``IpfsTarget.blocks``, ``--cid`` on the command line);
without one they are *unsupported*.
"""

from __future__ import annotations

from typing import Any

from p2pkit.conformance.ipfs.live import IpfsContext, NotApplicable, ipfs_case
from p2pkit.conformance.ipfs.session import Deviation, IpfsSession
from p2pkit.errors import P2PKitError
from p2pkit.ipfs import yamux
from p2pkit.ipfs.bitswap import PROTOCOL_IDS, cid_from_prefix
from p2pkit.ipfs.bitswap_messages import MAX_BITSWAP_MESSAGE_LENGTH, BitswapMessageFrame
from p2pkit.ipfs.cid import Cid
from p2pkit.ipfs.protobuf import delimited_frame_length

V12 = "ipfs-bitswap-protocol §Bitswap 1.2.0: Interaction Pattern"
S_RECEIVE = "*S* responds back on a stream `s_receive`."
HAVE = ("If *C* sends *S* a `Have` request for data *S* has (and is willing to give to *C*) "
        "it SHOULD respond with a `Have`, although it MAY instead respond with the block "
        "itself (e.g. if the block is very small).")
DONT_HAVE = ("If *C* sends *S* a `Have` request for data *S* does not have (or has but is not "
             "willing to give to *C*) and *C* has requested for `DontHave` responses then *S* "
             "SHOULD respond with `DontHave`.")
RESPOND = ("Upon receiving a wantlist, a Bitswap server SHOULD eventually process and respond "
           "to the requester with either information about the block or the block itself.")
PREFIX = ("The CID prefixes are used to ensure the correct codecs and hash functions are used "
          "to handle the block on the receiving end.")
SIZE = "All protocol messages MUST be less than or equal to 4MiB in size."
SIZES = ("Bitswap implementations MUST support sending and receiving individual blocks of "
         "sizes less than or equal to 2MiB.")


def _messages(data: bytes) -> list[Any]:
    out, offset = [], 0
    while offset < len(data):
        try:
            size = delimited_frame_length(data[offset:], MAX_BITSWAP_MESSAGE_LENGTH)
        except P2PKitError as e:
            raise Deviation(f"a Bitswap message past the 4 MiB limit: {e}") from None
        if size is None or offset + size > len(data):
            break
        try:
            out.append(BitswapMessageFrame.parse(data[offset:offset + size]))
        except P2PKitError as e:
            raise Deviation(f"a Bitswap message does not parse: {e}") from None
        offset += size
    return out


def received(s: IpfsSession, *, s_receive_only: bool = False) -> list[Any]:
    """Every Bitswap message the target sent: on the streams it opened (``s_receive``) and,
    unless ``s_receive_only``, back on the harness's own ``s_want`` streams."""
    return [m for v in s.streams.values() if v.protocol in PROTOCOL_IDS
            and (v.inbound or not s_receive_only) for m in _messages(bytes(v.data))]


async def exchange(s: IpfsSession, message: dict[str, Any], done: Any,
                   wait: float | None = None) -> list[Any]:
    """Write ``message`` on ``s_want``; the target's messages once ``done(messages)``."""
    sid = await s.negotiated(PROTOCOL_IDS[0])
    await s.send_yamux(yamux.SendData(stream_id=sid, data=BitswapMessageFrame.build(message)))
    await s.pump(lambda: done(received(s)), wait)
    return received(s)


def want(cid: Cid, kind: str, dont_have: bool = True) -> dict[str, Any]:
    return {"wantlist": {"entries": [{"block": bytes(cid), "priority": 1, "cancel": False,
                                      "wantType": kind, "sendDontHave": dont_have}],
                         "full": False}}


def _about(cid: Cid, messages: list[Any]) -> tuple[list[str], list[Any]]:
    presences = [p.type for m in messages for p in m.blockPresences
                 if p.cid == bytes(cid)]
    blocks = [b for m in messages for b in m.payload]
    return presences, blocks


async def bitswap_session_answers(ctx: IpfsContext, s: IpfsSession, *,
                                  have_only: bool) -> list[Any]:
    """Secure ``s`` and ask want-have of a fresh CID (with DontHave): the answers."""
    await s.secure()
    cid = Cid.of(ctx.rng.randbytes(32))
    return await exchange(s, want(cid, "Have" if have_only else "Block"),
                          lambda ms: bool(_about(cid, ms)[0]))


def _session(ctx: IpfsContext) -> IpfsSession:
    return ctx.session(accept=PROTOCOL_IDS)


def _known(ctx: IpfsContext) -> Cid:
    if not ctx.target.blocks:
        raise NotApplicable("no CID of a block the target has (give --cid)")
    return ctx.target.blocks[0]


async def _dont_have(ctx: IpfsContext) -> None:
    cid = Cid.of(ctx.rng.randbytes(32))
    async with _session(ctx) as s:
        await s.secure()
        got = await exchange(s, want(cid, "Have"), lambda ms: bool(_about(cid, ms)[0]))
        presences, _ = _about(cid, got)
        if presences != ["DontHave"]:
            raise Deviation(f"answered {presences or 'nothing'} about a CID it cannot have")


async def _s_receive(ctx: IpfsContext) -> None:
    async with _session(ctx) as s:
        got = await bitswap_session_answers(ctx, s, have_only=True)
        if not received(s, s_receive_only=True):
            raise Deviation("no answer on a stream of the target's"
                            + (" (the answer came back on s_want)" if got else ""))


async def _have(ctx: IpfsContext) -> None:
    cid = _known(ctx)
    async with _session(ctx) as s:
        await s.secure()
        got = await exchange(s, want(cid, "Have"),
                             lambda ms: any(_about(cid, ms)))
        presences, blocks = _about(cid, got)
        if "Have" not in presences and not blocks:
            raise Deviation(f"answered {presences or 'nothing'} to want-have of a block it has")


async def _block(ctx: IpfsContext) -> None:
    cid = _known(ctx)
    async with _session(ctx) as s:
        await s.secure()
        got = await exchange(s, want(cid, "Block"), lambda ms: bool(_about(cid, ms)[1]))
        if not _about(cid, got)[1]:
            raise Deviation("no block for want-block of a block it has")


async def _block_matches(ctx: IpfsContext) -> None:
    cid = _known(ctx)
    async with _session(ctx) as s:
        await s.secure()
        got = await exchange(s, want(cid, "Block"), lambda ms: bool(_about(cid, ms)[1]))
        blocks = _about(cid, got)[1]
        if not blocks:
            raise NotApplicable("no block came (see bitswap/want-block)")
        for block in blocks:
            try:
                actual = cid_from_prefix(block.prefix, block.data)
            except P2PKitError as e:
                raise Deviation(f"the block's prefix does not decode: {e}") from None
            if actual.to_v1() != cid.to_v1():
                raise Deviation(f"the block hashes to {actual}, not the wanted {cid}")
        ctx.note(f"{len(blocks[0].data)}-byte block matches {cid}")


async def _size(ctx: IpfsContext) -> None:
    """Every message of the answer parses under the 4 MiB limit (``_messages`` checks)."""
    async with _session(ctx) as s:
        got = await bitswap_session_answers(ctx, s, have_only=False)
        if not got:
            raise Deviation("no answer to judge")


CASES = [
    ipfs_case(id="bitswap/dont-have", title="want-have of an unknown CID with sendDontHave "
              "is answered DontHave", spec=V12, requirement=DONT_HAVE, level="SHOULD",
              rule="ipfs/bitswap/dont-have", play=_dont_have),
    ipfs_case(id="bitswap/s-receive", title="the answer comes on a stream the target opens",
              spec=V12, requirement=S_RECEIVE, level="MUST", rule="ipfs/bitswap/s-receive",
              play=_s_receive),
    ipfs_case(id="bitswap/have", title="want-have of a block the target has is answered Have "
              "(or the block)", spec=V12, requirement=HAVE, level="SHOULD",
              rule="ipfs/bitswap/have", play=_have),
    ipfs_case(id="bitswap/want-block", title="want-block of a block the target has brings "
              "it", spec="ipfs-bitswap-protocol §Introduction", requirement=RESPOND,
              level="SHOULD", rule="ipfs/bitswap/block", play=_block),
    ipfs_case(id="bitswap/block-matches-cid", title="the block sent hashes to the CID wanted "
              "(its prefix and data)", spec="ipfs-bitswap-protocol §Bitswap 1.1.0",
              requirement=PREFIX, level="MUST", rule="ipfs/bitswap/block-cid",
              play=_block_matches),
    ipfs_case(id="bitswap/message-size", title="answers are at most 4 MiB",
              spec="ipfs-bitswap-protocol §Bitswap 1.0.0: Protocol Format", requirement=SIZE,
              level="MUST", rule="ipfs/bitswap/size", play=_size),
]
