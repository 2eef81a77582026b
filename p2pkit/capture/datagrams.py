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
    """Sans-I/O: feed UDP ``Packet`` objects, get :class:`Record` objects.

    A protocol's detector is imported when the first datagram reaches it in the detection
    order, and its decoder made when the first datagram passes that detector: a capture whose
    datagrams an earlier protocol takes (a DHT capture is all KRPC) imports none of the later
    protocols, and a capture without UDP none at all. A decoder made later has been offered
    no datagram before, so it holds none to expire or to finish: the records are the ones
    every decoder made at the start would give.
    """

    def __init__(self, *, secrets: Mapping[str, Any] | None = None) -> None:
        self._secrets = dict(secrets or {})
        #: The datagram protocols' descriptors, in detection order (read at the first
        #: datagram).
        self._descriptors: tuple[Any, ...] | None = None
        #: Per protocol name, its detector (None: it takes every datagram), once loaded.
        self._detectors: dict[str, Any] = {}
        #: Per protocol name, its decoder (one per dissection), once made.
        self._decoders: dict[str, Any] = {}
        #: Decoders that hold datagrams for evidence, asked each time to release what waited
        #: too long (``expire(frame)``), so it comes out near its frame.
        self._expiring: list[Any] = []
        #: (detector, bound ``datagram``) per protocol, in detection order: what an unforced
        #: datagram is offered to. Until a protocol's detector is loaded its pair is ``(None,
        #: a stand-in)``, and until its decoder is made ``(detector, a stand-in)``: the
        #: stand-in loads what is missing, puts the protocol's pair in its place and answers
        #: for the datagram.
        self._offers: list[tuple[Any, Any]] = []

    def _start(self) -> tuple[Any, ...]:
        self._descriptors = descriptors = registry.datagram_protocols()
        self._offers = [(None, self._detector_stand_in(at)) for at in range(len(descriptors))]
        return descriptors

    def _detector(self, descriptor: Any) -> Any:
        """A protocol's detector, loaded once."""
        name = descriptor.name
        if name not in self._detectors:
            self._detectors[name] = registry.load(descriptor.datagram_detector)
        return self._detectors[name]

    def _decoder(self, descriptor: Any) -> Any:
        """A protocol's decoder, made once."""
        decoder = self._decoders.get(descriptor.name)
        if decoder is None:
            decoder = self._decoders[descriptor.name] = registry.load(
                descriptor.datagram_decoder)()
            if hasattr(decoder, "expire"):
                self._expiring.append(decoder.expire)
            # Decoders that carry streams (uTP carries the peer wire) look up the secrets of
            # the protocol they carry (``Dissector(secrets=...)``: per protocol name).
            if self._secrets and hasattr(decoder, "secrets"):
                decoder.secrets = dict(self._secrets)
        return decoder

    def _detector_stand_in(self, at: int) -> Any:
        """The ``at``-th protocol's offer until its detector is loaded."""

        def offer(pkt: Packet) -> Any:
            assert self._descriptors is not None
            detect = self._detector(self._descriptors[at])
            if detect is not None and not detect(pkt.payload):
                self._offers[at] = (detect, self._decoder_stand_in(at))
                return None
            return self._decoder_stand_in(at)(pkt)

        return offer

    def _decoder_stand_in(self, at: int) -> Any:
        """The ``at``-th protocol's decoding until its decoder is made (the datagram passed
        its detector)."""

        def datagram(pkt: Packet) -> Any:
            assert self._descriptors is not None
            descriptor = self._descriptors[at]
            decoder = self._decoder(descriptor)
            decode = decoder.datagram
            # (a decoder's own detector, with its state, when it has one: DatagramDecoder)
            self._offers[at] = (getattr(decoder, "detect", None) or self._detector(descriptor),
                                decode)
            return decode(pkt)

        return datagram

    def datagram(self, pkt: Packet, protocol: str | None = None) -> Iterator[Record]:
        """Dissect one UDP packet; ``protocol`` forces a decoder (``--decode-as``)."""
        yield from self.records(pkt, protocol)

    def records(self, pkt: Packet, protocol: str | None = None) -> list[Record]:
        """:meth:`datagram`'s records as a list (one call per datagram, no generator)."""
        descriptors = self._descriptors
        if descriptors is None:
            descriptors = self._start()
        payload = pkt.payload
        out: list[Record] | None = None
        for expire in self._expiring:
            expired = expire(pkt.frame)
            if expired:
                out = (out or []) + list(expired)
        if protocol is None:
            # (every protocol in detection order, through the bound methods)
            for detect, datagram in self._offers:
                if detect is not None and not detect(payload):
                    continue
                records = datagram(pkt)
                if records is not None:
                    if out is None:
                        return records if type(records) is list else list(records)
                    return out + list(records)
        for descriptor in descriptors:
            if protocol is None or descriptor.name != protocol:
                continue
            detect = self._detector(descriptor)
            if detect is not None and not detect(payload):
                continue
            records = self._decoder(descriptor).datagram(pkt, forced=True)
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
        # (in detection order; a protocol whose decoder was never made has nothing to finish)
        for descriptor in self._descriptors or ():
            decoder = self._decoders.get(descriptor.name)
            if decoder is not None:
                yield from decoder.finish()
