"""Where a ``dissect -V`` or ``--json`` run of a Gnutella capture spends its CPU, step by step,
in one process (records held, the garbage collector off, CPU seconds, fastest of ``R``
rounds):

    python benchmarks/gnutella_view_costs.py CAPTURE [--rounds R]

Steps: making the records (the summary run's work); decoding every deferred Gnutella
descriptor (``p2pkit.gnutella.deferred._decode``), and its two parts, the fast parse into
Containers (``fast_descriptor``) and the JSON conversion (``json_fields``), and the parse
straight to JSON that replaces both (``json_descriptor``); per descriptor type, parse,
conversion and straight to JSON in µs; drawing every record's ``-V`` tree (``render_tree``) and
JSON line (``json_line``). Run it with ``PYTHONPATH`` naming each tree to compare two.
"""

from __future__ import annotations

import argparse
import gc
import time
from collections import defaultdict
from typing import Any

from cpu_timer import fastest  # (benchmarks/, the directory the script runs in)

from p2pkit.capture.dissect import Dissection
from p2pkit.capture.json_lines import json_line
from p2pkit.capture.record import json_fields
from p2pkit.capture.render import render_tree
from p2pkit.gnutella.deferred import _decode
from p2pkit.gnutella.descriptor_fast_path import fast_descriptor
from p2pkit.gnutella.descriptor_json import json_descriptor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("capture")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    gc.disable()
    start = time.process_time()
    dissection = Dissection(args.capture)
    records = list(dissection)
    made = time.process_time() - start
    # the descriptors the records hold (a deferred record's decode is partial(_decode, ...))
    descriptors = [r._decode.args for r in records
                   if getattr(getattr(r, "_decode", None), "func", None) is _decode]
    print(f"records made: {made:.2f} s ({len(records)} records, "
          f"{len(descriptors)} deferred descriptors)")
    print(f"decode all: {fastest(lambda: [_decode(*a) for a in descriptors], args.rounds):.2f}")
    parsed = [fast_descriptor(a[0]) for a in descriptors]
    kept = [(a, p) for a, p in zip(descriptors, parsed) if p is not None]
    print(f"  fast parse: "
          f"{fastest(lambda: [fast_descriptor(a[0]) for a, _ in kept], args.rounds):.2f}")
    print(f"  JSON conversion: {fastest(lambda: [json_fields(p) for _, p in kept], args.rounds):.2f}")
    print(f"  straight to JSON (json_descriptor): "
          f"{fastest(lambda: [json_descriptor(a[0]) for a, _ in kept], args.rounds):.2f}")
    by_type: dict[str, list[Any]] = defaultdict(list)
    for a, p in kept:
        by_type[p["type"]].append((a, p))
    for name, items in sorted(by_type.items(), key=lambda item: -len(item[1])):
        n = len(items)
        parse = fastest(lambda items=items: [fast_descriptor(a[0]) for a, _ in items],
                        args.rounds)
        convert = fastest(lambda items=items: [json_fields(p) for _, p in items], args.rounds)
        straight = fastest(lambda items=items: [json_descriptor(a[0]) for a, _ in items],
                           args.rounds)
        print(f"    {name:20} {n:7} parse {parse / n * 1e6:5.2f} µs  "
              f"JSON {convert / n * 1e6:5.2f} µs  straight to JSON "
              f"{straight / n * 1e6:5.2f} µs")
    for r in records:
        _ = r.fields  # decoded once, before the renderers are timed
    first = dissection.first_time or 0.0
    print(f"-V trees: {fastest(lambda: [render_tree(r, first) for r in records], args.rounds):.2f}")
    print(f"JSON lines: {fastest(lambda: [json_line(r) for r in records], args.rounds):.2f}")


if __name__ == "__main__":
    main()
