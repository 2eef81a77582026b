"""Kademlia, the algorithm, with no wire format (Maymounkov and Mazières 2002; BEP 5 §Routing
Table for the Mainline deployment).

``routing`` (node ids, XOR distance, k-buckets with a replacement cache) and ``lookup`` (the
iterative lookup, with k and alpha as parameters). Deployments bring their own wire format and
node: the Mainline DHT is :mod:`p2pkit.dht`.
"""
