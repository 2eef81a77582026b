"""Chapter 8 solution (checked in CI: ``p2pkit tutorial check 8`` passes on this file)."""

from collections.abc import Callable


def iterative_lookup(target: bytes, start: list[bytes], ask: Callable[[bytes], list[bytes]],
                     k: int = 8, alpha: int = 3) -> list[bytes]:
    t = int.from_bytes(target, "big")

    def dist(node: bytes) -> int:
        return int.from_bytes(node, "big") ^ t

    known, asked = set(start), set()
    while True:
        closest = sorted(known, key=dist)[:k]
        todo = [n for n in closest if n not in asked][:alpha]
        if not todo:
            return closest
        for node in todo:
            asked.add(node)
            known.update(ask(node))
