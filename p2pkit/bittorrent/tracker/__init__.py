"""BitTorrent trackers: HTTP (BEP 3, 7, 23, 48) and UDP (BEP 15).

``compact`` (compact peer lists), ``http`` and ``udp`` (the wire formats), ``core`` (the
sans-I/O swarm registry), ``server`` (its asyncio driver), ``announce`` (what a client asks and
hears back), ``udp_client`` (the sans-I/O BEP 15 client, states in ``udp_client_state``) and
``client`` (announcing over HTTP and UDP, asyncio).
"""
