"""The Kademlia DHT's RPC messages (libp2p-kad-dht.md §RPC messages).

Each request is one :data:`~p2pkit.ipfs.kad_dht_messages.KadMessageFrame` on a new
``/ipfs/kad/1.0.0`` stream; the answer is read from the same stream. The provider cases store
a record as the harness (``ADD_PROVIDER``) and read it back on another stream.
"""

from __future__ import annotations

from typing import Any

from p2pkit.conformance.ipfs.live import IpfsContext, ipfs_case
from p2pkit.conformance.ipfs.session import Deviation, IpfsSession
from p2pkit.errors import P2PKitError
from p2pkit.ipfs import yamux
from p2pkit.ipfs.cid import Cid
from p2pkit.ipfs.kad_dht import PROTOCOL_ID as KAD
from p2pkit.ipfs.kad_dht_messages import MAX_KAD_MESSAGE_LENGTH, KadMessageFrame
from p2pkit.ipfs.keys import Ed25519Identity
from p2pkit.ipfs.multiaddr import Multiaddr
from p2pkit.ipfs.peer_id import PeerId
from p2pkit.ipfs.protobuf import delimited_frame_length

SPEC = "libp2p-kad-dht §RPC messages"
FIND_NODE = ("`FIND_NODE`: In the request `key` must be set to the binary `PeerId` of the node "
             "to be found. In the response `closerPeers` is set to the `k` closest `Peer`s.")
GET_PROVIDERS = ("`GET_PROVIDERS`: In the request `key` is set to a CID. The target node "
                 "returns the closest known `providerPeers` (if any) and the `k` closest known "
                 "`closerPeers`.")
ADD_PROVIDER = ("The target node verifies `key` is a valid CID, all `providerPeers` that "
                "match the RPC sender's PeerID are recorded as providers.")
REUSE = "Implementations must handle additional RPC request messages on an incoming stream."
PREFIX = ("All RPC messages sent over a stream are prefixed with the message length in bytes, "
          "encoded as an unsigned variable length integer")
GET_VALUE = ("`GET_VALUE`: In the request `key` is an unstructured array of bytes. `record` is "
             "set to the value for the given key (if found in the datastore) and "
             "`closerPeers` is set to the `k` closest peers.")
PUT_VALUE = ("`PUT_VALUE`: In the request `record` is set to the record to be stored and "
             "`key` on `Message` is set to equal `key` of the `Record`. The target node "
             "validates `record`, and if it is valid, it stores it in the datastore and as a "
             "response echoes the request.")
K = 20


async def answers(s: IpfsSession, requests: list[dict[str, Any]], *, sid: int | None = None,
                  close: bool = True) -> list[Any]:
    """Send ``requests`` on one kad stream and read as many answers (fewer if it ended)."""
    sid = sid if sid is not None else await s.negotiated(KAD)
    data = b"".join(KadMessageFrame.build(r) for r in requests)
    await s.send_yamux(yamux.SendData(stream_id=sid, data=data))
    if close:
        await s.close_stream(sid)
    out: list[Any] = []

    def enough(buffer: bytes) -> bool:
        offset, count = 0, 0
        while offset < len(buffer):
            size = delimited_frame_length(buffer[offset:], MAX_KAD_MESSAGE_LENGTH)
            if size is None or offset + size > len(buffer):
                break
            offset += size
            count += 1
        return count >= len(requests)

    data = await s.read_stream(sid, enough)
    offset = 0
    while offset < len(data):
        size = delimited_frame_length(data[offset:], MAX_KAD_MESSAGE_LENGTH)
        if size is None or offset + size > len(data):
            break
        try:
            out.append(KadMessageFrame.parse(data[offset:offset + size]))
        except P2PKitError as e:
            raise Deviation(f"answer {len(out) + 1} does not parse: {e}") from None
        offset += size
    return out


def _peer_ok(peer: Any) -> str | None:
    try:
        PeerId(peer.id)
        for raw in peer.addrs:
            Multiaddr.from_bytes(raw)
    except (P2PKitError, ValueError) as e:
        return str(e)
    return None


def _one(requests: Any) -> Any:
    async def play(ctx: IpfsContext) -> None:
        async with ctx.session() as s:
            await s.secure()
            reqs = requests(ctx, s)
            got = await answers(s, reqs)
            if len(got) < 1:
                raise Deviation(f"no answer to {reqs[0]['type']}")
            await JUDGES[reqs[0]["type"]](ctx, s, reqs[0], got[0])
    return play


async def _find_node_judge(ctx: IpfsContext, s: IpfsSession, request: dict, answer: Any) -> None:
    if answer.type != "FIND_NODE":
        raise Deviation(f"answered {answer.type}")
    if len(answer.closerPeers) > K:
        raise Deviation(f"{len(answer.closerPeers)} closerPeers, more than k = {K}")
    for peer in answer.closerPeers:
        if (why := _peer_ok(peer)) is not None:
            raise Deviation(f"closerPeers entry: {why}")
    ctx.note(f"{len(answer.closerPeers)} closerPeers")


async def _get_providers_judge(ctx: IpfsContext, s: IpfsSession, request: dict,
                               answer: Any) -> None:
    if answer.type != "GET_PROVIDERS":
        raise Deviation(f"answered {answer.type}")
    if answer.providerPeers:
        raise Deviation(f"{len(answer.providerPeers)} providers for a fresh CID")
    if len(answer.closerPeers) > K:
        raise Deviation(f"{len(answer.closerPeers)} closerPeers, more than k = {K}")


async def _get_value_judge(ctx: IpfsContext, s: IpfsSession, request: dict,
                           answer: Any) -> None:
    if answer.type != "GET_VALUE":
        raise Deviation(f"answered {answer.type}")
    if answer.record is not None and answer.record.value:
        raise Deviation("a record for a key never stored")


JUDGES = {"FIND_NODE": _find_node_judge, "GET_PROVIDERS": _get_providers_judge,
          "GET_VALUE": _get_value_judge}


def _fresh_cid(ctx: IpfsContext) -> Cid:
    return Cid.of(ctx.rng.randbytes(32))


def _provider_record(s: IpfsSession, peer: bytes) -> dict[str, Any]:
    host, port = s.writer.get_extra_info("sockname")[:2]
    addr = Multiaddr.from_text(f"/ip4/{host}/tcp/{port}")
    return {"id": peer, "addrs": [bytes(addr)]}


def _provider(own: bool, *, valid_key: bool = True) -> Any:
    async def play(ctx: IpfsContext) -> None:
        key = bytes(_fresh_cid(ctx)) if valid_key else b"not a cid " + ctx.rng.randbytes(8)
        async with ctx.session() as s:
            await s.secure()
            me = bytes(PeerId.from_public_key(s.identity.public_key))
            other = bytes(PeerId.from_public_key(Ed25519Identity(ctx.rng.randbytes(32))
                                                 .public_key))
            record = _provider_record(s, me if own else other)
            sid = await s.negotiated(KAD)
            await answers(s, [{"type": "ADD_PROVIDER", "key": key,
                               "providerPeers": [record]}], sid=sid)
            got = await answers(s, [{"type": "GET_PROVIDERS", "key": key}])
            listed = [p.id for p in got[0].providerPeers] if got else []
            if own and valid_key and me not in listed:
                raise Deviation("the sender's own provider record was not returned "
                                f"({len(listed)} providers, answered: {bool(got)})")
            if not own and other in listed:
                raise Deviation("a provider record naming another peer than the sender was "
                                "recorded")
            if not valid_key and me in listed:
                raise Deviation("a provider record for a key that is no CID was recorded")
    return play


async def _reuse(ctx: IpfsContext) -> None:
    async with ctx.session() as s:
        await s.secure()
        reqs = [{"type": "FIND_NODE", "key": bytes(PeerId.from_public_key(
            Ed25519Identity(ctx.rng.randbytes(32)).public_key))} for _ in range(2)]
        got = await answers(s, reqs)
        if len(got) < 2:
            raise Deviation(f"{len(got)} answers to 2 requests on one stream")


async def _prefix(ctx: IpfsContext) -> None:
    async with ctx.session() as s:
        await s.secure()
        got = await answers(s, [{"type": "FIND_NODE", "key": bytes(PeerId.from_public_key(
            s.identity.public_key))}])
        if not got:
            raise Deviation("no varint-prefixed answer")


def _put_value(valid: bool) -> Any:
    """A ``/pk/`` record (the only namespace every IPFS DHT validates): the sender's own
    public key under its own peer id (valid), or under a fresh peer id (invalid: the key's
    peer id is not the public key's); then ``GET_VALUE`` on a new stream."""
    async def play(ctx: IpfsContext) -> None:
        async with ctx.session() as s:
            await s.secure()
            owner = s.identity if valid else Ed25519Identity(ctx.rng.randbytes(32))
            key = b"/pk/" + bytes(PeerId.from_public_key(owner.public_key))
            value = s.identity.public_key
            echo = await answers(s, [{"type": "PUT_VALUE", "key": key,
                                      "record": {"key": key, "value": value}}])
            got = await answers(s, [{"type": "GET_VALUE", "key": key}])
            held = got[0].record.value if got and got[0].record is not None else None
            if valid:
                if not echo or echo[0].record is None or echo[0].record.value != value:
                    raise Deviation("a valid PUT_VALUE was not echoed with its record")
                if held != value:
                    raise Deviation("the stored /pk/ record is not returned by GET_VALUE")
                ctx.note("echoed and stored")
            elif held is not None:
                raise Deviation("a /pk/ record whose key names another peer was stored")
    return play


def _find_node(ctx: IpfsContext, s: IpfsSession) -> list[dict]:
    return [{"type": "FIND_NODE", "key": bytes(PeerId.from_public_key(
        Ed25519Identity(ctx.rng.randbytes(32)).public_key))}]


CASES = [
    ipfs_case(id="kad/find-node", title="FIND_NODE is answered with at most k valid "
              "closerPeers", spec=SPEC, requirement=FIND_NODE, level="MUST",
              rule="ipfs/kad/find-node", play=_one(_find_node)),
    ipfs_case(id="kad/get-providers-unknown", title="GET_PROVIDERS of a fresh CID: no "
              "providers", spec=SPEC, requirement=GET_PROVIDERS, level="MUST",
              rule="ipfs/kad/get-providers",
              play=_one(lambda ctx, s: [{"type": "GET_PROVIDERS",
                                          "key": bytes(_fresh_cid(ctx))}])),
    ipfs_case(id="kad/get-value-unknown", title="GET_VALUE of a fresh key: no record",
              spec=SPEC, requirement=GET_VALUE, level="MUST", rule="ipfs/kad/get-value",
              play=_one(lambda ctx, s: [{"type": "GET_VALUE", "key": b"/pk/" + bytes(
                  PeerId.from_public_key(Ed25519Identity(ctx.rng.randbytes(32)).public_key))}])),
    ipfs_case(id="kad/add-provider-own", title="the sender's provider record is returned by "
              "GET_PROVIDERS", spec=SPEC, requirement=ADD_PROVIDER, level="MUST",
              rule="ipfs/kad/add-provider", depends=("ipfs/kad/get-providers",),
              play=_provider(True)),
    ipfs_case(id="kad/add-provider-foreign", title="a provider record naming another peer is "
              "not recorded", spec=SPEC, requirement=ADD_PROVIDER, level="MUST",
              rule="ipfs/kad/provider-sender", play=_provider(False)),
    ipfs_case(id="kad/add-provider-not-cid", title="a provider record for a key that is no "
              "CID is not recorded", spec=SPEC, requirement=ADD_PROVIDER, level="MUST",
              rule="ipfs/kad/provider-cid", play=_provider(True, valid_key=False)),
    ipfs_case(id="kad/put-value-valid", title="a valid /pk/ record is echoed and returned by "
              "GET_VALUE", spec=SPEC, requirement=PUT_VALUE, level="MUST",
              rule="ipfs/kad/put-value", depends=("ipfs/kad/get-value",),
              play=_put_value(True)),
    ipfs_case(id="kad/put-value-invalid", title="a /pk/ record whose key names another peer "
              "is not stored", spec=SPEC, requirement=PUT_VALUE, level="MUST",
              rule="ipfs/kad/put-value-validated", play=_put_value(False)),
    ipfs_case(id="kad/requests-on-one-stream", title="two requests on one stream get two "
              "answers", spec=SPEC, requirement=REUSE, level="MUST", rule="ipfs/kad/reuse",
              play=_reuse),
    ipfs_case(id="kad/length-prefix", title="answers are varint length-prefixed", spec=SPEC,
              requirement=PREFIX, level="MUST", rule="ipfs/kad/framing", play=_prefix),
]
