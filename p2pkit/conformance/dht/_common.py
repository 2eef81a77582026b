"""Building blocks of the DHT catalog: query templates, set-up steps and verdict shapes.

Every template is built with the KRPC schema (:class:`~p2pkit.conformance.case.Krpc`) except
where a case sends malformed input on purpose (:class:`~p2pkit.conformance.case.Bencoded`,
:class:`~p2pkit.conformance.case.Raw`).
"""

from __future__ import annotations

from typing import Any

from p2pkit.conformance.case import (
    INFO_HASH,
    NODE_ID,
    Case,
    FromAnswer,
    Krpc,
    Step,
    T,
)
from p2pkit.conformance.verifiers import Anything, Field, IsError, OneOf, Present, Silence

#: BEP 5 §Errors and BEP 44 §Errors.
ERROR_CODES = (201, 202, 203, 204, 205, 206, 207, 301, 302)


def query(method: str, top: dict[str, Any] | None = None, **arguments: Any) -> Krpc:
    """A query template: fresh ``t``, the case's node id, then ``arguments``."""
    message: dict[str, Any] = {"t": T, "y": "q", "q": method, "a": {"id": NODE_ID, **arguments}}
    message.update(top or {})
    return Krpc(message)


def raw_query(method: str, arguments: dict[str, Any], **top: Any) -> dict[str, Any]:
    """A query as a plain dictionary for :class:`~p2pkit.conformance.case.Bencoded` (no
    schema checks: wrong lengths, missing or extra keys)."""
    return {"t": T, "y": "q", "q": method, "a": arguments, **top}


def get_token(name: str = "peers", source: str = "a", info_hash: Any = INFO_HASH) -> Step:
    """Set-up: a get_peers whose answer (and token) later steps use."""
    return Step(send=query("get_peers", info_hash=info_hash), name=name, source=source)


def announce(token: Any = None, source: str = "a", *, port: int = 6881, expect: Any = None,
             name: str = "", **extra: Any) -> Step:
    """An announce_peer with the token of step ``peers`` (or ``token``)."""
    if token is None:
        token = FromAnswer("peers", "r.token")
    return Step(send=query("announce_peer", info_hash=INFO_HASH, port=port, token=token,
                           **extra), source=source, expect=expect, name=name)


def survives() -> Anything:
    """A robustness step: whatever the target does with the input, the probe decides."""
    return Anything()


def dropped_or_error(*codes: int) -> OneOf:
    """What a robust node may do with bad input: drop it, or answer an error."""
    return OneOf(Silence(), IsError(codes))


#: BEP 5 "nodes", or over IPv6 BEP 32's "nodes6" ("In the absence of a "want" parameter, the
#: reply should include "nodes" if the request was sent over IPv4, and should include "nodes6"
#: if the request was sent over IPv6").
NODES = OneOf(Field("r.nodes", Present()), Field("r.nodes6", Present()))


def dht_case(**fields: Any) -> Case:
    """A :class:`Case` whose id is prefixed with ``dht/``."""
    fields["id"] = "dht/" + fields["id"]
    fields["steps"] = tuple(fields["steps"])
    return Case(**fields)
