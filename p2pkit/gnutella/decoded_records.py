"""The dissector's records of a run of Gnutella descriptors, each decoded as it is framed,
when every record's fields will be read (``dissect -V``, JSON lines: the capture layer's
``fields_read`` hint, :class:`~p2pkit.capture.dissect.Dissector`).

In summary mode a descriptor is framed first and looked at only as far as its summary line
needs (:mod:`p2pkit.gnutella.descriptor_records`): pongs, pushes and query hits (the port)
and long pings and queries (a bound may be reached) are walked by a check, and their
payload is walked again when the record's fields are read. When every record's fields are
read, that check is a second walk of the same bytes. Here each descriptor the summary loop
would make a record of is parsed once, straight to its JSON fields
(:func:`~p2pkit.gnutella.descriptor_json.json_descriptor`, Gnutella 0.4 §2.2 header and
the payload declarations of :data:`~p2pkit.gnutella.descriptors.PAYLOADS`), and its record
made with those fields: the record a deferred descriptor gives once read (no deviation, the
Container made only when ``record.value`` is read).

When the fast path gives way (None: a deviation, a bound, a layout it does not read), the
descriptor goes through the summary loop's own steps, unchanged
(:meth:`~p2pkit.gnutella.descriptor_records.DescriptorRecords.split`'s records: the check
decides, as before, whether it is deferred or left to the reader, which parses it through
the lenient schema and reports what is wrong). A payload the fast path parses is one the
checks accept (they walk the same declarations, and refuse only what the fast path refuses:
``tests/gnutella/test_decoded_records.py`` checks this on every descriptor of the committed
captures and on mutated ones), so the records, their order and where the loop stops are the
summary loop's.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

from p2pkit.capture.lazy_record import DeferredValue, decoded_record
from p2pkit.gnutella.deferred import _SPANS, _value
from p2pkit.gnutella.descriptor_json import json_descriptor
from p2pkit.gnutella.descriptors import HEADER_AFTER_GUID, HEADER_LENGTH, PAYLOADS

if TYPE_CHECKING:
    from p2pkit.gnutella.descriptor_records import DescriptorRecords

__all__ = ["decoded_records"]

PROTOCOL = "gnutella"
#: Payload descriptor byte -> the message name (None: a type the summary loop does not
#: stand in for, left to the reader).
_NAMES: tuple[str | None, ...] = tuple(
    PAYLOADS[t][0] if t in PAYLOADS else None for t in range(256))


def decoded_records(records: DescriptorRecords, data: bytes, pos: int, offset: int,
                    frames: list[Any]) -> int:
    """Append to ``frames`` the record of each complete descriptor of ``data`` from ``pos``
    on, decoded (``offset``: the stream offset of ``data[0]``), up to the first one the
    summary loop of ``records`` would not stand in for; return where that one starts (or the
    incomplete rest). The records are those :meth:`DescriptorRecords.split
    <p2pkit.gnutella.descriptor_records.DescriptorRecords.split>` makes, read."""
    transport, src, dst = records.transport, records.src, records.dst
    frame, time = records.frame, records.time
    limit, names, header = records.max_payload_length, _NAMES, HEADER_AFTER_GUID.unpack_from
    size = len(data)
    while size - pos >= HEADER_LENGTH:
        ptype, _, _, length = header(data, pos + 16)
        end = pos + HEADER_LENGTH + length
        name = names[ptype]
        if end > size or length > limit or name is None:
            break
        descriptor = data[pos:end]
        fields = json_descriptor(descriptor)
        if fields is None:  # the summary loop's steps (its check decides, as before)
            if records._records(data, pos, end, offset, frames, frame, time) != end:
                break
        else:
            frames.append(decoded_record(frame, time, transport, src, dst, PROTOCOL, name,
                                         fields, offset + pos, end - pos, [],
                                         DeferredValue(partial(_value, descriptor)), _SPANS))
        pos = end
    return pos
