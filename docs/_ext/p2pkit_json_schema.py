"""``p2pkit-json-schema PATH``: a JSON Schema file rendered as one table per definition
(field, type, required, meaning), read when the docs are built, so the page cannot drift from
the schema the package ships (and the tests validate real reports against)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def type_text(spec: dict[str, Any]) -> str:
    """A property's type in words: ``string``, ``integer | null``, ``→ case``, ``one of …``."""
    if "$ref" in spec:
        return "→ " + spec["$ref"].rpartition("/")[2]
    if "const" in spec:
        return json.dumps(spec["const"])
    if "enum" in spec:
        return " | ".join(json.dumps(v) for v in spec["enum"])
    if "oneOf" in spec:
        return " | ".join(type_text(s) for s in spec["oneOf"])
    kind = spec.get("type", "any")
    text = " | ".join(kind) if isinstance(kind, list) else kind
    if kind == "array" and "items" in spec:
        text = f"array of {type_text(spec['items'])}"
    if kind == "object" and isinstance(spec.get("additionalProperties"), dict):
        text = f"object of {type_text(spec['additionalProperties'])}"
    if "pattern" in spec:
        text += f" matching {spec['pattern']}"
    return text


def rows(definition: dict[str, Any]) -> list[list[str]]:
    """``[field, type, required, description]`` per property of one object definition."""
    required = set(definition.get("required", ()))
    return [[name, type_text(spec), "yes" if name in required else "",
             spec.get("description", "")]
            for name, spec in definition.get("properties", {}).items()]


def setup(app: Any) -> dict[str, Any]:
    from docutils import nodes
    from docutils.parsers.rst import Directive

    class JsonSchemaDirective(Directive):
        """``p2pkit-json-schema PATH`` (relative to the repository root)."""

        required_arguments = 1
        has_content = False

        def run(self) -> list[Any]:
            root = Path(__file__).resolve().parents[2]
            path = root / self.arguments[0]
            self.state.document.settings.record_dependencies.add(str(path))
            schema = json.loads(path.read_text(encoding="utf-8"))
            out: list[Any] = []
            for name, definition in schema.get("$defs", {}).items():
                if "properties" not in definition:
                    continue
                section = nodes.rubric(text=name)
                out.append(section)
                if definition.get("description"):
                    out.append(nodes.paragraph(text=definition["description"]))
                table = nodes.table()
                group = nodes.tgroup(cols=4)
                table += group
                for w in (16, 26, 8, 50):
                    group += nodes.colspec(colwidth=w)
                head = nodes.thead()
                body = nodes.tbody()
                group += head
                group += body
                for cells, into in [(["field", "type", "required", "meaning"], head),
                                    *((r, body) for r in rows(definition))]:
                    row = nodes.row()
                    for i, text in enumerate(cells):
                        entry = nodes.entry()
                        entry += (nodes.paragraph("", "", nodes.literal(text=text))
                                  if i == 0 and into is body else nodes.paragraph(text=text))
                        row += entry
                    into += row
                out.append(table)
            return out

    app.add_directive("p2pkit-json-schema", JsonSchemaDirective)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
