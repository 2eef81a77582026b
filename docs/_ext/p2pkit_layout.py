"""The package layout, drawn from the code at build time (``p2pkit-layout`` directive).

Units are p2pkit's top-level modules and packages (BitTorrent's subpackages count as units of
their own). Arrows are imports, read with :mod:`ast` from the source, so the picture on the
architecture page cannot drift from the code: a unit sits one row above the highest unit it
imports, and an arrow that ran upwards would mean an import cycle between units.
"""

from __future__ import annotations

import ast
import html
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Packages whose subpackages are drawn as units of their own.
SPLIT = {"bittorrent"}


@dataclass
class Unit:
    name: str
    lines: int = 0
    modules: int = 0
    summary: str = ""
    imports: set[str] = field(default_factory=set)


def _unit_of(module: str) -> str | None:
    """``p2pkit.bittorrent.peer.session`` -> ``bittorrent.peer``; ``p2pkit.core`` -> ``core``."""
    parts = module.split(".")
    if parts[0] != "p2pkit" or len(parts) < 2:
        return None
    if parts[1] in SPLIT and len(parts) > 2:
        return f"{parts[1]}.{parts[2]}"
    return parts[1]


def _summary(tree: ast.Module) -> str:
    doc = ast.get_docstring(tree) or ""
    return doc.strip().split("\n\n")[0].replace("\n", " ")


def read_layout(package_dir: Path) -> dict[str, Unit]:
    """Every unit of the package at ``package_dir`` with its size and the units it imports."""
    units: dict[str, Unit] = {}
    for path in sorted(package_dir.rglob("*.py")):
        rel = path.relative_to(package_dir.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        module = ".".join(parts)
        unit_name = _unit_of(module) if len(parts) > 1 else None
        if unit_name is None or unit_name == "__main__":
            continue
        if unit_name in SPLIT and len(parts) == 2 and path.name == "__init__.py":
            continue  # the split package's own __init__ is only a docstring
        source = path.read_text(encoding="utf-8")
        tree = ast.parse(source)
        unit = units.setdefault(unit_name, Unit(unit_name))
        unit.lines += source.count("\n")
        unit.modules += 1
        is_head = path.name == "__init__.py" or (len(parts) == 2 and path.suffix == ".py")
        if is_head and not unit.summary:
            unit.summary = _summary(tree)
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            for name in names:
                target = _unit_of(name)
                if target and target != unit_name:
                    unit.imports.add(target)
    for unit in units.values():
        unit.imports &= set(units)
    return units


def layers(units: dict[str, Unit]) -> dict[str, int]:
    """Row of each unit: 0 for units that import no other unit, else one above the highest
    unit they import (cycles, if any, are broken where they are found)."""
    row: dict[str, int] = {}
    visiting: set[str] = set()

    def visit(name: str) -> int:
        if name in row:
            return row[name]
        if name in visiting:
            return 0
        visiting.add(name)
        deps = [visit(d) for d in units[name].imports]
        visiting.discard(name)
        row[name] = 1 + max(deps) if deps else 0
        return row[name]

    for name in sorted(units):
        visit(name)
    return row


def render_svg(units: dict[str, Unit], rows: dict[str, int]) -> str:
    """An SVG picture: one row of boxes per layer, the bottom row imports nothing, arrows
    point from the importer down to what it imports."""
    by_row: dict[int, list[str]] = {}
    for name, r in rows.items():
        by_row.setdefault(r, []).append(name)
    top = max(by_row) if by_row else 0
    box_h, gap_y, gap_x, char_w = 34, 46, 14, 7.4
    widths = {n: max(70, int(len(n) * char_w) + 24) for n in units}
    row_w = {r: sum(widths[n] for n in ns) + gap_x * (len(ns) - 1) for r, ns in by_row.items()}
    width = int(max(row_w.values(), default=200)) + 40
    height = (top + 1) * (box_h + gap_y) + 20
    pos: dict[str, tuple[float, float]] = {}
    for r, names in by_row.items():
        names.sort(key=lambda n: (-len(units[n].imports), n))
        x = (width - row_w[r]) / 2
        y = 10 + (top - r) * (box_h + gap_y)
        for n in names:
            pos[n] = (x, y)
            x += widths[n] + gap_x
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12" '
           'role="img" aria-label="p2pkit package layout">',
           '<defs><marker id="arrow" markerWidth="8" markerHeight="8" refX="7" refY="4" '
           'orient="auto"><path d="M0,0 L8,4 L0,8 z" fill="#888"/></marker></defs>']
    for name in sorted(units):
        x, y = pos[name]
        for dep in sorted(units[name].imports):
            dx, dy = pos[dep]
            x1, y1 = x + widths[name] / 2, y + box_h
            x2, y2 = dx + widths[dep] / 2, dy
            colour = "#c0392b" if rows[dep] >= rows[name] else "#999"
            faint = ' stroke-opacity="0.3"' if rows[dep] == 0 else ""  # the ground floor
            out.append(f'<line x1="{x1:.0f}" y1="{y1:.0f}" x2="{x2:.0f}" y2="{y2:.0f}" '
                       f'stroke="{colour}"{faint} stroke-width="1" marker-end="url(#arrow)"/>')
    for name in sorted(units):
        x, y = pos[name]
        u = units[name]
        out.append(f'<g><title>{html.escape(u.summary)}</title>'
                   f'<rect x="{x:.0f}" y="{y:.0f}" width="{widths[name]}" height="{box_h}" '
                   'rx="5" fill="#eef3f8" stroke="#4a6785"/>'
                   f'<text x="{x + widths[name] / 2:.0f}" y="{y + 15:.0f}" text-anchor="middle">'
                   f'{html.escape(name)}</text>'
                   f'<text x="{x + widths[name] / 2:.0f}" y="{y + 28:.0f}" text-anchor="middle" '
                   f'font-size="9" fill="#555">{u.lines} lines</text></g>')
    out.append("</svg>")
    return "\n".join(out)


def setup(app: Any) -> dict[str, Any]:
    from docutils import nodes
    from docutils.parsers.rst import Directive

    class LayoutDirective(Directive):
        """``p2pkit-layout``: the picture and a table of every unit, from the code."""

        has_content = False

        def run(self) -> list[Any]:
            package = Path(__file__).resolve().parents[2] / "p2pkit"
            units = read_layout(package)
            rows = layers(units)
            svg = nodes.raw("", render_svg(units, rows), format="html")
            table = nodes.table()
            group = nodes.tgroup(cols=4)
            table += group
            for w in (18, 8, 30, 44):
                group += nodes.colspec(colwidth=w)
            head = nodes.thead()
            group += head
            body = nodes.tbody()
            group += body

            def row(cells: list[str], into: Any) -> None:
                r = nodes.row()
                for c in cells:
                    entry = nodes.entry()
                    entry += nodes.paragraph(text=c)
                    r += entry
                into += r

            row(["unit", "lines", "imports", "what it is"], head)
            for name in sorted(units, key=lambda n: (rows[n], n)):
                u = units[name]
                row([f"p2pkit.{name}", str(u.lines), ", ".join(sorted(u.imports)) or "—",
                     u.summary], body)
            return [svg, table]

    app.add_directive("p2pkit-layout", LayoutDirective)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
