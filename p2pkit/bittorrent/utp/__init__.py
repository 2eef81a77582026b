"""uTP (BEP 29) as a transport: a sans-I/O socket core and its parts.

:mod:`~p2pkit.bittorrent.utp.multiplexer` is the core (one UDP socket, many connections,
:class:`~p2pkit.core.DatagramCore` surface); :mod:`~p2pkit.bittorrent.utp.connection` is one
connection's state machine; :mod:`~p2pkit.bittorrent.utp.sequence` (16-bit sequence numbers and
the reorder buffer, shared with the dissector), :mod:`~p2pkit.bittorrent.utp.ledbat` (congestion
control) and :mod:`~p2pkit.bittorrent.utp.rtt` (timeouts) are its parts. The wire format is
:data:`p2pkit.bittorrent.wire.utp.UtpPacket`.
"""
