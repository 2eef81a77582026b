"""How much a ``dissect -V`` run could save by drawing a record's tree straight from its decoded
value (construct Containers) instead of from its JSON fields (conversion and drawing fused in
one generated function per shape), measured as a bound, in one process (records held, the
garbage collector off, CPU seconds, fastest of ``R`` rounds):

    python benchmarks/tree_fusion_bound.py CAPTURE [--rounds R]

Today a record's tree is its decoded value converted to JSON (``json_value``, compiled per
shape, ``p2pkit.capture.json_shapes``) then drawn (``p2pkit.capture.tree_shapes``). A fused
function would still draw every line, and would still turn every leaf into its text (bytes to
hex, addresses to dotted quads, text checked for ASCII); what it would save is the rest of the
conversion: the dictionaries and lists built and walked once more. So the saving is at most
``conversion - leaves``, and the fused run costs at least ``drawing + leaves``. Steps timed
over every decoded message of the capture whose value is a mapping: the conversion
(``json_value``), drawing the converted fields (``fields_text``, spans included), and the leaf
conversions alone (every bytes value's ``hex()``, every IPv4 address's ``inet_ntoa``, every
text's ``isascii()``, in one flat loop).
"""

from __future__ import annotations

import argparse
import gc
import ipaddress
import socket
from collections.abc import Mapping
from typing import Any

from cpu_timer import fastest  # (benchmarks/, the directory the script runs in)

import p2pkit.capture.render as render
from p2pkit.capture.dissect import Dissection
from p2pkit.capture.record import json_value
from p2pkit.capture.spans import LazySpans


def leaves(value: Any, out: list[Any]) -> None:
    """The leaves of a decoded value (hidden ``_`` keys left out, as the conversion does)."""
    if isinstance(value, Mapping):
        for k, v in value.items():
            if not (isinstance(k, str) and k.startswith("_")):
                leaves(v, out)
    elif isinstance(value, (list, tuple)):
        for v in value:
            leaves(v, out)
    else:
        out.append(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("capture")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    gc.disable()
    dissection = Dissection(args.capture)
    records = [r for r in dissection if isinstance(r.value, Mapping)]
    values = [r.value for r in records]
    tops = []
    for r in records:
        spans = r.spans
        tops.append((r.fields, spans.resolved() if type(spans) is LazySpans else spans,
                     r.offset or 0))
    found: list[Any] = []
    for v in values:
        leaves(v, found)
    blobs = [x for x in found if type(x) is bytes]
    addresses = [x.packed for x in found if type(x) is ipaddress.IPv4Address]
    texts = [x for x in found if type(x) is str]
    ntoa = socket.inet_ntoa
    draw = render._SHAPES.fields_text
    [draw(*t) for t in tops]  # shapes compiled before the timings
    conversion = fastest(lambda: [json_value(v) for v in values], args.rounds)
    drawing = fastest(lambda: [draw(*t) for t in tops], args.rounds)
    leaf = fastest(lambda: ([b.hex() for b in blobs], [ntoa(a) for a in addresses],
                            [s.isascii() for s in texts]), args.rounds)
    print(f"{len(records)} records with a decoded mapping; {len(blobs)} bytes values, "
          f"{len(addresses)} IPv4 addresses, {len(texts)} texts")
    print(f"conversion (json_value): {conversion:.2f} s")
    print(f"drawing the converted fields: {drawing:.2f} s")
    print(f"leaf conversions alone: {leaf:.2f} s")
    print(f"fused: at least {drawing + leaf:.2f} s against {conversion + drawing:.2f} s today "
          f"(saves at most {conversion - leaf:.2f} s)")


if __name__ == "__main__":
    main()
