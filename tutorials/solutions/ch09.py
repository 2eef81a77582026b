"""Chapter 9 solutions (checked in CI: ``p2pkit tutorial check 9`` passes on this file)."""


def qrp_hash(word: str, bits: int) -> int:
    xor = 0
    for i, byte in enumerate(word.lower().encode("utf-8")):
        xor ^= byte << (8 * (i % 4))
    return ((xor * 0x4F1BBCDC) & 0xFFFFFFFF) >> (32 - bits)


def query_messages(neighbours: list[list[int]], origin: int, ttl: int) -> int:
    seen = {origin}
    level = [(n, origin) for n in neighbours[origin]]  # (receiver, sender) of this level's copies
    messages = 0
    while level:
        messages += len(level)
        ttl -= 1  # the TTL each receiver has left to forward with
        nxt = []
        for node, sender in level:
            if node in seen:
                continue  # a duplicate: dropped
            seen.add(node)
            if ttl >= 1:
                nxt.extend((n, node) for n in neighbours[node] if n != sender)
        level = nxt
    return messages
