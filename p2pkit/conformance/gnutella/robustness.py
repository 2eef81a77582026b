"""Robustness: malformed, oversized, truncated and out-of-range input, and floods.

Whatever the target does with the bad input (ignore it, answer with a Bye, close this
connection), a fresh, well-behaved session afterwards must be served: the runner proves it
after each case. bye §2 names the mistakes a servent disconnects for ("packets deemed too
big (400), too many duplicate messages (401) [...] a protocol desynchronization (501)"); the
MUST every network relies on is that one bad neighbour does not bring a servent down.
"""

from __future__ import annotations

import struct
import zlib

from p2pkit.conformance.case import Computed, Raw, Step, Wire
from p2pkit.conformance.gnutella._common import connect, gn_case, join, ping, query
from p2pkit.conformance.verifiers import Anything

SPEC = "bye §2. The Bye (0x02) Packet"
WRONG = "The User did something wrong, as far as the servent is concerned."
RULE = "gnutella/robustness"


def _header(ctx: object, kind: int, length: int, ttl: int = 1, hops: int = 0) -> bytes:
    return ctx.rng.randbytes(16) + struct.pack("<BBBI", kind, ttl, hops, length)


def _robust(name: str, title: str, data: bytes | Computed, *, handshake: bool = True,
            repeat: int = 1, setup: list[Step] | None = None, role: str = "leaf") -> object:
    opening = setup if setup is not None else (join("a", role=role) if handshake else [])
    steps = [*opening, Step(send=Raw(data) if not isinstance(data, Wire) else data,
                            repeat=repeat, wait=0.3 if repeat > 1 else None,
                            expect=Anything() if repeat == 1 else None)]
    return gn_case(id=f"robustness/{name}", title=title, spec=SPEC, requirement=WRONG,
                   level="MUST", rule=RULE, robustness=True, steps=steps,
                   needs_handshake=handshake)


def _c(fn, label: str) -> Computed:
    return Computed(fn, label)


def _reset(length: int, infinity: int = 7) -> Wire:
    return Wire({"type": "route_table_update", "guid": b"\x02" * 16, "ttl": 1, "hops": 0,
                 "variant": "reset", "table_length": length, "infinity": infinity})


def _patch(seq_no: int, seq_size: int, data: bytes, compressor: int = 1) -> Wire:
    return Wire({"type": "route_table_update", "guid": b"\x03" * 16, "ttl": 1, "hops": 0,
                 "variant": "patch", "seq_no": seq_no, "seq_size": seq_size,
                 "compressor": compressor, "entry_bits": 4, "data": data})


CASES = [
    _robust("not-a-greeting", "a connection that opens with something else than GNUTELLA",
            b"HELLO WORLD 1.0\r\nX: y\r\n\r\n", handshake=False),
    _robust("handshake-without-end", "64 KiB of header lines and no blank line",
            b"GNUTELLA CONNECT/0.6\r\n" + (b"X-Filler: " + b"a" * 100 + b"\r\n") * 640,
            handshake=False),
    _robust("handshake-binary-header", "a header line of NUL and high bytes",
            b"GNUTELLA CONNECT/0.6\r\nX-Ultrapeer: \x00\xff\xfe\r\n\x01\x02: \x80\r\n\r\n",
            handshake=False),
    _robust("handshake-truncated", "half a CONNECT block, then the connection is closed",
            b"GNUTELLA CONNECT/0.6\r\nUser-Agent: trunc", handshake=False),
    _robust("payload-length-4gib", "a descriptor header announcing a 4 GiB payload",
            _c(lambda ctx: _header(ctx, 0x80, 0xFFFFFFFF), "length 0xFFFFFFFF")),
    _robust("payload-length-1mib", "a descriptor header announcing 1 MiB, and 60 KiB of it",
            _c(lambda ctx: _header(ctx, 0x80, 1 << 20) + bytes(60000), "length 1 MiB")),
    _robust("truncated-descriptor", "half a descriptor header",
            _c(lambda ctx: _header(ctx, 0x00, 0)[:11], "11 of 23 header bytes")),
    _robust("unknown-payload-type", "a descriptor of payload type 0x77",
            _c(lambda ctx: _header(ctx, 0x77, 8) + bytes(8), "type 0x77")),
    _robust("pong-too-short", "a pong of 5 bytes (14 needed)",
            _c(lambda ctx: _header(ctx, 0x01, 5) + bytes(5), "a 5-byte pong")),
    _robust("query-unterminated", "a query whose search criteria has no NUL",
            _c(lambda ctx: _header(ctx, 0x80, 12, ttl=2) + b"\x00\x80conformance",
               "no NUL")),
    _robust("push-too-short", "a Push of 10 bytes (26 needed)",
            _c(lambda ctx: _header(ctx, 0x40, 10) + bytes(10), "a 10-byte Push")),
    _robust("ttl-255", "a query with TTL 255 and hops 255 (out of range)",
            query("conformance", ttl=255, hops=255), role="ultrapeer"),
    _robust("random-bytes", "4 KiB of random bytes after the handshake",
            _c(lambda ctx: ctx.rng.randbytes(4096), "random bytes")),
    _robust("bye-wrong-ttl", "a Bye with TTL 5 and hops 3 (bye §4: to be discarded)",
            Wire({"type": "bye", "guid": b"\x04" * 16, "ttl": 5, "hops": 3, "code": 200,
                  "message": "x"})),
    _robust("qrp-table-2gib", "a QRP RESET for a table of 2^31 entries",
            _reset(1 << 31)),
    _robust("qrp-table-not-power-of-two", "a QRP RESET of 1000 entries (a power of 2 is "
            "required)", _reset(1000)),
    _robust("qrp-patch-before-reset", "a QRP PATCH with no RESET before it",
            _patch(1, 1, bytes(16), compressor=0), setup=join("a")[:2]),
    _robust("qrp-patch-bad-zlib", "a QRP PATCH whose zlib data does not inflate",
            _patch(1, 1, b"\x78\x9c" + b"\xff" * 40), setup=[*join("a")[:2], Step(
                send=_reset(1 << 16), source="a")]),
    _robust("qrp-patch-zlib-bomb", "a QRP PATCH inflating to far more than the table",
            _patch(1, 1, zlib.compress(bytes(8 << 20))),
            setup=[*join("a")[:2], Step(send=_reset(1 << 10), source="a")]),
    _robust("ping-flood", "500 TTL 1 pings in a row", ping(ttl=1), repeat=500),
    _robust("query-flood", "300 queries with the same GUID",
            query("conformance flood", ttl=3), repeat=300, role="ultrapeer"),
    _robust("connect-twice", "a second GNUTELLA CONNECT on an established connection",
            Wire({"type": "connect", "version": "0.6",
                  "headers": (("User-Agent", "again"),)})),
    _robust("connect-flood", "30 CONNECT blocks without waiting for the answer",
            b"GNUTELLA CONNECT/0.6\r\nX-Ultrapeer: False\r\n\r\n", handshake=False,
            repeat=30, setup=[connect()]),
]
