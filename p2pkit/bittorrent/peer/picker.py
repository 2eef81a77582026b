"""Piece picker: which blocks to request from which peer (BEP 3 §peer protocol, BEP 6).

Sans-I/O: the session tells the picker what peers have and what arrived, and asks it for
requests; the randomness is a ``random.Random`` passed in. Peers are any hashable key.

The strategies are those of Cohen, "Incentives Build Robustness in BitTorrent" (2003, §2.2
"Piece Selection"), which BEP 3's Resources section points to:

* **strict priority**: "once a single sub-piece has been requested, the remaining sub-pieces
  from that particular piece are requested before sub-pieces from any other piece" — partial
  pieces are finished first, so that complete pieces can be checked and shared;
* **random first piece**: while fewer than ``random_first`` pieces are complete, new pieces are
  chosen at random among those the peer has ("pieces to download are selected at random until
  the first complete piece is assembled"), BEP 3: "Downloaders generally download pieces in
  random order, which does a reasonably good job of keeping them from having a strict subset or
  superset of the pieces of any of their peers";
* **rarest first**: then the piece the fewest connected peers have, ties broken at random;
* **endgame mode**, BEP 3 §peer messages: "once requests for all pieces a given downloader
  doesn't have yet are currently pending, it sends requests for everything to everyone it's
  downloading from. To keep this from becoming horribly inefficient, it sends cancels to
  everyone else every time a piece arrives." Here each block is requested from at most
  ``endgame_requests`` peers at once, and :meth:`PiecePicker.block_received` names the peers
  that must get a ``cancel``.

BEP 6 §Allowed Fast: "if you ask for this piece, I'll give it to you even if you're choked":
while a peer chokes us, :meth:`PiecePicker.pick` takes its allowed fast set as ``allowed``.

Blocks are 16 KiB (BEP 3: "All current implementations use 2^14 (16 kiB)"); the last block of a
piece may be shorter. A piece is the unit of the hash check: once all its blocks arrived the
session checks it and calls :meth:`~PiecePicker.piece_verified` or
:meth:`~PiecePicker.piece_failed` (which re-downloads it from scratch and names the peers that
sent its blocks, for banning).

>>> import random
>>> picker = PiecePicker([32768, 32768, 20000], rng=random.Random(1), random_first=0)
>>> picker.add_peer("a"); picker.add_peer("b")
>>> picker.peer_bitfield("a", [True, True, False]); picker.peer_bitfield("b", [False, True, True])
>>> picker.pick("a", 2)   # piece 0 is rarer than piece 1 (only "a" has it)
[Block(index=0, begin=0, length=16384), Block(index=0, begin=16384, length=16384)]
>>> picker.pick("b", 2)   # piece 2: 20000 bytes, so a short last block
[Block(index=2, begin=0, length=16384), Block(index=2, begin=16384, length=3616)]
>>> picker.block_received("a", Block(0, 0, 16384))
BlockResult(new=True, piece_complete=False, cancel=())
>>> picker.block_received("a", Block(0, 16384, 16384)).piece_complete
True
>>> picker.piece_verified(0)
{}
>>> picker.have_count, picker.missing_count, picker.interested_in("a")
(1, 2, True)

Cost: availability changes and piece state changes are O(1) or O(peers); a pick looks at the
partial pieces, then at the candidates in rarity order (an array kept sorted by availability in
buckets, as libtorrent's piece picker does), drawing at random in the rarest bucket the peer can
serve. For a peer holding ``c`` of the ``m`` candidates a new piece costs about ``m / c`` steps
when ``c² >= m``; a peer with fewer (or whose pieces all sit in crowded buckets, when the walk
exceeds a few times its expected length) is served from its own bitfield in O(c) steps with a
C-speed search between them. No pick walks all the pieces in Python.

It stays one module: the availability order and the end game are not separate ideas but two
views of the same per-piece and per-peer arrays, updated together on every have, pick and
arrival; apart, each would reach into the other's private structures on the hot path.
"""

from __future__ import annotations

import random
import re
from collections.abc import Collection, Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass

from p2pkit.bittorrent.wire.bitfield import decode_bitfield, encode_bitfield
from p2pkit.bittorrent.wire.metainfo import BLOCK_SIZE
from p2pkit.errors import LimitExceeded, LocalProtocolError, ParseError, RemoteProtocolError

__all__ = [
    "MAX_BLOCKS_PER_PIECE",
    "MAX_PIECES",
    "Block",
    "BlockResult",
    "PiecePicker",
]

#: Most pieces a picker accepts (its per-piece arrays cost about 30 bytes a piece).
MAX_PIECES = 1 << 22
#: Most blocks in one piece (a 1 GiB piece of 16 KiB blocks).
MAX_BLOCKS_PER_PIECE = 1 << 16

# block states inside a downloading piece
_OPEN, _REQUESTED, _RECEIVED = 0, 1, 2
# per-peer piece marks: the peer lacks it / has it and it is a candidate (no block requested,
# not verified) / has it but it is not a candidate
_LACKS, _HAS_CANDIDATE, _HAS_OTHER = 0, 1, 2
#: random draws before walking a bucket (ties at random, without a walk's bias to gaps)
_SAMPLES = 8
_HELD = re.compile(b"[\x01\x02]")


@dataclass(frozen=True, slots=True, order=True)
class Block:
    """A ``request``/``piece``/``cancel`` triple (BEP 3 §peer messages): index, begin, length."""

    index: int
    begin: int
    length: int


@dataclass(frozen=True, slots=True, kw_only=True)
class BlockResult:
    """What :meth:`PiecePicker.block_received` found.

    ``new``: the block was wanted (write it); ``False`` for duplicates, blocks of verified
    pieces and blocks off the request grid. ``piece_complete``: every block of the piece has now
    arrived (hash-check it). ``cancel``: the other peers this block was requested from (endgame),
    which must each get a ``cancel``.
    """

    new: bool
    piece_complete: bool
    cancel: tuple[Hashable, ...] = ()


_NOT_NEW = BlockResult(new=False, piece_complete=False)
_NEW = BlockResult(new=True, piece_complete=False)
_NEW_COMPLETE = BlockResult(new=True, piece_complete=True)


class _Peer:
    __slots__ = ("key", "marks", "count", "wanted", "candidates", "requests")

    def __init__(self, key: Hashable, piece_count: int) -> None:
        self.key = key
        #: per piece: _LACKS / _HAS_CANDIDATE / _HAS_OTHER; None for a peer that has every piece
        self.marks: bytearray | None = bytearray(piece_count)
        self.count = 0  # pieces it has
        self.wanted = 0  # pieces it has that are not verified here
        self.candidates = 0  # pieces it has that are candidates
        self.requests: set[int] = set()  # block keys outstanding to it


class _Download:
    __slots__ = ("state", "requesters", "open", "received", "senders")

    def __init__(self, block_count: int) -> None:
        self.state = bytearray(block_count)
        self.requesters: dict[int, list[Hashable]] = {}
        self.open = block_count
        self.received = 0
        self.senders: set[Hashable] = set()


class PiecePicker:
    """Chooses the blocks to request from each peer (see the module docstring).

    ``piece_lengths``: the length of every piece (use :meth:`uniform` for the usual "all pieces
    ``piece length`` long but the last"); ``have``: pieces already verified (resume);
    ``random_first``: pieces picked at random before rarest first starts; ``endgame_requests``:
    most peers one block is requested from at once in endgame mode.
    """

    def __init__(
        self,
        piece_lengths: Sequence[int],
        *,
        rng: random.Random,
        have: Iterable[bool] | None = None,
        random_first: int = 4,
        block_size: int = BLOCK_SIZE,
        endgame_requests: int = 2,
    ) -> None:
        n = len(piece_lengths)
        if n > MAX_PIECES:
            raise LimitExceeded(f"{n} pieces, more than MAX_PIECES={MAX_PIECES}",
                                protocol="bittorrent")
        if block_size <= 0 or endgame_requests < 1:
            raise LocalProtocolError("block_size and endgame_requests must be positive")
        lengths = list(piece_lengths)
        longest = max(lengths, default=block_size)
        if min(lengths, default=1) <= 0:
            raise LocalProtocolError("every piece must be at least one byte long")
        if -(-longest // block_size) > MAX_BLOCKS_PER_PIECE:
            raise LimitExceeded(f"pieces of {longest} bytes have more than "
                                f"MAX_BLOCKS_PER_PIECE={MAX_BLOCKS_PER_PIECE} blocks",
                                protocol="bittorrent")
        self._n = n
        self._lengths = lengths
        self._block_size = block_size
        self._stride = -(-longest // block_size)
        self._rng = rng
        self._random_first = random_first
        self._endgame_requests = endgame_requests
        self._have = bytearray(n)
        if have is not None:
            flags = list(have)
            if len(flags) != n:
                raise LocalProtocolError(f"have has {len(flags)} flags for {n} pieces")
            self._have[:] = bytes(1 if f else 0 for f in flags)
        self._have_count = self._have.count(1)
        self._missing_length = sum(n for n, had in zip(lengths, self._have) if not had)
        # availability among peers that have a bitfield; peers with every piece are counted
        # once in _seeds (they do not change the rarity order)
        self._avail = [0] * n
        self._seeds = 0
        # candidates (not verified, nothing requested) sorted by availability: bucket a is
        # _order[_start[a]:_start[a + 1]]; the last entry of _start is len(_order)
        self._order = [i for i in range(n) if not self._have[i]]
        rng.shuffle(self._order)
        self._pos = [-1] * n
        for k, i in enumerate(self._order):
            self._pos[i] = k
        self._start = [0, len(self._order)]
        self._downloading: dict[int, _Download] = {}
        self._open: dict[int, None] = {}  # downloading pieces with open blocks, oldest first
        self._peers: dict[Hashable, _Peer] = {}
        self._partial_peers: list[_Peer] = []  # peers with a bitfield (marks is not None)

    @classmethod
    def uniform(cls, total_length: int, piece_length: int, **options) -> PiecePicker:
        """A picker for ``total_length`` bytes cut in ``piece_length`` pieces (BEP 3 v1 layout).

        >>> PiecePicker.uniform(40000, 16384, rng=random.Random(0)).piece_length(2)
        7232
        """
        if total_length <= 0 or piece_length <= 0:
            raise LocalProtocolError("total_length and piece_length must be positive")
        count = -(-total_length // piece_length)
        if count > MAX_PIECES:
            raise LimitExceeded(f"{count} pieces, more than MAX_PIECES={MAX_PIECES}",
                                protocol="bittorrent")
        lengths = [piece_length] * count
        lengths[-1] = total_length - (count - 1) * piece_length
        return cls(lengths, **options)

    # ------------------------------------------------------------------ geometry and state

    @property
    def piece_count(self) -> int:
        return self._n

    @property
    def block_size(self) -> int:
        return self._block_size

    def piece_length(self, index: int) -> int:
        return self._lengths[self._check_index(index, LocalProtocolError)]

    def blocks(self, index: int) -> list[Block]:
        """Every block of a piece, in order."""
        length = self.piece_length(index)
        size = self._block_size
        return [Block(index, begin, min(size, length - begin)) for begin in range(0, length, size)]

    def has_piece(self, index: int) -> bool:
        """True once :meth:`piece_verified` was called for it (or it was given in ``have``)."""
        return bool(self._have[self._check_index(index, LocalProtocolError)])

    def bitfield(self) -> bytes:
        """Our verified pieces as a BEP 3 ``bitfield`` payload ("high bit first", spare bits 0)."""
        return encode_bitfield(self._have)

    @property
    def have_count(self) -> int:
        return self._have_count

    @property
    def missing_count(self) -> int:
        return self._n - self._have_count

    @property
    def missing_length(self) -> int:
        """Bytes of the pieces not verified yet (a tracker's ``left``, padding included)."""
        return self._missing_length

    @property
    def is_complete(self) -> bool:
        return self._have_count == self._n

    @property
    def in_endgame(self) -> bool:
        """Every block still missing that a connected peer has is requested (BEP 3 endgame)."""
        if self._have_count == self._n:
            return False
        if self._seeds:
            if self._order:
                return False
        elif len(self._order) - self._start[1] > 0:  # bucket 0: nobody connected has them
            return False
        seeds, avail = self._seeds, self._avail
        return not any(seeds or avail[i] for i in self._open)

    def availability(self, index: int) -> int:
        """How many connected peers have the piece."""
        return self._avail[self._check_index(index, LocalProtocolError)] + self._seeds

    def interested_in(self, peer: Hashable) -> bool:
        """BEP 3: interest "must be kept up to date": the peer has a piece we have not verified."""
        p = self._peer(peer)
        return p.wanted > 0 if p.marks is not None else self._have_count < self._n

    def outstanding(self, peer: Hashable) -> list[Block]:
        """The requests to ``peer`` that are still pending, by index and offset."""
        return [self._block(key) for key in sorted(self._peer(peer).requests)]

    @property
    def peers(self) -> list[Hashable]:
        return list(self._peers)

    # ------------------------------------------------------------------ availability

    def add_peer(self, peer: Hashable) -> None:
        """A new connection: it has nothing until :meth:`peer_has`/:meth:`peer_bitfield`."""
        if peer in self._peers:
            raise LocalProtocolError(f"peer {peer!r} was already added")
        p = _Peer(peer, self._n)
        self._peers[peer] = p
        self._partial_peers.append(p)
        self._start.insert(len(self._start) - 1, len(self._order))

    def peer_has(self, peer: Hashable, index: int) -> None:
        """A ``have`` message (BEP 3): the peer "just completed and checked the hash of" it."""
        p = self._peer(peer)
        index = self._check_index(index, RemoteProtocolError)
        if p.marks is not None and not p.marks[index]:
            self._gain(p, index)

    def peer_bitfield(self, peer: Hashable, bitfield: bytes | Sequence[bool]) -> None:
        """A ``bitfield`` message: either its payload bytes (BEP 3: "The first byte of the
        bitfield corresponds to indices 0 - 7 from high bit to low bit [...] Spare bits at the
        end are set to zero") or one flag per piece. Bad lengths or spare bits raise
        :class:`~p2pkit.errors.RemoteProtocolError`."""
        p = self._peer(peer)
        n = self._n
        if isinstance(bitfield, (bytes, bytearray, memoryview)):
            try:
                flags = bytes(decode_bitfield(bytes(bitfield), n))
            except ParseError as e:
                raise RemoteProtocolError(f"bad bitfield: {e.reason}") from None
        else:
            if len(bitfield) != n:
                raise RemoteProtocolError(f"bitfield of {len(bitfield)} flags for {n} pieces")
            flags = bytes(1 if f else 0 for f in bitfield)
        if p.marks is None:
            return
        if p.count == 0 and n and flags.count(1) == n:
            self._make_seed(p)
            return
        marks = p.marks
        index = flags.find(1)
        while index >= 0:
            if not marks[index]:
                self._gain(p, index)
            index = flags.find(1, index + 1)

    def peer_has_all(self, peer: Hashable) -> None:
        """BEP 6 ``have_all`` (or a full bitfield): the peer has every piece."""
        p = self._peer(peer)
        if p.marks is not None:
            self._make_seed(p)

    def remove_peer(self, peer: Hashable) -> list[Block]:
        """The connection is gone: its requests go back to the pool (returned, in order) and
        it no longer counts for availability."""
        p = self._peer(peer)
        returned = self.drop_requests(peer)
        if p.marks is None:
            self._seeds -= 1
        else:
            self._forget_pieces(p)
            self._partial_peers.remove(p)
            self._start.pop(len(self._start) - 2)  # the top bucket is empty now
        del self._peers[peer]
        return returned

    # ------------------------------------------------------------------ requesting

    def pick(self, peer: Hashable, count: int, *,
             allowed: Collection[int] | None = None) -> list[Block]:
        """Up to ``count`` new requests for ``peer``, recorded as outstanding to it.

        ``allowed`` restricts the choice to those pieces: pass the peer's BEP 6 allowed fast
        set while it chokes us. Fewer (or no) blocks come back when the peer has nothing more
        we can ask it for.
        """
        p = self._peer(peer)
        out: list[Block] = []
        if count <= 0 or self._have_count == self._n:
            return out
        marks = p.marks
        # strict priority: blocks of pieces already started
        while self._open:
            for index in self._open:
                if (marks is None or marks[index]) and (allowed is None or index in allowed):
                    break
            else:
                break
            self._take(p, index, self._downloading[index], out, count)  # may end the loop
            if len(out) >= count:
                return out
        while len(out) < count:
            index = self._choose_new(p, allowed)
            if index < 0:
                break
            self._take(p, index, self._begin_download(index), out, count)
        if len(out) < count and self.in_endgame:
            self._pick_endgame(p, out, count, allowed)
        return out

    def block_received(self, peer: Hashable, block: Block) -> BlockResult:
        """A ``piece`` message's block arrived from ``peer`` (requested or not)."""
        p = self._peer(peer)
        index, begin = block.index, block.begin
        download = self._downloading.get(index)
        size = self._block_size
        j, misaligned = divmod(begin, size)
        if (download is None or misaligned or not 0 <= j < len(download.state)
                or block.length != min(size, self._lengths[index] - begin)):
            if (key := self._key(block)) >= 0:
                p.requests.discard(key)
            return _NOT_NEW
        key = index * self._stride + j
        p.requests.discard(key)
        state = download.state[j]
        if state == _RECEIVED:
            return _NOT_NEW
        if state == _OPEN:
            download.open -= 1
            if not download.open:
                del self._open[index]
        download.state[j] = _RECEIVED
        download.received += 1
        download.senders.add(peer)
        complete = download.received == len(download.state)
        requesters = download.requesters.pop(j, None)
        if requesters is not None and (len(requesters) > 1 or requesters[0] != peer):
            cancel = tuple(q for q in requesters if q != peer)
            for q in cancel:
                self._peers[q].requests.discard(key)
            return BlockResult(new=True, piece_complete=complete, cancel=cancel)
        return _NEW_COMPLETE if complete else _NEW

    def request_failed(self, peer: Hashable, block: Block) -> None:
        """The request will not be served: ``reject_request`` (BEP 6), a ``choke`` that drops
        pending requests (BEP 3), a timeout, or our own ``cancel``. The block goes back to the
        pool unless another peer still has it requested (endgame)."""
        p = self._peer(peer)
        key = self._key(block)
        if key >= 0 and key in p.requests:
            p.requests.discard(key)
            self._release(peer, key)

    def drop_requests(self, peer: Hashable) -> list[Block]:
        """Forget every request pending to ``peer``, as BEP 3's ``choke`` does without the fast
        extension ("requests which can't be written out [...] can all be thrown out when a
        choke happens"). Returns the blocks that went back to the pool, in order."""
        p = self._peer(peer)
        returned = [self._block(key) for key in sorted(p.requests) if self._release(peer, key)]
        p.requests.clear()
        return returned

    def piece_verified(self, index: int) -> dict[Hashable, list[Block]]:
        """The piece passed its hash check (or was found good on disk). Returns the requests
        still pending for it, by peer, which must be cancelled (usually none)."""
        index = self._check_index(index, LocalProtocolError)
        if self._have[index]:
            return {}
        cancels: dict[Hashable, list[Block]] = {}
        download = self._downloading.pop(index, None)
        if download is not None:
            self._open.pop(index, None)
            for j, requesters in sorted(download.requesters.items()):
                key = index * self._stride + j
                for q in requesters:
                    self._peers[q].requests.discard(key)
                    cancels.setdefault(q, []).append(self._block(key))
        elif self._pos[index] >= 0:
            self._leave_order(index)
        self._have[index] = 1
        self._have_count += 1
        self._missing_length -= self._lengths[index]
        for p in self._partial_peers:
            if p.marks[index]:
                p.wanted -= 1
        return cancels

    def piece_failed(self, index: int) -> frozenset[Hashable]:
        """The piece, all blocks received, failed its hash check: it is downloaded again from
        scratch. Returns the peers that sent its blocks (candidates for a ban)."""
        index = self._check_index(index, LocalProtocolError)
        download = self._downloading.get(index)
        if download is None or download.received != len(download.state):
            raise LocalProtocolError(f"piece {index} is not complete, it cannot fail its check")
        del self._downloading[index]
        self._enter_order(index)
        return frozenset(download.senders)

    # ------------------------------------------------------------------ internals

    def _peer(self, peer: Hashable) -> _Peer:
        try:
            return self._peers[peer]
        except KeyError:
            raise LocalProtocolError(f"unknown peer {peer!r}") from None

    def _check_index(self, index: int, error: type[Exception]) -> int:
        if not 0 <= index < self._n:
            raise error(f"piece index {index} out of range (0..{self._n - 1})")
        return index

    def _key(self, block: Block) -> int:
        """The block's number, or -1 when it is not on our request grid."""
        index, begin = block.index, block.begin
        if not 0 <= index < self._n or begin < 0 or begin % self._block_size:
            return -1
        length = self._lengths[index]
        if begin >= length or block.length != min(self._block_size, length - begin):
            return -1
        return index * self._stride + begin // self._block_size

    def _block(self, key: int) -> Block:
        index, j = divmod(key, self._stride)
        begin = j * self._block_size
        return Block(index, begin, min(self._block_size, self._lengths[index] - begin))

    def _gain(self, p: _Peer, index: int) -> None:
        """``p`` (with a bitfield) now has ``index``."""
        p.count += 1
        if not self._have[index]:
            p.wanted += 1
        a = self._avail[index]
        self._avail[index] = a + 1
        pos = self._pos[index]
        if pos >= 0:
            p.marks[index] = _HAS_CANDIDATE
            p.candidates += 1
            order, start, where = self._order, self._start, self._pos
            last = start[a + 1] - 1  # bucket a's last place becomes bucket a + 1's first
            start[a + 1] = last
            other = order[last]
            order[pos] = other
            where[other] = pos
            order[last] = index
            # then a random place in bucket a + 1, so that buckets stay shuffled
            place = last + int(self._rng.random() * (start[a + 2] - last))
            other = order[place]
            order[last] = other
            where[other] = last
            order[place] = index
            where[index] = place
        else:
            p.marks[index] = _HAS_OTHER

    def _forget_pieces(self, p: _Peer) -> None:
        """Take ``p``'s pieces out of the availability counts."""
        order, start, pos, avail = self._order, self._start, self._pos, self._avail
        random = self._rng.random
        for match in _HELD.finditer(p.marks):
            index = match.start()
            a = avail[index]
            avail[index] = a - 1
            at = pos[index]
            if at >= 0:
                first = start[a]  # bucket a's first place becomes bucket a - 1's last
                start[a] = first + 1
                other = order[first]
                order[at] = other
                pos[other] = at
                order[first] = index
                low = start[a - 1]
                place = low + int(random() * (first + 1 - low))
                other = order[place]
                order[first] = other
                pos[other] = first
                order[place] = index
                pos[index] = place
        p.marks = bytearray(self._n)
        p.count = p.wanted = p.candidates = 0

    def _make_seed(self, p: _Peer) -> None:
        self._forget_pieces(p)
        p.marks = None
        self._partial_peers.remove(p)
        self._start.pop(len(self._start) - 2)
        self._seeds += 1

    def _leave_order(self, index: int) -> None:
        """Remove a candidate from the sorted array (shifting one entry per higher bucket)."""
        order, start, pos = self._order, self._start, self._pos
        hole = pos[index]
        for b in range(self._avail[index] + 1, len(start)):
            last = start[b] - 1
            if last != hole:  # else bucket b - 1 is empty
                moved = order[last]
                order[hole] = moved
                pos[moved] = hole
                hole = last
            start[b] = last
        order.pop()
        pos[index] = -1
        for p in self._partial_peers:
            if p.marks[index] == _HAS_CANDIDATE:
                p.marks[index] = _HAS_OTHER
                p.candidates -= 1

    def _enter_order(self, index: int) -> None:
        """Put a piece back among the candidates, in its availability bucket."""
        order, start, pos = self._order, self._start, self._pos
        order.append(index)
        hole = len(order) - 1
        start[-1] += 1
        for b in range(len(start) - 2, self._avail[index], -1):
            first = start[b]
            if first != hole:  # else bucket b was empty
                moved = order[first]
                order[hole] = moved
                pos[moved] = hole
                hole = first
            start[b] = first + 1
        order[hole] = index
        low = start[self._avail[index]]
        place = low + int(self._rng.random() * (hole + 1 - low))
        other = order[place]
        order[hole] = other
        pos[other] = hole
        order[place] = index
        pos[index] = place
        for p in self._partial_peers:
            if p.marks[index] == _HAS_OTHER:
                p.marks[index] = _HAS_CANDIDATE
                p.candidates += 1

    def _begin_download(self, index: int) -> _Download:
        self._leave_order(index)
        download = _Download(-(-self._lengths[index] // self._block_size))
        self._downloading[index] = download
        self._open[index] = None
        return download

    def _take(self, p: _Peer, index: int, download: _Download, out: list[Block],
              count: int) -> None:
        """Request open blocks of ``index`` from ``p`` until ``out`` holds ``count``."""
        state = download.state
        requesters = download.requesters
        size, length = self._block_size, self._lengths[index]
        base = index * self._stride
        j = state.find(_OPEN)
        while j >= 0 and len(out) < count:
            state[j] = _REQUESTED
            requesters[j] = [p.key]
            p.requests.add(base + j)
            begin = j * size
            out.append(Block(index, begin, min(size, length - begin)))
            download.open -= 1
            j = state.find(_OPEN, j + 1)
        if not download.open:
            del self._open[index]

    def _choose_new(self, p: _Peer, allowed: Collection[int] | None) -> int:
        """The next piece to start for ``p``, or -1."""
        order, rng = self._order, self._rng
        if not order:
            return -1
        random_phase = self._have_count < self._random_first
        if allowed is not None:
            return self._choose_among(p, allowed, random_phase)
        marks = p.marks
        if marks is None:  # has everything: any candidate
            if random_phase:
                return order[rng.randrange(len(order))]
            start = self._start
            for a in range(len(start) - 1):
                if start[a] < start[a + 1]:
                    return order[rng.randrange(start[a], start[a + 1])]
            return -1
        c = p.candidates
        if not c:
            return -1
        if c * c < len(order):  # few: look at the peer's own pieces
            return self._choose_among(p, _candidates_of(marks), random_phase)
        if random_phase:
            found = _sample(order, marks, 0, len(order), rng)
            if found < 0:
                found = self._choose_among(p, _candidates_of(marks), True)
            return found
        start = self._start
        # a few times the expected walk, or what looking at its own pieces would cost
        budget = max(4 * (len(order) // c) + 64, c // 8)
        for a in range(1, len(start) - 1):  # bucket 0: no peer with a bitfield has them
            s, e = start[a], start[a + 1]
            if s < e:
                found = _sample(order, marks, s, e, rng)
                if found < 0:
                    first = rng.randrange(s, e)
                    found = _scan(order, marks, first, min(e, first + budget))
                    budget -= min(e, first + budget) - first
                    if found < 0 and budget > 0:
                        found = _scan(order, marks, s, min(first, s + budget))
                        budget -= min(first, s + budget) - s
                if found >= 0:
                    return found
                if budget <= 0:  # its pieces sit in crowded buckets: look at them directly
                    return self._choose_among(p, _candidates_of(marks), False)
        return -1

    def _choose_among(self, p: _Peer, pieces: Iterable[int], random_phase: bool) -> int:
        """Rarest (or a random one, in the random phase) of ``pieces`` that ``p`` can give."""
        n, pos, avail, marks, rng = self._n, self._pos, self._avail, p.marks, self._rng
        best, best_avail, ties = -1, 0, 0
        for index in pieces:
            if not (0 <= index < n and pos[index] >= 0 and (marks is None or marks[index])):
                continue
            a = 0 if random_phase else avail[index]
            if best < 0 or a < best_avail:
                best, best_avail, ties = index, a, 1
            elif a == best_avail:
                ties += 1
                if rng.randrange(ties) == 0:
                    best = index
        return best

    def _pick_endgame(self, p: _Peer, out: list[Block], count: int,
                      allowed: Collection[int] | None) -> None:
        """Duplicate requests already pending elsewhere, least-requested blocks first."""
        marks, peer, limit = p.marks, p.key, self._endgame_requests
        choices = []
        for index, download in self._downloading.items():
            if download.received == len(download.state) or not download.requesters:
                continue
            if (marks is not None and not marks[index]) or (allowed is not None
                                                            and index not in allowed):
                continue
            for j, requesters in download.requesters.items():
                if len(requesters) < limit and peer not in requesters:
                    choices.append((len(requesters), index, j))
        self._rng.shuffle(choices)
        choices.sort(key=lambda choice: choice[0])
        for _, index, j in choices[: count - len(out)]:
            key = index * self._stride + j
            self._downloading[index].requesters[j].append(peer)
            p.requests.add(key)
            out.append(self._block(key))

    def _release(self, peer: Hashable, key: int) -> bool:
        """Forget the request of ``key`` to ``peer``; True when the block is open again."""
        index, j = divmod(key, self._stride)
        download = self._downloading.get(index)
        if download is None:
            return False
        requesters = download.requesters.get(j)
        if requesters is None or peer not in requesters:
            return False
        requesters.remove(peer)
        if requesters:
            return False
        del download.requesters[j]
        download.state[j] = _OPEN
        download.open += 1
        if download.received == 0 and download.open == len(download.state):
            del self._downloading[index]  # nothing of it left: a candidate again
            self._open.pop(index, None)
            self._enter_order(index)
        else:
            self._open[index] = None
        return True


def _candidates_of(marks: bytearray) -> Iterator[int]:
    index = marks.find(_HAS_CANDIDATE)
    while index >= 0:
        yield index
        index = marks.find(_HAS_CANDIDATE, index + 1)


def _sample(order: list[int], marks: bytearray, start: int, end: int,
            rng: random.Random) -> int:
    """A uniformly random candidate of ``order[start:end]`` the peer has, or -1 after
    :data:`_SAMPLES` misses."""
    for _ in range(_SAMPLES):
        index = order[rng.randrange(start, end)]
        if marks[index] == _HAS_CANDIDATE:
            return index
    return -1


def _scan(order: list[int], marks: bytearray, start: int, end: int) -> int:
    """The first candidate of ``order[start:end]`` the peer has, or -1."""
    for k in range(start, end):
        if marks[order[k]] == _HAS_CANDIDATE:
            return order[k]
    return -1
