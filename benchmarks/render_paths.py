"""CPU microseconds per record of the field tree, the JSON line and the JSON conversion, generic
and compiled per shape, in one process (records decoded first, the garbage collector off):

    python benchmarks/render_paths.py CAPTURE [--records N] [--rounds R]

Generic: ``tree_text``/``record_tree``'s text, ``json.dumps(record.to_json())``, json_value's
mappings item by item (``json_mapping``); compiled: ``p2pkit.capture.tree_shapes``,
``p2pkit.capture.json_lines``, ``p2pkit.capture.json_shapes``. Each figure is the fastest of
``R`` rounds; the outputs of both are compared.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import time
from collections.abc import Callable

import p2pkit.capture.record as record_module
import p2pkit.capture.render as render
from p2pkit.capture.dissect import Dissection
from p2pkit.capture.json_lines import json_line, json_line_generic
from p2pkit.capture.record import json_fields, json_mapping
from p2pkit.capture.tree_shapes import ShapeTreeRenderer


class _GenericTrees(ShapeTreeRenderer):
    """Every record's fields by the generic renderer (as render_tree drew them before)."""

    def fields_text(self, fields, spans, base):  # type: ignore[override]
        get = spans.get
        out: list[str] = []
        for key, value in fields.items():
            key = str(key)
            span = get(key)
            first = len(out)
            render.tree_text(value, 1, key, out)
            if span is not None:
                out[first] = f"    [{base + span[0]}:{base + span[1]}] " + out[first].lstrip()
        return "\n".join(out)


class _GenericMappings:
    @staticmethod
    def convert(value, summarised):
        return json_mapping(value, summarised)


def _fastest(rounds: int, run: Callable[[], list]) -> tuple[float, list]:
    best, out = float("inf"), []
    for _ in range(rounds):
        start = time.process_time()
        out = run()
        best = min(best, time.process_time() - start)
    return best, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("capture")
    parser.add_argument("--records", type=int, default=60000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    dissection = Dissection(args.capture)
    records = list(itertools.islice(dissection, args.records))
    for r in records:
        _ = r.fields  # decoded now, not in the timings
    values = [r.value for r in records if isinstance(r.value, dict)]
    start = dissection.first_time or 0.0
    gc.collect()
    gc.freeze()
    gc.disable()
    compiled_trees, compiled_mappings = render._SHAPES, record_module._SHAPES
    generic_trees = _GenericTrees(render.tree_text)
    rows = []
    for name, count, generic, compiled in (
        ("field tree (-V)", len(records),
         lambda: (setattr(render, "_SHAPES", generic_trees),
                  [render.render_tree(r, start) for r in records])[1],
         lambda: (setattr(render, "_SHAPES", compiled_trees),
                  [render.render_tree(r, start) for r in records])[1]),
        ("JSON line (--json)", len(records),
         lambda: [json_line_generic(r) for r in records],
         lambda: [json_line(r) for r in records]),
        ("JSON conversion (both)", len(values),
         lambda: (setattr(record_module, "_SHAPES", _GenericMappings()),
                  [json_fields(v) for v in values])[1],
         lambda: (setattr(record_module, "_SHAPES", compiled_mappings),
                  [json_fields(v) for v in values])[1]),
    ):
        compiled()  # the shapes compiled before the timings
        g, g_out = _fastest(args.rounds, generic)
        c, c_out = _fastest(args.rounds, compiled)
        assert g_out == c_out, name
        rows.append(f"| {name} | {count} | {g / count * 1e6:.2f} | {c / count * 1e6:.2f} "
                    f"| {c / g:.2f} |")
    print("| path | records | generic, µs each | compiled, µs each | compiled / generic |")
    print("|---|---:|---:|---:|---:|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
