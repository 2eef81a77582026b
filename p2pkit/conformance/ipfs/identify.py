"""Identify (libp2p-identify.md): the message, its fields, and the stream it comes on.

The harness opens ``/ipfs/id/1.0.0``; the target answers one ``Identify`` message
(:data:`~p2pkit.ipfs.identify_messages.IdentifyFrame`) and closes the stream. The fields are
judged against what the harness knows: the peer id Noise authenticated, its own address
(``observedAddr``), the protocols the target really serves.
"""

from __future__ import annotations

from typing import Any

from p2pkit.conformance.ipfs.live import IpfsContext, ipfs_case
from p2pkit.conformance.ipfs.session import MULTISTREAM, Deviation, IpfsSession
from p2pkit.errors import P2PKitError
from p2pkit.ipfs.identify import PROTOCOL_ID as IDENTIFY
from p2pkit.ipfs.identify_messages import IdentifyFrame
from p2pkit.ipfs.keys import PublicKeyMessage
from p2pkit.ipfs.multiaddr import Multiaddr
from p2pkit.ipfs.peer_id import PeerId
from p2pkit.ipfs.protobuf import delimited_frame_length

SPEC = "libp2p-identify §`identify`"
RESPONDS = ("The peer being identified responds by returning an `Identify` message and "
            "closes the stream.")
PUBLIC_KEY = ("This is the public key of the peer, marshalled in binary form as specicfied in "
              "[peer-ids](../peer-ids).")
LISTEN = "These are the addresses on which the peer is listening as multi-addresses."
OBSERVED = ("This is the connection source address of the stream-initiating peer as observed "
            "by the peer being identified; it is a multi-address.")
PROTOCOLS = ("A node should only advertise a protocol if it's willing to receive inbound "
             "streams on that protocol.")
AGENT = "This is a free-form string, identifying the implementation of the peer."
VERSION = ("The protocol version identifies the family of protocols used by the peer. The "
           "field is optional but recommended for debugging and statistic purposes.")
LIMIT = 64 * 1024


async def identify(ctx: IpfsContext, s: IpfsSession) -> tuple[Any, bool]:
    """The target's identify message on a new stream, and whether the stream ended."""
    sid = await s.negotiated(IDENTIFY)
    data = await s.read_stream(sid, lambda b: False)
    size = delimited_frame_length(bytearray(data), LIMIT) if data else None
    if size is None or len(data) < size:
        raise Deviation(f"no whole Identify message on the stream ({len(data)} bytes)")
    try:
        message = IdentifyFrame.parse(data[:size])
    except P2PKitError as e:
        raise Deviation(f"the Identify message does not parse: {e}") from None
    return message, s.streams[sid].ended


def _judge(check: Any) -> Any:
    async def play(ctx: IpfsContext) -> None:
        async with ctx.session() as s:
            await s.secure()
            message, ended = await identify(ctx, s)
            await check(ctx, s, message, ended)
    return play


async def _responds(ctx: IpfsContext, s: IpfsSession, message: Any, ended: bool) -> None:
    if not ended:
        raise Deviation("the stream was not closed after the Identify message")


async def _public_key(ctx: IpfsContext, s: IpfsSession, message: Any, ended: bool) -> None:
    if not message.publicKey:
        raise Deviation("no publicKey")
    try:
        PublicKeyMessage.parse(message.publicKey)
        peer = PeerId.from_public_key(message.publicKey)
    except P2PKitError as e:
        raise Deviation(f"publicKey does not decode: {e}") from None
    if peer != s.remote_peer_id:
        raise Deviation(f"publicKey is {peer}'s, Noise authenticated {s.remote_peer_id}")


async def _listen(ctx: IpfsContext, s: IpfsSession, message: Any, ended: bool) -> None:
    addrs = []
    for raw in message.listenAddrs:
        try:
            addrs.append(str(Multiaddr.from_bytes(raw)))
        except P2PKitError as e:
            raise Deviation(f"listenAddrs entry {raw.hex()} is no multiaddr: {e}") from None
    ctx.note(", ".join(addrs) or "no listenAddrs")


async def _observed(ctx: IpfsContext, s: IpfsSession, message: Any, ended: bool) -> None:
    if not message.observedAddr:
        raise Deviation("no observedAddr")
    try:
        addr = Multiaddr.from_bytes(message.observedAddr)
    except P2PKitError as e:
        raise Deviation(f"observedAddr is no multiaddr: {e}") from None
    host, port = s.writer.get_extra_info("sockname")[:2]
    values = {name: str(value) for name, value in addr}
    if values.get("tcp") != str(port) or values.get("ip4", values.get("ip6")) != host:
        raise Deviation(f"observedAddr {addr}, the harness is at {host}:{port}")


async def _protocols(ctx: IpfsContext, s: IpfsSession, message: Any, ended: bool) -> None:
    if IDENTIFY not in message.protocols:
        raise Deviation(f"{IDENTIFY} is served but not listed in {list(message.protocols)}")
    for protocol in message.protocols[:16]:
        _, lines = await s.open_stream(protocol)
        if lines != [MULTISTREAM, protocol]:
            raise Deviation(f"advertised {protocol} but a stream proposing it got {lines}")
    ctx.note(", ".join(message.protocols))


async def _agent(ctx: IpfsContext, s: IpfsSession, message: Any, ended: bool) -> None:
    ctx.note(f"agentVersion {message.agentVersion!r}, protocolVersion "
             f"{message.protocolVersion!r}")
    if not message.agentVersion:
        raise Deviation("no agentVersion")


async def _version(ctx: IpfsContext, s: IpfsSession, message: Any, ended: bool) -> None:
    if not message.protocolVersion:
        raise Deviation("no protocolVersion")


CASES = [
    ipfs_case(id="identify/respond-and-close", title="one Identify message, then the stream "
              "is closed", spec=SPEC, requirement=RESPONDS, level="MUST",
              rule="ipfs/identify/respond", play=_judge(_responds)),
    ipfs_case(id="identify/public-key", title="publicKey is the key Noise authenticated",
              spec="libp2p-identify §publicKey", requirement=PUBLIC_KEY, level="MUST",
              rule="ipfs/identify/public-key", play=_judge(_public_key)),
    ipfs_case(id="identify/listen-addrs", title="every listenAddrs entry is a binary "
              "multiaddr", spec="libp2p-identify §listenAddrs", requirement=LISTEN,
              level="MUST", rule="ipfs/identify/listen-addrs", play=_judge(_listen)),
    ipfs_case(id="identify/observed-addr", title="observedAddr is the harness's own address",
              spec="libp2p-identify §observedAddr", requirement=OBSERVED, level="SHOULD",
              rule="ipfs/identify/observed", play=_judge(_observed)),
    ipfs_case(id="identify/protocols-served", title="every advertised protocol is agreed on "
              "a stream", spec="libp2p-identify §protocols", requirement=PROTOCOLS,
              level="SHOULD", rule="ipfs/identify/protocols", play=_judge(_protocols)),
    ipfs_case(id="identify/agent-version", title="agentVersion names the implementation",
              spec="libp2p-identify §agentVersion", requirement=AGENT, level="INFO",
              rule="ipfs/identify/agent", play=_judge(_agent)),
    ipfs_case(id="identify/protocol-version", title="protocolVersion is set (recommended)",
              spec="libp2p-identify §protocolVersion", requirement=VERSION, level="SHOULD",
              rule="ipfs/identify/version", play=_judge(_version)),
]
