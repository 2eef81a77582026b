"""Datagram dissection: every UDP packet is offered to the datagram protocols of
:mod:`p2pkit.registry`, in their priority order, until one decodes it.

Protocol-blind: each protocol brings a cheap stateless detector and a decoder made once per
dissection (it may keep state, as the UDP tracker protocol's connection ids or uTP's
reassembly need). ``--decode-as`` forces one protocol for a port.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from p2pkit import registry
from p2pkit.capture.packets import Packet
from p2pkit.capture.record import Record, undecoded

__all__ = ["DatagramDissector"]


class DatagramDissector:
    """Sans-I/O: feed UDP ``Packet`` objects, get :class:`Record` objects."""

    def __init__(self, *, secrets: Mapping[str, Any] | None = None) -> None:
        self._secrets = dict(secrets or {})
        #: (name, detector, decoder) per datagram protocol, in detection order: made at the
        #: first datagram (a capture without UDP imports no datagram decoder).
        self._protocols: list[tuple[str, Any, Any]] | None = None
        #: Decoders that hold datagrams for evidence, asked each time to release what waited
        #: too long (``expire(frame)``), so it comes out near its frame.
        self._expiring: list[Any] = []
        #: (detector, bound ``datagram``) per protocol, in detection order: what an unforced
        #: datagram is offered to (made with ``_protocols``).
        self._offers: list[tuple[Any, Any]] = []

    def _decoders(self) -> list[tuple[str, Any, Any]]:
        self._protocols = [
            (d.name, registry.load(d.datagram_detector), registry.load(d.datagram_decoder)())
            for d in registry.datagram_protocols()
        ]
        self._expiring = [decoder.expire for _, _, decoder in self._protocols
                          if hasattr(decoder, "expire")]
        self._offers = [(detect, decoder.datagram) for _, detect, decoder in self._protocols]
        # Decoders that carry streams (uTP carries the peer wire) look up the secrets of the
        # protocol they carry (``Dissector(secrets=...)``: per protocol name).
        for _, _, decoder in self._protocols:
            if self._secrets and hasattr(decoder, "secrets"):
                decoder.secrets = dict(self._secrets)
        return self._protocols

    def datagram(self, pkt: Packet, protocol: str | None = None) -> Iterator[Record]:
        """Dissect one UDP packet; ``protocol`` forces a decoder (``--decode-as``)."""
        yield from self.records(pkt, protocol)

    def records(self, pkt: Packet, protocol: str | None = None) -> list[Record]:
        """:meth:`datagram`'s records as a list (one call per datagram, no generator)."""
        protocols = self._protocols
        if protocols is None:
            protocols = self._decoders()
        payload = pkt.payload
        out: list[Record] | None = None
        for expire in self._expiring:
            expired = expire(pkt.frame)
            if expired:
                out = (out or []) + list(expired)
        if protocol is None:
            # (every protocol in detection order, as below, through the bound methods)
            for detect, datagram in self._offers:
                if detect is not None and not detect(payload):
                    continue
                records = datagram(pkt)
                if records is not None:
                    if out is None:
                        return records if type(records) is list else list(records)
                    return out + list(records)
        for name, detect, decoder in protocols:
            if protocol is None or name != protocol:
                continue
            if detect is not None and not detect(payload):
                continue
            records = decoder.datagram(pkt, forced=True)
            if records is not None:
                if out is None:
                    return records if type(records) is list else list(records)
                return out + list(records)
        # nothing disappears silently: a datagram no protocol took is said so
        unknown = undecoded(protocol="data", transport="udp", src=pkt.src, dst=pkt.dst,
                            reason="unknown protocol", length=len(payload),
                            frames=(pkt.frame, pkt.frame, 1), time=pkt.time)
        return [unknown] if out is None else [*out, unknown]

    def finish(self) -> Iterator[Record]:
        for _, _, decoder in self._protocols or ():
            yield from decoder.finish()
