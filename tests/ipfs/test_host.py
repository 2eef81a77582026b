"""Two p2pkit hosts over real TCP on 127.0.0.1 (asyncio): the whole stack, ping and identify."""

import asyncio
import random

import pytest

from p2pkit.errors import ProtocolError, RemoteProtocolError
from p2pkit.ipfs.bitswap import PROTOCOL_IDS
from p2pkit.ipfs.cid import Cid
from p2pkit.ipfs.envelope import PEER_RECORD_DOMAIN, PeerRecordMessage, open_envelope
from p2pkit.ipfs.host import IDENTIFY_PROTOCOL, Host
from p2pkit.ipfs.keys import Ed25519Identity
from p2pkit.ipfs.multiaddr import Multiaddr
from p2pkit.ipfs.peer_id import PeerId
from p2pkit.ipfs.ping import PROTOCOL_ID as PING


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 30))


def hosts():
    return (Host(Ed25519Identity(bytes(range(32))), rng=random.Random(1)),
            Host(Ed25519Identity(bytes(range(1, 33))), rng=random.Random(2)))


def test_ping_and_identify_over_tcp():
    async def scenario():
        server, client = hosts()
        addr = await server.listen("127.0.0.1", 0)
        try:
            assert str(addr).startswith("/ip4/127.0.0.1/tcp/") and addr.peer_id
            c = await client.dial(addr, timeout=5)
            assert c.remote_peer_id == server.peer_id
            rtts = await c.ping(3, timeout=5)
            info = await c.identify(timeout=5)
            await c.close()
            return server, rtts, info
        finally:
            await server.close()
            await client.close()

    server, rtts, info = run(scenario())
    assert len(rtts) == 3 and all(r >= 0 for r in rtts)
    assert info.agentVersion == "p2pkit/0.1.0"
    assert set(info.protocols) == {PING, IDENTIFY_PROTOCOL, "/ipfs/kad/1.0.0", *PROTOCOL_IDS}
    assert PeerId.from_public_key(info.publicKey) == server.peer_id
    assert [str(Multiaddr.from_bytes(a)) for a in info.listenAddrs] == \
        [str(a) for a in server.listen_addrs]
    assert Multiaddr.from_bytes(info.observedAddr).value_for("ip4").is_loopback
    env = open_envelope(info.signedPeerRecord, PEER_RECORD_DOMAIN)
    record = PeerRecordMessage.parse(env.payload)
    assert record.peer_id == server.peer_id.multihash


def test_dialing_the_wrong_peer_id_fails():
    async def scenario():
        server, client = hosts()
        addr = await server.listen("127.0.0.1", 0)
        wrong = Multiaddr(tuple((n, v) for n, v in addr if n != "p2p")).encapsulate(
            Multiaddr((("p2p", client.peer_id.multihash),)))
        try:
            with pytest.raises((ProtocolError, RemoteProtocolError)):
                await client.dial(wrong, timeout=5)
        finally:
            await server.close()
            await client.close()

    run(scenario())


def test_kad_dht_between_two_hosts():
    async def scenario():
        server, client = hosts()
        addr = await server.listen("127.0.0.1", 0)
        try:
            c = await client.dial(addr, timeout=5)
            await c.identify(timeout=5)  # the server lists /ipfs/kad/1.0.0: into our table
            key = Cid.of(b"some block").multihash
            listen = bytes(Multiaddr.from_text("/ip4/127.0.0.1/tcp/9"))
            echo = await c.kad_request({"type": "ADD_PROVIDER", "key": key, "providerPeers": [
                {"id": client.peer_id.multihash, "addrs": [listen]}]}, timeout=5,
                expect_answer=True)  # p2pkit echoes, as the spec says
            found = await c.kad_request({"type": "GET_PROVIDERS", "key": key}, timeout=5)
            closer = await c.kad_request({"type": "FIND_NODE", "key": key}, timeout=5)
            for _ in range(30):  # per-stream state is freed, on both sides
                await c.kad_request({"type": "PING"}, timeout=5)
            await c.ping(2, timeout=5)
            await asyncio.sleep(0.05)
            leftovers = [len(t) for conn in (c, *server.connections)
                         for t in (conn._negotiated, conn._inbound, conn._closed_streams,
                                   conn._data_ready, conn._kad_streams, conn._ping_responders)]
            assert sum(leftovers) == 0, leftovers
            assert len(c.core.yamux.streams) <= 1
            refused = None
            try:
                await c.kad_request({"type": "PUT_VALUE", "key": b"/x"}, timeout=5)
            except ProtocolError as e:
                refused = str(e)
            return echo, found, closer, refused, client.dht.peers
        finally:
            await server.close()
            await client.close()

    echo, found, closer, refused, table = run(scenario())
    assert echo.type == "ADD_PROVIDER"
    assert [p.id for p in found.providerPeers] == [hosts()[1].peer_id.multihash]
    assert closer.closerPeers == []  # the server knows no other DHT server
    assert refused is not None
    assert [pid for pid, _ in table.values()] == [hosts()[0].peer_id.multihash]


def test_a_hostile_peer_loses_only_its_own_connection():
    async def scenario():
        server, client = hosts()
        server.handshake_timeout = 1.0  # the HTTP request below never completes an upgrade
        addr = await server.listen("127.0.0.1", 0)
        port = addr.value_for("tcp")
        outcomes = []
        try:
            for garbage in (b"\x13/multistream/1.0.0\n\x07/noise\n" + b"\x00\x05hello",
                            b"\x13/multistream/1.0.0\n" + b"\xff" * 12,
                            b"GET / HTTP/1.1\r\n\r\n"):
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(garbage)
                await writer.drain()
                rest = await asyncio.wait_for(reader.read(), 5)  # the host closes it
                outcomes.append(len(rest) < 200)
                writer.close()
            c = await client.dial(addr, timeout=5)  # the host still serves others
            outcomes.append(len(await c.ping(1, timeout=5)) == 1)
            await asyncio.sleep(0.1)
            outcomes.append(len(server.connections))
        finally:
            await server.close()
            await client.close()
        return outcomes

    assert run(scenario()) == [True, True, True, True, 1]


def test_bitswap_fetch_of_a_whole_dag():
    from p2pkit.ipfs.unixfs_exporter import children, export
    from p2pkit.ipfs.unixfs_importer import ImportSettings, import_bytes

    data = random.Random(9).randbytes(6_000_000)  # answers over several 4 MiB messages
    blocks = {}
    settings = ImportSettings(chunk_size=200_000, max_children=8, cid_version=1, raw_leaves=True)
    root = import_bytes(data, settings, blocks=blocks)

    async def scenario():
        server, client = hosts()
        server.add_blocks(blocks)
        addr = await server.listen("127.0.0.1", 0)
        try:
            c = await client.dial(addr, timeout=5)
            level = [root]
            while level:  # the DAG level by level, each level in one want
                got = await c.fetch(level, timeout=10)
                level = [child for cid in level for child in children(cid, got[cid])]
            missing = None
            try:
                await c.fetch([Cid.of(b"nobody has it")], timeout=5)
            except ProtocolError as e:
                missing = str(e)
            return b"".join(export(root, client.blocks.__getitem__)), missing, \
                server.bitswap.ledger(client.peer_id)
        finally:
            await server.close()
            await client.close()

    fetched, missing, ledger = run(scenario())
    assert fetched == data
    assert "does not have" in missing
    assert ledger.blocks_sent == len(blocks) and ledger.wants == {}


def test_bitswap_answers_written_back_on_our_stream_are_read(monkeypatch):
    # py-libp2p 0.8.1 answers on the requester's stream (s_want), not on one it opens
    # (ipfs-bitswap-protocol §Interaction Pattern): the server here does the same
    from p2pkit.ipfs.bitswap_messages import BitswapMessageFrame
    from p2pkit.ipfs.host import HostConnection

    original = HostConnection.send_bitswap

    async def answer_on_their_stream(self, messages, timeout=10.0):
        inbound = [sid for sid in self._bitswap_in if sid != self._bitswap_out]
        if not inbound:  # the client's wants: as usual
            return await original(self, messages, timeout)
        for message in messages:
            self._write(self.core.send_stream(inbound[-1], BitswapMessageFrame.build(message),
                                              self._now()))
    monkeypatch.setattr(HostConnection, "send_bitswap", answer_on_their_stream)
    block = b"a block answered on s_want"

    async def scenario():
        server, client = hosts()
        server.add_blocks({Cid.of(block): block})
        addr = await server.listen("127.0.0.1", 0)
        try:
            c = await client.dial(addr, timeout=5)
            got = await c.fetch([Cid.of(block)], timeout=5)
            return got, server.connections and not any(
                conn._bitswap_out for conn in server.connections)
        finally:
            await server.close()
            await client.close()

    got, server_opened_none = run(scenario())
    assert got == {Cid.of(block): block}
    assert server_opened_none  # the answer really came on the client's stream
