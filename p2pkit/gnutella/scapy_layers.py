"""The scapy layer of Gnutella descriptors, on :data:`p2pkit.gnutella.descriptors.DescriptorLenient`.

The descriptor's length comes from the header layout derived from
:data:`~p2pkit.gnutella.descriptors.DescriptorHeader` (:class:`~p2pkit.schema.FixedLayout`).
"""

from __future__ import annotations

from p2pkit.capture.scapy_layers import FramedField, StreamLayer
from p2pkit.gnutella.descriptors import DescriptorHeader, DescriptorLenient
from p2pkit.schema import FixedLayout

__all__ = ["LAYERS", "GnutellaDescriptorLayer"]

_HEADER = FixedLayout(DescriptorHeader)
_PAYLOAD_LENGTH = _HEADER.all_names.index("payload_length")


def _descriptor_length(data: bytes) -> int | None:
    """Header plus the payload length the header gives (Gnutella 0.4 §descriptor header)."""
    if len(data) < _HEADER.size:
        return None
    return _HEADER.size + _HEADER.struct.unpack_from(data)[_PAYLOAD_LENGTH]


class GnutellaDescriptorLayer(StreamLayer):
    """One Gnutella descriptor, fields from ``DescriptorLenient``."""

    name = "Gnutella"
    fields_desc = [FramedField("message", DescriptorLenient, _descriptor_length)]

    def mysummary(self) -> str:
        m = self.message
        return f"Gnutella {m.type} ttl={m.ttl} hops={m.hops}"


#: The ``gnutella`` descriptor's layers.
LAYERS = (GnutellaDescriptorLayer,)
