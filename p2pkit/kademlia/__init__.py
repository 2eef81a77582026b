"""Kademlia, the algorithm, with no wire format (Maymounkov and Mazières 2002).

``ids`` (node ids of any length and the XOR metric), ``routing`` (k-buckets with a
replacement cache) and ``lookup`` (the iterative lookup). The id length, ``k`` and ``alpha``
are parameters of each deployment: the Mainline DHT (:mod:`p2pkit.dht`, BEP 5) uses 160 bits,
k = 8, alpha = 3; libp2p's kad-dht 256 bits and k = 20 (libp2p-ipfs/ipfs-kad-dht.md §Kademlia
Keyspace, §Bucket Size) with alpha = 10 (libp2p-kad-dht.md §Alpha concurrency parameter).
Deployments bring their own wire format and node; nothing here knows KRPC or bencode.

For simulation at scale: ``array_tables`` (the routing tables of a whole network as arrays,
filled as bootstrap and refresh leave them, and refreshed as nodes leave and return),
``array_network`` (the same ``Lookup`` driven over them, with latency and loss, for nodes or
for records stored on some of them), ``churn`` (departures from session-length distributions,
and nodes alternating sessions and offline gaps over time) and ``two_sample`` (the tests that check two simulation cores agree).
"""
