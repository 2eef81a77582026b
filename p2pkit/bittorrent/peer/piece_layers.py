"""BEP 52 piece layers over the wire: asking for them, checking them, serving them.

Spec: BEP 52 §hash request / §hashes ("'hash request' messages contain a pieces root, base
layer, index, length, and proof layers [...] Length MUST be equal-to-or-greater-than two and a
power of two. Length SHOULD NOT be greater than 512. [...] Hashes starts with the base layer and
ends with the uncle hash closest to the root. A proof layer is omitted if the requested hashes
include the entire child layer. In other words, the first log2(length)-1 proof layers are
ommitted.").

A magnet link's metadata (BEP 9) is the info dictionary only; a v2 torrent's ``piece layers``
live outside it, so a v2 download started from a magnet asks its peers for each file's piece
layer. p2pkit asks for a whole layer at once, as libtorrent 2.0 does (tests/data/captures/
bt-05…: ``base_layer=1 index=0 length=64 proof_layers=5`` for a 64-piece file of 32 KiB
pieces): the layer padded to a power of two, so no uncle hashes are needed and the hashes alone
lead to the file's ``pieces root``. That covers files of up to 512 pieces
(:data:`~p2pkit.bittorrent.peer.events.MAX_HASH_REQUEST_LENGTH`).

>>> import hashlib
>>> from p2pkit.bittorrent.wire.metainfo import BLOCK_SIZE, FileEntry, merkle_root, piece_layer_root
>>> layer = [hashlib.sha256(bytes([i])).digest() for i in range(3)]
>>> root = piece_layer_root(layer, 2 * BLOCK_SIZE)
>>> f = FileEntry(path=("a",), length=5 * BLOCK_SIZE, pieces_root=root)
>>> request = layer_request(f, 2 * BLOCK_SIZE)
>>> request.base_layer, request.index, request.length, request.proof_layers
(1, 0, 4, 1)
>>> answer = answer_hash_request(request, {root: tuple(layer)}, 2 * BLOCK_SIZE)
>>> checked_layer(answer, f, 2 * BLOCK_SIZE) == tuple(layer)
True
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

from p2pkit.bittorrent.peer import events as ev
from p2pkit.bittorrent.wire.metainfo import BLOCK_SIZE, FileEntry, pad_hash, piece_layer_root
from p2pkit.errors import LocalProtocolError

__all__ = ["answer_hash_request", "answer_leaf_request", "checked_layer", "layer_request",
           "leaf_request_pieces", "needs_layer"]


def _base_layer(piece_length: int) -> int:
    """BEP 52: "the number of layers above the leaf layer": 16 KiB blocks up to one piece."""
    return (piece_length // BLOCK_SIZE).bit_length() - 1


def _width(count: int) -> int:
    return max(2, 1 << (count - 1).bit_length())


def needs_layer(file: FileEntry, piece_length: int) -> bool:
    """A file larger than one piece has a piece layer ("Note that the piece layer for files
    smaller than one piece is the pieces root itself" — nothing to fetch)."""
    return file.pieces_root is not None and file.length > piece_length


def layer_request(file: FileEntry, piece_length: int) -> ev.HashRequest:
    """The request for a file's whole piece layer (raises :class:`LocalProtocolError` for a
    file of more than 512 pieces, which needs several requests with proofs)."""
    if not needs_layer(file, piece_length):
        raise LocalProtocolError(f"{file.path_text} has no piece layer to fetch")
    assert file.pieces_root is not None
    width = _width(-(-file.length // piece_length))
    if width > ev.MAX_HASH_REQUEST_LENGTH:
        raise LocalProtocolError(f"{file.path_text}: a piece layer of more than "
                                 f"{ev.MAX_HASH_REQUEST_LENGTH} hashes needs proofs")
    return ev.HashRequest(pieces_root=file.pieces_root, base_layer=_base_layer(piece_length),
                          index=0, length=width, proof_layers=width.bit_length() - 2)


def checked_layer(answer: ev.Hashes, file: FileEntry, piece_length: int
                  ) -> tuple[bytes, ...] | None:
    """The file's piece layer from an answer to :func:`layer_request`, or ``None`` when the
    hashes do not lead to its ``pieces root`` (the peer lied)."""
    count = -(-file.length // piece_length)
    hashes = answer.hashes
    if len(hashes) < count or any(len(h) != 32 for h in hashes):
        return None
    layer = tuple(hashes[:count])
    if piece_layer_root(layer, piece_length) != file.pieces_root:
        return None
    return layer


def answer_hash_request(request: ev.HashRequest, layers: Mapping[bytes, Sequence[bytes]],
                        piece_length: int) -> ev.Hashes | ev.HashReject:
    """Serve a peer's request from the piece layers we hold (a .torrent's ``piece layers``):
    the requested run of the layer padded with zero-subtree hashes, then the uncle hashes the
    proof layers ask for. Requests of other layers (BEP 52: "Clients are only required to
    support setting the base layer to the leaf and piece layers"; p2pkit keeps no leaf hashes)
    and of unknown roots are rejected."""
    fields = dict(pieces_root=request.pieces_root, base_layer=request.base_layer,
                  index=request.index, length=request.length,
                  proof_layers=request.proof_layers)
    layer = layers.get(request.pieces_root)
    base = _base_layer(piece_length)
    if layer is None or request.base_layer != base or request.length > \
            ev.MAX_HASH_REQUEST_LENGTH:
        return ev.HashReject(**fields)
    width = _width(len(layer))
    if request.index + request.length > width:
        return ev.HashReject(**fields)
    levels = [list(layer) + [pad_hash(base)] * (width - len(layer))]
    while len(levels[-1]) > 1:
        below = levels[-1]
        levels.append([hashlib.sha256(below[i] + below[i + 1]).digest()
                       for i in range(0, len(below), 2)])
    hashes = levels[0][request.index:request.index + request.length]
    height = request.length.bit_length() - 1
    uncles = max(0, request.proof_layers - (height - 1))
    for level in range(height, min(height + uncles, len(levels) - 1)):
        node = request.index >> level
        hashes.append(levels[level][node ^ 1])
    return ev.Hashes(**fields, hashes=tuple(hashes))


def _leaf_width(file: FileEntry, piece_length: int) -> int:
    """Leaves under a file's ``pieces root``: its blocks padded to a power of two (a file of
    more than one piece: its piece layer padded to a power of two, each piece a full subtree)."""
    per_piece = piece_length // BLOCK_SIZE
    if file.length > piece_length:
        return _width(-(-file.length // piece_length)) * per_piece
    return 1 << max(-(-file.length // BLOCK_SIZE) - 1, 0).bit_length()


def leaf_request_pieces(request: ev.HashRequest, file: FileEntry, piece_length: int
                        ) -> range | None:
    """The file's pieces (counted from the file's first piece) a base-layer-0 request covers,
    or ``None`` when it lies outside the file's tree (to be rejected).

    BEP 52 §hash request: "Clients MUST NOT reject a hash request with a base layer of zero if
    it immediately follows a request for one of the chunks in the requested range and the
    client services the chunk request with a piece message." Serving leaf hashes takes the
    data of the pieces the range covers (whole pieces: the uncles below the piece layer are
    hashes of their other blocks).

    >>> f = FileEntry(path=("a",), length=5 * BLOCK_SIZE, pieces_root=bytes(32))
    >>> r = ev.HashRequest(pieces_root=bytes(32), base_layer=0, index=2, length=2,
    ...                    proof_layers=2)
    >>> leaf_request_pieces(r, f, 2 * BLOCK_SIZE)
    range(1, 2)
    """
    if request.base_layer != 0 or request.length > ev.MAX_HASH_REQUEST_LENGTH \
            or request.length < 2 or request.length & (request.length - 1) \
            or request.index % request.length:
        return None
    if request.index + request.length > _leaf_width(file, piece_length):
        return None
    per_piece = piece_length // BLOCK_SIZE
    count = -(-file.length // piece_length)
    first = request.index // per_piece
    last = min(-(-(request.index + request.length) // per_piece), count)
    return range(first, max(last, first))


def answer_leaf_request(request: ev.HashRequest, file: FileEntry, piece_length: int,
                        layer: Sequence[bytes] | None, pieces: Mapping[int, bytes]
                        ) -> ev.Hashes | ev.HashReject:
    """Serve a base-layer-0 request (leaf hashes: SHA-256 of each 16 KiB block, BEP 52
    §merkle tree) from the data of the pieces :func:`leaf_request_pieces` named (``pieces``,
    by index counted from the file's first piece), with the uncle hashes the proof layers ask
    for: those below the piece layer from the pieces' other blocks, those above from the
    piece ``layer`` (``None`` for a file of one piece or less)."""
    fields = dict(pieces_root=request.pieces_root, base_layer=request.base_layer,
                  index=request.index, length=request.length,
                  proof_layers=request.proof_layers)
    wanted = leaf_request_pieces(request, file, piece_length)
    if wanted is None or any(p not in pieces for p in wanted):
        return ev.HashReject(**fields)
    if file.length > piece_length and layer is None:
        return ev.HashReject(**fields)
    per_piece = piece_length // BLOCK_SIZE
    total = _leaf_width(file, piece_length)
    region = max(request.length, min(per_piece, total))  # a power of two, aligned
    start = request.index // region * region
    leaves = []
    for leaf in range(start, start + region):
        piece, block = divmod(leaf, per_piece)
        # the file's own bytes only (a hybrid torrent's piece goes on into a padding file)
        end = min((block + 1) * BLOCK_SIZE, file.length - piece * piece_length)
        data = pieces.get(piece, b"")[block * BLOCK_SIZE:max(end, 0)]
        # BEP 52: "The remaining leaf hashes beyond the end of the file [...] are set to zero."
        leaves.append(hashlib.sha256(data).digest() if data else pad_hash(0))
    below = [leaves]
    while len(below[-1]) > 1:
        level = below[-1]
        below.append([hashlib.sha256(level[i] + level[i + 1]).digest()
                      for i in range(0, len(level), 2)])
    above: list[list[bytes]] = []
    if layer is not None:
        base = _base_layer(piece_length)
        above = [list(layer) + [pad_hash(base)] * (total // per_piece - len(layer))]
        while len(above[-1]) > 1:
            level = above[-1]
            above.append([hashlib.sha256(level[i] + level[i + 1]).digest()
                          for i in range(0, len(level), 2)])
    height = request.length.bit_length() - 1
    top = total.bit_length() - 1
    uncles = max(0, request.proof_layers - (height - 1))
    hashes = below[0][request.index - start:request.index - start + request.length]
    region_height = region.bit_length() - 1
    for level in range(height, min(height + uncles, top)):
        sibling = (request.index >> level) ^ 1
        if level < region_height:
            hashes.append(below[level][sibling - (start >> level)])
        else:
            hashes.append(above[level - _base_layer(piece_length)][sibling])
    return ev.Hashes(**fields, hashes=tuple(hashes))
