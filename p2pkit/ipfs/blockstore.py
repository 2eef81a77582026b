"""A persistent block store on disk, in Kubo's flatfs layout: one file per block.

Kubo's default datastore for blocks (go-ds-flatfs, ``/repo/flatfs/shard/v1/next-to-last/2``):
a block is stored under its key, the base32 (RFC 4648, upper case, no padding) of its
multihash, as ``<dir>/<shard>/<key>.data`` where ``<shard>`` is the two characters before
the key's last one; the ``SHARDING`` file at the top names the scheme. Blocks are keyed by
multihash, as in Kubo and Helia: the same bytes under a raw or a dag-pb CID are one file.

Writes are atomic (a temporary file in the shard directory, flushed, ``fsync``-ed unless
``sync=False``, then renamed over the final name), so a crash leaves either the whole block or
none; every block is checked against its CID before it is written, and again when it is read
(a file changed on disk is reported, never served). Reads are bounded by the largest block
(2 MiB, dag-pb's bound).

>>> import tempfile
>>> store = FlatfsBlockstore(tempfile.mkdtemp())
>>> cid = Cid.of(b"hello")
>>> store[cid] = b"hello"
>>> store[cid], cid in store, len(store)
(b'hello', True, 1)
>>> store.path_of(cid).parent.name, store.path_of(cid).name[:8]
('QJ', 'CIQCZ4SN')
"""

from __future__ import annotations

import base64
import contextlib
import os
import tempfile
from collections.abc import Iterator, MutableMapping
from pathlib import Path

from p2pkit.errors import LimitExceeded, ParseError, ProtocolError
from p2pkit.ipfs.cid import RAW, Cid
from p2pkit.ipfs.dag_pb import MAX_BLOCK_LENGTH

__all__ = ["SHARDING", "FlatfsBlockstore"]

#: The sharding function, as Kubo writes it in the ``SHARDING`` file.
SHARDING = "/repo/flatfs/shard/v1/next-to-last/2"
_SUFFIX = ".data"


def _key(multihash: bytes) -> str:
    return base64.b32encode(multihash).decode("ascii").rstrip("=")


def _multihash(key: str) -> bytes:
    return base64.b32decode(key + "=" * (-len(key) % 8))


class FlatfsBlockstore(MutableMapping[Cid, bytes]):
    """Blocks in files under ``root`` (created when missing), by multihash."""

    def __init__(self, root: str | Path, *, sync: bool = True) -> None:
        self.root = Path(root)
        self.sync = sync
        self.root.mkdir(parents=True, exist_ok=True)
        sharding = self.root / "SHARDING"
        if sharding.exists():
            found = sharding.read_text(encoding="ascii", errors="replace").strip()
            if found != SHARDING:
                raise ProtocolError(f"{self.root}: blocks sharded by {found!r}, "
                                    f"p2pkit reads {SHARDING!r}")
        else:
            self._write_atomically(sharding, (SHARDING + "\n").encode())

    def path_of(self, cid: Cid) -> Path:
        """Where the block of ``cid`` lives."""
        key = _key(cid.multihash)
        return self.root / key[-3:-1] / (key + _SUFFIX)

    def _write_atomically(self, path: Path, data: bytes) -> None:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".put-", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                if self.sync:
                    os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    # -- the mapping -------------------------------------------------------------------------

    def __setitem__(self, cid: Cid, block: bytes) -> None:
        if len(block) > MAX_BLOCK_LENGTH:
            raise LimitExceeded(f"a block of {len(block)} bytes (at most {MAX_BLOCK_LENGTH})",
                                protocol="blockstore")
        if not cid.verify(block):
            raise ProtocolError(f"block does not match its CID {cid}")
        path = self.path_of(cid)
        if path.exists():
            return  # content addressed: the same bytes are there already
        path.parent.mkdir(exist_ok=True)
        self._write_atomically(path, bytes(block))

    def __getitem__(self, cid: Cid) -> bytes:
        path = self.path_of(cid)
        try:
            with open(path, "rb") as f:
                data = f.read(MAX_BLOCK_LENGTH + 1)
        except FileNotFoundError:
            raise KeyError(cid) from None
        if len(data) > MAX_BLOCK_LENGTH:
            raise LimitExceeded(f"{path}: more than {MAX_BLOCK_LENGTH} bytes",
                                protocol="blockstore")
        if not cid.verify(data):
            raise ParseError(f"{path} does not match its CID {cid} (changed on disk?)",
                             protocol="blockstore")
        return data

    def __contains__(self, cid: object) -> bool:
        return isinstance(cid, Cid) and self.path_of(cid).exists()

    def __delitem__(self, cid: Cid) -> None:
        try:
            self.path_of(cid).unlink()
        except FileNotFoundError:
            raise KeyError(cid) from None

    def __iter__(self) -> Iterator[Cid]:
        """Every block as a raw CIDv1 of its multihash (the store keeps no codec)."""
        for shard in sorted(p for p in self.root.iterdir() if p.is_dir()):
            for path in sorted(shard.glob("*" + _SUFFIX)):
                try:
                    yield Cid(1, RAW, _multihash(path.name[:-len(_SUFFIX)]))
                except (ValueError, ParseError):
                    continue  # not a block file

    def __len__(self) -> int:
        return sum(1 for _ in self)
