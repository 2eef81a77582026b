"""``p2pkit bencode FILE|-``: pretty-print any bencoded data (BEP 3 §bencoding).

Strings that are UTF-8 text print as text, others as hex. ``--strict`` lists each deviation from
the canonical form with its offset and exits 1 when there is any; input that is not bencoding at
all exits 2 with one line naming the offset.
"""

from __future__ import annotations

import json
from typing import Any

import click

from p2pkit.bencode import decode_lenient
from p2pkit.cli.errors import EXIT_DEVIATIONS, BadInput, Command, input_name, read_input
from p2pkit.errors import ParseError

#: In text output, binary strings longer than this are cut (use ``--full``).
TEXT_HEX_LIMIT = 48


def to_json(value: Any) -> Any:
    """Bencoded values as JSON: UTF-8 strings as strings, other strings as ``{"hex": ...}``.

    >>> to_json({b"a": [b"x", b"\\xff", 3]})
    {'a': ['x', {'hex': 'ff'}, 3]}
    """
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return {"hex": value.hex()}
    if isinstance(value, list):
        return [to_json(v) for v in value]
    if isinstance(value, dict):
        return {_key_text(k, printable=False): to_json(v) for k, v in value.items()}
    return value


def _key_text(key: bytes | int, *, printable: bool = True) -> str:
    """A dictionary key as text: UTF-8 when it is (and, for the text view, printable), else
    ``0x`` and its hex, so that a key holding a newline cannot break the indented layout."""
    if isinstance(key, int):
        return str(key)
    try:
        text = key.decode("utf-8")
    except UnicodeDecodeError:
        return "0x" + key.hex()
    if printable and not text.isprintable():
        return "0x" + key.hex()
    if printable and not text:
        return '""'  # BEP 52's file entries sit under an empty key
    return text


def _text_string(value: bytes, full: bool) -> str:
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None and text.isprintable():
        return json.dumps(text, ensure_ascii=False)
    if full or len(value) <= TEXT_HEX_LIMIT:
        return f"<hex {value.hex()}>"
    return f"<hex {value[:TEXT_HEX_LIMIT].hex()}… {len(value)} bytes>"


def render_text(value: Any, *, full: bool = False, indent: int = 0) -> str:
    """An indented, readable rendering of a bencoded value.

    >>> print(render_text({b"n": 1, b"l": [b"a", b"\\x00"]}))
    n: 1
    l:
      - "a"
      - <hex 00>
    """
    pad = "  " * indent
    if isinstance(value, dict):
        if not value:
            return pad + "{}"
        lines = []
        for k, v in value.items():
            if isinstance(v, (dict, list)) and v:
                lines.append(f"{pad}{_key_text(k)}:")
                lines.append(render_text(v, full=full, indent=indent + 1))
            else:
                lines.append(f"{pad}{_key_text(k)}: {render_text(v, full=full).strip()}")
        return "\n".join(lines)
    if isinstance(value, list):
        if not value:
            return pad + "[]"
        lines = []
        for v in value:
            if isinstance(v, (dict, list)) and v:
                body = render_text(v, full=full, indent=indent + 1)
                lines.append(f"{pad}- " + body.lstrip())
            else:
                lines.append(f"{pad}- {render_text(v, full=full).strip()}")
        return "\n".join(lines)
    if isinstance(value, bytes):
        return pad + _text_string(value, full)
    return pad + str(value)


@click.command("bencode", cls=Command)
@click.argument("source", metavar="FILE|-")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (binary strings as {\"hex\": ...}).")
@click.option("--strict", is_flag=True, help="List deviations from canonical form; exit 1 if any.")
@click.option("--full", is_flag=True, help="Do not shorten long binary strings.")
def bencode_command(source: str, as_json: bool, strict: bool, full: bool) -> int:
    """Pretty-print bencoded data from FILE (or - for standard input)."""
    data = read_input(source)
    try:
        result = decode_lenient(data)
    except ParseError as e:
        raise BadInput(input_name(source), e) from None
    if as_json:
        doc: dict[str, Any] = {"value": to_json(result.value)}
        if strict or result.deviations:
            doc["deviations"] = [
                {"offset": d.offset, "rule": d.rule, "message": d.message, "spec": d.spec}
                for d in result.deviations
            ]
        click.echo(json.dumps(doc, indent=2, ensure_ascii=False))
    else:
        click.echo(render_text(result.value, full=full))
        for d in result.deviations:
            click.echo(f"{'deviation' if strict else 'note'}: {d}", err=True)
    if strict and result.deviations:
        return EXIT_DEVIATIONS
    return 0
