"""The registry entry of ``data``: bytes no registered protocol recognised (Wireshark's name for
them), reported as ``undecoded`` records so that nothing disappears silently.

Names only (see :mod:`p2pkit.registry`); every protocol's descriptor also lists
:data:`UNDECODED_FIELDS`, since bytes it recognised but could not decode (encrypted, malformed,
truncated, after a gap) come out as ``undecoded`` records of that protocol.
"""

from __future__ import annotations

from p2pkit.registry import ProtocolDescriptor

__all__ = ["DATA", "DESCRIPTORS", "UNDECODED_FIELDS", "UNDECODED_SUMMARY"]

#: The fields of an ``undecoded`` record (:func:`p2pkit.capture.record.undecoded`).
UNDECODED_FIELDS = ("reason", "bytes", "first_frame", "last_frame", "frames", "at", "detail",
                    "encryption")
#: What a summary line shows of an ``undecoded`` record, whatever its protocol.
UNDECODED_SUMMARY = ("reason", "at", "bytes", "encryption", "first_frame", "frames")

DATA = ProtocolDescriptor(
    name="data",
    title="Undecoded bytes (no registered protocol recognised them)",
    priority=10_000,
    messages=("undecoded",),
    fields=UNDECODED_FIELDS,
    summary=UNDECODED_SUMMARY,
)

#: What :mod:`p2pkit.registry` registers from this module.
DESCRIPTORS = (DATA,)
