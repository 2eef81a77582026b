"""The CLI reference, generated from the click command tree of :mod:`p2pkit.cli`.

```` ```{p2pkit-cli} ``` ```` walks ``p2pkit`` and every group below it and renders, per
command, its full name, its help text and a table of its parameters (name and flags, kind,
default, help). :func:`walk` is the pure part (tests call it without Sphinx).
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import click
from docutils import nodes
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ParamDoc:
    """One option or argument of a command."""

    name: str
    kind: str
    default: str
    help: str


@dataclass(frozen=True)
class CommandDoc:
    """One command (or group) of the ``p2pkit`` tree."""

    path: str
    usage: str
    help: str
    params: tuple[ParamDoc, ...]
    is_group: bool


def _default(param: click.Parameter) -> str:
    if isinstance(param, click.Option) and (param.is_flag and not param.default):
        return ""
    default = param.default
    if type(default).__name__ == "Sentinel" or default is None or callable(default) or default == () or param.required:
        return ""
    if isinstance(default, (list, tuple)):
        return ", ".join(str(d) for d in default)
    return str(default)


def _metavar(param: click.Parameter, ctx: click.Context) -> str:
    try:
        return param.make_metavar(ctx)  # click >= 8.2
    except TypeError:
        return param.make_metavar()  # type: ignore[call-arg]


def _param(param: click.Parameter, ctx: click.Context) -> ParamDoc:
    if isinstance(param, click.Option):
        name = ", ".join(param.opts + param.secondary_opts)
        kind = "flag" if param.is_flag else _metavar(param, ctx)
        text = param.help or ""
    else:
        name = param.human_readable_name
        kind = "argument" + ("" if param.required else " (optional)")
        text = ""
    if param.multiple or getattr(param, "nargs", 1) == -1:
        kind += " (repeatable)"
    return ParamDoc(name, kind, _default(param), " ".join(text.split()))


def walk(command: click.Command | None = None, path: str = "p2pkit",
         parent: click.Context | None = None) -> Iterator[CommandDoc]:
    """Every command of the tree, depth first, groups before their subcommands."""
    if command is None:
        from p2pkit.cli import cli as command
    ctx = click.Context(command, info_name=path.rpartition(" ")[2], parent=parent)
    params = tuple(_param(p, ctx) for p in command.get_params(ctx)
                   if not getattr(p, "hidden", False))
    usage = " ".join([path, *command.collect_usage_pieces(ctx)])
    is_group = isinstance(command, click.Group)
    yield CommandDoc(path, usage, inspect.cleandoc(command.help or ""), params, is_group)
    if is_group:
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is not None and not sub.hidden:
                yield from walk(sub, f"{path} {name}", ctx)


def _help_nodes(text: str) -> list[Any]:
    """Click help text: paragraphs separated by blank lines; ``\\b`` blocks kept verbatim."""
    result: list[Any] = []
    for block in text.split("\n\n"):
        block = block.strip("\n")
        if not block.strip():
            continue
        if block.lstrip().startswith("\b"):
            result.append(nodes.literal_block(text=block.replace("\b", "").strip("\n")))
        else:
            result.append(nodes.paragraph(text=" ".join(block.split())))
    return result


def _table(params: tuple[ParamDoc, ...]) -> Any:
    headers = ("Option / argument", "Takes", "Default", "Help")
    table = nodes.table(classes=["p2pkit-cli"])
    group = nodes.tgroup(cols=4)
    table += group
    for width in (24, 14, 12, 50):
        group += nodes.colspec(colwidth=width)
    head = nodes.thead()
    group += head
    body = nodes.tbody()
    group += body
    for cells, target in [(headers, head)] + [
            ((p.name, p.kind, p.default, p.help), body) for p in params]:
        row = nodes.row()
        for i, text in enumerate(cells):
            entry = nodes.entry()
            paragraph = nodes.paragraph()
            if target is body and i in (0, 2) and text:
                paragraph += nodes.literal(text=text)
            else:
                paragraph += nodes.Text(text)
            entry += paragraph
            row += entry
        target += row
    return table


class CliDirective(SphinxDirective):
    """```` ```{p2pkit-cli} ``` ````: one section per command of ``p2pkit``."""

    has_content = False

    def run(self) -> list[Any]:
        try:
            commands = list(walk())
        except Exception as e:  # noqa: BLE001 - report, never crash the build
            logger.warning("p2pkit-cli: cannot walk the command tree: %s", e,
                           location=self.get_location())
            return []
        result: list[Any] = []
        for command in commands:
            section = nodes.section(ids=[nodes.make_id("cli " + command.path)])
            section += nodes.title(text=command.path)
            section += nodes.literal_block(text="Usage: " + command.usage)
            section += _help_nodes(command.help)
            if command.params:
                section += _table(command.params)
            result.append(section)
        return result


def setup(app: Any) -> dict[str, Any]:
    """Register the ``p2pkit-cli`` directive."""
    app.add_directive("p2pkit-cli", CliDirective)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
