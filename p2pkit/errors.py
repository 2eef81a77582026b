"""One exception hierarchy for all of p2pkit.

Every public API raises only these. Parse errors name the protocol, the field path
and the byte offset where decoding stopped, so a user can find the bad byte::

    >>> from p2pkit.bencode import decode
    >>> try:
    ...     decode(b"i12")
    ... except ParseError as e:
    ...     print(e.protocol, e.offset)
    bencode 3

Following h11, a mistake made locally raises :class:`LocalProtocolError`; a mistake made by
the remote side surfaces as :class:`RemoteProtocolError` at the receive boundary.
"""

from __future__ import annotations


class P2PKitError(Exception):
    """Root of every exception p2pkit raises on purpose."""


class ParseError(P2PKitError, ValueError):
    """Bytes that do not decode under the named protocol's schema.

    Attributes: ``protocol`` (e.g. ``"bittorrent"``), ``path`` (the field path, e.g.
    ``"request -> length"``), ``offset`` (byte offset into the input where decoding stopped,
    or ``None`` when unknown) and ``reason`` (one sentence, without the location).
    """

    def __init__(
        self,
        reason: str,
        *,
        protocol: str = "",
        path: str = "",
        offset: int | None = None,
    ) -> None:
        self.reason = reason
        self.protocol = protocol
        self.path = path
        self.offset = offset
        super().__init__(self._message())

    def _message(self) -> str:
        where = []
        if self.protocol:
            where.append(self.protocol)
        if self.path:
            where.append(f"field {self.path}")
        if self.offset is not None:
            where.append(f"offset {self.offset}")
        return f"{', '.join(where)}: {self.reason}" if where else self.reason

    def relocated(self, *, base: int = 0, path_prefix: str = "", protocol: str = "") -> ParseError:
        """Return the same error seen from an enclosing input.

        ``base`` is added to the offset (the inner input started at ``base`` in the outer one),
        ``path_prefix`` is prepended to the field path.
        """
        path = " -> ".join(p for p in (path_prefix, self.path) if p)
        offset = None if self.offset is None else self.offset + base
        err = type(self).__new__(type(self))
        ParseError.__init__(
            err, self.reason, protocol=protocol or self.protocol, path=path, offset=offset
        )
        return err

    def __reduce__(self):  # keep keyword-only fields through pickling/copying
        return (_rebuild_parse_error, (type(self), self.reason, self.protocol, self.path, self.offset))


def _rebuild_parse_error(cls, reason, protocol, path, offset):
    err = cls.__new__(cls)
    ParseError.__init__(err, reason, protocol=protocol, path=path, offset=offset)
    return err


class LimitExceeded(ParseError):
    """A length, count or depth is beyond a bound the module declares (checked before allocation)."""


class BuildError(P2PKitError, ValueError):
    """A value cannot be encoded: a missing field, a value out of range, a wrong type."""

    def __init__(self, reason: str, *, protocol: str = "", path: str = "") -> None:
        self.reason = reason
        self.protocol = protocol
        self.path = path
        where = ", ".join(x for x in (protocol, f"field {path}" if path else "") if x)
        super().__init__(f"{where}: {reason}" if where else reason)


class ProtocolError(P2PKitError):
    """A well-formed message that breaks the protocol's rules (state, sequence, semantics)."""


class LocalProtocolError(ProtocolError):
    """Our side tried to do something the protocol forbids (h11's naming)."""


class RemoteProtocolError(ProtocolError):
    """The remote side sent something the protocol forbids; drop that peer, keep the others."""
