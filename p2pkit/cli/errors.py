"""How CLI commands report bad input: one line naming the input, field and offset; exit 2."""

from __future__ import annotations

from p2pkit.errors import P2PKitError

#: Exit status for input that does not decode (a file that is not what it claims to be).
EXIT_BAD_INPUT = 2
#: Exit status when the input decodes but breaks a rule the user asked to check (``--strict``).
EXIT_DEVIATIONS = 1


class BadInput(P2PKitError):
    """Input named ``source`` could not be used; ``str()`` is the one line the CLI prints."""

    def __init__(self, source: str, error: BaseException | str) -> None:
        self.source = source
        self.error = error
        if isinstance(error, OSError) and error.strerror:
            detail = error.strerror
        else:
            detail = str(error)
        super().__init__(f"{source}: {detail}")


def read_input(path: str) -> bytes:
    """Read a file named on the command line (``-`` is standard input), as :class:`BadInput`."""
    import sys

    try:
        if path == "-":
            return sys.stdin.buffer.read()
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise BadInput(path, e) from None
