"""uTP (BEP 29) as a transport: a sans-I/O socket core and its parts.

``multiplexer`` is the core (one UDP socket, many connections,
:class:`~p2pkit.core.DatagramCore` surface); ``connection`` is one
connection's state machine; ``sequence`` (16-bit sequence numbers and
the reorder buffer, shared with the dissector), ``ledbat`` (congestion
control) and ``rtt`` (timeouts) are its parts. The wire format is
:data:`p2pkit.bittorrent.wire.utp.UtpPacket`.
"""
