"""Test support: a small multi-file torrent's content written to disk."""

from __future__ import annotations

import random
from pathlib import Path


def write_album(root: Path, sizes: dict[str, int], *, seed: int) -> dict[str, bytes]:
    """Random files (``relative path -> size``) under ``root/album``; returns their bytes."""
    rng = random.Random(seed)
    files = {name: rng.randbytes(size) for name, size in sizes.items()}
    for name, data in files.items():
        path = root / "album" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return files
