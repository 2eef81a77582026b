"""``p2pkit gnutella ...``: run a servent, search, download, simulate.

* ``p2pkit gnutella serve --share DIR --listen HOST:PORT [--ultrapeer] [--peer HOST:PORT ...]``;
* ``p2pkit gnutella search WORDS --peer HOST:PORT [--timeout S] [--json]``;
* ``p2pkit gnutella download WORDS --peer HOST:PORT -o DIR [--urn URN]``;
* ``p2pkit gnutella simulate --nodes N --ttl T [--topology flat|ultrapeer] [--no-qrp]``.

Network safety: servents listen on 127.0.0.1 unless ``--listen`` says otherwise.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
from dataclasses import asdict
from functools import partial
from pathlib import Path

import click

from p2pkit.cli.errors import EXIT_NO_RESULTS, BadInput, Group, describe_os_error
from p2pkit.cli.gnutella_simulate import SERVENT_CORE_AUTO_MAX, array_core
from p2pkit.cli.options import (
    duration_option,
    json_option,
    listen_option,
    peer_option,
    show_host_port,
    timeout_option,
)
from p2pkit.cli.serving import Stopper, say_stopped
from p2pkit.gnutella.servent import MAX_TTL
from p2pkit.gnutella.server import GnutellaServer, Hit
from p2pkit.gnutella.simulator import simulate

__all__ = ["gnutella"]


Address = tuple[str, int]

#: The simulator links every ultrapeer to 6 others, so it needs at least 7 nodes.
MIN_SIMULATED_NODES = 7


@click.group("gnutella", cls=Group)
def gnutella() -> None:
    """Gnutella 0.6: a reference servent (ultrapeer or leaf), search, download, simulate.

    A search or download that finds no hit says so and exits 1; bad input exits 2.
    """


@gnutella.command("serve")
@click.option("--share", type=click.Path(exists=True, file_okay=False), default=None,
              metavar="DIR", help="Directory whose files are shared (default: share nothing).")
@listen_option("127.0.0.1:6346", help="Address for Gnutella and HTTP (one port; 0: any free "
               "port).")
@click.option("--ultrapeer", is_flag=True, help="Route queries (default: leaf).")
@peer_option("A servent to join, HOST:PORT (repeatable).")
@duration_option()
@click.option("--tls", is_flag=True, help="Offer and accept the TLS upgrade of links "
              "(Upgrade: TLS/1.0, gnet-TLS-upgrade).")
@click.option("--deflate/--no-deflate", default=True, show_default=True,
              help="Deflate what is sent when the peer accepts it (compression §3).")
@click.option("--dynamic-query/--no-dynamic-query", default=True, show_default=True,
              help="As ultrapeer, run leaves' queries as dynamic queries (probe, then one "
              "connection at a time; dynamic_query §2), as gtk-gnutella does.")
@click.option("--udp/--no-udp", default=True, show_default=True, help="Gnutella over UDP on "
              "the same port: pings, out-of-band query hits, UDP connect-back (out-of-band, "
              "msg/connect_back), as gtk-gnutella does.")
def serve(share: str | None, listen: Address, ultrapeer: bool, peers: tuple[Address, ...],
          duration: float | None, tls: bool = False, deflate: bool = True,
          dynamic_query: bool = True, udp: bool = True) -> None:
    """Run a servent sharing DIR over Gnutella and HTTP on one port.

    Runs until SIGINT, SIGTERM or --duration, then exits 0.
    """
    host, port = listen

    async def run() -> str:
        with Stopper() as stopper:
            server = GnutellaServer(share=share, host=host, port=port, ultrapeer=ultrapeer,
                                    tls=tls, deflate=deflate, dynamic_query=dynamic_query,
                                    udp=udp)
            try:
                await server.start()
            except (OSError, OverflowError) as e:
                raise BadInput(f"listening on {show_host_port(host, port)}", e) from None
            click.echo(f"{server.core.role} on {show_host_port(host, server.port)}, sharing "
                       f"{len(server.core.shared)} files", err=True)
            try:
                for peer in peers:
                    try:
                        await server.connect(*peer)
                    except OSError as e:
                        click.echo(f"p2pkit: {show_host_port(*peer)}: {describe_os_error(e)}",
                                   err=True)
                return await stopper.wait(duration)
            finally:
                await server.close()

    say_stopped("gnutella serve", asyncio.run(run()))


async def _search(peer: Address, words: str, urn: str | None,
                  timeout: float) -> tuple[GnutellaServer, list[Hit]]:
    server = GnutellaServer()
    await server.start()
    try:
        await server.connect(*peer)
        await asyncio.wait_for(server.connected.wait(), timeout)
    except (TimeoutError, OSError) as e:
        await server.close()
        reason = describe_os_error(e) if isinstance(e, OSError) else "no Gnutella handshake"
        raise BadInput(show_host_port(*peer), reason) from None
    await asyncio.sleep(0.2)
    return server, await server.search(words, urn=urn, timeout=timeout)


#: HUGE §3: a SHA-1 URN is ``urn:sha1:`` and the digest in 32 base32 digits.
_SHA1_URN = re.compile(r"^urn:sha1:[A-Z2-7]{32}$", re.IGNORECASE)


def _query(words: tuple[str, ...], urn: str | None) -> str:
    text = " ".join(words).strip()
    if not text and not urn:
        raise click.UsageError("give WORDS to search for, or --urn")
    if urn is not None and not _SHA1_URN.match(urn):
        raise click.BadParameter(f"{urn}: expected urn:sha1:<32 base32 digits>",
                                 param_hint="'--urn'")
    return text


@gnutella.command("search")
@click.argument("words", nargs=-1)
@peer_option("HOST:PORT of the ultrapeer to search through.", required=True, multiple=False,
             name="peer")
@click.option("--urn", default=None, help="Search by urn:sha1:... instead of (or with) WORDS.")
@timeout_option(3.0, help="Seconds to wait for the handshake, then for hits.")
@json_option("Print one JSON object per hit.")
def search(words: tuple[str, ...], peer: Address, urn: str | None, timeout: float,
           as_json: bool) -> int:
    """Search the network for WORDS through an ultrapeer and print the hits.

    Exit 1 ("no hits") when nothing answered within --timeout.
    """
    text = _query(words, urn)

    async def run() -> list[Hit]:
        server, hits = await _search(peer, text, urn, timeout)
        await server.close()
        return hits

    hits = asyncio.run(run())
    for hit in hits:
        if as_json:
            click.echo(json.dumps(dict(asdict(hit), servent_id=hit.servent_id.hex())))
        else:
            click.echo(f"{show_host_port(hit.host, hit.port)}  {hit.file_size:>10}  "
                       f"{hit.file_name}  {hit.urn or ''}")
    if not hits:
        click.echo(f"p2pkit: no hits for {text or urn!r} within {timeout:g} s", err=True)
        return EXIT_NO_RESULTS
    return 0


@gnutella.command("download")
@click.argument("words", nargs=-1)
@peer_option("HOST:PORT of the ultrapeer to search through.", required=True, multiple=False,
             name="peer")
@click.option("--urn", default=None, help="The urn:sha1:... to fetch.")
@click.option("-o", "--output", type=click.Path(file_okay=False), default=".", show_default=True,
              metavar="DIR", help="Directory to write the file into (created if missing).")
@timeout_option(3.0, help="Seconds to wait for hits (the transfer gets three times this).")
def download_command(words: tuple[str, ...], peer: Address, urn: str | None, output: str,
                     timeout: float) -> int:
    """Search for WORDS (or --urn), then download the first hit into DIR.

    The file is checked against its urn:sha1; a firewalled source is reached with a Push and
    the GIV connection it sends back. Exit 1 ("no hits") when nothing answered.
    """
    text = _query(words, urn)

    async def run() -> tuple[Hit, bytes] | None:
        server, hits = await _search(peer, text, urn, timeout)
        try:
            if not hits:
                return None
            return hits[0], await server.fetch(hits[0], timeout=timeout * 3)
        finally:
            await server.close()

    found = asyncio.run(run())
    if found is None:
        click.echo(f"p2pkit: no hits for {text or urn!r} within {timeout:g} s", err=True)
        return EXIT_NO_RESULTS
    hit, data = found
    target = Path(output) / Path(hit.file_name).name
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    except OSError as e:
        raise BadInput(str(target), e) from None
    click.echo(f"{target}  {len(data)} bytes from {show_host_port(hit.host, hit.port)}")
    return 0


@gnutella.command("simulate")
@click.option("--nodes", type=click.IntRange(MIN_SIMULATED_NODES), default=1000,
              show_default=True, help=f"Servents in the network (at least {MIN_SIMULATED_NODES}).")
@click.option("--ttl", "ttls", type=click.IntRange(1, MAX_TTL), multiple=True,
              default=(1, 2, 3, 4, 5), show_default=True,
              help=f"Query TTL to measure (1-{MAX_TTL}); repeatable.")
@click.option("--topology", type=click.Choice(["flat", "ultrapeer"]), default="ultrapeer",
              show_default=True, help="All servents alike, or ultrapeers with leaves.")
@click.option("--qrp/--no-qrp", default=True, show_default=True,
              help="Leaves send Query Routing Protocol tables to their ultrapeers.")
@click.option("--queries", type=click.IntRange(1), default=10, show_default=True,
              help="Queries measured per TTL.")
@click.option("--seed", type=int, default=1, show_default=True,
              help="Random seed: the same seed gives the same network and figures.")
@click.option("--core", type=click.Choice(["auto", "servent", "array"]), default="auto",
              show_default=True, help="One real Servent per node, or the same routing over "
              f"arrays (p2pkit.gnutella.array_flood; auto: servents up to {SERVENT_CORE_AUTO_MAX:,}).")
@json_option("Print one JSON object per TTL.")
def simulate_command(nodes: int, ttls: tuple[int, ...], topology: str, qrp: bool, queries: int,
                     seed: int, core: str, as_json: bool) -> None:
    """Messages per query against TTL in an in-memory network (seeded)."""
    results = []
    show = sys.stderr.isatty() and len(ttls) > 1
    run = partial(simulate, nodes=nodes, topology=topology, qrp=qrp, queries=queries, seed=seed)
    if core == "array" or (core == "auto" and nodes > SERVENT_CORE_AUTO_MAX):
        run = array_core(nodes=nodes, topology=topology, qrp=qrp, queries=queries, seed=seed,
                         show=sys.stderr.isatty() and not as_json)
    with click.progressbar(ttls, label="simulating", file=sys.stderr if show else None,
                           hidden=not show) as bar:
        for ttl in bar:
            results.append((ttl, run(ttl=ttl)))
    for ttl, result in results:
        if as_json:
            click.echo(json.dumps(asdict(result)))
        else:
            click.echo(f"ttl={ttl} messages/query={result.messages_per_query:.0f} "
                       f"(queries {result.query_messages:.0f}, hits {result.hit_messages:.0f}) "
                       f"reached={result.reached:.0f} answered={result.answered}/{queries}")
