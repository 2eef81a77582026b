"""rpcudp over msgpack with the RPCs of the Python ``kademlia`` package: schemas and dissection.

:mod:`p2pkit.rpcudp.envelope` (the datagram and its bounded msgpack body),
:mod:`p2pkit.rpcudp.rpcs` (ping, store, find_node, find_value and stun, their arguments and
results named), :mod:`p2pkit.rpcudp.dissect` (the dissector's datagram decoder).
"""
