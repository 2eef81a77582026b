"""The Mainline DHT (Kademlia over KRPC, BEP 5) and its extensions (BEP 32, 42, 43, 44, 51).

``krpc`` holds the wire formats; ``routing``, ``tokens``, ``store``, ``items``, ``security``,
``lookup`` and ``node`` are the sans-I/O node; ``server`` drives it over UDP; ``simulator`` runs
many nodes in one process.
"""
