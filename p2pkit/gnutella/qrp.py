"""Query Routing Protocol: the keyword hash, route tables, and RESET/PATCH messages.

Spec: QRP (Query Routing for the Gnutella Network 1.0) §"Hashing Details" (keywords are split
on spaces and lower-cased; "one interprets each keyword as a sequence of 32-bit little-endian
numbers [...] and XORs the numbers together", multiplied by 0x4F1BBCDC, "the hash is then bits
31-b+1 through 31 of the product"), Appendix A (the Java reference and its test vectors),
§"Gnutella Protocol Changes" (a RESET gives TABLE_LENGTH and INFINITY; PATCH messages carry
the compressed difference, ENTRY_BITS 4 or 8, in SEQ_NO/SEQ_SIZE chunks; gtk-gnutella
also sends 1- and 2-bit entries between ultrapeers, decoded the same way) and Appendix B
(examples). ultrapeer_qrp § (leaves send tables to ultrapeers, which only forward a query to a
leaf whose table holds every keyword).

>>> qrp_hash("ebcklmen", 13), qrp_hash("3NJA9", 10)
(1062, 581)
>>> table = RouteTable.from_keywords(["test"], table_length=8, infinity=7)
>>> [m.variant for m in table.update_messages(entry_bits=8, compressor=0)]
['reset', 'patch']
>>> table.matches("TEST"), table.matches("qrp")
(True, False)
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterable
from typing import Any

from construct import Container

from p2pkit.errors import LimitExceeded, ProtocolError

__all__ = [
    "MAX_TABLE_LENGTH",
    "RouteTable",
    "RouteTableReceiver",
    "keywords",
    "qrp_hash",
]

PROTOCOL = "gnutella"
#: QRP Appendix A: "A_INT=0x4F1BBCDC", the 32-bit golden ratio.
A_INT = 0x4F1BBCDC
#: Bound on TABLE_LENGTH accepted from a RESET (gtk-gnutella sends 2**16 to 2**22 slots).
MAX_TABLE_LENGTH = 1 << 22
#: Default table: 2**16 slots (LimeWire's and gtk-gnutella's leaf tables), INFINITY 7.
DEFAULT_TABLE_LENGTH = 1 << 16
#: QRP: "A maximum message size of 1KB might be a good choice" for PATCH chunks.
PATCH_CHUNK = 1024


def qrp_hash(keyword: str | bytes, bits: int) -> int:
    """The QRP hash of ``keyword`` (lower-cased, as bytes) into ``bits`` bits.

    >>> qrp_hash("", 13), qrp_hash("eb", 13), qrp_hash("ndflaleme", 16)
    (0, 6791, 45559)
    """
    data = keyword.lower() if isinstance(keyword, bytes) else keyword.lower().encode("utf-8")
    xor = 0
    for i, byte in enumerate(data):
        xor ^= byte << ((i % 4) * 8)
    product = (xor * A_INT) & 0xFFFFFFFF
    return product >> (32 - bits)


def keywords(text: str) -> list[str]:
    """The keywords of a query or file name: lower-cased words of at least two characters.

    QRP §Hashing Details separates keywords by spaces; servents also split file names on
    punctuation (``alpha_second.txt`` -> ``alpha``, ``second``, ``txt``).

    >>> keywords("Bravo Charlie"), keywords("alpha_second_ultra.txt")
    (['bravo', 'charlie'], ['alpha', 'second', 'ultra', 'txt'])
    """
    return [w for w in re.split(r"[\W_]+", text.lower()) if len(w) >= 2]


def _bits(table_length: int) -> int:
    if table_length <= 0 or table_length & (table_length - 1):
        raise ProtocolError(f"table length {table_length} is not a power of two")
    return table_length.bit_length() - 1


class RouteTable:
    """A route table: ``table_length`` slots, each a distance or ``infinity``.

    A leaf's own table has distance 1 for each keyword of its shared files (QRP Appendix B:
    "keywords are always added with a distance of one").
    """

    def __init__(self, table_length: int = DEFAULT_TABLE_LENGTH, infinity: int = 7) -> None:
        self.bits = _bits(table_length)
        self.table_length = table_length
        self.infinity = infinity
        self.slots = bytearray([infinity]) * table_length

    @classmethod
    def from_keywords(cls, words: Iterable[str], *, table_length: int = DEFAULT_TABLE_LENGTH,
                      infinity: int = 7) -> RouteTable:
        table = cls(table_length, infinity)
        for word in words:
            table.slots[qrp_hash(word, table.bits)] = 1
        return table

    def merge(self, other: RouteTable) -> None:
        """Add ``other``'s keywords to this table (ultrapeer_qrp §: an ultrapeer's table towards
        other ultrapeers is its own and its leaves' together), at distance 1.

        Tables of another length are resampled: QRP's hash keeps the top ``bits`` of one
        product, so slot ``j`` of a ``b``-bit table is slot ``j >> (b - bits)`` of a smaller
        one and the ``2**(bits - b)`` slots from ``j << (bits - b)`` of a bigger one.

        >>> mine = RouteTable.from_keywords(["alpha"], table_length=1024)
        >>> mine.merge(RouteTable.from_keywords(["kilo"], table_length=1 << 16))
        >>> mine.matches("kilo"), mine.matches("alpha"), mine.matches("zulu")
        (True, True, False)
        """
        shift = other.bits - self.bits
        slots, infinity = self.slots, other.infinity
        for j, value in enumerate(other.slots):
            if value >= infinity:
                continue
            if shift >= 0:
                slots[j >> shift] = 1
            else:
                start = j << -shift
                slots[start : start + (1 << -shift)] = b"\x01" * (1 << -shift)

    def contains(self, word: str) -> bool:
        """True when ``word`` as a whole (e.g. a ``urn:sha1:`` URN) hits a slot below infinity."""
        return self.slots[qrp_hash(word, self.bits)] < self.infinity

    def matches(self, query: str) -> bool:
        """True when every keyword of ``query`` hits a slot below infinity."""
        words = keywords(query) or [query.lower()]
        return all(self.slots[qrp_hash(w, self.bits)] < self.infinity for w in words)

    def update_messages(self, *, entry_bits: int = 4, compressor: int = 1,
                        chunk: int = PATCH_CHUNK) -> list[Container]:
        """RESET then PATCH payloads (``route_table_update`` fields) from an empty table.

        QRP: "the sender first subtracts the last route table sent (or INFINITY if no table has
        been sent) from the current route table".
        """
        if entry_bits not in (4, 8):
            raise ProtocolError("ENTRY_BITS must be 4 or 8")
        diffs = [value - self.infinity for value in self.slots]
        if entry_bits == 8:
            raw = bytes(d & 0xFF for d in diffs)
        else:
            raw = bytes(((diffs[i] & 0x0F) << 4) | (diffs[i + 1] & 0x0F)
                        for i in range(0, len(diffs), 2))
        data = zlib.compress(raw) if compressor == 1 else raw
        chunks = [data[i : i + chunk] for i in range(0, len(data), chunk)] or [b""]
        if len(chunks) > 255:
            raise ProtocolError("patch needs more than 255 messages")
        messages = [Container(variant="reset", table_length=self.table_length,
                              infinity=self.infinity)]
        for n, part in enumerate(chunks, 1):
            messages.append(Container(variant="patch", seq_no=n, seq_size=len(chunks),
                                      compressor=compressor, entry_bits=entry_bits, data=part))
        return messages


class RouteTableReceiver:
    """An ultrapeer's copy of a neighbour's table, rebuilt from RESET and PATCH messages.

    Until the first complete patch, :meth:`matches` answers True: QRP "a host is encouraged to
    disregard the route table for C and forward all queries along the C until the table has
    been fully updated". Violations raise :class:`ProtocolError` (QRP: "the receiver should
    close the connection").
    """

    def __init__(self, max_table_length: int = MAX_TABLE_LENGTH) -> None:
        self.max_table_length = max_table_length
        self.table: RouteTable | None = None
        self.complete = False
        self._expected = 1
        self._compressed = bytearray()
        self._shape: tuple[int, int, int] | None = None

    def receive(self, message: Any) -> None:
        """Apply one ``route_table_update`` (a parsed descriptor or its payload fields)."""
        if message["variant"] == "reset":
            length = message["table_length"]
            if length > self.max_table_length:
                raise LimitExceeded(f"TABLE_LENGTH {length} above {self.max_table_length}",
                                    protocol=PROTOCOL)
            self.table = RouteTable(length, message["infinity"])
            self.complete = False
            self._expected = 1
            self._compressed.clear()
            return
        if self.table is None:
            raise ProtocolError("PATCH before RESET (QRP: 'A RESET variant must precede')")
        shape = (message["seq_size"], message["compressor"], message["entry_bits"])
        if message["seq_no"] != self._expected or (self._expected > 1 and shape != self._shape):
            raise ProtocolError(f"PATCH {message['seq_no']}/{message['seq_size']} out of "
                                f"sequence (expected {self._expected})")
        if message["entry_bits"] not in (1, 2, 4, 8) or message["compressor"] not in (0, 1):
            raise ProtocolError("unsupported ENTRY_BITS or COMPRESSOR")
        self._shape = shape
        self._compressed += message["data"]
        self._expected += 1
        if message["seq_no"] == message["seq_size"]:
            self._apply(*shape)

    def _apply(self, seq_size: int, compressor: int, entry_bits: int) -> None:
        assert self.table is not None
        table = self.table
        size = table.table_length * entry_bits // 8
        raw = bytes(self._compressed)
        if compressor == 1:
            inflater = zlib.decompressobj()
            try:
                raw = inflater.decompress(raw, size + 1)
            except zlib.error as e:
                raise ProtocolError(f"QRP patch does not inflate: {e}") from None
        if len(raw) != size:
            raise ProtocolError(f"QRP patch of {len(raw)} bytes, table needs {size}")
        slots = table.slots
        per_byte = 8 // entry_bits
        mask = (1 << entry_bits) - 1
        sign = 1 << (entry_bits - 1)
        for i, byte in enumerate(raw):
            if not byte:
                continue
            for k in range(per_byte):  # "001011110000 would be interpreted as [2, -1, 0]"
                entry = (byte >> (8 - entry_bits * (k + 1))) & mask
                if entry:
                    j = i * per_byte + k
                    slots[j] = max(0, slots[j] + (entry - (mask + 1) if entry & sign else entry))
        self._compressed.clear()
        self._expected = 1
        self.complete = True

    def matches(self, query: str) -> bool:
        """Whether a query may be forwarded along this connection."""
        if self.table is None or not self.complete:
            return True
        return self.table.matches(query)

    def contains(self, word: str) -> bool:
        """Whether a query for ``word`` as a whole (a URN) may be forwarded."""
        if self.table is None or not self.complete:
            return True
        return self.table.contains(word)
