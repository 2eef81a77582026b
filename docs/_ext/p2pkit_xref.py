"""Cross-references the Python domain leaves unresolved, resolved the way a reader means them.

The site builds with ``nitpicky = True``: every ``:class:``, ``:func:``, ``:mod:``… and every
type in a signature must reach a documented object. Sphinx resolves a name exactly (or, for
``.name``, by suffix); p2pkit's docstrings and annotations also say

* a short name from the module's own imports (``ParseError``, ``Metainfo``,
  ``RoutingTable.closest``): resolved to the documented object whose full name ends with it,
  preferring the one nearest the referring module (the longest common package prefix); an
  ambiguous name stays unresolved (a warning, so an error under ``-W``);
* a full name through a re-export (``p2pkit.bencode.BencodedDict`` is documented as
  ``p2pkit.bencode.schema.BencodedDict``): the object is imported and resolved under the module
  that defines it.

Nothing here hides a reference: a name that resolves to no documented object still warns.
"""

from __future__ import annotations

import importlib
from typing import Any

from sphinx.util.nodes import make_refnode

#: Python-domain object types a role may reach, by role.
ROLE_TYPES = {
    "class": ("class", "exception", "data", "attribute"),
    "exc": ("exception", "class"),
    "func": ("function", "method", "staticmethod", "classmethod"),
    "meth": ("method", "function", "staticmethod", "classmethod", "property"),
    "attr": ("attribute", "property", "data"),
    "data": ("data", "attribute"),
    "obj": None,
    "const": ("data", "attribute"),
}


def _common_prefix(a: str, b: str) -> int:
    n = 0
    for x, y in zip(a.split("."), b.split("."), strict=False):
        if x != y:
            break
        n += 1
    return n


def _defined_name(target: str) -> str | None:
    """``p2pkit.pkg.Name`` -> the full name where ``Name`` is defined (through re-exports)."""
    module_name, _, attr = target.rpartition(".")
    if not module_name.startswith("p2pkit"):
        return None
    try:
        value = getattr(importlib.import_module(module_name), attr)
    except Exception:  # noqa: BLE001 - not an importable attribute: no resolution
        return None
    module, qualname = getattr(value, "__module__", None), getattr(value, "__qualname__", None)
    if not isinstance(module, str) or not isinstance(qualname, str):
        return None
    return f"{module}.{qualname}"


def resolve(objects: dict[str, tuple[str, str, str]], target: str, role: str,
            context: str | None) -> str | None:
    """The full name ``target`` means, among ``objects`` (full name -> (docname, id, type)),
    for ``role`` from module ``context``; None if none or more than one fits equally."""
    kinds = ROLE_TYPES.get(role, None)

    def fits(name: str) -> bool:
        return kinds is None or objects[name][2] in kinds

    defined = _defined_name(target)
    if defined and defined != target and defined in objects and fits(defined):
        return defined
    if target.startswith("p2pkit.") and target in objects:
        return None  # Sphinx had it already and refused it for the role: leave it
    suffix = "." + target
    found = [name for name in objects if name.endswith(suffix) and fits(name)]
    if not found and "." in target and not target.startswith("p2pkit."):
        # ``conn.Libp2pConnection``: a module imported under another name; the last part
        last = "." + target.rpartition(".")[2]
        found = [name for name in objects if name.endswith(last) and fits(name)]
    if not found:
        return None
    if len(found) == 1:
        return found[0]
    ranked = sorted(found, key=lambda n: -_common_prefix(n, context or ""))
    best = _common_prefix(ranked[0], context or "")
    if best and _common_prefix(ranked[1], context or "") < best:
        return ranked[0]
    return None


def _objects(env: Any) -> dict[str, tuple[str, str, str]]:
    domain = env.get_domain("py")
    objects = {name: (entry.docname, entry.node_id, entry.objtype)
               for name, entry in domain.objects.items()}
    for name, entry in domain.modules.items():
        objects.setdefault(name, (entry.docname, entry.node_id, "module"))
    return objects


def missing_reference(app: Any, env: Any, node: Any, contnode: Any) -> Any:
    if node.get("refdomain") != "py":
        return None
    role = node.get("reftype", "")
    target = node.get("reftarget", "").lstrip("~.")
    if not target:
        return None
    objects = _objects(env)
    if role == "mod":
        objects = {n: o for n, o in objects.items() if o[2] == "module"}
        role = "obj"
    name = resolve(objects, target, role, node.get("py:module"))
    if name is None:
        return None
    docname, node_id, _ = objects[name]
    return make_refnode(app.builder, node["refdoc"], docname, node_id, contnode, name)


def setup(app: Any) -> dict[str, Any]:
    app.connect("missing-reference", missing_reference)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

