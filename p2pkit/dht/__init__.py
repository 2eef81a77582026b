"""The BitTorrent Mainline DHT: Kademlia (:mod:`p2pkit.kademlia`) over KRPC (BEP 5), with
BEP 32, 33, 42, 43, 44 and 51.

``krpc`` holds the wire formats; ``tokens``, ``store``, ``items``, ``security``, ``scrape`` and
``node`` are the sans-I/O node; ``server`` drives it over UDP; ``simulator`` runs many nodes in
one process.
"""
