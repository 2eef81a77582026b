"""``p2pkit gnutella ...``: run a servent, search, download, simulate.

* ``p2pkit gnutella serve --share DIR --port P [--ultrapeer] [--connect HOST:PORT ...]``;
* ``p2pkit gnutella search WORDS --connect HOST:PORT [--timeout S] [--json]``;
* ``p2pkit gnutella download WORDS --connect HOST:PORT -o DIR [--urn URN]``;
* ``p2pkit gnutella simulate --nodes N --ttl T [--topology flat|ultrapeer] [--no-qrp]``.

Network safety: servents bind 127.0.0.1 unless ``--host`` says otherwise.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import asdict
from pathlib import Path

import click

from p2pkit.cli.errors import BadInput
from p2pkit.gnutella.server import GnutellaServer, Hit
from p2pkit.gnutella.simulator import simulate

__all__ = ["gnutella"]


def _endpoint(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise BadInput(text, "expected HOST:PORT")
    return host, int(port)


@click.group("gnutella")
def gnutella() -> None:
    """Gnutella 0.6: a reference servent (ultrapeer or leaf), search, download, simulate."""


@gnutella.command("serve")
@click.option("--share", type=click.Path(file_okay=False), default=None, help="Directory to share.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=6346, show_default=True)
@click.option("--ultrapeer", is_flag=True, help="Route queries (default: leaf).")
@click.option("--connect", "peers", multiple=True, help="HOST:PORT of a servent to join.")
@click.option("--duration", type=float, default=None, help="Stop after this many seconds.")
def serve(share: str | None, host: str, port: int, ultrapeer: bool, peers: tuple[str, ...],
          duration: float | None) -> None:
    """Run a servent sharing DIR over Gnutella and HTTP on one port."""
    endpoints = [_endpoint(p) for p in peers]

    async def run() -> None:
        server = GnutellaServer(share=share, host=host, port=port, ultrapeer=ultrapeer)
        await server.start()
        click.echo(f"{server.core.role} on {host}:{server.port}, sharing "
                   f"{len(server.core.shared)} files", err=True)
        for peer in endpoints:
            try:
                await server.connect(*peer)
            except OSError as e:
                click.echo(f"{peer[0]}:{peer[1]}: {e.strerror or e}", err=True)
        try:
            if duration is None:
                await asyncio.Event().wait()
            await asyncio.sleep(duration)
        finally:
            await server.close()

    asyncio.run(run())


async def _search(peer: tuple[str, int], words: str, urn: str | None,
                  timeout: float) -> tuple[GnutellaServer, list[Hit]]:
    server = GnutellaServer()
    await server.start()
    try:
        await server.connect(*peer)
        await asyncio.wait_for(server.connected.wait(), timeout)
    except (TimeoutError, OSError) as e:
        await server.close()
        raise BadInput(f"{peer[0]}:{peer[1]}", str(e) or "no Gnutella handshake") from None
    await asyncio.sleep(0.2)
    return server, await server.search(words, urn=urn, timeout=timeout)


@gnutella.command("search")
@click.argument("words", nargs=-1)
@click.option("--connect", "peer", required=True, help="HOST:PORT of an ultrapeer.")
@click.option("--urn", default=None, help="Search by urn:sha1:... instead of (or with) words.")
@click.option("--timeout", type=float, default=3.0, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def search(words: tuple[str, ...], peer: str, urn: str | None, timeout: float,
           as_json: bool) -> None:
    """Search the network through an ultrapeer and print the hits."""

    async def run() -> list[Hit]:
        server, hits = await _search(_endpoint(peer), " ".join(words), urn, timeout)
        await server.close()
        return hits

    hits = asyncio.run(run())
    for hit in hits:
        if as_json:
            click.echo(json.dumps(dict(asdict(hit), servent_id=hit.servent_id.hex())))
        else:
            click.echo(f"{hit.host}:{hit.port}  {hit.file_size:>10}  {hit.file_name}  "
                       f"{hit.urn or ''}")


@gnutella.command("download")
@click.argument("words", nargs=-1)
@click.option("--connect", "peer", required=True, help="HOST:PORT of an ultrapeer.")
@click.option("--urn", default=None, help="The urn:sha1:... to fetch.")
@click.option("-o", "--output", type=click.Path(file_okay=False), default=".", show_default=True)
@click.option("--timeout", type=float, default=3.0, show_default=True)
def download_command(words: tuple[str, ...], peer: str, urn: str | None, output: str,
                     timeout: float) -> None:
    """Search, then download the first hit into OUTPUT (checked against its urn:sha1); a
    firewalled source is reached with a Push and the GIV connection it sends back."""

    async def run() -> tuple[Hit, bytes]:
        server, hits = await _search(_endpoint(peer), " ".join(words), urn, timeout)
        try:
            if not hits:
                raise BadInput(" ".join(words) or urn or "", "no hits")
            return hits[0], await server.fetch(hits[0], timeout=timeout * 3)
        finally:
            await server.close()

    hit, data = asyncio.run(run())
    target = Path(output) / Path(hit.file_name).name
    target.write_bytes(data)
    click.echo(f"{target}  {len(data)} bytes from {hit.host}:{hit.port}")



@gnutella.command("simulate")
@click.option("--nodes", type=int, default=1000, show_default=True)
@click.option("--ttl", "ttls", type=int, multiple=True, default=(1, 2, 3, 4, 5),
              show_default=True)
@click.option("--topology", type=click.Choice(["flat", "ultrapeer"]), default="ultrapeer",
              show_default=True)
@click.option("--qrp/--no-qrp", default=True, show_default=True)
@click.option("--queries", type=int, default=10, show_default=True)
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def simulate_command(nodes: int, ttls: tuple[int, ...], topology: str, qrp: bool, queries: int,
                     seed: int, as_json: bool) -> None:
    """Messages per query against TTL in an in-memory network (seeded)."""
    for ttl in ttls:
        result = simulate(nodes=nodes, topology=topology, qrp=qrp, ttl=ttl, queries=queries,
                          seed=seed)
        if as_json:
            click.echo(json.dumps(asdict(result)))
        else:
            click.echo(f"ttl={ttl} messages/query={result.messages_per_query:.0f} "
                       f"(queries {result.query_messages:.0f}, hits {result.hit_messages:.0f}) "
                       f"reached={result.reached:.0f} answered={result.answered}/{queries}")
