"""IPFS and libp2p: multiformats, protobuf messages, the connection stack, identify, the kad-dht.

Layers, bottom-up: :mod:`~p2pkit.ipfs.varint`, :mod:`~p2pkit.ipfs.multibase`,
:mod:`~p2pkit.ipfs.multihash`, :mod:`~p2pkit.ipfs.multicodec`, :mod:`~p2pkit.ipfs.cid`,
:mod:`~p2pkit.ipfs.multiaddr`, :mod:`~p2pkit.ipfs.keys`, :mod:`~p2pkit.ipfs.peer_id`
(multiformats and identities); :mod:`~p2pkit.ipfs.protobuf` and the message declarations
(keys, envelopes, Noise payload, identify, kad-dht, Bitswap, dag-pb, UnixFS);
:mod:`~p2pkit.ipfs.multistream`, :mod:`~p2pkit.ipfs.noise`, :mod:`~p2pkit.ipfs.yamux`,
:mod:`~p2pkit.ipfs.ping`, :mod:`~p2pkit.ipfs.identify`, :mod:`~p2pkit.ipfs.kad_dht` (sans-I/O
cores) and :mod:`~p2pkit.ipfs.connection` (their composition); :mod:`~p2pkit.ipfs.host` and
:mod:`~p2pkit.ipfs.kad_lookup` (the asyncio driver); :mod:`~p2pkit.ipfs.dissect` (captures).
See docs/protocols/ipfs.md for what is built and what is not.
"""
