"""Deviations: what lenient decoders report instead of failing.

A dissector must show real traffic even when it bends the spec, and a conformance verdict must
say exactly which rule was bent. Lenient decoders therefore return a list of
:class:`Deviation` records next to the value; conformance rules are built from the same records,
so each rule is written once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

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
