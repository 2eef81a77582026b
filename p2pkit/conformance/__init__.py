"""The conformance suite: judge a peer live by address, or the traffic in a capture.

Cases are data (:class:`~p2pkit.conformance.case.Case`), one module per spec section under a
catalog per protocol (``p2pkit.conformance.dht``); verifiers are shared
(:mod:`p2pkit.conformance.verifiers`); the runner (:mod:`p2pkit.conformance.runner`) plays the
harness's side against a live target; reporters (``p2pkit.conformance.reporters``) turn a
:class:`~p2pkit.conformance.runner.RunReport` into a console table, JUnit XML, JSON or HTML;
:mod:`p2pkit.conformance.offline` judges a capture with the same rules.

>>> sorted(CATALOGS)
['bittorrent', 'dht', 'gnutella', 'ipfs', 'tracker']
>>> len(catalog("dht")) >= 60
True
"""

from __future__ import annotations

import importlib

from p2pkit.conformance.case import Case

__all__ = ["CATALOGS", "catalog"]

#: Protocol name -> the module holding its ``CASES``.
CATALOGS = {
    "bittorrent": "p2pkit.conformance.bittorrent",
    "dht": "p2pkit.conformance.dht",
    "gnutella": "p2pkit.conformance.gnutella",
    "ipfs": "p2pkit.conformance.ipfs",
    "tracker": "p2pkit.conformance.tracker",
}


def catalog(protocol: str) -> tuple[Case, ...]:
    """The cases of one protocol's catalog; ``KeyError`` for a protocol without one."""
    return tuple(importlib.import_module(CATALOGS[protocol]).CASES)
