"""Chapter 8 exercise: write the function, then run ``p2pkit tutorial check 8 THIS_FILE``.

The checker runs it on 1,000 simulated Mainline DHT nodes (p2pkit's, routing tables filled as in
the chapter), 20 lookups, and compares with the true closest nodes and with p2pkit's Lookup.
"""

from collections.abc import Callable


def iterative_lookup(target: bytes, start: list[bytes], ask: Callable[[bytes], list[bytes]],
                     k: int = 8, alpha: int = 3) -> list[bytes]:
    """The ``k`` node ids closest to ``target`` (closest first, by XOR distance), found by
    asking nodes: ``start`` are the ids our own table knows, ``ask(node_id)`` sends that node
    a find_node for ``target`` and returns the ids it answers with (Kademlia §2.3)."""
    raise NotImplementedError
