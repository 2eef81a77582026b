"""HSEP, the horizon size estimation protocol: the tables, no wire (HSEP 0.2).

Spec: HSEP §"Required datastructures" (a global array ``H[0..n_max]`` and one per connection,
triples of (nodes, files, kibibytes); ``OWN := (1, own_files, own_kibibytes)``),
§"Handshaking" (``X-Features: HSEP/0.2``; a new connection's array is "((0,0,0), (1,0,0), ...
,(1,0,0))" and is added to H), §"Normal operation for ultrapeers" (the triples sent to ``N_i``:
``OWN + H[0] - H_(N_i)[0], OWN + OTHER + H[1] - H_(N_i)[1], ...``; the receiver's sanity check
"V[0] = (1,*,*)" and "V[n] >= V[n-1]"; the update ``H[n + 1] += V[n] - H_(N_i)[n + 1]``,
``H_(N_i)[n + 1] := V[n]``; a shorter message repeats its last triple; "only send the triples
V[0], ..., upto the first occurence of the repeated triple"; "An ultrapeer should ignore a HSEP
message from a leaf node that sends more than 1 triple"), §"Normal operation for leaf nodes"
(a leaf sends its OWN triple alone), §"Disconnecting" (``H[n] -= H_(N_i)[n]``). The wire format
is the descriptor schema's (payload 0xCD, :mod:`p2pkit.gnutella.descriptors`).

>>> h = HsepTable(own=(1, 2, 23))
>>> h.add("a"); h.add("b")
>>> h.triples_for("a")  # to a: ourselves, and b one hop further
[(1, 2, 23), (2, 2, 23)]
>>> h.receive("b", [(1, 5, 50), (3, 9, 90)])
True
>>> h.triples_for("a")
[(1, 2, 23), (2, 7, 73), (4, 11, 113)]
>>> h.horizon()[1:4]
[(2, 5, 50), (4, 9, 90), (4, 9, 90)]
>>> h.receive("a", [(2, 0, 0)])  # V[0] must be (1,*,*): ignored
False
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

__all__ = ["HSEP_VERSION", "N_MAX", "HsepTable", "Triple"]

#: HSEP §"Handshaking": "The feature is called "HSEP" with version "0.2"".
HSEP_VERSION = "0.2"
#: HSEP §"Bandwidth requirements": "I propose n_max to be 7".
N_MAX = 7

Triple = tuple[int, int, int]
_ZERO: Triple = (0, 0, 0)
_U64 = (1 << 64) - 1


def _add(a: Triple, b: Triple) -> Triple:
    return (a[0] + b[0], a[1] + b[1], a[2] + b[2])


def _sub(a: Triple, b: Triple) -> Triple:
    return (a[0] - b[0], a[1] - b[1], a[2] - b[2])


class HsepTable:
    """The global ``H`` array and one array per HSEP connection (keys are the driver's ids)."""

    def __init__(self, *, own: Triple = (1, 0, 0), n_max: int = N_MAX) -> None:
        self.n_max = n_max
        #: OWN: "(1,own_files,own_kibibytes)".
        self.own = own
        #: OTHER: what non-HSEP neighbours add (HSEP: "OTHER := (n, 0, 0)").
        self.other: Triple = _ZERO
        self.global_: list[Triple] = [_ZERO] * (n_max + 1)
        self.per_connection: dict[Hashable, list[Triple]] = {}

    def add(self, conn: Hashable) -> None:
        """A new HSEP connection: ``H_(N_k) := ((0,0,0), (1,0,0), ...)``, added to ``H``."""
        row = [_ZERO] + [(1, 0, 0)] * self.n_max
        self.per_connection[conn] = row
        self.global_ = [_add(g, r) for g, r in zip(self.global_, row, strict=True)]

    def remove(self, conn: Hashable) -> None:
        """HSEP §"Disconnecting": ``H[n] := H[n] - H_(N_i)[n]``; the row is freed."""
        row = self.per_connection.pop(conn, None)
        if row is not None:
            self.global_ = [_sub(g, r) for g, r in zip(self.global_, row, strict=True)]

    def receive(self, conn: Hashable, triples: Sequence[Triple], *,
                from_leaf: bool = False) -> bool:
        """Apply an HSEP message from ``conn``; False when the sanity check refused it (the
        message is then ignored, as HSEP allows)."""
        row = self.per_connection.get(conn)
        if row is None or not triples or (from_leaf and len(triples) > 1):
            return False
        values = [tuple(t) for t in triples[: self.n_max]]
        if values[0][0] != 1 or any(x > _U64 for t in values for x in t):
            return False
        for prev, cur in zip(values, values[1:], strict=False):
            if any(c < p for c, p in zip(cur, prev, strict=True)):
                return False  # "V[n] >= V[n-1]" (monotony)
        values += [values[-1]] * (self.n_max - len(values))  # the last one repeated
        for n, v in enumerate(values):
            self.global_[n + 1] = _add(self.global_[n + 1], _sub(v, row[n + 1]))
            row[n + 1] = v
        return True

    def triples_for(self, conn: Hashable, *, leaf: bool = False) -> list[Triple]:
        """The triples to send to ``conn`` (a leaf sends its OWN triple alone), with the
        repeated suffix cut ("only send the triples V[0], ..., upto the first occurence of the
        repeated triple")."""
        if leaf:
            return [self.own]
        row = self.per_connection[conn]
        out = [_add(self.own, _sub(self.global_[0], row[0]))]
        for n in range(1, self.n_max):
            out.append(_add(_add(self.own, self.other), _sub(self.global_[n], row[n])))
        while len(out) > 1 and out[-1] == out[-2]:
            out.pop()
        return out

    def horizon(self) -> list[Triple]:
        """``H[n]`` plus OTHER, what a servent shows (nodes, files, KiB within n hops)."""
        return [self.global_[0]] + [_add(h, self.other) for h in self.global_[1:]]
