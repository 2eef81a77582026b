"""A py-libp2p peer for p2pkit's interop tests (PyPI ``libp2p`` 0.8.1, trio): TCP on loopback
only, Noise, yamux, identify, ping, the kad-dht (server mode, ``/ipfs/kad/1.0.0``) and Bitswap
1.2; no bootstrap, no mDNS, no UPnP, no random walk. It runs in its own virtual environment
(py-libp2p pins ``coincurve``, ``fastecdsa``, ``protobuf`` < 7 and pulls trio, grpcio, aioquic:
kept out of p2pkit's), as a subprocess, the way the js-libp2p peer runs under Node. Run it inside
``unshare -n``.

    PY serve SECONDS [FILE]       listen on 127.0.0.1; with FILE, add it (py-libp2p's own
                                   chunking) and serve it over Bitswap; print
                                   {"listening": [...], "id": ..., "cid": ...}
    PY dial MULTIADDR [CID]       dial, ping 3 times, identify the remote; with CID: find its
                                   providers through the remote's DHT, provide a block of our own
                                   there, then fetch CID over Bitswap

Output: one JSON document per line on stdout. Bounded: exits after SECONDS (serve) or 40 s.
This file must not import p2pkit (it runs under py-libp2p's interpreter).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys

import multiaddr
import trio
from libp2p import new_host
from libp2p.bitswap import BitswapClient, MemoryBlockStore
from libp2p.bitswap.cid import cid_to_text, compute_cid_v1, parse_cid
from libp2p.bitswap.dag import MerkleDag
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.identity.identify.identify import ID as IDENTIFY
from libp2p.identity.identify.identify import parse_identify_response
from libp2p.kad_dht.kad_dht import DHTMode, KadDHT
from libp2p.peer.peerinfo import info_from_p2p_addr
from libp2p.tools.anyio_service import background_trio_service

DIAL_LIMIT = 40


def out(doc: dict) -> None:
    sys.stdout.write(json.dumps(doc) + "\n")
    sys.stdout.flush()


async def identify(host, peer_id) -> dict:
    """Our own identify request: open ``/ipfs/id/1.0.0``, read to the end, parse."""
    stream = await host.new_stream(peer_id, [IDENTIFY])
    data = b""
    with trio.fail_after(10):
        while True:
            try:
                chunk = await stream.read(65536)
            except EOFError:  # py-libp2p's StreamEOF: the remote's FIN
                break
            if not chunk:
                break
            data += chunk
    await stream.close()
    msg = parse_identify_response(data)
    return {"agentVersion": msg.agent_version, "protocolVersion": msg.protocol_version,
            "protocols": list(msg.protocols),
            "listenAddrs": [str(multiaddr.Multiaddr(a)) for a in msg.listen_addrs],
            "observedAddr": str(multiaddr.Multiaddr(msg.observed_addr))
            if msg.observed_addr else None,
            "signedPeerRecord": bool(msg.signedPeerRecord)}


async def start_bitswap(host, nursery: trio.Nursery) -> BitswapClient:
    """A Bitswap client with a nursery: without one, py-libp2p 0.8.1 reads the answers to
    its wants inline on its own ``s_want`` stream and waits there 30 s when they come on a
    stream of the server's (``s_receive``, where go, js and p2pkit send them)."""
    bitswap = BitswapClient(host, MemoryBlockStore())
    bitswap.set_nursery(nursery)
    await bitswap.start()
    return bitswap


async def serve(seconds: float, path: str | None) -> None:
    host = new_host(key_pair=create_new_key_pair(), listen_addrs=[
        multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/0")], enable_mDNS=False, enable_upnp=False,
        bootstrap=None)
    with trio.move_on_after(seconds):
        async with host.run(listen_addrs=[multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/0")]):
            dht = KadDHT(host, DHTMode.SERVER, enable_random_walk=False)
            async with background_trio_service(dht), trio.open_nursery() as nursery:
                bitswap = await start_bitswap(host, nursery)
                doc = {"listening": [str(a) for a in host.get_addrs()],
                       "id": host.get_id().to_base58()}
                if path:
                    data = open(path, "rb").read()
                    root = await MerkleDag(bitswap).add_bytes(data)
                    doc["cid"] = cid_to_text(root)
                    doc["sha256"] = hashlib.sha256(data).hexdigest()
                out(doc)
                await trio.sleep_forever()
    out({"exit": "lifetime over"})


async def dial(target: str, cid_text: str | None) -> int:
    host = new_host(key_pair=create_new_key_pair(), enable_mDNS=False, enable_upnp=False,
                    bootstrap=None)
    code = 0
    async with host.run(listen_addrs=[multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/0")]):
        out({"id": host.get_id().to_base58()})
        info = info_from_p2p_addr(multiaddr.Multiaddr(target))
        dht = KadDHT(host, DHTMode.SERVER, enable_random_walk=False)
        async with background_trio_service(dht), trio.open_nursery() as nursery:
            bitswap = await start_bitswap(host, nursery)
            try:
                await host.connect(info)
                from libp2p.host.ping import PingService

                rtts = await PingService(host).ping(info.peer_id, 3)
                out({"ping": rtts})  # as PingService reports them
                out({"identify": await identify(host, info.peer_id)})
                if cid_text:
                    await dht.routing_table.add_peer(info)
                    with trio.move_on_after(10):
                        providers = await dht.find_providers(cid_text, 5)
                        out({"providers": [p.peer_id.to_base58() for p in providers]})
                    block = b"a block py-libp2p provides"
                    ours = compute_cid_v1(block, codec="raw")
                    await bitswap.add_block(ours, block)
                    with trio.move_on_after(10):
                        ok = await dht.provide(cid_to_text(ours))
                        out({"provided": cid_to_text(ours), "ok": bool(ok)})
                    with trio.move_on_after(20):
                        data, _ = await MerkleDag(bitswap).fetch_file(
                            parse_cid(cid_text), peer_id=info.peer_id, timeout=10)
                        out({"fetched": {"bytes": len(data),
                                         "sha256": hashlib.sha256(data).hexdigest()}})
            except Exception as e:  # the report is the JSON line, the test judges it
                out({"error": f"{type(e).__name__}: {e}"})
                code = 1
            nursery.cancel_scope.cancel()
    return code


def main() -> None:
    level = os.environ.get("PY_LIBP2P_LOG")  # e.g. DEBUG: py-libp2p's own log on stderr
    if level:
        logging.basicConfig(level=level, stream=sys.stderr)
    else:
        logging.disable(logging.CRITICAL)
    mode, *args = sys.argv[1:]
    if mode == "serve":
        trio.run(serve, float(args[0]), args[1] if len(args) > 1 else None)
        return
    sys.exit(trio.run(_bounded, args[0], args[1] if len(args) > 1 else None))


async def _bounded(target: str, cid_text: str | None) -> int:
    with trio.move_on_after(DIAL_LIMIT):
        return await dial(target, cid_text)
    out({"error": "timeout"})
    return 3


if __name__ == "__main__":
    main()
