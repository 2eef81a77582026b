"""``p2pkit dissect FILE`` without click: the argument lists that name one capture and flags
only, read here so that such a run imports no click (50 M of a summary run's 391 M
instructions of start-up).

:func:`plain_dissect` answers only for an argument list it reads exactly as click would: the
command ``dissect``, one capture (a path, or ``-``) and any of the flags in
:data:`PLAIN_FLAGS`. Anything else (``--help``, an option with a value, an unknown or
abbreviated option, ``--``, a second path, no path) gets None and goes through click, which
parses it, shows the help or reports the usage error as always. Tests compare the parameters
with click's on the same arguments (``tests/cli/test_dissect_argv.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["PLAIN_FLAGS", "plain_dissect"]

#: The flags of ``p2pkit dissect`` read here (each sets its parameter to True), as declared
#: in :mod:`p2pkit.cli.dissect_command`.
PLAIN_FLAGS = {
    "-V": "tree",
    "--tree": "tree",
    "--json": "as_json",
    "--stats": "stats",
    "--no-undecoded": "hide_undecoded",
}

#: The parameters of a run with none of the options: click's defaults.
_DEFAULTS: dict[str, Any] = {
    "tree": False, "fmt": "text", "as_json": False, "protocols": (), "messages": (),
    "expression": None, "decode_as": (), "stats": False, "count": None, "keylog": None,
    "hide_undecoded": False,
}


def plain_dissect(args: Sequence[str]) -> dict[str, Any] | None:
    """The parameters of :func:`p2pkit.cli.dissect.dissect` for ``args`` (the command line
    after the program name), or None when ``args`` is not ``dissect``, one path and flags of
    :data:`PLAIN_FLAGS` only.

    >>> plain_dissect(["dissect", "f.pcap", "-V"])["tree"]
    True
    >>> plain_dissect(["dissect", "f.pcap", "--help"]) is None
    True
    """
    if len(args) < 2 or args[0] != "dissect":
        return None
    params = dict(_DEFAULTS)
    path = None
    for arg in args[1:]:
        if arg[:1] == "-" and arg != "-":
            name = PLAIN_FLAGS.get(arg)
            if name is None:
                return None
            params[name] = True
        elif path is None:
            path = arg
        else:
            return None  # a second path: click's usage error
    if path is None:
        return None
    params["path"] = path
    return params
