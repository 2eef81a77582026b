"""eMule Kad2 (the Kademlia deployment aMule and eMule speak over UDP): schemas and dissection.

Decode only: :mod:`p2pkit.kad2.tags` (eMule tag lists), :mod:`p2pkit.kad2.messages` (the Kad
header, packed packets and every Kad2 opcode), :mod:`p2pkit.kad2.dissect` (the dissector's
datagram decoder, obfuscated packets labelled). The ids are 128-bit Kademlia ids
(:mod:`p2pkit.kademlia.ids`).
"""
