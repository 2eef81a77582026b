"""The RPCs of the Python ``kademlia`` package (PyPI ``kademlia`` 2.2, ``kademlia/protocol.py``)
over rpcudp: their arguments and results, named.

``KademliaProtocol`` defines ``rpc_stun(sender)``, ``rpc_ping(sender, nodeid)``,
``rpc_store(sender, nodeid, key, value)``, ``rpc_find_node(sender, nodeid, key)`` and
``rpc_find_value(sender, nodeid, key)``; rpcudp passes the request's ``args`` after
``sender``. Results: ``ping`` returns the node's id, ``store`` ``True``, ``find_node`` a list
of ``(id, ip, port)`` triples, ``find_value`` ``{"value": value}`` or, when it does not hold
the key, the ``find_node`` list; ``stun`` the sender's ``(ip, port)``.

>>> named_arguments("store", [b"i" * 20, b"k" * 20, "v"])
{'node_id': b'iiiiiiiiiiiiiiiiiiii', 'key': b'kkkkkkkkkkkkkkkkkkkk', 'value': 'v'}
>>> named_result("find_node", [[b"n" * 20, "127.0.0.31", 8468]])
{'nodes': [{'node_id': b'nnnnnnnnnnnnnnnnnnnn', 'ip': '127.0.0.31', 'port': 8468}]}
"""

from __future__ import annotations

from typing import Any

from p2pkit.errors import ParseError
from p2pkit.rpcudp.envelope import PROTOCOL

__all__ = ["RPC_ARGUMENTS", "named_arguments", "named_result"]

#: method -> the names of its arguments, in order (``kademlia/protocol.py``).
RPC_ARGUMENTS: dict[str, tuple[str, ...]] = {
    "stun": (),
    "ping": ("node_id",),
    "store": ("node_id", "key", "value"),
    "find_node": ("node_id", "key"),
    "find_value": ("node_id", "key"),
}


def named_arguments(method: str, args: Any) -> dict[str, Any]:
    """The arguments of a request by name; :class:`ParseError` when they do not fit."""
    names = RPC_ARGUMENTS.get(method)
    if not isinstance(args, list):
        raise ParseError(f"arguments of {method!r} are a {type(args).__name__}, not a list",
                         protocol=PROTOCOL, path="body -> args")
    if names is None:
        return {"args": args}
    if len(args) != len(names):
        raise ParseError(f"{method} takes {len(names)} arguments, got {len(args)}",
                         protocol=PROTOCOL, path="body -> args")
    return dict(zip(names, args, strict=True))


def _nodes(value: Any) -> list[dict[str, Any]] | None:
    if not isinstance(value, list):
        return None
    out = []
    for item in value:
        if not (isinstance(item, list) and len(item) == 3):
            return None
        out.append({"node_id": item[0], "ip": item[1], "port": item[2]})
    return out


def named_result(method: str | None, value: Any) -> dict[str, Any]:
    """A response's value by name, given the method of the request it answers (``None``
    when that request was not seen: the value is shown as it is)."""
    if method == "ping" and isinstance(value, bytes):
        return {"node_id": value}
    if method == "store" and isinstance(value, bool):
        return {"stored": value}
    if method == "find_value" and isinstance(value, dict) and "value" in value:
        return {"value": value["value"]}
    if method in ("find_node", "find_value"):
        nodes = _nodes(value)
        if nodes is not None:
            return {"nodes": nodes}
    if method == "stun" and isinstance(value, list) and len(value) == 2:
        return {"ip": value[0], "port": value[1]}
    return {"result": value}
