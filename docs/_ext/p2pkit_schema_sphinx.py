"""Sphinx directives rendering the rows of ``p2pkit_schema_docs`` as tables.

```` ```{p2pkit-schema} p2pkit.bittorrent.wire.messages.PeerMessage ``` ```` renders a construct (or an
``{id: (name, body)}`` message table): a table for the frame, then per message its name, id,
the ``#:`` comment above the module attribute that holds its body (the spec quote) and a table
of its fields. Options: ``:no-frame:``, ``:messages: a, b``.

```` ```{p2pkit-items} p2pkit.dht.krpc.ARGUMENTS ``` ```` renders a data table (a dict of
bencoded items, a dict of names, an ``Enum``) with the comment beside each entry.

```` ```{p2pkit-protocols} ``` ```` renders one row per protocol of :mod:`p2pkit.registry`
(name, title, specs, transports, the ``--decode-as`` form), and
```` ```{p2pkit-protocol} bt-utp ``` ```` the tables of every schema that protocol's descriptor
lists (no argument: every registered protocol in turn). Neither names a protocol: both loop
over the registry.

A target that cannot be imported or described is a Sphinx warning (an error under ``-W``),
never a crash of the build.
"""

from __future__ import annotations

import dataclasses
import importlib
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import construct
from docutils import nodes
from docutils.parsers.rst import directives
from p2pkit_schema_docs import (
    Message,
    Row,
    _class_doc,
    _is_message_table,
    _TableView,
    describe_items,
    describe_messages,
    protocol_reference,
    protocol_rows,
    resolve,
)
from p2pkit_wire_examples import first_examples, hexdump, layout_svg
from sphinx.pycode import ModuleAnalyzer
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

logger = logging.getLogger(__name__)


def _attribute_docs(module_name: str) -> dict[str, str]:
    """``#:`` comments of a module's attributes, as Sphinx's autodoc reads them."""
    try:
        found = ModuleAnalyzer.for_module(module_name).find_attr_docs()
    except Exception:  # noqa: BLE001 - a missing comment must never fail the build
        return {}
    return {name: " ".join(line.strip() for line in lines if line.strip())
            for (scope, name), lines in found.items() if scope == ""}


def _message_doc(message: Message, module: Any, docs: Mapping[str, str]) -> str:
    """The ``#:`` comment of the module attribute holding the message body."""
    camel = "".join(part.capitalize() for part in re.split(r"[_\W]+", message.name) if part)
    if camel in docs and getattr(module, camel, None) is not None:
        return docs[camel]
    for attr, value in vars(module).items():
        if value is message.body and attr in docs:
            return docs[attr]
    return ""


class SchemaDirective(SphinxDirective):
    """```` ```{p2pkit-schema} p2pkit.bittorrent.wire.messages.PeerMessage ``` ````"""

    required_arguments = 1
    has_content = False
    option_spec: dict[str, Callable[[str], Any]] = {
        "no-frame": directives.flag,
        "messages": directives.unchanged,
        "examples": directives.unchanged,
    }

    def run(self) -> list[Any]:
        return _schema_nodes(self.arguments[0], self.options, self.get_location())


def _schema_nodes(target: str, options: Mapping[str, Any], location: Any) -> list[Any]:
    """The rubrics, paragraphs and tables of one construct (``p2pkit-schema``)."""
    try:
        con = resolve(target)
    except Exception as e:  # noqa: BLE001 - report, never crash the build
        logger.warning("p2pkit-schema: cannot import %s: %s", target, e, location=location)
        return []
    if not isinstance(con, construct.Construct) and not _is_message_table(_TableView(con)):
        logger.warning("p2pkit-schema: %s is a %s, not a construct", target,
                       type(con).__name__, location=location)
        return []
    module = _module_of(target)
    docs = _attribute_docs(module.__name__) if module is not None else {}
    wanted = None
    if "messages" in options:
        wanted = {m.strip() for m in options["messages"].split(",") if m.strip()}
    attr = target.rpartition(".")[2]
    try:
        messages = describe_messages(con)
    except Exception as e:  # noqa: BLE001 - report, never crash the build
        logger.warning("p2pkit-schema: cannot describe %s: %s", target, e, location=location)
        return []
    examples: Mapping[str, Any] | None = None
    if options.get("examples"):
        try:
            examples = first_examples(options["examples"].strip())
        except Exception as e:  # noqa: BLE001 - report, never crash the build
            logger.warning("p2pkit-schema: cannot read the captures: %s", e, location=location)
    if examples is not None and isinstance(con, construct.Construct):
        examples = {name: [e for e in found if _parses_as(con, e.data, name)]
                    for name, found in examples.items()}
    elif examples is not None:  # a table of bodies: the record holds its frame too
        examples = {name: [dataclasses.replace(e, note="the whole message: its frame, then "
                                               "this body") for e in found]
                    for name, found in examples.items()}
    return _message_nodes(attr, messages, module, docs, wanted, "no-frame" in options,
                          examples)


def _parses_as(con: construct.Construct, data: bytes, name: str) -> bool:
    """Whether ``con`` parses ``data`` whole (as message ``name`` when it has a ``type``)."""
    try:
        value = con.parse(data)
    except Exception:  # noqa: BLE001 - not an instance of this schema
        return False
    kind = value.get("type") if isinstance(value, dict) else None
    return kind is None or kind == name


def _layout(rows: Iterable[Row]) -> list[tuple[str, int | None]] | None:
    """(name, size) of each top-level field, ``None`` as the size of a variable tail; None
    when a variable field comes before a fixed one (not a fixed layout)."""
    fields: list[tuple[str, int | None]] = []
    for row in rows:
        if row.depth:
            continue
        name = row.field
        if name == "(constant)" and row.values.startswith("= "):
            name = row.values[2:]
        if not row.size.isdigit():
            fields.append((name, None))
        elif fields and fields[-1][1] is None:
            return None
        elif int(row.size):
            fields.append((name, int(row.size)))
    if not fields or fields[0][1] is None:
        return None
    tail = [name for name, size in fields if size is None]
    fixed = [(name, size) for name, size in fields if size is not None]
    return fixed + ([(", ".join(tail), None)] if tail else [])


def _example_nodes(name: str, frame_rows: list[Row], rows: list[Row],
                   examples: Mapping[str, Any] | None) -> list[Any]:
    """The byte-layout diagram of a fixed-layout message, then its first captured bytes."""
    result: list[Any] = []
    own = {row.field for row in rows}
    frame = [row for row in frame_rows if row.field not in own]
    layout = _layout([*frame, *rows]) if rows != frame_rows else _layout(rows)
    if layout is not None:
        result.append(nodes.raw("", layout_svg(layout), format="html",
                                classes=["p2pkit-layout"]))
    example = next(iter((examples or {}).get(name, ())), None)
    if example is not None:
        caption = nodes.paragraph(classes=["p2pkit-example"])
        caption += nodes.Text("Captured: ")
        caption += nodes.literal(text=example.capture)
        caption += nodes.Text(f", frame {example.frame}, {example.src} → {example.dst} "
                              f"({len(example.data)} bytes"
                              + (f"; {example.note}" if example.note else "") + "):")
        result.append(caption)
        result.append(nodes.literal_block(text=hexdump(example.data)))
    return result


def _message_nodes(attr: str, messages: list[Message], module: Any, docs: Mapping[str, str],
                   wanted: set[str] | None, no_frame: bool,
                   examples: Mapping[str, Any] | None = None) -> list[Any]:
    has_messages = any(m.name for m in messages)
    frame_rows = next((list(m.rows) for m in messages if not m.name), [])
    result: list[Any] = []
    if docs.get(attr):
        result.append(_paragraph(docs[attr]))
    for message in messages:
        if not message.name:
            if no_frame or not message.rows:
                continue
            result.append(nodes.rubric(text=f"{attr}: frame" if has_messages else attr))
            result.append(_table(message.rows))
            if not has_messages and examples is not None:
                snake = re.sub(r"(?<!^)(?=[A-Z])", "_", attr).lower()
                if snake not in examples:  # a frame-only schema: its earliest message
                    found = sorted((e for candidates in examples.values() for e in candidates),
                                   key=lambda e: (e.capture, e.frame))
                    examples = {snake: found[:1]}
                result += _example_nodes(snake, list(message.rows), list(message.rows),
                                         examples)
            continue
        if wanted is not None and message.name not in wanted:
            continue
        rubric = nodes.rubric()
        rubric += nodes.literal(text=message.name)
        if message.id:
            rubric += nodes.Text(f" (id {_id_text(message.id)})")
        result.append(rubric)
        text = _message_doc(message, module, docs) if module is not None else ""
        if text:
            result.append(_paragraph(text))
        if [r.field for r in message.rows] == ["(no payload)"]:
            result.append(nodes.paragraph(text="No payload."))
        else:
            result.append(_table(message.rows))
        if examples is not None:
            result += _example_nodes(message.name, frame_rows, list(message.rows), examples)
    return result


class ProtocolsDirective(SphinxDirective):
    """```` ```{p2pkit-protocols} ``` ````: the registered protocols, one row each."""

    has_content = False

    def run(self) -> list[Any]:
        try:
            rows = protocol_rows()
        except Exception as e:  # noqa: BLE001 - report, never crash the build
            logger.warning("p2pkit-protocols: %s", e, location=self.get_location())
            return []
        return [_grid(("Protocol", "Title", "Specs", "Transport", "--decode-as"),
                      (14, 26, 26, 10, 26), rows)]


class ProtocolDirective(SphinxDirective):
    """```` ```{p2pkit-protocol} NAME ``` ````: the tables of a registered protocol's schemas
    (every registered protocol when no name is given)."""

    optional_arguments = 1
    has_content = False

    def run(self) -> list[Any]:
        from p2pkit import registry

        chosen = [self.arguments[0]] if self.arguments else list(registry.names())
        result: list[Any] = []
        for name in chosen:
            try:
                descriptor = registry.get(name)
                references = protocol_reference(descriptor)
            except Exception as e:  # noqa: BLE001 - report, never crash the build
                logger.warning("p2pkit-protocol: cannot document %s: %s", name, e,
                               location=self.get_location())
                continue
            if not self.arguments:
                heading = nodes.rubric(classes=["p2pkit-protocol"])
                heading += nodes.literal(text=descriptor.name)
                heading += nodes.Text(f": {descriptor.title}")
                result.append(heading)
            if descriptor.specs:
                result.append(nodes.paragraph(text="Specified in " + ", ".join(descriptor.specs)
                                              + "."))
            for ref in references:
                module = _module_of(ref.target)
                docs = _attribute_docs(module.__name__) if module is not None else {}
                attr = ref.target.rpartition(".")[2]
                if ref.is_items:
                    result.append(nodes.rubric(text=attr))
                    if docs.get(attr):
                        result.append(_paragraph(docs[attr]))
                    result.append(_table(ref.rows, items=True))
                else:
                    result += _message_nodes(attr, ref.messages, module, docs, None, False)
        return result


class ItemsDirective(SphinxDirective):
    """```` ```{p2pkit-items} p2pkit.dht.krpc.ARGUMENTS ``` ````"""

    required_arguments = 1
    has_content = False

    def run(self) -> list[Any]:
        target = self.arguments[0]
        try:
            table = resolve(target)
            rows = describe_items(table, _module_of(target))
        except Exception as e:  # noqa: BLE001 - report, never crash the build
            logger.warning("p2pkit-items: cannot document %s: %s", target, e,
                           location=self.get_location())
            return []
        module = _module_of(target)
        docs = _attribute_docs(module.__name__) if module is not None else {}
        attr = target.rpartition(".")[2]
        result: list[Any] = []
        text = docs.get(attr) or (_class_doc(table) if isinstance(table, type) else "")
        if text:
            result.append(_paragraph(text))
        result.append(_table(rows, items=True))
        return result


class TransitionsDirective(SphinxDirective):
    """```` ```{p2pkit-transitions} p2pkit.bittorrent.peer.connection_state.TRANSITIONS ``` ````

    A state machine's transitions table (state -> event -> next state), drawn from the dict
    the code runs on: one row per (state, event), "refused" where the table says ``None``.
    """

    required_arguments = 1
    has_content = False

    def run(self) -> list[Any]:
        target = self.arguments[0]
        try:
            table = resolve(target)
            rows = [(state, "any other message" if event == "*" else event,
                     target_state or "refused (protocol error)")
                    for state, row in table.items() for event, target_state in row.items()]
        except Exception as e:  # noqa: BLE001 - report, never crash the build
            logger.warning("p2pkit-transitions: cannot document %s: %s", target, e,
                           location=self.get_location())
            return []
        return [_grid(("State", "Event", "Next state"), (24, 24, 28), rows)]


def _id_text(mid: str) -> str:
    """``6``, ``13, 0x0d``, ``128, 0x80``: specs write ids of two digits and more in hex."""
    return f"{mid}, {int(mid):#04x}" if mid.isdigit() and int(mid) >= 10 else mid


def _paragraph(text: str) -> Any:
    """A paragraph from a ``#:`` comment: ``code`` and :role:`x` as literals, the rest as text."""
    paragraph = nodes.paragraph()
    for i, part in enumerate(re.split(r"(``[^`]+``|:\w+:`~?[^`]+`)", text)):
        if i % 2:
            paragraph += nodes.literal(text=re.sub(r"^:\w+:`~?|`+", "", part))
        elif part:
            paragraph += nodes.Text(part)
    return paragraph


def _module_of(target: str) -> Any:
    name = target
    while name:
        name = name.rpartition(".")[0]
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    return None


HEADERS = ("Field", "Wire type", "Size (bytes)", "Values", "Doc")
ITEM_HEADERS = ("Key", "Type", "Values", "Spec")


def _table(rows: Iterable[Row], items: bool = False) -> Any:
    headers = ITEM_HEADERS if items else HEADERS
    widths = (18, 24, 24, 34) if items else (18, 24, 8, 30, 20)
    cells = []
    for row in rows:
        field_name = "\u00a0\u00a0" * row.depth + row.field
        cells.append((field_name, row.type, row.values, row.doc) if items else (
            field_name, row.type, row.size, row.values, row.doc))
    return _grid(headers, widths, cells)


def _grid(headers: tuple[str, ...], widths: tuple[int, ...],
          rows: Iterable[Iterable[str]]) -> Any:
    """A docutils table: a header row, then ``rows`` with their first cell as a literal."""
    table = nodes.table(classes=["p2pkit-schema"])
    group = nodes.tgroup(cols=len(headers))
    table += group
    for width in widths:
        group += nodes.colspec(colwidth=width)
    head = nodes.thead()
    group += head
    head += _table_row(headers, literal_first=False)
    body = nodes.tbody()
    group += body
    for cells in rows:
        body += _table_row(cells, literal_first=True)
    return table


def _table_row(cells: Iterable[str], literal_first: bool) -> Any:
    tr = nodes.row()
    for i, text in enumerate(cells):
        entry = nodes.entry()
        paragraph = nodes.paragraph()
        if i == 0 and literal_first:
            paragraph += nodes.literal(text=text)
        else:
            paragraph += nodes.Text(text)
        entry += paragraph
        tr += entry
    return tr


def setup(app: Any) -> dict[str, Any]:
    """Register the ``p2pkit-schema``, ``p2pkit-items``, ``p2pkit-transitions``,
    ``p2pkit-protocols`` and ``p2pkit-protocol`` directives."""
    app.add_directive("p2pkit-schema", SchemaDirective)
    app.add_directive("p2pkit-items", ItemsDirective)
    app.add_directive("p2pkit-transitions", TransitionsDirective)
    app.add_directive("p2pkit-protocols", ProtocolsDirective)
    app.add_directive("p2pkit-protocol", ProtocolDirective)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
