"""The protocol registry: one :class:`ProtocolDescriptor` per protocol, and how to find them.

Everything that serves every protocol loops over this registry instead of naming protocols:
the dissector (``p2pkit.capture``) asks it who recognises and decodes a TCP direction or a UDP
datagram, ``--decode-as`` and ``dissect --protocol`` accept its names, the scapy layers bind
what it lists, the ``p2pkit`` command line mounts the command groups it names, and the docs
draw their reference tables from the schemas it lists. Adding a protocol is one package plus
one :func:`register` call.

A descriptor names code by ``"module:attribute"`` strings (or holds the objects themselves),
imported on first use: ``p2pkit bt download`` reads the registry to find its command group and
never imports the dissector.

>>> names()[:3]
('bittorrent', 'bt-utp', 'bt-tracker')
>>> get("bt-dht").title
'BitTorrent Mainline DHT (KRPC)'
>>> get("nosuch")
Traceback (most recent call last):
  ...
p2pkit.errors.ParseError: registry: unknown protocol 'nosuch' (known: bittorrent, bt-utp, bt-tracker, bt-tracker-http, bt-dht, gnutella, emule-kad, kademlia-rpcudp, ipfs, data)
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from p2pkit.errors import ParseError

__all__ = [
    "BUILTIN_MODULES",
    "DatagramDecoder",
    "ProtocolDescriptor",
    "StreamDecoder",
    "Verdict",
    "all_descriptors",
    "datagram_protocols",
    "get",
    "known_field_names",
    "known_message_names",
    "load",
    "names",
    "register",
    "schema_objects",
    "stream_protocols",
    "unregister",
]

#: Modules whose ``DESCRIPTORS`` are the built-in protocols, in registration order. Imported
#: on the first lookup; each is tiny (names and ``"module:attribute"`` strings only).
BUILTIN_MODULES = (
    "p2pkit.bittorrent.protocol",
    "p2pkit.bittorrent.tracker.protocol",
    "p2pkit.dht.protocol",
    "p2pkit.gnutella.protocol",
    "p2pkit.kad2.protocol",
    "p2pkit.rpcudp.protocol",
    "p2pkit.ipfs.protocol",
    "p2pkit.undecoded",
)

#: What a detector answers: ``True`` (mine), ``False`` (not mine), ``None`` (need more bytes).
Verdict = bool | None
#: ``"module:attribute"`` or the object itself.
Ref = str | Any


class StreamDecoder(Protocol):
    """One direction of a stream, decoded: what a descriptor's ``stream_decoder`` makes.

    Created as ``factory(src=…, dst=…, transport=…, peer=…)``; ``peer`` is the opposite
    direction's decoder (or None), which the factory may link (a response needs its request).
    ``skipped`` (optional) counts bytes that could not be decoded.
    """

    def data(self, offset: int, data: bytes, frame: int, time: float) -> Iterable[Any]: ...

    def gap(self, offset: int, length: int) -> None: ...

    def end(self) -> Iterable[Any]: ...


class DatagramDecoder(Protocol):
    """A protocol's datagram decoder, one per dissection (it may keep state across datagrams).

    ``datagram`` returns the records of one UDP packet, or ``None`` when the packet is not this
    protocol's (``forced``: ``--decode-as`` said it is, so decode if at all possible).

    A decoder may also have ``detect(payload) -> bool``: the descriptor's detector with the
    decoder's state, False for every datagram ``datagram`` would refuse at once (unforced);
    once the decoder is made, the dissector asks it instead of the stateless detector (one
    call a datagram of another protocol instead of two).
    """

    def datagram(self, pkt: Any, *, forced: bool = False) -> list[Any] | None: ...

    def finish(self) -> Iterable[Any]: ...


@dataclass(frozen=True, kw_only=True)
class ProtocolDescriptor:
    """Everything the toolkit's shared machinery needs to know about one protocol.

    Code is given as objects or ``"module:attribute"`` strings, loaded with :func:`load`.
    """

    #: Wireshark's display-filter name where one exists (``bittorrent``, ``bt-dht`` …).
    name: str
    #: Human title (docs, listings).
    title: str
    #: Where the protocol is specified (``("BEP 3", "BEP 52")``).
    specs: tuple[str, ...] = ()
    #: Dotted paths of the construct schemas (and data tables) the reference pages document.
    schemas: tuple[str, ...] = ()
    #: ``detect(head, *, other, complete, from_start) -> Verdict`` for a TCP direction that
    #: starts with ``head``; ``other`` is the protocol found for the opposite direction.
    stream_detector: Ref = None
    #: Factory of a per-direction :class:`StreamDecoder`.
    stream_decoder: Ref = None
    #: ``detect(payload) -> bool``: a cheap, stateless test before the datagram decoder runs.
    datagram_detector: Ref = None
    #: Factory (no arguments) of a :class:`DatagramDecoder`.
    datagram_decoder: Ref = None
    #: Detectors run in ascending priority; content-heuristic catch-alls go last.
    priority: int = 100
    #: The message names records of this protocol carry (``dissect --message`` checks them).
    messages: Ref = ()
    #: Top-level record field names beyond those of :attr:`schemas` (``dissect --filter``).
    fields: Ref = ()
    #: Fields shown on a summary line, in this order when present (empty: every top-level
    #: field whose value is short).
    summary: tuple[str, ...] = ()
    #: scapy bindings: a sequence of layer classes, datagram layers (with ``matches(data)``)
    #: for the UDP dispatcher and ``StreamLayer`` classes
    #: for the TCP ports given to :func:`p2pkit.capture.scapy_layers.register`.
    scapy: Ref = None
    #: CLI command group: ``(command, "module:attribute")``, imported only when it runs.
    cli: tuple[str, str] | None = None
    #: Conformance catalog module (None until the protocol has one).
    conformance: Ref = None

    @property
    def transports(self) -> tuple[Literal["tcp", "udp"], ...]:
        """``("tcp",)``, ``("udp",)`` or both, from the decoders it has."""
        out: list[Literal["tcp", "udp"]] = []
        if self.stream_decoder is not None:
            out.append("tcp")
        if self.datagram_decoder is not None:
            out.append("udp")
        return tuple(out)

    def message_names(self) -> frozenset[str]:
        """:attr:`messages`, loaded."""
        value = load(self.messages)
        return frozenset(value() if callable(value) else value)

    def field_names(self) -> frozenset[str]:
        """Top-level field names records of this protocol can carry: every field named in
        :attr:`schemas` (walked recursively) plus :attr:`fields`."""
        return _field_names(self)


_registry: dict[str, ProtocolDescriptor] = {}
_builtins_loaded = False


def register(descriptor: ProtocolDescriptor, *, replace: bool = False) -> ProtocolDescriptor:
    """Add ``descriptor``; a second protocol of the same name is an error unless ``replace``.

    >>> toy = register(ProtocolDescriptor(name="doctest-toy", title="Toy"))
    >>> get("doctest-toy") is toy
    True
    >>> unregister("doctest-toy")
    """
    _load_builtins()
    if descriptor.name in _registry and not replace:
        raise ValueError(f"protocol {descriptor.name!r} is already registered")
    _registry[descriptor.name] = descriptor
    _field_names.cache_clear()
    return descriptor


def unregister(name: str) -> None:
    """Remove a protocol (tests that register a toy protocol clean up with this)."""
    _registry.pop(name, None)
    _field_names.cache_clear()


def _load_builtins() -> None:
    global _builtins_loaded
    if _builtins_loaded:
        return
    _builtins_loaded = True
    for module in BUILTIN_MODULES:
        for descriptor in importlib.import_module(module).DESCRIPTORS:
            _registry.setdefault(descriptor.name, descriptor)


def all_descriptors() -> tuple[ProtocolDescriptor, ...]:
    """Every registered protocol, in registration order."""
    _load_builtins()
    return tuple(_registry.values())


def names() -> tuple[str, ...]:
    """Every registered protocol's name, in registration order."""
    return tuple(d.name for d in all_descriptors())


def get(name: str) -> ProtocolDescriptor:
    """The protocol called ``name``; :class:`ParseError` (one line, listing the known names)
    if there is none."""
    _load_builtins()
    try:
        return _registry[name]
    except KeyError:
        raise ParseError(f"unknown protocol {name!r} (known: {', '.join(names())})",
                         protocol="registry") from None


def stream_protocols() -> tuple[ProtocolDescriptor, ...]:
    """Protocols with a stream decoder, in detection order (ascending priority)."""
    return tuple(sorted((d for d in all_descriptors() if d.stream_decoder is not None),
                        key=lambda d: d.priority))


def datagram_protocols() -> tuple[ProtocolDescriptor, ...]:
    """Protocols with a datagram decoder, in detection order (ascending priority)."""
    return tuple(sorted((d for d in all_descriptors() if d.datagram_decoder is not None),
                        key=lambda d: d.priority))


def load(ref: Ref) -> Any:
    """The object a ``"module:attribute"`` string names (anything else is returned as is).

    >>> load("p2pkit.errors:ParseError").__name__
    'ParseError'
    """
    if isinstance(ref, str) and ":" in ref:
        return _import(ref)
    return ref


@functools.cache
def _import(ref: str) -> Any:
    module, _, attribute = ref.partition(":")
    obj: Any = importlib.import_module(module)
    for part in attribute.split("."):
        obj = getattr(obj, part)
    return obj


def _resolve_dotted(dotted: str) -> Any:
    """``p2pkit.dht.krpc.ARGUMENTS`` -> the object (the longest importable module prefix)."""
    if ":" in dotted:
        return _import(dotted)
    module, _, attribute = dotted.rpartition(".")
    while module:
        try:
            obj: Any = importlib.import_module(module)
        except ImportError:
            module, _, head = module.rpartition(".")
            attribute = f"{head}.{attribute}"
            continue
        for part in attribute.split("."):
            obj = getattr(obj, part)
        return obj
    raise ImportError(f"cannot import any module of {dotted!r}")


def schema_objects(descriptor: ProtocolDescriptor) -> Iterator[tuple[str, Any]]:
    """``(dotted path, object)`` of each of the descriptor's :attr:`~ProtocolDescriptor.schemas`."""
    for dotted in descriptor.schemas:
        yield dotted, _resolve_dotted(dotted)


@functools.cache
def _field_names(descriptor: ProtocolDescriptor) -> frozenset[str]:
    found: set[str] = set()
    for _, obj in schema_objects(descriptor):
        _collect_names(obj, found, 0, set())
    extra = load(descriptor.fields)
    found.update(extra() if callable(extra) else extra)
    return frozenset(n for n in found if n and not n.startswith("_"))


def _collect_names(obj: Any, found: set[str], depth: int, seen: set[int]) -> None:
    """Field names of a construct tree (Structs, Switch cases, wrappers, message tables) or
    of a data table (mapping keys, enum members)."""
    import enum

    import construct

    if depth > 24 or id(obj) in seen:
        return
    seen.add(id(obj))
    if isinstance(obj, type) and issubclass(obj, enum.Enum):
        return
    if isinstance(obj, dict):
        for key, value in obj.items():
            if isinstance(key, str):
                found.add(key)
            elif isinstance(key, bytes):
                found.add(key.decode("latin-1"))
            _collect_held(value, found, depth, seen)
        return
    if not isinstance(obj, construct.Construct):
        by_id = getattr(obj, "by_id", None)
        if isinstance(by_id, dict):
            _collect_names(by_id, found, depth + 1, seen)
        return
    name = getattr(obj, "name", None)
    if isinstance(name, str):
        found.add(name)
    for attr in ("subcons",):
        for sub in getattr(obj, attr, None) or ():
            _collect_names(sub, found, depth + 1, seen)
    for attr in ("subcon", "thensubcon", "elsesubcon", "default"):
        sub = getattr(obj, attr, None)
        if isinstance(sub, construct.Construct):
            _collect_names(sub, found, depth + 1, seen)
    cases = getattr(obj, "cases", None)
    if isinstance(cases, dict):
        for sub in cases.values():
            _collect_names(sub, found, depth + 1, seen)
    if type(obj).__module__.startswith("construct"):
        return
    # a hand-written construct (p2pkit's message switches, variants, adapters): what it and
    # its class hold
    for value in (*vars(type(obj)).values(), *vars(obj).values()):
        _collect_held(value, found, depth, seen)


def _collect_held(value: Any, found: set[str], depth: int, seen: set[int]) -> None:
    """Names in a value a construct or table holds: constructs, tables, and the identifiers
    beside them (``{id: (name, body)}``, ``(schema, "messages")``, a variant's field name)."""
    import construct

    if isinstance(value, str):
        if value.isidentifier():
            found.add(value)
    elif isinstance(value, (construct.Construct, dict)):
        _collect_names(value, found, depth + 1, seen)
    elif isinstance(value, (tuple, list)):
        for item in value:
            if isinstance(item, (str, construct.Construct, dict)):
                _collect_held(item, found, depth, seen)


def known_message_names(protocols: Iterable[str] = ()) -> frozenset[str]:
    """Message names of ``protocols`` (every protocol when empty)."""
    chosen = [get(p) for p in protocols] if protocols else all_descriptors()
    return frozenset().union(*(d.message_names() for d in chosen))


def known_field_names(protocols: Iterable[str] = ()) -> frozenset[str]:
    """Top-level record field names of ``protocols`` (every protocol when empty)."""
    chosen = [get(p) for p in protocols] if protocols else all_descriptors()
    return frozenset().union(*(d.field_names() for d in chosen))

