"""Shared verifiers: how a case judges the answer to one step.

A verifier looks at the :class:`Answer` to a step (the datagram, its lenient decode, the
deviations the decoder reported, the time it took) and returns a :class:`Check`: ok or not,
why, and the path of the first field that differs (the HTML report highlights it).

The verifiers the issue names: exact (:class:`Exact`), same message type (:class:`IsResponse`,
:class:`IsError`), field rules (:class:`Field` with :class:`Equals`, :class:`Length`,
:class:`Present`, :class:`Absent`, :class:`Between`, :class:`In`, :class:`Satisfies`), any
valid by schema (:class:`ValidBySchema`, which uses the lenient decoder's ``Deviation``
records so each rule is written once), one of (:class:`OneOf`), within bounds
(:class:`Between`), timing window (:class:`Within`), and :class:`Silence` (no answer).

>>> from p2pkit.dht import krpc
>>> answer = Answer.of(krpc.encode(krpc.response(b"aa", id=bytes(20))), elapsed=0.01)
>>> All(IsResponse(), Field("r.id", Length(20))).check(answer, None).ok
True
>>> failed = Field("r.id", Length(19)).check(answer, None)
>>> failed.reason, failed.path, failed.expected, failed.got
('r.id: 20 bytes, expected 19', 'r.id', 'length 19', '0000000000000000000000000000000000000000')
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from p2pkit.deviations import Deviation
from p2pkit.dht import krpc
from p2pkit.errors import P2PKitError

__all__ = [
    "Absent",
    "All",
    "Answer",
    "Anything",
    "Answered",
    "Between",
    "Check",
    "Echo",
    "Equals",
    "Exact",
    "Field",
    "In",
    "IsError",
    "IsResponse",
    "Length",
    "MISSING",
    "NoQueries",
    "NoDeviation",
    "OneOf",
    "Present",
    "Satisfies",
    "Silence",
    "ValidBySchema",
    "Verifier",
    "Within",
    "lookup",
    "shown",
]

#: What :func:`lookup` returns for an absent field.
MISSING = _MISSING = object()


@dataclass(frozen=True)
class Check:
    """A verifier's finding: ``path`` names the first differing field, if any, ``expected``
    and ``got`` say what the rule wanted there and what the answer held (``"missing"`` for an
    absent field), and ``index`` which message of the step's answer it is (streams, where a
    step's answer is several messages). The reports mark that field in the received tree.
    """

    ok: bool
    reason: str = ""
    path: str | None = None
    expected: str | None = None
    got: str | None = None
    index: int | None = None


OK = Check(True)


@dataclass
class Answer:
    """What the target sent back to one step (``data`` is None when nothing came)."""

    data: bytes | None
    message: Any = None
    deviations: list[Deviation] = field(default_factory=list)
    #: Why ``data`` is not a KRPC message, when it is not.
    error: str | None = None
    elapsed: float = 0.0

    #: What the answers are (reasons say "not KRPC"); other protocols' answers subclass this.
    WHAT = "KRPC"
    #: The registry protocol whose dissector decodes these bytes for the reports' field trees
    #: (the tree ``p2pkit dissect -V`` shows).
    DISSECTOR = "bt-dht"
    #: A verifier path's first part -> the field the dissector's record shows it as (``""``:
    #: the record's message line, which names the message type).
    TREE_ALIASES: ClassVar[Mapping[str, str]] = {"t": "transaction_id", "q": "method", "y": ""}

    @classmethod
    def decode_request(cls, data: bytes) -> Answer:
        """What the harness sent, decoded for the report (KRPC: the same decoder)."""
        return cls.of(data)

    @classmethod
    def of(cls, data: bytes | None, elapsed: float = 0.0) -> Answer:
        """Decode ``data`` leniently (the dissector's decoder) and keep the deviations."""
        if data is None:
            return cls(None, elapsed=elapsed)
        try:
            decoded = krpc.decode_lenient(data)
        except P2PKitError as e:
            return cls(data, error=str(e), elapsed=elapsed)
        return cls(data, decoded.message, list(decoded.deviations), elapsed=elapsed)

    def get(self, path: str) -> Any:
        """The value at a dotted path (``r.token``, ``e.code``), or a sentinel when absent."""
        return lookup(self.message, path)

    @property
    def kind(self) -> str:
        """``"r"``, ``"e"``, ``"q"``, ``"silence"`` or ``"not-krpc"``."""
        if self.data is None:
            return "silence"
        if self.message is None:
            return "not-krpc"
        return str(self.message.get("y"))


def lookup(value: Any, path: str) -> Any:
    """``value`` followed along a dotted path of mapping keys and list indexes.

    >>> lookup({"r": {"values": [1, 2]}}, "r.values.1"), lookup({}, "r.id") is _MISSING
    (2, True)
    """
    for part in path.split("."):
        if isinstance(value, Mapping):
            value = value.get(part, _MISSING)
        elif isinstance(value, (list, tuple)) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return _MISSING
        if value is _MISSING:
            return _MISSING
    return value


def shown(value: Any) -> str:
    """A field's value as a report shows it; ``"missing"`` for an absent one."""
    return "missing" if value is _MISSING else _show(value)


def _show(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(int(value))  # an ErrorCode shows as its number
    if isinstance(value, bytes):
        return value.hex() if len(value) <= 32 else f"{len(value)} bytes"
    return repr(value)


class Verifier:
    """Base: ``check(answer, ctx) -> Check``; ``describe()`` is the report's text."""

    def check(self, answer: Answer, ctx: Any) -> Check:
        raise NotImplementedError

    def describe(self) -> str:
        return type(self).__name__

    @property
    def wants_silence(self) -> bool:
        return False


def _resolve(ctx: Any, value: Any) -> Any:
    return ctx.resolve(value) if ctx is not None else value


def _needs_answer(answer: Answer) -> Check | None:
    if answer.data is None:
        return Check(False, "no answer", "", expected="an answer", got="no answer")
    if answer.message is None:
        return Check(False, f"answer is not {answer.WHAT}: {answer.error}", "",
                     expected=answer.WHAT, got=f"undecodable ({answer.error})")
    return None


# ---- field rules ---------------------------------------------------------------------------

class Rule:
    """A predicate on one field's value (``_MISSING`` when absent); returns a reason or ''."""

    def __call__(self, value: Any, ctx: Any) -> str:
        raise NotImplementedError

    def describe(self) -> str:
        return type(self).__name__.lower()


class Present(Rule):
    def __call__(self, value: Any, ctx: Any) -> str:
        return "missing" if value is _MISSING else ""

    def describe(self) -> str:
        return "present"


class Absent(Rule):
    def __call__(self, value: Any, ctx: Any) -> str:
        return "" if value is _MISSING else f"present ({_show(value)}), expected absent"

    def describe(self) -> str:
        return "absent"


@dataclass
class Equals(Rule):
    expected: Any

    def __call__(self, value: Any, ctx: Any) -> str:
        expected = _resolve(ctx, self.expected)
        if value is _MISSING:
            return f"missing, expected {_show(expected)}"
        if isinstance(expected, int) and not isinstance(value, bool) and isinstance(value, int):
            return "" if int(value) == int(expected) else f"{value}, expected {expected}"
        return "" if value == expected else f"{_show(value)}, expected {_show(expected)}"

    def describe(self) -> str:
        return f"= {self.expected!r}"


@dataclass
class Length(Rule):
    """A string's (or list's) length: exact, or a multiple of ``multiple_of``."""

    length: int | None = None
    multiple_of: int | None = None

    def __call__(self, value: Any, ctx: Any) -> str:
        if value is _MISSING:
            return "missing"
        if not isinstance(value, (bytes, list, tuple)):
            return f"{type(value).__name__}, expected a string"
        n = len(value)
        unit = "bytes" if isinstance(value, bytes) else "items"
        if self.length is not None and n != self.length:
            return f"{n} {unit}, expected {self.length}"
        if self.multiple_of and n % self.multiple_of:
            return f"{n} {unit}, not a multiple of {self.multiple_of}"
        return ""

    def describe(self) -> str:
        return (f"length {self.length}" if self.length is not None
                else f"length multiple of {self.multiple_of}")


@dataclass
class Between(Rule):
    low: int
    high: int

    def __call__(self, value: Any, ctx: Any) -> str:
        if value is _MISSING:
            return "missing"
        if isinstance(value, bool) or not isinstance(value, int):
            return f"{_show(value)}, expected an integer"
        return "" if self.low <= value <= self.high else (
            f"{value} outside [{self.low}, {self.high}]")

    def describe(self) -> str:
        return f"in [{self.low}, {self.high}]"


@dataclass
class In(Rule):
    values: tuple

    def __call__(self, value: Any, ctx: Any) -> str:
        if value is _MISSING:
            return "missing"
        return "" if value in self.values else f"{_show(value)}, expected one of {self.values}"

    def describe(self) -> str:
        return f"one of {self.values}"


@dataclass
class Satisfies(Rule):
    """Any predicate ``fn(value, ctx) -> bool``, with the text the report shows."""

    fn: Callable[[Any, Any], bool]
    text: str

    def __call__(self, value: Any, ctx: Any) -> str:
        if value is _MISSING:
            return f"missing, expected {self.text}"
        try:
            return "" if self.fn(value, ctx) else f"{_show(value)}: not {self.text}"
        except (TypeError, ValueError, KeyError, AttributeError, P2PKitError) as e:
            return f"{_show(value)}: not {self.text} ({e})"

    def describe(self) -> str:
        return self.text


# ---- verifiers -----------------------------------------------------------------------------

@dataclass
class Field(Verifier):
    """The answer's field at ``path`` satisfies ``rule``."""

    path: str
    rule: Rule

    def check(self, answer: Answer, ctx: Any) -> Check:
        missing = _needs_answer(answer)
        if missing:
            return missing
        value = answer.get(self.path)
        reason = self.rule(value, ctx)
        return Check(False, f"{self.path}: {reason}", self.path, expected=self.rule.describe(),
                     got=shown(value)) if reason else OK

    def describe(self) -> str:
        return f"{self.path} {self.rule.describe()}"


@dataclass
class IsResponse(Verifier):
    """Same message type: a response (``y`` = ``r``)."""

    def check(self, answer: Answer, ctx: Any) -> Check:
        missing = _needs_answer(answer)
        if missing:
            return missing
        if answer.kind == "e":
            e = answer.get("e")
            return Check(False, f"error {_show(lookup(e, 'code'))} "
                                f"{_show(lookup(e, 'message'))}, expected a response", "y",
                         expected="r", got="e")
        return OK if answer.kind == "r" else Check(False, f"y is {answer.kind!r}, expected 'r'",
                                                    "y", expected="r", got=answer.kind)

    def describe(self) -> str:
        return "a response (y = r)"


@dataclass
class IsError(Verifier):
    """An error with one of ``codes`` (any code when empty)."""

    codes: tuple[int, ...] = ()

    def check(self, answer: Answer, ctx: Any) -> Check:
        missing = _needs_answer(answer)
        if missing:
            return missing
        if answer.kind != "e":
            return Check(False, f"y is {answer.kind!r}, expected an error "
                                f"{'/'.join(map(str, self.codes))}".rstrip(), "y",
                         expected="e", got=answer.kind)
        code = answer.get("e.code")
        if self.codes and (code is _MISSING or int(code) not in self.codes):
            return Check(False, f"error code {_show(code)}, expected "
                                f"{' or '.join(map(str, self.codes))}", "e.code",
                         expected=" or ".join(map(str, self.codes)), got=shown(code))
        return OK

    def describe(self) -> str:
        return f"an error {' or '.join(map(str, self.codes))}".rstrip()


@dataclass
class Echo(Verifier):
    """``t`` is the transaction id the step sent (BEP 5: "echoed in the response"); another
    ``path`` for other protocols (BEP 15's ``transaction_id``)."""

    path: str = "t"

    def check(self, answer: Answer, ctx: Any) -> Check:
        missing = _needs_answer(answer)
        if missing:
            return missing
        sent = ctx.current_t
        got = answer.get(self.path)
        return OK if got == sent else Check(
            False, f"{self.path} is {shown(got)}, expected {_show(sent)}", self.path,
            expected=_show(sent), got=shown(got))

    def describe(self) -> str:
        return f"{self.path} echoes the request's transaction id"


@dataclass
class Exact(Verifier):
    """Every listed field equals its expected value (placeholders resolved)."""

    fields: Mapping[str, Any]

    def check(self, answer: Answer, ctx: Any) -> Check:
        for path, expected in self.fields.items():
            result = Field(path, Equals(expected)).check(answer, ctx)
            if not result.ok:
                return result
        return OK

    def describe(self) -> str:
        return "exactly " + ", ".join(f"{k} = {v!r}" for k, v in self.fields.items())


@dataclass
class ValidBySchema(Verifier):
    """The answer decodes with the strict KRPC schema, and the lenient decoder reports no
    deviation of level MUST (the deviations of ``p2pkit.dht.krpc`` and ``p2pkit.bencode``)."""

    def check(self, answer: Answer, ctx: Any) -> Check:
        missing = _needs_answer(answer)
        if missing:
            return missing
        for d in answer.deviations:
            if d.level == "MUST":
                return Check(False, f"{d.message} [{d.rule}; {d.spec}]", _deviation_path(d),
                             expected="no MUST deviation", got=f"{d.rule}: {d.message}")
        try:
            krpc.KrpcMessage.parse(answer.data)
        except P2PKitError as e:
            return Check(False, f"strict schema: {e}", "", expected="valid by the schema",
                         got=str(e))
        return OK

    def describe(self) -> str:
        return "valid by the KRPC schema (no MUST deviation)"


def _deviation_path(d: Deviation) -> str:
    return d.message.partition(":")[0] if ":" in d.message else ""


@dataclass
class NoDeviation(Verifier):
    """No lenient-decoder deviation whose rule starts with ``prefix``, of one of ``levels``
    (any level when empty)."""

    prefix: str = ""
    levels: tuple[str, ...] = ()

    def check(self, answer: Answer, ctx: Any) -> Check:
        missing = _needs_answer(answer)
        if missing:
            return missing
        for d in answer.deviations:
            if d.rule.startswith(self.prefix) and (not self.levels or d.level in self.levels):
                return Check(False, f"{d.message} [{d.rule}; {d.spec}]", _deviation_path(d),
                             expected=f"no deviation {self.prefix}*", got=f"{d.rule}: {d.message}")
        return OK

    def describe(self) -> str:
        levels = "/".join(self.levels)
        return f"no {levels + ' ' if levels else ''}deviation {self.prefix}*"


@dataclass
class Within(Verifier):
    """Timing window: the answer came within ``seconds``."""

    seconds: float

    def check(self, answer: Answer, ctx: Any) -> Check:
        if answer.data is None:
            return Check(False, "no answer", "")
        return OK if answer.elapsed <= self.seconds else Check(
            False, f"answered after {answer.elapsed:.3f} s, expected within {self.seconds} s",
            expected=f"within {self.seconds} s", got=f"{answer.elapsed:.3f} s")

    def describe(self) -> str:
        return f"answered within {self.seconds} s"


@dataclass
class Answered(Verifier):
    """Any datagram came back (the liveness probe: no judgement of its content)."""

    def check(self, answer: Answer, ctx: Any) -> Check:
        return OK if answer.data is not None else Check(False, "no answer", "")

    def describe(self) -> str:
        return "any answer"


@dataclass
class Anything(Verifier):
    """Any outcome: an answer of any kind, or none (robustness cases, whose verdict is the
    probe that follows)."""

    def check(self, answer: Answer, ctx: Any) -> Check:
        return OK

    def describe(self) -> str:
        return "anything (the probe after the case decides)"

    @property
    def wants_silence(self) -> bool:
        return True


@dataclass
class Silence(Verifier):
    """No answer within the step's window."""

    def check(self, answer: Answer, ctx: Any) -> Check:
        if answer.data is None:
            return OK
        return Check(False, f"answered ({answer.kind}), expected no answer", "y",
                     expected="no answer", got=answer.kind)

    def describe(self) -> str:
        return "no answer"

    @property
    def wants_silence(self) -> bool:
        return True


@dataclass
class All(Verifier):
    """Every verifier holds (the first failure is reported)."""

    verifiers: tuple[Verifier, ...]

    def __init__(self, *verifiers: Verifier) -> None:
        self.verifiers = verifiers

    def check(self, answer: Answer, ctx: Any) -> Check:
        for v in self.verifiers:
            result = v.check(answer, ctx)
            if not result.ok:
                return result
        return OK

    def describe(self) -> str:
        return " and ".join(v.describe() for v in self.verifiers)

    @property
    def wants_silence(self) -> bool:
        return any(v.wants_silence for v in self.verifiers)


@dataclass
class OneOf(Verifier):
    """At least one verifier holds."""

    verifiers: tuple[Verifier, ...]

    def __init__(self, *verifiers: Verifier) -> None:
        self.verifiers = verifiers

    def check(self, answer: Answer, ctx: Any) -> Check:
        results = [v.check(answer, ctx) for v in self.verifiers]
        if any(r.ok for r in results):
            return OK
        first = results[0]  # the difference shown is the first alternative's
        return Check(False, " / ".join(r.reason for r in results), first.path,
                     expected=first.expected or self.describe(), got=first.got,
                     index=first.index)

    def describe(self) -> str:
        return "one of: " + " | ".join(v.describe() for v in self.verifiers)

    @property
    def wants_silence(self) -> bool:
        # a late answer must still be judged: listen the full window unless every
        # alternative is content with silence
        return all(v.wants_silence for v in self.verifiers)


@dataclass
class NoQueries(Verifier):
    """The target sent the case's sockets no query of its own (``method`` only, if given)."""

    method: str | None = None

    def check(self, answer: Answer, ctx: Any) -> Check:
        for data in ctx.queries_received:
            got = Answer.of(data)
            method = got.get("method") if got.message is not None else None
            if self.method is None or method == self.method:
                return Check(False, f"the target sent a {method} query", "q",
                             expected="no query", got=str(method))
        return OK

    def describe(self) -> str:
        return f"no {self.method or ''} query from the target".replace("  ", " ")
