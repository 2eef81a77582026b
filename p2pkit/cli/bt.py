"""``p2pkit bt ...``: BitTorrent commands (metainfo, and later the peer and trackers)."""

from __future__ import annotations

import click


@click.group("bt")
def bt() -> None:
    """BitTorrent: inspect torrents (BEP 3, 9, 52)."""
