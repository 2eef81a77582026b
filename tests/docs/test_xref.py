"""How docs/_ext/p2pkit_xref.py resolves the names the Python domain leaves unresolved."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "docs" / "_ext"))

import p2pkit_xref as xref  # noqa: E402

OBJECTS = {
    "p2pkit.errors.ParseError": ("api", "id1", "exception"),
    "p2pkit.bencode.schema.BencodedDict": ("api", "id2", "class"),
    "p2pkit.deviations.Deviation": ("api", "id3", "class"),
    "p2pkit.conformance.ipfs.session.Deviation": ("api", "id4", "class"),
    "p2pkit.kademlia.routing.RoutingTable.closest": ("api", "id5", "method"),
    "p2pkit.ipfs.connection.Libp2pConnection": ("api", "id6", "class"),
    "p2pkit.core": ("api", "id7", "module"),
}


def test_a_short_name_resolves_to_the_one_documented_object_it_ends():
    assert xref.resolve(OBJECTS, "ParseError", "exc", "p2pkit.bencode") == "p2pkit.errors.ParseError"
    assert xref.resolve(OBJECTS, "RoutingTable.closest", "meth", None) == \
        "p2pkit.kademlia.routing.RoutingTable.closest"


def test_the_role_must_fit_the_object():
    assert xref.resolve(OBJECTS, "RoutingTable.closest", "class", None) is None


def test_an_ambiguous_name_prefers_the_nearest_module_or_stays_unresolved():
    assert xref.resolve(OBJECTS, "Deviation", "class", "p2pkit.conformance.ipfs.live") == \
        "p2pkit.conformance.ipfs.session.Deviation"
    assert xref.resolve(OBJECTS, "Deviation", "class", "p2pkit.bencode.schema") is None


def test_a_re_export_resolves_where_the_object_is_defined():
    assert xref.resolve(OBJECTS, "p2pkit.bencode.BencodedDict", "class", None) == \
        "p2pkit.bencode.schema.BencodedDict"


def test_a_module_alias_resolves_by_its_last_part():
    assert xref.resolve(OBJECTS, "conn.Libp2pConnection", "class", "p2pkit.ipfs.host") == \
        "p2pkit.ipfs.connection.Libp2pConnection"


def test_a_name_nothing_documents_stays_unresolved():
    assert xref.resolve(OBJECTS, "NoSuchThing", "class", "p2pkit") is None
    assert xref.resolve(OBJECTS, "p2pkit.nowhere.Thing", "class", "p2pkit") is None
