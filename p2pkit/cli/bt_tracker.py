"""``p2pkit bt tracker --listen HOST:PORT [--no-http|--no-udp]``: a reference HTTP (BEP 3, 23, 7,
48) and UDP (BEP 15) tracker on one swarm registry, running until SIGINT or SIGTERM.

Registered in :mod:`p2pkit.cli.bt` with ``bt.add_command(tracker)``.
"""

from __future__ import annotations

import asyncio
import random
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
from p2pkit.cli.errors import BadInput, Command
from p2pkit.cli.options import listen_option, show_host_port
from p2pkit.cli.serving import Stopper, say_stopped


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


async def _serve(server: TrackerServer, host: str, port: int, http: bool, udp: bool) -> str:
    with Stopper() as stopper:
        try:
            await server.start(host=host, http_port=port if http else None,
                               udp_port=port if udp else None)
        except (OSError, OverflowError) as e:
            await server.close()
            raise BadInput(f"listening on {show_host_port(host, port)}", e) from None
        if server.http_port is not None:
            click.echo(f"HTTP tracker: http://{show_host_port(host, server.http_port)}/announce")
        if server.udp_port is not None:
            click.echo(f"UDP tracker: udp://{show_host_port(host, server.udp_port)}/announce")
        sys.stdout.flush()
        try:
            return await stopper.wait()
        finally:
            await server.close()


@click.command("tracker", cls=Command)
@listen_option("127.0.0.1:6969", help="Address to serve on: HTTP on its TCP port and BEP 15 on "
               "its UDP port (port 0: any free port, chosen for each).")
@click.option("--no-http", is_flag=True, help="Do not serve HTTP /announce and /scrape.")
@click.option("--no-udp", is_flag=True, help="Do not serve the BEP 15 UDP tracker.")
@click.option("--interval", type=click.IntRange(1, 86400), default=1800, show_default=True,
              help="Seconds between announces asked of clients.")
@click.option("--allow", "allowed", multiple=True, metavar="INFOHASH",
              help="Track only these info-hashes (40 hex digits; repeatable).")
@click.option("-v", "--verbose", is_flag=True, help="Print one line per request.")
def tracker(listen: tuple[str, int], no_http: bool, no_udp: bool, interval: int,
            allowed: tuple[str, ...], verbose: bool) -> None:
    """Run an HTTP and a UDP BitTorrent tracker until SIGINT or SIGTERM (BEP 3, 15, 23, 7, 48).

    Both listen on --listen (HTTP on TCP, BEP 15 on UDP) unless --no-http or --no-udp.
    """
    if no_http and no_udp:
        raise click.UsageError("--no-http and --no-udp leave nothing to serve")
    config = TrackerConfig(interval=interval,
                           allowed_info_hashes=frozenset(_info_hash(a) for a in allowed)
                           if allowed else None)
    core = TrackerCore(config, rng=random.SystemRandom())

    def log(event: object) -> None:
        if verbose:
            click.echo(describe(event))
            sys.stdout.flush()

    server = TrackerServer(core, on_event=log)
    reason = asyncio.run(_serve(server, listen[0], listen[1], not no_http, not no_udp))
    say_stopped("bt tracker", reason)
