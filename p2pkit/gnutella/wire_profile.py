"""What a capture's Gnutella servents put on the wire, as a set of features to compare.

A profile is the set of things each role (ultrapeer or leaf) was seen sending: handshake header
names (handshaking_0.6 §2), descriptor types over TCP and over UDP (udp_transceiver), vendor
messages by vendor, selector and version (vendor_msg §2), the entries of Messages Supported and
Features Supported (vendor_msg §4, x-features), GGEP extension ids by descriptor (GGEP §2),
HTTP request kinds (HUGE §6.1, push_proxy §5, THEX) and TCP connect-backs (msg/connect_back:
"\\n\\n" on a fresh connection). Two profiles side by side say what one servent does that the
other does not; :func:`side_by_side` draws that as a Markdown table, each difference with the
reason the caller gives for it.

The records are the dissector's (:class:`p2pkit.capture.record.Record`, or anything with
``transport``, ``src``, ``protocol``, ``message`` and ``fields``); this module reads their JSON
fields only, so it sits below :mod:`p2pkit.capture` and imports none of it.

>>> from types import SimpleNamespace as R
>>> recs = [R(protocol="gnutella", transport="udp", src="127.0.0.10:6346", message="pong",
...           fields={"extensions": [{"kind": "ggep", "extensions": [{"id": "VC"}]}]})]
>>> sorted(profile(recs, lambda ip: "ultrapeer"))
[('ultrapeer', 'GGEP in UDP pong', 'VC'), ('ultrapeer', 'UDP descriptor', 'pong')]
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

__all__ = ["Feature", "profile", "side_by_side"]

#: (role, section, item): one thing a role was seen sending.
Feature = tuple[str, str, str]

#: The order of sections in a table.
SECTIONS = ("handshake header", "TCP descriptor", "vendor message over TCP",
            "Messages Supported", "Features Supported", "GGEP in TCP ping", "GGEP in TCP pong",
            "GGEP in TCP query", "GGEP in TCP query_hit", "HTTP request", "TCP connect-back",
            "UDP descriptor", "vendor message over UDP", "GGEP in UDP ping", "GGEP in UDP pong",
            "GGEP in UDP query", "GGEP in UDP query_hit")

_VENDOR_MESSAGES = ("vendor_message", "standard_vendor_message")


def _vendor_code(vendor: str, selector: Any, version: Any) -> str:
    vendor = vendor if vendor.strip("\0") else "0000"
    return f"{vendor}/{selector}v{version}"


def _ggep_ids(value: Any, ids: set[str]) -> None:
    if isinstance(value, Mapping):
        if value.get("kind") == "ggep":
            ids.update(e["id"] for e in value.get("extensions") or ())
        for v in value.values():
            _ggep_ids(v, ids)
    elif isinstance(value, (list, tuple)):
        for v in value:
            _ggep_ids(v, ids)


def _http_kind(target: str) -> str:
    """HUGE §6.1 ``/uri-res/N2R``, the 0.4 ``/get/<index>/<name>``, push_proxy §5 (LimeWire's
    ``/gnutella/push-proxy`` and gtk-gnutella's ``/gnet/push-proxy``), THEX's tree request."""
    for prefix in ("/uri-res/N2R", "/gnutella/push-proxy", "/gnet/push-proxy",
                   "/gnutella/thex", "/get/"):
        if target.startswith(prefix):
            return prefix
    return target.split("?", 1)[0]


def profile(records: Iterable[Any], role_of: Callable[[str], str | None]) -> set[Feature]:
    """The features each role sent in ``records``; ``role_of(ip)`` names the sender's role
    (``None``: a servent not profiled, its records are skipped)."""
    out: set[Feature] = set()
    for r in records:
        role = role_of(r.src.rsplit(":", 1)[0])
        if role is None:
            continue
        f = r.fields
        if r.protocol != "gnutella":
            # msg/connect_back, BEAR/7: "the connecting servent emits the 2-byte string "\n\n"
            # and closes the connection" (no protocol to detect in two bytes)
            if r.transport == "tcp" and r.message == "undecoded" and f.get("bytes") == 2:
                out.add((role, "TCP connect-back", "\\n\\n"))
            continue
        if r.message == "handshake":
            out.update((role, "handshake header", name) for name, _ in f["headers"])
            continue
        if r.message == "http_request":
            out.add((role, "HTTP request", f"{f['method']} {_http_kind(f['target'])}"))
            continue
        if r.message in ("http_response", "http_body", "giv", "undecoded", "malformed"):
            continue
        transport = r.transport.upper()
        out.add((role, f"{transport} descriptor", r.message))
        if r.message in _VENDOR_MESSAGES:
            name = f.get("name") or "unknown"
            code = _vendor_code(f["vendor"], f["selector"], f["version"])
            out.add((role, f"vendor message over {transport}", f"{code} {name}"))
            if name == "messages_supported":
                out.update((role, "Messages Supported",
                            _vendor_code(m["vendor"], m["selector"], m["version"]))
                           for m in f.get("messages") or ())
            elif name == "features_supported":
                out.update((role, "Features Supported", f"{m['feature']}/{m['version']}")
                           for m in f.get("features") or ())
            continue
        ids: set[str] = set()
        _ggep_ids(f, ids)
        out.update((role, f"GGEP in {transport} {r.message}", i) for i in ids)
    return out


def side_by_side(columns: Sequence[tuple[str, set[Feature]]],
                 reasons: Mapping[tuple[str, ...], str], *,
                 sections: Sequence[str] = SECTIONS) -> tuple[str, list[tuple[str, str, str]]]:
    """A Markdown table: one row per (section, item, role) any column has, a ✓ or – per
    column, and the reason ``reasons[(section, item, role)]`` (or ``(section, item)`` for every
    role) where they differ.

    The last column is the one compared: a row differs when it has the feature and none of the
    other columns does, or the other way round (the other columns are several captures of one
    implementation). Returns the table and the differences that have no reason (the caller
    decides whether that is an error).
    """
    rows: dict[tuple[int, str, str], None] = {}
    order = {s: i for i, s in enumerate(sections)}
    for _, features in columns:
        for role, section, item in features:
            rows[(order.get(section, len(order)), section, f"{item}\0{role}")] = None
    head = "| what | sent by | " + " | ".join(name for name, _ in columns) + " | why they differ |"
    lines = [head, "|" + "---|" * (len(columns) + 3)]
    missing = []
    for _, section, key in sorted(rows):
        item, role = key.split("\0")
        marks = [(role, section, item) in features for _, features in columns]
        reason = ""
        if marks[-1] != any(marks[:-1]):
            reason = reasons.get((section, item, role)) or reasons.get((section, item), "")
            if not reason:
                missing.append((section, item, role))
        cells = " | ".join("✓" if m else "–" for m in marks)
        lines.append(f"| {section}: `{item}` | {role} | {cells} | {reason} |")
    return "\n".join(lines) + "\n", missing
