"""``--keylog FILE`` for the IPFS commands that dial (``ipfs ping``, ``identify``, ``get``,
``dht find-providers|find-peer|provide|put|get``, ``name publish|resolve``), as ``ipfs serve``
has it: the short-lived host each of them makes appends every connection's Noise transport
keys and its own handshake secrets to FILE (:class:`p2pkit.ipfs.noise_keylog.NoiseKeyLogWriter`,
libp2p-noise.md §Handshake), so that ``p2pkit dissect --keylog FILE`` decrypts what it did.
"""

from __future__ import annotations

import contextlib
import random
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click

from p2pkit.cli.errors import BadInput

__all__ = ["client_host", "keylog_option"]


def keylog_option(f: Callable) -> Callable:
    """The ``--keylog FILE`` option of a dialing command (parameter ``keylog``)."""
    return click.option("--keylog", type=click.Path(dir_okay=False, path_type=Path),
                        metavar="FILE", default=None,
                        help="Append each connection's Noise keys to FILE "
                             "(for p2pkit dissect --keylog).")(f)


@contextlib.contextmanager
def client_host(keylog: Path | None) -> Iterator[Any]:
    """A libp2p host with a fresh Ed25519 identity that logs its Noise keys to ``keylog``
    (when given); the key log is closed on leaving."""
    from p2pkit.ipfs.host import Host
    from p2pkit.ipfs.keys import Ed25519Identity
    from p2pkit.ipfs.noise_keylog import NoiseKeyLogWriter

    try:
        writer = NoiseKeyLogWriter(keylog) if keylog is not None else None
    except OSError as e:
        raise BadInput(str(keylog), e) from None
    try:
        yield Host(Ed25519Identity(secrets.token_bytes(32)), rng=random.Random(), keylog=writer)
    finally:
        if writer is not None:
            writer.close()
