"""Shared verifiers for stream protocols: how a case judges what came back during one step.

Over a stream a step's answer (:class:`~p2pkit.conformance.stream_runner.StreamAnswer`) is
every message the target sent during the step's window, in order, and whether it closed the
connection. The stream runner reads until the step's verifier holds; verifiers that judge an
absence (:class:`NoMessage`, :class:`StaysOpen`) set ``wants_silence`` and see the whole
window. The field rules are the UDP verifiers' (:class:`~p2pkit.conformance.verifiers.Equals`,
:class:`~p2pkit.conformance.verifiers.Length`, :class:`~p2pkit.conformance.verifiers.Between`,
:class:`~p2pkit.conformance.verifiers.Satisfies` …), and so are
:class:`~p2pkit.conformance.verifiers.All` and :class:`~p2pkit.conformance.verifiers.OneOf`.

>>> from p2pkit.conformance.stream_runner import Session, StreamAnswer
>>> s = Session(messages=[{"type": "unchoke"}, {"type": "piece", "index": 3, "begin": 0}])
>>> answer = StreamAnswer(b"...", s.messages, s)
>>> Receives("piece", index=3).check(answer, None).ok
True
>>> Receives("piece", index=4).check(answer, None).reason
'piece.index: 3, expected 4'
>>> NoMessage("piece").check(answer, None).reason
'received a piece (index=3 begin=0)'
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from p2pkit.conformance.verifiers import (
    OK,
    Check,
    Equals,
    Rule,
    Verifier,
    _show,
    lookup,
    shown,
)

__all__ = [
    "Closes",
    "NoMessage",
    "Receives",
    "SessionRule",
    "StaysOpen",
    "summary",
]


def summary(message: dict[str, Any]) -> str:
    """One message in a line: ``piece (index=3 begin=0)``."""
    fields = " ".join(f"{k}={_show(v)}" for k, v in message.items()
                      if k != "type" and not isinstance(v, (dict, list)))
    return f"{message.get('type')} ({fields})" if fields else str(message.get("type"))


def _state(answer: Any) -> str:
    """What the connection did when no message came."""
    if answer.error:
        return "unparseable bytes"
    return f"closed ({answer.closed})" if answer.closed else "nothing"


def _ending(answer: Any) -> str:
    if answer.error:
        return f"; the target's bytes do not parse: {answer.error}"
    if answer.closed:
        return f"; the target closed the connection ({answer.closed})"
    return ""


class Receives(Verifier):
    """The step's first message of ``type`` (one of several, with a tuple) arrives and each of
    its ``fields`` (a dotted path -> a ``Rule``, or a value
    that must be equal) holds. ``where(message, ctx)`` picks which message counts;
    ``session=True`` looks at the whole session so far, not only the step's window (what the
    target sent on its own while an earlier step waited). ``any_match=True`` accepts any
    message of the type whose fields all hold, not only the first (and, when none does, names
    the first one's first differing field)."""

    def __init__(self, type: str | tuple[str, ...], *, where: Callable[[Any, Any], bool] |
                 None = None, text: str = "", session: bool = False, any_match: bool = False,
                 **fields: Any) -> None:
        self.types = (type,) if isinstance(type, str) else tuple(type)
        self.session = session
        self.any_match = any_match
        self.where = where
        self.text = text
        self.fields = {path.replace("__", "."): rule if isinstance(rule, Rule) else
                       Equals(rule) for path, rule in fields.items()}

    def check(self, answer: Any, ctx: Any) -> Check:
        wanted = "/".join(self.types)
        messages = answer.session.messages if self.session else answer.messages
        found = [m for m in messages if m.get("type") in self.types
                 and (self.where is None or self.where(m, ctx))]
        if not found:
            got = ", ".join(summary(m) for m in messages[:3]) or _state(answer)
            return Check(False, f"no {wanted}{' ' + self.text if self.text else ''}"
                                f"{_ending(answer)}", "type", expected=f"a {wanted}", got=got)
        if self.any_match and any(all(not rule(lookup(m, p), ctx) for p, rule in
                                      self.fields.items()) for m in found):
            return OK
        message = found[0]
        index = next((i for i, m in enumerate(answer.messages) if m is message), None)
        for path, rule in self.fields.items():
            value = lookup(message, path)
            reason = rule(value, ctx)
            if reason:
                return Check(False, f"{message.get('type')}.{path}: {reason}", path,
                             expected=rule.describe(), got=shown(value), index=index)
        return OK

    def describe(self) -> str:
        rules = ", ".join(f"{p} {r.describe()}" for p, r in self.fields.items())
        return f"a {'/'.join(self.types)}{' ' + self.text if self.text else ''}" + (
            f" with {rules}" if rules else "")


class NoMessage(Verifier):
    """No message of ``types`` (any message, without types) during the whole window; with
    ``where``, only those messages for which ``where(message, ctx)`` holds count."""

    def __init__(self, *types: str, where: Callable[[Any, Any], bool] | None = None,
                 text: str = "") -> None:
        self.types = types
        self.where = where
        self.text = text

    def check(self, answer: Any, ctx: Any) -> Check:
        for m in answer.messages:
            if (not self.types or m.get("type") in self.types) and (
                    self.where is None or self.where(m, ctx)):
                return Check(False, f"received a {summary(m)}", "type",
                             expected=self.describe(), got=summary(m),
                             index=answer.messages.index(m))
        return OK

    def describe(self) -> str:
        return f"no {'/'.join(self.types) or 'message'}{' ' + self.text if self.text else ''}"

    @property
    def wants_silence(self) -> bool:
        return True


@dataclass
class Closes(Verifier):
    """The target closes the connection (EOF or reset) within the window."""

    def check(self, answer: Any, ctx: Any) -> Check:
        if answer.closed:
            return OK
        got = ", ".join(summary(m) for m in answer.messages[:3])
        return Check(False, "the connection stayed open" + (f" (received {got})" if got else ""),
                     "closed", expected="closed", got="open")

    def describe(self) -> str:
        return "the target closes the connection"


@dataclass
class StaysOpen(Verifier):
    """The connection stays open (and parseable) for the whole window."""

    def check(self, answer: Any, ctx: Any) -> Check:
        if answer.error:
            return Check(False, f"the target's bytes do not parse: {answer.error}", "",
                         expected="parseable messages", got=answer.error)
        if answer.closed:
            return Check(False, f"the target closed the connection ({answer.closed})", "closed",
                         expected="open", got=answer.closed)
        return OK

    def describe(self) -> str:
        return "the connection stays open"

    @property
    def wants_silence(self) -> bool:
        return True


class SessionRule(Verifier):
    """Any rule over the answer and the whole session: ``fn(answer, ctx)`` returns ``""``
    when it holds, else the reason (or None while it cannot tell yet: the runner keeps
    reading, and at the window's end None counts as ``pending``)."""

    def __init__(self, fn: Callable[[Any, Any], str | None], text: str, *, path: str = "",
                 pending: str = "not seen", silence: bool = False) -> None:
        self.fn = fn
        self.text = text
        self.path = path
        self.pending = pending
        self.silence = silence

    def check(self, answer: Any, ctx: Any) -> Check:
        reason = self.fn(answer, ctx)
        if reason is None:
            return Check(False, f"{self.pending}{_ending(answer)}", self.path,
                         expected=self.text, got=self.pending)
        return Check(False, reason, self.path, expected=self.text, got=reason) if reason else OK

    def describe(self) -> str:
        return self.text

    @property
    def wants_silence(self) -> bool:
        return self.silence

