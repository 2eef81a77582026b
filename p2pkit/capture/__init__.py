"""Dissection of captured packets: readers, link/network layers, TCP reassembly, and the
protocol-blind pipeline that asks :mod:`p2pkit.registry` who decodes each stream or datagram."""
