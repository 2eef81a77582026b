"""The schema documentation generator (docs/_ext/p2pkit_schema_*.py) and the docs' examples.

The protocol pages are generated from the construct objects by ``describe``; these tests pin what
it says about each kind of construct, that it never fails on an unknown one, and that every
``>>>`` example in the Markdown docs still runs as written.
"""

from __future__ import annotations

import doctest
import enum
import importlib
import importlib.util
import re
import sys
from pathlib import Path

import construct
import pytest
from construct import this
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pkit.bencode import Bencoded, BencodedLenient
from p2pkit.schema import Schema

DOCS = Path(__file__).resolve().parents[2] / "docs"


def _load_extension(name="p2pkit_schema_docs"):
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, DOCS / "_ext" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


docs_ext = _load_extension()
describe = docs_ext.describe
describe_messages = docs_ext.describe_messages


def table(con):
    """``field -> (type, size, values, doc)`` for the rows of ``con``."""
    return {r.field: (r.type, r.size, r.values, r.doc) for r in describe(con)}


# fmt: off
def test_integers_bytes_and_docstrings():
    rows = table(construct.Struct(
        "a" / construct.Int32ub * "big-endian count",
        "b" / construct.Int16sl,
        "c" / construct.Int8ub,
        "d" / construct.Float64b,
        "e" / construct.BytesInteger(3),
        "f" / construct.BytesInteger(6, swapped=True, signed=True),
        "g" / construct.Bytes(20),
        "h" / construct.GreedyBytes,
        "n" / construct.Int8ub,
        "i" / construct.Bytes(this.n),
    ))
    assert rows["a"] == ("uint32 BE", "4", "", "big-endian count")
    assert rows["b"][:2] == ("int16 LE", "2")
    assert rows["c"][:2] == ("uint8", "1")
    assert rows["d"][:2] == ("float64 BE", "8")
    assert rows["e"][:2] == ("uint24 BE", "3")
    assert rows["f"][:2] == ("int48 LE", "6")
    assert rows["g"][:2] == ("bytes[20]", "20")
    assert rows["h"][:2] == ("bytes to the end", "variable")
    assert rows["i"][:2] == ("bytes[n]", "variable")


def test_const_enum_flags_padding():
    rows = table(construct.Struct(
        construct.Const(b"BT"),
        "kind" / construct.Enum(construct.Int8ub, ping=1, pong=2),
        "flags" / construct.FlagsEnum(construct.Int16ub, seed=1, utp=4),
        construct.Padding(3),
        "action" / construct.Const("scrape", construct.Mapping(construct.Int32ub,
                                                                {"scrape": 2})),
    ))
    assert rows["(constant)"] == ("bytes[2]", "2", "= b'BT'", "")
    assert rows["kind"][:3] == ("uint8 enum", "1", "ping=1, pong=2")
    assert rows["flags"][0] == "uint16 BE flags"
    assert rows["flags"][2] == "seed: byte 1 & 0x01, utp: byte 1 & 0x04"
    assert rows["(padding)"][:2] == ("padding", "3")
    assert rows["action"][2] == "= scrape (2)"


def test_bit_struct_sizes_are_in_bits():
    rows = table(construct.Struct(
        "head" / construct.BitStruct(
            "type" / construct.Enum(construct.BitsInteger(4), data=0, fin=1),
            "flag" / construct.Flag,
            construct.Padding(3),
        ),
    ))
    assert rows["head"][:2] == ("bit struct", "1")
    assert rows["head.type"][:3] == ("uint4 (bits) enum", "4 bits", "data=0, fin=1")
    assert rows["head.flag"][:2] == ("bit flag", "1 bits")


def test_arrays_and_prefixes():
    item = construct.Struct("ip" / construct.Bytes(4), "port" / construct.Int16ub)
    rows = table(construct.Struct(
        "count" / construct.Int8ub,
        "fixed" / construct.Array(3, construct.Int16ub),
        "counted" / construct.Array(this.count, item),
        "peers" / construct.GreedyRange(item),
        "names" / construct.PrefixedArray(construct.Int8ub, construct.Int32ub),
        "blob" / construct.Prefixed(construct.Int16ub, construct.GreedyBytes),
        "nested" / construct.Prefixed(construct.Int8ub, construct.Struct("x" / construct.Int8ub)),
        "pair" / construct.Sequence(construct.Int8ub, "b" / construct.Int16ub),
    ))
    assert rows["fixed"][:2] == ("uint16 BE[3]", "6")
    assert rows["counted"][0] == "struct[count]"
    assert rows["counted[].port"][:2] == ("uint16 BE", "2")
    assert rows["peers"][:2] == ("struct[] to the end", "variable")
    assert rows["peers[].ip"][:2] == ("bytes[4]", "4")
    assert rows["names"][0] == "array of uint32 BE, count prefixed as uint8"
    assert rows["blob"][0] == "bytes to the end, length prefixed as uint16 BE"
    assert rows["nested (length)"][:2] == ("uint8", "1")
    assert rows["nested.x"][0] == "uint8"
    assert rows["pair"][:2] == ("sequence", "3")
    assert rows["pair[0]"][:2] == ("uint8", "1")
    assert rows["pair.b"][:2] == ("uint16 BE", "2")


def test_conditionals_and_computed_fields():
    rows = table(construct.Struct(
        "has_port" / construct.Flag,
        "port" / construct.If(this.has_port, construct.Int16ub),
        "addr" / construct.IfThenElse(this.has_port, construct.Bytes(4), construct.Bytes(16)),
        "maybe" / construct.Optional(construct.Int32ub),
        "length" / construct.Rebuild(construct.Int8ub, construct.len_(this.data)),
        "data" / construct.Bytes(this.length),
        "double" / construct.Computed(this.length * 2),
        "value" / construct.Default(construct.Int8ub, 7),
    ))
    assert rows["has_port"][:2] == ("flag byte", "1")
    assert rows["port"][0] == "uint16 BE if has_port"
    assert rows["addr"][0] == "if has_port: bytes[4] else bytes[16]"
    assert rows["addr (if has_port)"][:2] == ("bytes[4]", "4")
    assert rows["addr (else)"][:2] == ("bytes[16]", "16")
    assert rows["maybe"][0] == "optional uint32 BE"
    assert rows["length"][0] == "uint8 (rebuilt from the other fields)"
    assert rows["double"][:2] == ("computed: (length * 2)", "0")
    assert rows["value"][0] == "uint8 (default 7)"


def test_adapters_show_the_underlying_type_and_their_class():
    class Port(construct.Adapter):
        """A TCP port."""

        def _decode(self, obj, context, path):
            return obj

        def _encode(self, obj, context, path):
            return obj

    rows = table(construct.Struct(
        "port" / Port(construct.Int16ub),
        "scaled" / construct.ExprAdapter(construct.Int8ub, lambda o, c: o * 2, lambda o, c: o // 2),
        "text" / construct.PascalString(construct.Int8ub, "utf8"),
        "hex" / construct.Hex(construct.Int32ub),
        "name" / construct.NullTerminated(construct.GreedyBytes),
        "fixed" / construct.FixedSized(8, construct.GreedyBytes),
    ))
    assert rows["port"] == ("uint16 BE → Port", "2", "", "A TCP port.")
    assert rows["scaled"][0] == "uint8 → ExprAdapter"
    assert rows["text"][0] == "bytes to the end, length prefixed as uint8 as utf8 text"
    assert rows["hex"][:2] == ("uint32 BE", "4")
    assert rows["name"][:2] == ("bytes to the end, terminated by b'\\x00'", "variable")
    assert rows["fixed"][:2] == ("bytes to the end in exactly 8 bytes", "8")


def test_switch_cases_become_messages_with_ids_from_the_enum():
    frame = Schema(construct.Prefixed(construct.Int32ub, construct.Struct(
        "type" / construct.Enum(construct.Int8ub, ping=1, pong=2, data=7),
        "body" / construct.Switch(this.type, {
            "ping": construct.Struct("token" / construct.Bytes(4)),
            "pong": construct.Struct(),
            "data": construct.Struct("payload" / Bencoded),
        }, default=construct.Error),
    )), protocol="example")
    messages = {m.name: m for m in describe_messages(frame)}
    assert [r.field for r in messages[""].rows] == ["(length)", "type", "body"]
    assert messages["ping"].id == "1" and messages["data"].id == "7"
    assert [(r.field, r.type) for r in messages["ping"].rows] == [("token", "bytes[4]")]
    assert [(r.field, r.type, r.size) for r in messages["pong"].rows] == [
        ("(no payload)", "nothing", "0")]
    assert messages["data"].rows[0].type == "bencoded value, BEP 3"
    assert "(default)" not in messages  # default=Error: unknown types are rejected


def test_a_switch_inside_a_message_lists_its_alternatives():
    option = construct.Struct(
        "type" / construct.Enum(construct.Int8ub, nop=1, url_data=2),
        "data" / construct.Switch(this.type, {"url_data": construct.Prefixed(
            construct.Int8ub, construct.GreedyBytes)}),
    )
    rows = table(construct.Struct("options" / construct.GreedyRange(option)))
    assert rows["options[].data"][0] == "one of 1 alternatives, selected by type"
    assert rows["options[].data (url_data=2)"][0] == (
        "bytes to the end, length prefixed as uint8")
    assert {r.message for r in describe(construct.Struct("o" / construct.GreedyRange(option)))} \
        == {""}


def test_bencoded_and_schema():
    assert table(Bencoded)["(message)"][:2] == ("bencoded value, BEP 3", "variable")
    assert table(BencodedLenient)["(message)"][0] == "bencoded value, BEP 3 (lenient)"
    wrapped = Schema(construct.Struct("id" / construct.Int8ub, "dict" / Bencoded),
                     protocol="example")
    assert table(wrapped) == {"id": ("uint8", "1", "", ""),
                              "dict": ("bencoded value, BEP 3", "variable", "", "")}


class Weird(construct.Construct):
    """A project construct the walker does not know."""

    def _parse(self, stream, context, path):
        return None

    def _sizeof(self, context, path):
        raise RuntimeError("no size, and not a SizeofError either")


class Hostile(construct.Subconstruct):
    @property
    def subcon(self):
        raise RuntimeError("cannot be inspected")

    @subcon.setter
    def subcon(self, value):
        pass


def test_unknown_constructs_get_an_honest_fallback():
    rows = table(construct.Struct(
        "weird" / Weird(),
        "hostile" / Hostile(construct.Int8ub),
        "lazy" / construct.LazyBound(lambda: construct.Int8ub),
        construct.Terminated,
    ))
    assert rows["weird"] == ("<Weird>", "variable", "",
                             "A project construct the walker does not know.")
    assert rows["hostile"][0] == "<Hostile>"
    assert rows["lazy"][0] == "<LazyBound>"
    assert rows["(end)"][:2] == ("end of input", "0")


def test_self_referencing_schemas_are_cut():
    tree = construct.Struct("value" / construct.Int8ub)
    tree.subcons.append(construct.Renamed(construct.GreedyRange(tree), newname="children"))
    rows = describe(tree)
    assert len(rows) < 200
    assert any("nested too deep" in r.type for r in rows)


# fmt: on
def test_peer_message_lists_every_message_with_its_id():
    wire = pytest.importorskip("p2pkit.bittorrent.wire.messages")
    messages = {m.name: m for m in describe_messages(wire.PeerMessage)}
    names = {r.message for r in describe(wire.PeerMessage)}
    for mid, (name, _) in wire.MESSAGES.items():
        assert name in names
        assert messages[name].id == str(mid)
    assert [(r.field, r.type) for r in messages["request"].rows] == [
        ("index", "uint32 BE"),
        ("begin", "uint32 BE"),
        ("length", "uint32 BE"),
    ]
    assert messages[""].rows[0].type == "uint32 BE"  # BEP 3: four byte big-endian prefix


def test_gnutella_payload_table_lists_every_payload():
    descriptors = pytest.importorskip("p2pkit.gnutella.descriptors")
    messages = {m.name: m for m in describe_messages(descriptors.PAYLOADS)}
    for pid, (name, _) in descriptors.PAYLOADS.items():
        assert messages[name].id == str(pid)
    frame = messages[""].rows
    assert [(r.field, r.type, r.size) for r in frame] == [("(message id)", "uint8", "1")]


def test_a_plain_message_table():
    table = {1: ("ping", construct.Struct("token" / construct.Int16ul)),
             2: ("pong", construct.Struct())}
    rows = describe(table)
    assert [(r.message, r.message_id, r.field, r.type) for r in rows] == [
        ("", "", "(message id)", "uint8"),
        ("ping", "1", "token", "uint16 LE"),
        ("pong", "2", "(no payload)", "nothing"),
    ]


def test_handshake_reserved_bits_are_named():
    wire = pytest.importorskip("p2pkit.bittorrent.wire.messages")
    rows = table(wire.Handshake)
    kind, size, values, _ = rows["reserved"]
    assert size == "8"
    for name in wire.Reserved.bits:
        assert name in values
    assert "extension_protocol: byte 5 & 0x10" in values  # BEP 10: reserved_byte[5] & 0x10
    assert "dht: byte 7 & 0x01" in values  # BEP 5: the last bit of the reserved bytes
    assert rows["info_hash"][:2] == ("bytes[20]", "20")


class _Codec:
    """A bencoded item converter, as p2pkit's KRPC and BEP 10 tables use."""

    def __init__(self, length=None, con=None):
        self.length = length
        self.con = con

    def decode(self, value):
        return value

    def encode(self, value):
        return value


# fmt: off
ITEMS = {
    "id": _Codec(20),       # BEP 5: "20 byte ID of the querying node"
    "port": _Codec(),       # BEP 5: "the port it's running on"
                            # (continued on the next line)
    "nodes": _Codec(con=construct.GreedyRange(construct.Struct(
        "id" / construct.Bytes(20), "port" / construct.Int16ub))),
}
REQUIRED = {"ping": ("id",), "announce_peer": ("id", "port")}


class Code(enum.IntEnum):
    """Error codes."""

    GENERIC = 201  # BEP 5: "Generic Error"
    CAS_MISMATCH = 301  # BEP 44: "the CAS hash mismatched"
# fmt: on


def test_item_tables_carry_the_comments_written_beside_them():
    module = sys.modules[__name__]
    rows = {r.field: r for r in docs_ext.describe_items(ITEMS, module)}
    assert (rows["id"].type, rows["id"].doc) == (
        "codec, length 20", 'BEP 5: "20 byte ID of the querying node"')
    assert rows["port"].doc == "BEP 5: \"the port it's running on\" (continued on the next line)"
    assert rows["nodes"].type == "codec, holding struct (22 bytes each)"
    assert rows["nodes[].port"].type == "uint16 BE"
    assert rows["nodes"].doc == "A bencoded item converter, as p2pkit's KRPC and BEP 10 tables use."
    required = [(r.field, r.type) for r in docs_ext.describe_items(REQUIRED, module)]
    assert required == [("ping", "id"), ("announce_peer", "id, port")]
    codes = [(r.field, r.type, r.doc) for r in docs_ext.describe_items(Code)]
    assert codes == [("GENERIC", "201", 'BEP 5: "Generic Error"'),
                     ("CAS_MISMATCH", "301", 'BEP 44: "the CAS hash mismatched"')]


def test_bencoded_dictionary_items_inside_a_schema():
    extensions = pytest.importorskip("p2pkit.bittorrent.wire.extensions")
    rows = table(extensions.ExtendedHandshake)
    assert rows["(message)"][0].startswith("bencoded value, BEP 3")
    for key in extensions.HANDSHAKE_ITEMS:
        assert key in rows
    assert rows["p"][3] == '"Local TCP listen port"'  # the comment beside "p" in the source


def test_rendered_table_has_one_row_per_field():
    pytest.importorskip("sphinx", reason="Sphinx comes with the docs extra")
    rendering = _load_extension("p2pkit_schema_sphinx")
    rows = describe(construct.Struct("a" / construct.Int8ub, "b" / construct.Bytes(2)))
    node = rendering._table(rows)
    cells = [[entry.astext() for entry in row.children]
             for row in node.findall(lambda n: n.tagname == "row")]
    assert cells == [["Field", "Wire type", "Size (bytes)", "Values", "Doc"],
                     ["a", "uint8", "1", "", ""],
                     ["b", "bytes[2]", "2", "", ""]]


def test_resolve_names_attributes_of_modules():
    assert docs_ext.resolve("p2pkit.bencode.Bencoded") is Bencoded
    with pytest.raises(ImportError):
        docs_ext.resolve("no_such_module.Thing")


def test_the_extension_doctests_pass():
    result = doctest.testmod(docs_ext, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


@st.composite
def constructs(draw, depth=0):
    leaves = [construct.Int8ub, construct.Int32ul, construct.Bytes(4), construct.GreedyBytes,
              construct.Flag, Bencoded, construct.Pass, construct.Terminated,
              construct.Const(b"x"), construct.Enum(construct.Int8ub, a=1), Weird()]
    if depth > 3 or draw(st.booleans()):
        return draw(st.sampled_from(leaves))
    inner = draw(constructs(depth=depth + 1))
    kind = draw(st.integers(0, 7))
    if kind == 0:
        names = draw(st.lists(st.sampled_from("abcde"), min_size=1, max_size=3, unique=True))
        return construct.Struct(*[n / draw(constructs(depth=depth + 1)) for n in names])
    if kind == 1:
        return construct.Prefixed(construct.Int8ub, inner)
    if kind == 2:
        return construct.GreedyRange(inner)
    if kind == 3:
        return construct.Array(2, inner)
    if kind == 4:
        return construct.Optional(inner)
    if kind == 5:
        return "x" / inner * "doc"
    if kind == 6:
        return construct.Switch(this.k, {1: inner, 2: draw(constructs(depth=depth + 1))})
    return Schema(inner, protocol="example")


@settings(max_examples=60, deadline=None)
@given(constructs())
def test_describe_never_fails_and_sizes_are_well_formed(con):
    for row in describe(con):
        assert row.type
        assert re.fullmatch(r"\d+( bits)?|variable", row.size), row


def _markdown_examples():
    for path in sorted(DOCS.rglob("*.md")):
        if "_build" in path.parts:
            continue
        text = path.read_text(encoding="utf-8")
        blocks = re.findall(r"^```pycon\n(.*?)^```", text, flags=re.M | re.S)
        if blocks:
            yield pytest.param(path, "\n".join(blocks), id=str(path.relative_to(DOCS)))


@pytest.mark.parametrize(("path", "source"), list(_markdown_examples()))
def test_markdown_examples_run_as_written(path, source):
    parser = doctest.DocTestParser()
    test = parser.get_doctest(source, {}, path.name, str(path), 0)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.attempted > 0
    assert result.failed == 0, f"{result.failed} example(s) in {path} failed (see output)"
