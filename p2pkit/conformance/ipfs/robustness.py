"""Robustness: malformed varints and protobufs, lengths past the limits, bad blocks.

Whatever the target does with the bad input (reset the stream, close the connection, ignore
it), a fresh, well-behaved session afterwards must be served: the runner proves it after each
case (``robustness=True``). The Noise and yamux hostile cases live with their layers
(:mod:`~p2pkit.conformance.ipfs.noise_handshake`,
:mod:`~p2pkit.conformance.ipfs.yamux_session`).
"""

from __future__ import annotations

from typing import Any

from p2pkit.conformance.ipfs.bitswap import PREFIX, SIZE, exchange, want
from p2pkit.conformance.ipfs.live import IpfsContext, ipfs_case
from p2pkit.conformance.ipfs.session import MULTISTREAM, Deviation
from p2pkit.ipfs import yamux
from p2pkit.ipfs.bitswap import PROTOCOL_IDS, cid_prefix
from p2pkit.ipfs.bitswap_messages import BitswapMessageFrame
from p2pkit.ipfs.cid import Cid
from p2pkit.ipfs.kad_dht import PROTOCOL_ID as KAD
from p2pkit.ipfs.varint import encode_uvarint

VARINT = "unsigned-varint §Practical maximum of 9 bytes (for security)"
NINE = "Implementations MUST restrict the size of the varint to a max of 9 bytes (63 bits)."
KAD_SPEC = "libp2p-kad-dht §RPC messages"
KAD_PREFIX = ("All RPC messages sent over a stream are prefixed with the message length in "
              "bytes, encoded as an unsigned variable length integer")
NOTE1 = ('**Note 1:** Every multistream message is a "length-prefixed-message", which means '
         "that every message is preprended by a varint that describes the size of the message.")
RULE = "ipfs/robustness"


def _raw(data: Any) -> Any:
    """Bytes on the raw TCP connection, before any negotiation."""
    async def play(ctx: IpfsContext) -> None:
        async with ctx.session() as s:
            await s.write(data(ctx) if callable(data) else data)
            await s.closes(1.0)
    return play


def _on_stream(protocol: str, data: Any) -> Any:
    """Bytes on a stream agreed for ``protocol``."""
    async def play(ctx: IpfsContext) -> None:
        async with ctx.session(accept=PROTOCOL_IDS) as s:
            await s.secure()
            sid = await s.negotiated(protocol)
            await s.send_yamux(yamux.SendData(stream_id=sid, data=data(ctx) if callable(
                data) else data))
            await s.pump(lambda: s.streams[sid].reset or s.streams[sid].ended, 1.0)
    return play


def _robust(name: str, title: str, spec: str, requirement: str, play: Any) -> Any:
    return ipfs_case(id=f"robustness/{name}", title=title, spec=spec, requirement=requirement,
                     level="MUST", rule=RULE, play=play, robustness=True)


# a protobuf field of wire type 7 (there is none), then a length-delimited field past the end
BAD_PROTOBUF = b"\x0f\xff\xff" + b"\x12\xff\x7f" + b"x" * 8


async def _unsolicited_block(ctx: IpfsContext) -> None:
    """A block nobody asked for (1 KiB, its CID the harness's): the target must not serve it
    afterwards as if it had it (a peer could otherwise plant blocks)."""
    data = ctx.rng.randbytes(1024)
    cid = Cid.of(data)
    async with ctx.session(accept=PROTOCOL_IDS) as s:
        await s.secure()
        sid = await s.negotiated(PROTOCOL_IDS[0])
        await s.send_yamux(yamux.SendData(stream_id=sid, data=BitswapMessageFrame.build(
            {"payload": [{"prefix": cid_prefix(cid), "data": data}]})))
        got = await exchange(s, want(cid, "Have"), lambda ms: any(
            p.cid == bytes(cid) for m in ms for p in m.blockPresences) or any(
            m.payload for m in ms))
        if any(m.payload for m in got):
            raise Deviation("the unsolicited block was served back")


async def _bad_prefix(ctx: IpfsContext) -> None:
    """A payload block whose prefix names an unknown hash function and a 200-byte digest."""
    prefix = encode_uvarint(1) + encode_uvarint(0x55) + encode_uvarint(0x99) + \
        encode_uvarint(200)
    async with ctx.session(accept=PROTOCOL_IDS) as s:
        await s.secure()
        sid = await s.negotiated(PROTOCOL_IDS[0])
        await s.send_yamux(yamux.SendData(stream_id=sid, data=BitswapMessageFrame.build(
            {"payload": [{"prefix": prefix, "data": b"not the block"}]})))
        await s.pump(lambda: s.streams[sid].reset, 1.0)


CASES = [
    _robust("multistream-garbage", "4 KiB of random bytes instead of the multistream header",
            "multistream-select §Protocol", NOTE1, _raw(lambda ctx: ctx.rng.randbytes(4096))),
    _robust("multistream-varint-10-bytes", "a multistream length varint of 10 bytes", VARINT,
            NINE, _raw(b"\xff" * 10 + b"\x01")),
    _robust("multistream-line-64k", "a multistream message announcing 64 KiB",
            "multistream-select §Protocol", NOTE1,
            _raw(encode_uvarint(65535) + b"/" * 4096)),
    _robust("multistream-no-newline", "a multistream message without its newline",
            "multistream-select §Protocol", NOTE1,
            _raw(encode_uvarint(19) + MULTISTREAM.encode() + b"X")),
    _robust("kad-varint-10-bytes", "a kad-dht request whose length varint has 10 bytes",
            VARINT, NINE, _on_stream(KAD, b"\xff" * 10 + b"\x01")),
    _robust("kad-length-64mib", "a kad-dht request announcing 64 MiB", KAD_SPEC, KAD_PREFIX,
            _on_stream(KAD, encode_uvarint(64 << 20) + b"\x08" * 1024)),
    _robust("kad-malformed-protobuf", "a kad-dht request that is no protobuf", KAD_SPEC,
            KAD_PREFIX, _on_stream(KAD, encode_uvarint(len(BAD_PROTOBUF)) + BAD_PROTOBUF)),
    _robust("bitswap-length-64mib", "a Bitswap message announcing 64 MiB",
            "ipfs-bitswap-protocol §Bitswap 1.0.0: Protocol Format", SIZE,
            _on_stream(PROTOCOL_IDS[0], encode_uvarint(64 << 20) + bytes(1024))),
    _robust("bitswap-malformed-protobuf", "a Bitswap message that is no protobuf",
            "ipfs-bitswap-protocol §Bitswap 1.0.0: Protocol Format", SIZE,
            _on_stream(PROTOCOL_IDS[0], encode_uvarint(len(BAD_PROTOBUF)) + BAD_PROTOBUF)),
    _robust("bitswap-unsolicited-block", "a block nobody wanted is not stored and served",
            "ipfs-bitswap-protocol §Bitswap 1.1.0", PREFIX, _unsolicited_block),
    _robust("bitswap-bad-prefix", "a block whose CID prefix names an unknown hash and a "
            "200-byte digest", "ipfs-bitswap-protocol §Bitswap 1.1.0", PREFIX, _bad_prefix),
    _robust("identify-then-garbage", "garbage written on the identify stream",
            "multistream-select §Protocol", NOTE1,
            _on_stream("/ipfs/id/1.0.0", lambda ctx: ctx.rng.randbytes(512))),
]
