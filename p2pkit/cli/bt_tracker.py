"""``p2pkit bt tracker --http PORT --udp PORT``: a reference HTTP (BEP 3, 23, 7, 48) and UDP
(BEP 15) tracker on one swarm registry, running until SIGINT or SIGTERM.

Registered in :mod:`p2pkit.cli.bt` with ``bt.add_command(tracker)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
import sys

import click

from p2pkit.bittorrent.tracker.core import (
    PeerAnnounced,
    RequestRefused,
    ScrapeServed,
    TrackerConfig,
    TrackerCore,
)
from p2pkit.bittorrent.tracker.server import TrackerServer
from p2pkit.cli.errors import BadInput


def _info_hash(text: str) -> bytes:
    try:
        value = bytes.fromhex(text)
    except ValueError:
        value = b""
    if len(value) != 20:
        raise BadInput(f"--allow {text}", "expected 40 hex digits (a v1 info-hash)")
    return value


def describe(event: object) -> str:
    """One log line for a core event."""
    if isinstance(event, PeerAnnounced):
        return (f"{event.transport} announce {event.info_hash.hex()} from {event.ip}:{event.port}"
                f" event={event.event or '-'} left={event.left} peers={event.peers_returned}")
    if isinstance(event, ScrapeServed):
        return f"{event.transport} scrape from {event.ip}: {len(event.info_hashes)} info-hashes"
    if isinstance(event, RequestRefused):
        verb = "refused" if event.answered else "dropped"
        return f"{event.transport} {verb} from {event.ip}: {event.reason}"
    return repr(event)


async def _serve(server: TrackerServer, host: str, http: int | None, udp: int | None) -> None:
    await server.start(host=host, http_port=http, udp_port=udp)
    shown = f"[{host}]" if ":" in host else host
    if server.http_port is not None:
        click.echo(f"HTTP tracker: http://{shown}:{server.http_port}/announce")
    if server.udp_port is not None:
        click.echo(f"UDP tracker: udp://{shown}:{server.udp_port}/announce")
    sys.stdout.flush()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await server.close()


@click.command("tracker")
@click.option("--http", "http_port", type=click.IntRange(0, 65535), metavar="PORT",
              help="Serve HTTP /announce and /scrape on this port (0: any free port).")
@click.option("--udp", "udp_port", type=click.IntRange(0, 65535), metavar="PORT",
              help="Serve the BEP 15 UDP tracker on this port (0: any free port).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--interval", type=click.IntRange(1, 86400), default=1800, show_default=True,
              help="Seconds between announces asked of clients.")
@click.option("--allow", "allowed", multiple=True, metavar="INFOHASH",
              help="Track only these info-hashes (40 hex digits; repeatable).")
@click.option("-v", "--verbose", is_flag=True, help="Print one line per request.")
def tracker(http_port: int | None, udp_port: int | None, host: str, interval: int,
            allowed: tuple[str, ...], verbose: bool) -> None:
    """Run an HTTP and/or UDP BitTorrent tracker until interrupted (BEP 3, 15, 23, 7, 48)."""
    if http_port is None and udp_port is None:
        raise BadInput("bt tracker", "give --http PORT, --udp PORT or both")
    config = TrackerConfig(interval=interval,
                           allowed_info_hashes=frozenset(_info_hash(a) for a in allowed)
                           if allowed else None)
    core = TrackerCore(config, rng=random.SystemRandom())

    def log(event: object) -> None:
        if verbose:
            click.echo(describe(event))
            sys.stdout.flush()

    server = TrackerServer(core, on_event=log)
    try:
        asyncio.run(_serve(server, host, http_port, udp_port))
    except OSError as e:
        raise BadInput(f"listening on {host}", e) from None
