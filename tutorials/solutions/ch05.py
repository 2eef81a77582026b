"""Chapter 5 solutions (checked in CI: ``p2pkit tutorial check 5`` passes on this file)."""


def _has(bitfield: bytes, index: int) -> bool:
    return bool(bitfield[index // 8] & (0x80 >> index % 8))


def rarest_missing(bitfields: list[bytes], have: bytes, piece_count: int) -> set[int]:
    counts = {i: sum(_has(b, i) for b in bitfields)
              for i in range(piece_count) if not _has(have, i)}
    available = {i: c for i, c in counts.items() if c > 0}
    if not available:
        return set()
    least = min(available.values())
    return {i for i, c in available.items() if c == least}


def regular_unchokes(rates: dict[str, float], interested: set[str], slots: int) -> set[str]:
    unchoked, used = set(), 0
    for peer in sorted(rates, key=rates.__getitem__, reverse=True):
        if used >= slots:
            break
        unchoked.add(peer)
        used += peer in interested
    return unchoked
