"""Chapter 10 exercises: write the functions, then run ``p2pkit tutorial check 10 THIS_FILE``.

Both are asked of committed captures (tests/data/captures, p2pkit/data).
"""


def krpc_query_counts(path: str) -> dict[str, int]:
    """How many KRPC queries of each method (``get_peers``, ``ping``, ...) the capture at
    ``path`` holds (BEP 5 §KRPC Protocol)."""
    raise NotImplementedError


def tracker_events(path: str) -> dict[str, set[str]]:
    """For each client that announced to a tracker in the capture (named by the first 8
    characters of its peer id, BEP 20), the events it announced (``started``, ``completed``,
    ``stopped``; BEP 3 §trackers, BEP 15)."""
    raise NotImplementedError
