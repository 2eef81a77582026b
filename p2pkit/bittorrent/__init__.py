"""BitTorrent: the wire formats, the reference peer and the trackers.

* :mod:`p2pkit.bittorrent.wire`: byte layouts and files (peer wire messages and framing, BEP 10
  extension payloads, metainfo v1/v2/hybrid and torrent creation, magnet links, uTP headers).
* :mod:`p2pkit.bittorrent.peer`: the reference peer (one connection as a sans-I/O core, one
  torrent shared with many peers, picker, choker, storage, metadata exchange, PEX, the asyncio
  client).
* :mod:`p2pkit.bittorrent.tracker`: HTTP and UDP trackers (BEP 3/7/15/23/48): the packets, the
  sans-I/O swarm registry, the server and the announcing client.
"""
