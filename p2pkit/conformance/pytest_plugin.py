"""A pytest plugin: the conformance suite inside a project's own tests, one item per case.

    pytest --pyargs p2pkit.conformance --p2p-target dht=127.0.0.1:6881 -k token

``--p2p-target PROTOCOL=HOST:PORT`` (repeatable) names the peer under test per protocol (a
tracker by its announce URL: ``tracker=udp://127.0.0.1:6969``);
``--p2p-strict`` makes SHOULD and MAY cases fail; ``--p2p-timeout`` is the per-step timeout;
``--p2p-torrent F`` is the torrent a ``bittorrent`` target seeds (its cases run over TCP);
``gnutella=HOST:PORT`` names a Gnutella servent (its cases run over TCP too);
``ipfs=MULTIADDR`` (or HOST:PORT) a libp2p node.
Without a target the cases are not collected. A failing MUST case (or any case under
``--p2p-strict``) fails its item with the quoted requirement and the reason; ``unsupported``
and ``skipped`` verdicts skip; ``non-strict`` and ``informational`` pass with a warning.
The plugin is registered through the ``pytest11`` entry point of an installed p2pkit; from a
source checkout add ``-p p2pkit.conformance.pytest_plugin``.
"""

from __future__ import annotations

import asyncio
import warnings
from typing import Any

import pytest

from p2pkit.conformance import CATALOGS, catalog
from p2pkit.conformance.runner import (
    DEFAULT_TIMEOUT,
    Runner,
    TargetError,
    parse_target,
    preflight,
)

__all__ = ["ConformanceWarning", "targets"]


class ConformanceWarning(UserWarning):
    """A SHOULD/MAY case failing without --p2p-strict, or an informational finding."""


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("p2pkit-conformance", "p2pkit conformance suite")
    options = (
        (("--p2p-target",), dict(action="append", default=[], metavar="PROTOCOL=HOST:PORT",
                                 help="peer under test, e.g. dht=127.0.0.1:6881")),
        (("--p2p-strict",), dict(action="store_true", default=False,
                                 help="SHOULD and MAY cases fail too")),
        (("--p2p-timeout",), dict(type=float, default=DEFAULT_TIMEOUT,
                                  help="seconds each step waits for its answer")),
        (("--p2p-torrent",), dict(default=None, metavar="FILE.torrent",
                                  help="the torrent a bittorrent target seeds")),
    )
    for names, kwargs in options:
        group.addoption(*names, **kwargs)


def targets(config: pytest.Config) -> dict[str, str]:
    """``{protocol: "HOST:PORT"}`` from the ``--p2p-target`` options."""
    out = {}
    for text in config.getoption("--p2p-target", default=None) or ():
        protocol, sep, address = text.partition("=")
        if not sep or protocol not in CATALOGS:
            raise pytest.UsageError(f"--p2p-target {text!r}: expected PROTOCOL=HOST:PORT with "
                                    f"PROTOCOL one of {', '.join(sorted(CATALOGS))}")
        out[protocol] = address
    return out


class _Session:
    """One event loop and one runner per protocol for the whole pytest session."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.loop = asyncio.new_event_loop()
        self.runners: dict[str, Runner | str] = {}

    def runner(self, protocol: str) -> Runner:
        if protocol not in self.runners:
            address = targets(self.config).get(protocol)
            if address is None:
                pytest.skip(f"no --p2p-target {protocol}=HOST:PORT")
            timeout = self.config.getoption("--p2p-timeout", default=DEFAULT_TIMEOUT)
            strict = self.config.getoption("--p2p-strict", default=False)
            try:
                if protocol == "tracker":
                    self.runners[protocol] = self.loop.run_until_complete(
                        _tracker_runner(address, strict=strict, timeout=timeout))
                elif protocol == "bittorrent":
                    self.runners[protocol] = self._stream_runner(address, timeout, strict)
                elif protocol == "gnutella":
                    self.runners[protocol] = self._gnutella_runner(address, timeout, strict)
                elif protocol == "ipfs":
                    from p2pkit.conformance.ipfs.live import IpfsRunner, ipfs_target

                    self.runners[protocol] = IpfsRunner(ipfs_target(address), strict=strict,
                                                        timeout=timeout)
                else:
                    resolved = self.loop.run_until_complete(preflight(parse_target(address),
                                                                      timeout))
                    self.runners[protocol] = Runner(resolved, strict=strict, timeout=timeout)
            except TargetError as e:
                self.runners[protocol] = str(e)
        runner = self.runners[protocol]
        if isinstance(runner, str):
            pytest.fail(runner, pytrace=False)
        return runner

    def _stream_runner(self, address: str, timeout: float, strict: bool) -> Any:
        from p2pkit.conformance.bittorrent import BitTorrentWire, TorrentFacts
        from p2pkit.conformance.stream_runner import StreamRunner
        from p2pkit.conformance.stream_runner import preflight as stream_preflight
        from p2pkit.errors import P2PKitError

        path = self.config.getoption("--p2p-torrent", default=None)
        if not path:
            raise TargetError("bittorrent: give the torrent the target seeds (--p2p-torrent F)")
        try:
            wire = BitTorrentWire(TorrentFacts.from_file(path))
        except (OSError, P2PKitError) as e:
            raise TargetError(f"--p2p-torrent {path}: {e}") from None
        target = parse_target(address)
        self.loop.run_until_complete(stream_preflight(target, wire, timeout))
        return StreamRunner(target, wire, strict=strict, timeout=timeout)

    def _gnutella_runner(self, address: str, timeout: float, strict: bool) -> Any:
        from p2pkit.conformance.gnutella import GnutellaWire
        from p2pkit.conformance.stream_runner import StreamRunner
        from p2pkit.conformance.stream_runner import preflight as stream_preflight

        target = parse_target(address)
        self.loop.run_until_complete(stream_preflight(target, GnutellaWire(), timeout))
        return StreamRunner(target, GnutellaWire(), strict=strict, timeout=timeout)

    def close(self) -> None:
        self.loop.close()


async def _tracker_runner(url: str, **options: Any) -> Runner:
    """The runner of a tracker's announce URL (HTTP or UDP, after its preflight)."""
    from p2pkit.conformance.tracker.live import (
        HttpTrackerRunner,
        UdpTrackerRunner,
        parse_tracker_url,
        preflight_http,
        preflight_udp,
    )

    target = parse_tracker_url(url)
    if target.scheme == "udp":
        return UdpTrackerRunner(await preflight_udp(target.address, options["timeout"]),
                                **options)
    return HttpTrackerRunner(await preflight_http(target, options["timeout"]), target,
                             **options)


@pytest.fixture(scope="session")
def p2p_session(request: pytest.FixtureRequest) -> Any:
    session = _Session(request.config)
    yield session
    session.close()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "conformance_case" not in metafunc.fixturenames:
        return
    wanted = targets(metafunc.config)
    cases = [c for protocol in sorted(CATALOGS) if protocol in wanted
             for c in catalog(protocol)
             # a tracker URL's scheme picks the transport of the cases it can run
             if protocol != "tracker" or c.tags[0] == wanted[protocol].partition(":")[0]]
    metafunc.parametrize("conformance_case", cases, ids=[c.id for c in cases])


def run_one(session: _Session, case: Any) -> None:
    """Run one case and turn its verdict into a pytest outcome."""
    protocol = case.id.split("/", 1)[0]
    runner = session.runner(protocol)
    result = session.loop.run_until_complete(runner.run_case_bounded(case))
    text = f"{case.id} [{case.level}, {case.spec}]: {result.reason}"
    if result.verdict in ("fail", "target-died"):
        pytest.fail(f"{result.verdict}: {text}\nrequirement: {case.requirement}",
                    pytrace=False)
    if result.verdict in ("unsupported", "skipped"):
        pytest.skip(f"{result.verdict}: {text}")
    if result.verdict in ("non-strict",) or (result.verdict == "informational"
                                              and result.reason):
        warnings.warn(ConformanceWarning(f"{result.verdict}: {text}"), stacklevel=1)
