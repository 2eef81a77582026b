"""Chapter 9 exercises: write the functions, then run ``p2pkit tutorial check 9 THIS_FILE``.

``qrp_hash`` is checked on the keywords of the gtk-gnutella capture; ``query_messages`` against
p2pkit's flood simulator on flat networks of 60 to 1,000 servents.
"""


def qrp_hash(word: str, bits: int) -> int:
    """The QRP hash of a keyword into a table of ``2 ** bits`` slots (QRP Appendix A)."""
    raise NotImplementedError


def query_messages(neighbours: list[list[int]], origin: int, ttl: int) -> int:
    """How many query descriptors a flood sends when ``origin`` queries with ``ttl`` in a flat
    network (``neighbours[i]``: the servents ``i`` is connected to), duplicates included
    (Gnutella 0.6 §2.2.7, §3.2 routing)."""
    raise NotImplementedError
