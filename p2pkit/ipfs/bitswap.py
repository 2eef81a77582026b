"""Bitswap 1.2.0, the decision engine, sans-I/O (ipfs bitswap-protocol spec).

§Bitswap 1.2.0 Interaction Pattern: the client sends wants (``Block`` or ``Have``, optionally
``sendDontHave``, or ``cancel``), "a complete wantlist, or an update"; the server answers on its
own stream: for a ``Have`` request on data it has it "SHOULD respond with a Have", on data it
lacks, when asked, "SHOULD respond with DontHave"; it "SHOULD respect the relative priority of
wantlist requests". Blocks travel as ``payload`` entries: a CID ``prefix`` ("all of the CID
components except for the digest of the multihash") and the data; the receiver rebuilds the CID
by hashing the data, so a block always matches the CID it is received under.

This module decides what to send and checks what arrives: one ledger per peer (its outstanding
wants, capped; bytes and blocks each way; blocks that were not wanted), with no I/O. It is not
on the wire of :class:`~p2pkit.ipfs.host.Host` yet.

>>> from p2pkit.ipfs.bitswap_messages import BitswapMessage
>>> from p2pkit.ipfs.cid import Cid
>>> block = b"hello world\\n"
>>> server = BitswapEngine({Cid.of(block): block})
>>> client = BitswapEngine({})
>>> ask = client.want("server", [Cid.of(block)])
>>> [answer] = server.receive_message("client", BitswapMessage.parse(BitswapMessage.build(ask)))
>>> client.receive_message("server", BitswapMessage.parse(BitswapMessage.build(answer)))
[]
>>> client.next_event()
BlockReceived(peer='server', cid=Cid(version=1, codec=85, multihash=b'...'))
"""

from __future__ import annotations

import io
from collections import OrderedDict, deque
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from p2pkit.core import NEED_DATA, Event, NeedData
from p2pkit.errors import LimitExceeded, ParseError
from p2pkit.ipfs.bitswap_messages import MAX_BITSWAP_MESSAGE_LENGTH, MAX_BLOCK_LENGTH
from p2pkit.ipfs.cid import Cid
from p2pkit.ipfs.multicodec import name_of
from p2pkit.ipfs.multihash import FUNCTIONS, Multihash
from p2pkit.ipfs.varint import UVarint, encode_uvarint

__all__ = ["MAX_WANTS_PER_PEER", "PROTOCOL_IDS", "BitswapEngine", "BlockReceived", "Ledger",
           "PresenceReceived", "UnwantedBlock", "cid_from_prefix", "cid_prefix"]

#: Bitswap's multistream ids, newest first.
PROTOCOL_IDS = ("/ipfs/bitswap/1.2.0", "/ipfs/bitswap/1.1.0", "/ipfs/bitswap/1.0.0")
#: Wants kept per peer (a longer wantlist is cut, the lowest priorities first).
MAX_WANTS_PER_PEER = 1024
#: Bytes of blocks put in one answer (more go in the next one): the message, with its field
#: overhead, stays under the 4 MiB go-bitswap, boxo and Helia accept (and p2pkit reads).
MAX_MESSAGE_BLOCK_BYTES = MAX_BITSWAP_MESSAGE_LENGTH - 64 * 1024


def cid_prefix(cid: Cid) -> bytes:
    """The ``prefix`` of a payload entry: version, codec, hash function and digest length,
    each a varint (Bitswap 1.1.0 §Wire Format).

    >>> cid_prefix(Cid.of(b"x")).hex()
    '01551220'
    """
    mh = Multihash.parse(cid.multihash)
    return b"".join(encode_uvarint(v) for v in (cid.version, cid.codec, mh.code,
                                                len(mh.digest)))


def cid_from_prefix(prefix: bytes, data: bytes) -> Cid:
    """The CID of ``data`` under ``prefix`` (its digest computed here)."""
    stream = io.BytesIO(prefix)
    try:
        version, codec, code, length = (UVarint.parse_stream(stream) for _ in range(4))
    except ParseError as e:
        raise e.relocated(protocol="bitswap", path_prefix="payload -> prefix") from None
    if stream.read(1):
        raise ParseError("bytes after the CID prefix", protocol="bitswap",
                         path="payload -> prefix", offset=stream.tell() - 1)
    name = name_of(code)
    if name not in FUNCTIONS:
        raise ParseError(f"hash function {name} is not computed by p2pkit", protocol="bitswap",
                         path="payload -> prefix")
    size, function = FUNCTIONS[name]
    digest = function(data)
    if length > len(digest):
        raise ParseError(f"digest length {length} longer than {name}'s", protocol="bitswap",
                         path="payload -> prefix")
    mh = Multihash.build({"code": code, "digest": digest[:length]})
    return Cid(version, codec, mh)


@dataclass(frozen=True, kw_only=True)
class BlockReceived(Event):
    """A wanted block arrived (its bytes are in the engine's ``received``)."""

    peer: Hashable
    cid: Cid


@dataclass(frozen=True, kw_only=True)
class PresenceReceived(Event):
    """The peer says it has (``have=True``) or does not have ``cid``."""

    peer: Hashable
    cid: Cid
    have: bool


@dataclass(frozen=True, kw_only=True)
class UnwantedBlock(Event):
    """A block nobody asked for (dropped, counted against the peer)."""

    peer: Hashable
    cid: Cid


@dataclass
class Ledger:
    """What one peer wants from us and what was exchanged with it."""

    #: cid -> (priority, want type "Block"/"Have", send DontHave).
    wants: OrderedDict[Cid, tuple[int, str, bool]] = field(default_factory=OrderedDict)
    bytes_sent: int = 0
    bytes_received: int = 0
    blocks_sent: int = 0
    blocks_received: int = 0
    unwanted_blocks: int = 0


class BitswapEngine:
    """Bitswap's decisions for one node: ``blocks`` (CID -> bytes) are what it serves;
    :meth:`want` asks, :meth:`receive_message` answers and checks, :meth:`block_added` serves
    peers waiting for a block that just arrived."""

    def __init__(self, blocks: Mapping[Cid, bytes], *,
                 max_wants_per_peer: int = MAX_WANTS_PER_PEER) -> None:
        self.blocks = blocks
        self.max_wants_per_peer = max_wants_per_peer
        self.ledgers: dict[Hashable, Ledger] = {}
        #: CIDs we want, and blocks received for them.
        self.wanted: set[Cid] = set()
        self.received: dict[Cid, bytes] = {}
        self._events: deque[Event] = deque()

    def ledger(self, peer: Hashable) -> Ledger:
        return self.ledgers.setdefault(peer, Ledger())

    def forget(self, peer: Hashable) -> None:
        """The peer disconnected: its ledger goes."""
        self.ledgers.pop(peer, None)

    def next_event(self) -> Event | NeedData:
        return self._events.popleft() if self._events else NEED_DATA

    # -- asking ------------------------------------------------------------------------------

    def want(self, peer: Hashable, cids: Iterable[Cid], *, have_only: bool = False,
             priority: int = 1) -> dict[str, Any]:
        """A message asking ``peer`` for ``cids`` (want-block, or want-have with
        ``have_only``), asking for DontHave answers."""
        entries = []
        for cid in cids:
            self.wanted.add(cid)
            entries.append({"block": bytes(cid), "priority": priority, "cancel": False,
                            "wantType": "Have" if have_only else "Block",
                            "sendDontHave": True})
        return {"wantlist": {"entries": entries, "full": False}}

    def cancel(self, cids: Iterable[Cid]) -> dict[str, Any]:
        """A message cancelling wants (§Interaction Pattern 3)."""
        entries = []
        for cid in cids:
            self.wanted.discard(cid)
            entries.append({"block": bytes(cid), "cancel": True})
        return {"wantlist": {"entries": entries, "full": False}}

    # -- receiving ---------------------------------------------------------------------------

    def receive_message(self, peer: Hashable, message: Any) -> list[dict[str, Any]]:
        """Take a parsed ``Message`` from ``peer``; return the messages to send it."""
        ledger = self.ledger(peer)
        self._take_blocks(peer, ledger, message)
        for presence in message.blockPresences:
            cid = self._cid(presence.cid, "blockPresences -> cid")
            self._events.append(PresenceReceived(peer=peer, cid=cid,
                                                 have=presence.type == "Have"))
        if message.wantlist is not None:
            self._update_wants(ledger, message.wantlist)
        return self._answers(ledger)

    def block_added(self, cid: Cid) -> dict[Hashable, list[dict[str, Any]]]:
        """A block was stored: the answers owed to peers that wanted it."""
        return {peer: out for peer, ledger in self.ledgers.items()
                if cid in ledger.wants and (out := self._answers(ledger))}

    def _cid(self, raw: bytes, path: str) -> Cid:
        try:
            return Cid.from_bytes(raw)
        except ParseError as e:
            raise e.relocated(protocol="bitswap", path_prefix=path) from None

    def _take_blocks(self, peer: Hashable, ledger: Ledger, message: Any) -> None:
        arrived = [(cid_from_prefix(p.prefix, p.data), p.data) for p in message.payload]
        # Bitswap 1.0.0 blocks: CIDv0 (sha2-256, dag-pb) of the data
        arrived += [(Cid.of(data, codec="dag-pb", version=0), data) for data in message.blocks]
        for cid, data in arrived:
            ledger.bytes_received += len(data)
            if cid in self.wanted:
                self.wanted.discard(cid)
                self.received[cid] = data
                ledger.blocks_received += 1
                self._events.append(BlockReceived(peer=peer, cid=cid))
            else:
                ledger.unwanted_blocks += 1
                self._events.append(UnwantedBlock(peer=peer, cid=cid))

    def _update_wants(self, ledger: Ledger, wantlist: Any) -> None:
        if wantlist.full:
            ledger.wants.clear()
        for i, entry in enumerate(wantlist.entries):
            cid = self._cid(entry.block, f"wantlist -> entries -> [{i}] -> block")
            if entry.cancel:
                ledger.wants.pop(cid, None)
                continue
            ledger.wants[cid] = (entry.priority, str(entry.wantType), bool(entry.sendDontHave))
            if len(ledger.wants) > self.max_wants_per_peer:
                lowest = min(ledger.wants, key=lambda c: ledger.wants[c][0])
                del ledger.wants[lowest]

    def _answers(self, ledger: Ledger) -> list[dict[str, Any]]:
        """Serve the wants we can, highest priority first, in messages of at most
        :data:`MAX_MESSAGE_BLOCK_BYTES` of blocks each; answered wants leave the ledger."""
        messages: list[dict[str, Any]] = []
        payload: list[dict[str, Any]] = []
        presences: list[dict[str, Any]] = []
        budget = MAX_MESSAGE_BLOCK_BYTES
        for cid, (_, kind, dont_have) in sorted(ledger.wants.items(),
                                                key=lambda item: -item[1][0]):
            block = self.blocks.get(cid)
            if block is None:
                if dont_have:
                    presences.append({"cid": bytes(cid), "type": "DontHave"})
                    del ledger.wants[cid]
                continue  # kept: block_added serves it later
            if kind == "Have":
                presences.append({"cid": bytes(cid), "type": "Have"})
                del ledger.wants[cid]
                continue
            if len(block) > MAX_BLOCK_LENGTH:
                raise LimitExceeded(f"a block of {len(block)} bytes", protocol="bitswap")
            if len(block) > budget:  # this message is full: the block opens the next one
                messages.append({"payload": payload, "blockPresences": presences})
                payload, presences, budget = [], [], MAX_MESSAGE_BLOCK_BYTES
            budget -= len(block)
            payload.append({"prefix": cid_prefix(cid), "data": block})
            ledger.bytes_sent += len(block)
            ledger.blocks_sent += 1
            del ledger.wants[cid]
        if payload or presences:
            messages.append({"payload": payload, "blockPresences": presences})
        return messages
