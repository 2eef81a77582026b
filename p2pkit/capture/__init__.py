"""Dissection of captured packets: readers, link/network layers, TCP reassembly."""
