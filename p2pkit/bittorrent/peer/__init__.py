"""The reference BitTorrent peer.

``connection`` (one peer connection, sans-I/O, with its ``events`` and ``connection_state``
table), ``session`` (one torrent and many peers, sans-I/O: ``picker``, ``choker``,
``metadata``, ``pex``, ``piece_layers``), ``storage`` (pieces on disk) and ``client`` (the asyncio
driver).
"""
