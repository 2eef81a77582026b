"""A trace's manifest: which session of its capture, who is under test, what is fresh in each
run, and how each answer is judged (``manifest.json``, format ``p2pkit-trace/1``).

A trace is a directory holding ``trace.pcap`` (one session, cut out of a capture) and
``manifest.json``. The manifest is validated on load: every error names the file, the field
path and what was expected (:class:`~p2pkit.conformance.trace_session.TraceError`).

Answer rules are JSON spellings of the shared verifiers (:mod:`p2pkit.conformance.verifiers`,
:mod:`p2pkit.conformance.stream_verifiers`), built by :func:`verifier_of`; there is no second
set of verifiers:

=====================================  ====================================================
``{"response": true}``                 :class:`~p2pkit.conformance.verifiers.IsResponse`
``{"error": [201, 203]}``              :class:`~p2pkit.conformance.verifiers.IsError`
``{"echo": "t"}``                      :class:`~p2pkit.conformance.verifiers.Echo`
``{"field": P, "equals": V}``          :class:`~p2pkit.conformance.verifiers.Field` +
                                       ``Equals`` (also ``length``, ``present``, ``absent``,
                                       ``between: [lo, hi]``, ``in: [...]``)
``{"exact": {P: V, ...}}``             :class:`~p2pkit.conformance.verifiers.Exact`
``{"valid": true}``                    :class:`~p2pkit.conformance.verifiers.ValidBySchema`
``{"one_of": [RULE, ...]}``            :class:`~p2pkit.conformance.verifiers.OneOf`
``{"within": SECONDS}``                :class:`~p2pkit.conformance.verifiers.Within`
``{"silence": true}``                  :class:`~p2pkit.conformance.verifiers.Silence`
``{"receives": T, "fields": {P: V}}``  :class:`~p2pkit.conformance.stream_verifiers.Receives`
``{"closes": true}``                   :class:`~p2pkit.conformance.stream_verifiers.Closes`
``{"stays_open": true}``               :class:`~p2pkit.conformance.stream_verifiers.StaysOpen`
=====================================  ====================================================

A value ``V`` is JSON, ``{"hex": "..."}`` for bytes, or ``{"fresh": NAME}`` for the value a
fresh placeholder took in this run. A field rule's operand may itself be
``{"between": [lo, hi]}``, ``{"length": n}``, ``{"in": [...]}``, ``{"present": true}``.

>>> m = parse_manifest({"format": FORMAT, "id": "dht/trace/x", "title": "t",
...     "protocol": "dht", "provenance": {"source": "s", "software": "w", "cut": "c"},
...     "session": {"transport": "udp", "client": "127.0.0.1:1", "server": "127.0.0.2:2"},
...     "steps": [{"frame": 1, "expect": [{"response": True}, {"echo": "t"}]}]})
>>> m.steps[0].frame, verifier_of(m.steps[0].expect[1], m).describe()
(1, "t echoes the request's transaction id")
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from p2pkit.addresses import parse_host_port
from p2pkit.conformance.case import LEVELS, Computed
from p2pkit.conformance.stream_verifiers import Closes, Receives, StaysOpen
from p2pkit.conformance.trace_session import HARNESS_PROTOCOLS, TraceError
from p2pkit.conformance.verifiers import (
    Absent,
    All,
    Between,
    Echo,
    Equals,
    Exact,
    Field,
    In,
    IsError,
    IsResponse,
    Length,
    OneOf,
    Present,
    Rule,
    Silence,
    ValidBySchema,
    Verifier,
    Within,
)

__all__ = [
    "CAPTURE_NAME",
    "FORMAT",
    "Fresh",
    "MANIFEST_NAME",
    "MAX_MANIFEST_BYTES",
    "Manifest",
    "TraceStep",
    "load_manifest",
    "parse_manifest",
    "verifier_of",
]

FORMAT = "p2pkit-trace/1"
MANIFEST_NAME = "manifest.json"
CAPTURE_NAME = "trace.pcap"
#: A manifest larger than this is refused before it is parsed.
MAX_MANIFEST_BYTES = 1 << 20
#: Stream protocols (their answers are the dissector's records); the others are datagrams.
STREAM_PROTOCOLS = ("bittorrent", "gnutella")
_PROTOCOLS = tuple(sorted(set(HARNESS_PROTOCOLS.values())))
_FIELD_OPS = ("equals", "length", "present", "absent", "between", "in")


@dataclass(frozen=True)
class Fresh:
    """A recorded value that must be fresh in each run: every occurrence of ``recorded`` in
    what the harness replays is replaced. Fresh random bytes of the same length, or, with
    ``from_step``, the value at ``path`` of the target's answer to that step (a token, a
    connection id)."""

    name: str
    recorded: bytes | int
    from_step: int | None = None
    path: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "recorded": (
            {"hex": self.recorded.hex()} if isinstance(self.recorded, bytes) else self.recorded)}
        if self.from_step is not None:
            out.update(from_step=self.from_step, path=self.path)
        return out


@dataclass(frozen=True)
class TraceStep:
    """One replayed message (UDP) or run of the client's bytes (TCP), by its first frame in
    ``trace.pcap``, and the rules the target's answer must satisfy (all of them)."""

    frame: int
    expect: tuple[Mapping[str, Any], ...] = ()
    #: Seconds to wait for the answer (default: the run's timeout).
    wait: float | None = None
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"frame": self.frame, "expect": [dict(r) for r in self.expect]}
        if self.wait is not None:
            out["wait"] = self.wait
        if self.note:
            out["note"] = self.note
        return out


@dataclass(frozen=True)
class Manifest:
    """A parsed, validated ``manifest.json``."""

    id: str
    title: str
    protocol: str
    provenance: Mapping[str, str]
    transport: str
    client: str
    server: str
    steps: tuple[TraceStep, ...]
    fresh: tuple[Fresh, ...] = ()
    level: str = "MUST"
    spec: str = ""
    requirement: str = ""
    #: BitTorrent: the torrent the target must seed (hex info-hash, as in the handshake).
    info_hash: str | None = None
    capture: str = CAPTURE_NAME
    path: Path | None = field(default=None, compare=False)

    @property
    def stream(self) -> bool:
        return self.protocol in STREAM_PROTOCOLS

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "format": FORMAT, "id": self.id, "title": self.title, "protocol": self.protocol,
            "level": self.level, "spec": self.spec, "requirement": self.requirement,
            "provenance": dict(self.provenance), "capture": self.capture,
            "session": {"transport": self.transport, "client": self.client,
                        "server": self.server},
        }
        if self.info_hash:
            out["info_hash"] = self.info_hash
        out["fresh"] = [f.to_json() for f in self.fresh]
        out["steps"] = [s.to_json() for s in self.steps]
        return out

    def dump(self, directory: Path) -> Path:
        path = Path(directory) / MANIFEST_NAME
        path.write_text(json.dumps(self.to_json(), indent=1) + "\n")
        return path


class _Where:
    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, path: str, message: str) -> TraceError:
        return TraceError(f"{self.source}: {path}: {message}")

    def get(self, doc: Mapping[str, Any], key: str, kind: type | tuple[type, ...], path: str,
            default: Any = ...) -> Any:
        """``doc[key]``, checked to be of ``kind`` (``default`` when absent, if given)."""
        if key not in doc:
            if default is ...:
                raise self.fail(f"{path}{key}", "missing")
            return default
        value = doc[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            names = " or ".join(_KIND_NAMES.get(k, k.__name__) for k in kinds)
            raise self.fail(f"{path}{key}", f"expected {names}, got {type(value).__name__}")
        return value


_KIND_NAMES = {int: "an int", float: "a number", str: "a string", list: "a list",
               Mapping: "an object"}


def _recorded(value: Any, where: _Where, path: str) -> bytes | int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, Mapping) and isinstance(value.get("hex"), str):
        try:
            return bytes.fromhex(value["hex"])
        except ValueError:
            raise where.fail(path, "hex: not hexadecimal") from None
    raise where.fail(path, 'expected an integer or {"hex": "..."}')


def parse_manifest(doc: Any, source: str = MANIFEST_NAME) -> Manifest:
    """Validate a decoded manifest; :class:`TraceError` naming the first bad field."""
    w = _Where(source)
    if not isinstance(doc, Mapping):
        raise w.fail("(top)", f"expected an object, got {type(doc).__name__}")
    fmt = w.get(doc, "format", str, "")
    if fmt != FORMAT:
        raise w.fail("format", f"{fmt!r}, expected {FORMAT!r}")
    protocol = w.get(doc, "protocol", str, "")
    if protocol not in _PROTOCOLS:
        raise w.fail("protocol", f"{protocol!r}, expected one of {', '.join(_PROTOCOLS)}")
    session = w.get(doc, "session", Mapping, "")
    transport = w.get(session, "transport", str, "session.")
    if transport not in ("tcp", "udp"):
        raise w.fail("session.transport", f"{transport!r}, expected 'tcp' or 'udp'")
    if (transport == "tcp") != (protocol in STREAM_PROTOCOLS):
        raise w.fail("session.transport", f"{protocol} traces are replayed over "
                                          f"{'tcp' if protocol in STREAM_PROTOCOLS else 'udp'}")
    ends = {}
    for key in ("client", "server"):
        text = w.get(session, key, str, "session.")
        try:
            parse_host_port(text)
        except ValueError as e:
            raise w.fail(f"session.{key}", str(e)) from None
        ends[key] = text
    provenance = w.get(doc, "provenance", Mapping, "")
    for key in ("source", "software", "cut"):
        w.get(provenance, key, str, "provenance.")
    level = w.get(doc, "level", str, "", "MUST")
    if level not in LEVELS:
        raise w.fail("level", f"{level!r}, expected one of {', '.join(LEVELS)}")
    fresh = []
    for i, item in enumerate(w.get(doc, "fresh", list, "", [])):
        at = f"fresh.{i}."
        if not isinstance(item, Mapping):
            raise w.fail(f"fresh.{i}", "expected an object")
        name = w.get(item, "name", str, at)
        recorded = _recorded(item.get("recorded"), w, f"{at}recorded")
        from_step = w.get(item, "from_step", int, at, None)
        path = w.get(item, "path", str, at, None)
        if (from_step is None) != (path is None):
            raise w.fail(f"{at}path", "from_step and path go together")
        fresh.append(Fresh(name, recorded, from_step, path))
    steps = []
    raw_steps = w.get(doc, "steps", list, "")
    if not raw_steps:
        raise w.fail("steps", "a trace needs at least one step")
    for i, item in enumerate(raw_steps):
        at = f"steps.{i}."
        if not isinstance(item, Mapping):
            raise w.fail(f"steps.{i}", "expected an object")
        frame = w.get(item, "frame", int, at)
        expect = w.get(item, "expect", list, at, [])
        wait = w.get(item, "wait", (int, float), at, None)
        if wait is not None and not 0 < wait <= 60:
            raise w.fail(f"{at}wait", f"{wait} outside (0, 60] seconds")
        steps.append(TraceStep(frame, tuple(expect), wait, w.get(item, "note", str, at, "")))
    for f in fresh:
        if f.from_step is not None and not 0 <= f.from_step < len(steps):
            raise w.fail(f"fresh ({f.name}).from_step", f"{f.from_step}: no such step")
    manifest = Manifest(
        id=w.get(doc, "id", str, ""), title=w.get(doc, "title", str, ""), protocol=protocol,
        provenance=dict(provenance), transport=transport, client=ends["client"],
        server=ends["server"], steps=tuple(steps), fresh=tuple(fresh), level=level,
        spec=w.get(doc, "spec", str, "", ""), requirement=w.get(doc, "requirement", str, "", ""),
        info_hash=w.get(doc, "info_hash", str, "", None),
        capture=w.get(doc, "capture", str, "", CAPTURE_NAME))
    if not manifest.id.startswith(f"{protocol}/"):
        raise w.fail("id", f"{manifest.id!r} must start with {protocol + '/'!r}")
    if "/" in manifest.capture or manifest.capture.startswith("."):
        raise w.fail("capture", "a file name inside the trace directory")
    if protocol == "bittorrent":
        try:
            if len(bytes.fromhex(manifest.info_hash or "")) not in (20, 32):
                raise ValueError
        except ValueError:
            raise w.fail("info_hash", "a bittorrent trace names the torrent's info-hash "
                                      "(40 or 64 hex digits)") from None
    for i, step in enumerate(manifest.steps):
        for j, rule in enumerate(step.expect):
            try:
                verifier_of(rule, manifest)
            except TraceError as e:
                raise w.fail(f"steps.{i}.expect.{j}", str(e)) from None
    return manifest


def load_manifest(directory: str | Path) -> Manifest:
    """Read and validate ``directory/manifest.json``."""
    path = Path(directory) / MANIFEST_NAME
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_MANIFEST_BYTES + 1)
    except FileNotFoundError:
        raise TraceError(f"{directory}: no {MANIFEST_NAME} (not a trace directory)") from None
    except OSError as e:
        raise TraceError(f"{path}: {e.strerror or e}") from None
    if len(data) > MAX_MANIFEST_BYTES:
        raise TraceError(f"{path}: larger than {MAX_MANIFEST_BYTES} bytes")
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise TraceError(f"{path}: not JSON ({e})") from None
    return dataclasses.replace(parse_manifest(doc, str(path)), path=Path(directory))


# ---- rules -> the shared verifiers ---------------------------------------------------------

def fresh_value(ctx: Any, fresh: Fresh) -> Any:
    """The value ``fresh`` takes in this run (``ctx``: the case context)."""
    if fresh.from_step is not None:
        answer = ctx.answers.get(f"s{fresh.from_step}")
        value = answer.get(fresh.path) if answer is not None else None
        if isinstance(value, (bytes, int)) and not isinstance(value, bool):
            return value
        raise KeyError(f"no {fresh.path} in the answer to step {fresh.from_step + 1}")
    if isinstance(fresh.recorded, int):
        if fresh.recorded < 1 << 16:  # a port: a fresh unprivileged one, the same all run
            seed = int.from_bytes(ctx.fresh(f"trace:{fresh.name}", 2), "big")
            return 1024 + seed % ((1 << 16) - 1024)
        width = max((fresh.recorded.bit_length() + 7) // 8, 4)
        return int.from_bytes(ctx.fresh(f"trace:{fresh.name}", width), "big")
    return ctx.fresh(f"trace:{fresh.name}", len(fresh.recorded))


def _value(value: Any, manifest: Manifest) -> Any:
    if isinstance(value, Mapping):
        if set(value) == {"hex"} and isinstance(value["hex"], str):
            try:
                data = bytes.fromhex(value["hex"])
            except ValueError:
                raise TraceError(f"{value['hex']!r} is not hexadecimal") from None
            return data.hex() if manifest.stream else data
        if set(value) == {"fresh"}:
            named = [f for f in manifest.fresh if f.name == value["fresh"]]
            if not named:
                raise TraceError(f"no fresh value named {value['fresh']!r}")
            fresh = named[0]
            stream = manifest.stream

            def resolve(ctx: Any) -> Any:
                got = fresh_value(ctx, fresh)
                return got.hex() if stream and isinstance(got, bytes) else got
            return Computed(resolve, f"fresh {fresh.name}")
        raise TraceError(f"a value is JSON, {{'hex': ...}} or {{'fresh': NAME}}, not {value!r}")
    return value


def _field_rule(operand: Any, manifest: Manifest) -> Rule:
    """A field's rule: a plain value (equals) or ``{op: operand}``."""
    if isinstance(operand, Mapping) and len(operand) == 1 and next(iter(operand)) in _FIELD_OPS:
        (op, arg), = operand.items()
        return _op(op, arg, manifest)
    return Equals(_value(operand, manifest))


def _op(op: str, arg: Any, manifest: Manifest) -> Rule:
    if op == "equals":
        return Equals(_value(arg, manifest))
    if op == "length":
        if not isinstance(arg, int) or isinstance(arg, bool) or arg < 0:
            raise TraceError(f"length: {arg!r}, expected a non-negative integer")
        return Length(arg)
    if op == "present":
        return Present()
    if op == "absent":
        return Absent()
    if op == "between":
        if not (isinstance(arg, list) and len(arg) == 2 and all(
                isinstance(x, int) and not isinstance(x, bool) for x in arg)):
            raise TraceError(f"between: {arg!r}, expected [low, high]")
        return Between(arg[0], arg[1])
    if op == "in":
        if not isinstance(arg, list) or not arg:
            raise TraceError(f"in: {arg!r}, expected a non-empty list")
        return In(tuple(_value(v, manifest) for v in arg))
    raise TraceError(f"unknown field operation {op!r}")


def verifier_of(rule: Any, manifest: Manifest) -> Verifier:
    """The shared verifier a JSON rule names (:class:`TraceError` for an unknown one)."""
    if not isinstance(rule, Mapping) or not rule:
        raise TraceError(f"a rule is an object, not {rule!r}")
    datagram_only = ("response", "error", "echo", "valid", "exact", "field", "silence")
    stream_only = ("receives", "closes", "stays_open")
    keys = set(rule)
    if manifest.stream and keys & set(datagram_only):
        raise TraceError(f"{sorted(keys & set(datagram_only))[0]!r} judges datagram answers; "
                         f"a {manifest.protocol} trace uses receives/closes/stays_open")
    if not manifest.stream and keys & set(stream_only):
        raise TraceError(f"{sorted(keys & set(stream_only))[0]!r} judges stream answers")
    if "field" in rule:
        ops = [k for k in rule if k in _FIELD_OPS]
        if len(ops) != 1 or set(rule) - {"field", *_FIELD_OPS}:
            raise TraceError(f"a field rule has one of {', '.join(_FIELD_OPS)}: {dict(rule)}")
        if not isinstance(rule["field"], str):
            raise TraceError("field: expected a dotted path")
        return Field(rule["field"], _op(ops[0], rule[ops[0]], manifest))
    if len(rule) != 1 and "receives" not in rule:
        raise TraceError(f"one rule per object: {dict(rule)}")
    (key, arg), = list(rule.items())[:1]
    if key == "response":
        return IsResponse()
    if key == "error":
        if not isinstance(arg, list) or not all(isinstance(c, int) for c in arg):
            raise TraceError("error: expected a list of error codes")
        return IsError(tuple(arg))
    if key == "echo":
        if not isinstance(arg, str):
            raise TraceError("echo: expected the path of the transaction id")
        return Echo(arg)
    if key == "valid":
        return ValidBySchema() if manifest.protocol == "dht" else Field("action", Present())
    if key == "exact":
        if not isinstance(arg, Mapping) or not arg:
            raise TraceError("exact: expected {path: value, ...}")
        return Exact({p: _value(v, manifest) for p, v in arg.items()})
    if key == "one_of":
        if not isinstance(arg, list) or len(arg) < 2:
            raise TraceError("one_of: expected a list of at least two rules")
        return OneOf(*(verifier_of(r, manifest) for r in arg))
    if key == "all":
        if not isinstance(arg, list) or not arg:
            raise TraceError("all: expected a list of rules")
        return All(*(verifier_of(r, manifest) for r in arg))
    if key == "within":
        if not isinstance(arg, (int, float)) or isinstance(arg, bool) or arg <= 0:
            raise TraceError("within: expected seconds > 0")
        return Within(float(arg))
    if key == "silence":
        return Silence()
    if key == "receives":
        if set(rule) - {"receives", "fields"} or not isinstance(arg, (str, list)):
            raise TraceError(f"receives: a message type and its fields: {dict(rule)}")
        fields = rule.get("fields", {})
        if not isinstance(fields, Mapping):
            raise TraceError("receives.fields: expected {path: value or rule}")
        types = arg if isinstance(arg, str) else tuple(arg)
        return Receives(types, session=True, any_match=True, **{
            p.replace(".", "__"): _field_rule(v, manifest) for p, v in fields.items()})
    if key == "closes":
        return Closes()
    if key == "stays_open":
        return StaysOpen()
    raise TraceError(f"unknown rule {key!r}")
