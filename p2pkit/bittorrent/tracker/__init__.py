"""BitTorrent trackers: HTTP (BEP 3, 7, 23, 48) and UDP (BEP 15).

``compact`` (compact peer lists), ``http`` and ``udp`` (the wire formats), ``core`` (the
sans-I/O swarm registry), ``server`` (its asyncio driver) and ``client`` (announcing).
"""
