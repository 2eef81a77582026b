"""Deviations: what lenient decoders report instead of failing.

A dissector must show real traffic even when it bends the spec, and a conformance verdict must
say exactly which rule was bent. Lenient decoders therefore return a list of
:class:`Deviation` records next to the value; conformance rules are built from the same records,
so each rule is written once.

Every lenient decoder hands its deviations back the same way: the value it returns carries
them in a hidden ``_deviations`` field (construct hides ``_`` names from ``==`` and ``repr``,
and builders skip them). :func:`deviations_of` reads them; nothing else marks a departure (no
"malformed" message type, no ``error`` field, no list of unconverted keys).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

__all__ = ["DEVIATIONS", "Deviation", "Level", "deviations_of", "with_deviations"]

Level = Literal["MUST", "SHOULD", "MAY"]


@dataclass(frozen=True, kw_only=True)
class Deviation:
    """One departure from the spec found while decoding.

    >>> Deviation(offset=3, rule="bencode/integer/leading-zero", spec="BEP 3 §bencoding",
    ...           message="integer has a leading zero").rule
    'bencode/integer/leading-zero'
    """

    offset: int
    #: Hierarchical rule id, stable across releases (``bencode/dict/unsorted-keys``).
    rule: str
    message: str
    #: Where the rule is written (``BEP 3 §bencoding``).
    spec: str
    level: Level = "MUST"

    def __str__(self) -> str:
        return f"offset {self.offset}: {self.message} [{self.rule}; {self.spec}, {self.level}]"


#: The hidden field of a lenient decoder's value that lists its :class:`Deviation` records.
DEVIATIONS = "_deviations"


def deviations_of(value: Any, base: int = 0) -> list[Deviation]:
    """The deviations a lenient decoder reported for ``value``, offsets moved by ``base``.

    ``value`` is what a lenient decoder returned: a Container (its hidden ``_deviations``),
    or a result object with a ``deviations`` attribute (``bencode.decode_lenient``,
    ``krpc.decode_lenient``, an HTTP head). Anything else has none. ``base`` is where the
    decoded bytes start in a larger input (a stream, a capture).

    >>> from construct import Container
    >>> value = Container(type="unknown", id=99)
    >>> value["_deviations"] = [Deviation(offset=4, rule="r", message="m", spec="s")]
    >>> [(d.offset, d.rule) for d in deviations_of(value, base=100)]
    [(104, 'r')]
    >>> deviations_of(b"raw bytes"), deviations_of(Container(type="have"))
    ([], [])
    """
    if isinstance(value, Mapping):
        found = value.get(DEVIATIONS)
    else:
        found = getattr(value, "deviations", None)
    if not found:
        return []
    if not base:
        return list(found)
    return [replace(d, offset=d.offset + base) for d in found]


def with_deviations(value: Any, deviations: list[Deviation]) -> Any:
    """``value`` (a Container) carrying ``deviations`` in its hidden ``_deviations`` field,
    where :func:`deviations_of` finds them; for lenient decoders. Returns ``value``.

    >>> from construct import Container
    >>> d = Deviation(offset=0, rule="r", message="m", spec="s")
    >>> with_deviations(Container(a=1), [d]) == Container(a=1)
    True
    """
    value[DEVIATIONS] = deviations
    return value
