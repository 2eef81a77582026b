"""``p2pkit dht ...``: run a Mainline DHT node and query the DHT (BEP 5, 44).

* ``p2pkit dht serve --listen HOST:PORT [--bootstrap HOST:PORT ...]``: serve a node until
  SIGINT or SIGTERM;
* ``p2pkit dht ping HOST:PORT``: one BEP 5 ping;
* ``p2pkit dht find-node|get-peers|get TARGET --bootstrap HOST:PORT``: iterative lookups;
* ``p2pkit dht announce INFO_HASH --port N --bootstrap ...``: announce_peer (BEP 5);
* ``p2pkit dht put VALUE [--seed HEX --seq N [--salt S] [--cas N]] --bootstrap ...``: BEP 44.

Every command prints readable text, or one JSON document with ``--json``. Queries take
``--listen HOST:PORT`` (our own node, default any port) and ``--timeout``; a lookup that finds
nothing exits 1 (:data:`EXIT_NOT_FOUND`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import click

from p2pkit.cli.bencode import to_json
from p2pkit.cli.dht_simulate import simulate_command
from p2pkit.cli.errors import EXIT_NO_RESULTS, BadInput, Group
from p2pkit.cli.options import (
    HostPort,
    bootstrap_option,
    duration_option,
    json_option,
    listen_option,
    show_host_port,
    timeout_option,
)
from p2pkit.cli.serving import Stopper, say_stopped
from p2pkit.dht.node import Contact, LookupCompleted, NodeIdMismatch, PingCompleted, StoreCompleted
from p2pkit.dht.server import DhtServer

Address = tuple[str, int]


def _hash20(text: str, what: str) -> bytes:
    try:
        value = bytes.fromhex(text)
    except ValueError:
        value = b""
    if len(value) != 20:
        raise BadInput(text, f"{what} must be 40 hex digits")
    return value


def _contact(c: Contact) -> dict[str, Any]:
    return {"id": c.id.hex(), "host": c.addr[0], "port": c.addr[1]}


def _lookup_document(done: LookupCompleted) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "method": done.method, "target": done.target.hex(), "queries": done.queries,
        "hops": done.hops, "nodes": [_contact(c) for c in done.nodes],
    }
    if done.method == "get_peers":
        doc["peers"] = [{"host": h, "port": p} for h, p in done.peers]
    if done.method == "get":
        item = done.item
        doc["item"] = None if item is None else {
            "v": to_json(item.v), "mutable": item.mutable, "seq": item.seq,
            "k": item.k.hex() if item.k else None, "sig": item.sig.hex() if item.sig else None}
    return doc


def _store_document(done: StoreCompleted) -> dict[str, Any]:
    return {"method": done.method, "target": done.target.hex(), "stored": done.stored,
            "errors": [{"host": a[0], "port": a[1], "code": code, "message": message}
                       for a, code, message in done.errors],
            "lookup": _lookup_document(done.lookup)}


def _print_lookup(done: LookupCompleted) -> None:
    click.echo(f"{done.method} {done.target.hex()}: {len(done.nodes)} nodes, "
               f"{done.queries} queries, {done.hops} hops")
    for i, c in enumerate(done.nodes, 1):
        click.echo(f"  {i:2}. {c.id.hex()}  {c.addr[0]}:{c.addr[1]}")
    if done.method == "get_peers":
        click.echo(f"peers: {len(done.peers)}")
        for host, port in done.peers:
            click.echo(f"  {host}:{port}")
    if done.method == "get":
        item = done.item
        if item is None:
            click.echo("item: not found")
        else:
            kind = f"mutable seq {item.seq} key {item.k.hex()}" if item.mutable else "immutable"
            click.echo(f"item ({kind}, signature verified): {to_json(item.v)!r}")


def _print_store(done: StoreCompleted) -> None:
    click.echo(f"{done.method} {done.target.hex()}: stored on {done.stored} nodes")
    for (host, port), code, message in done.errors:
        click.echo(f"  {host}:{port} refused: {code} {message}")


def _show_store(done: StoreCompleted, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(_store_document(done)))
    else:
        _print_store(done)


def _run(listen: Address, bootstraps: tuple[Address, ...], timeout: float,
         work: Callable[[DhtServer], Awaitable[Any]], *, asked: str = "") -> Any:
    """Run ``work`` on a read-only node at ``listen`` joined through ``bootstraps``; a timeout
    is one line naming who did not answer (``asked``, else the bootstrap nodes)."""
    asked = asked or ", ".join(show_host_port(*b) for b in bootstraps) or "the DHT"

    async def main() -> Any:
        # BEP 43: a one-shot client is read-only, so nodes do not keep it in their tables
        server = await DhtServer.start(listen[0], listen[1], read_only=True)
        try:
            if bootstraps:
                await server.bootstrap(list(bootstraps), timeout=timeout)
            return await asyncio.wait_for(work(server), timeout)
        finally:
            server.close()

    try:
        return asyncio.run(main())
    except TimeoutError:
        raise BadInput(asked, f"no answer within {timeout:g} s") from None
    except OSError as e:
        raise BadInput(f"listening on {show_host_port(*listen)}", e) from None


def _client_options(f: Callable) -> Callable:
    """The options every one-shot DHT query shares."""
    f = json_option("Print one JSON document.")(f)
    f = timeout_option(30.0, help="Give up after this many seconds in all.")(f)
    f = listen_option("0.0.0.0:0", help="Our own (read-only, BEP 43) node's address.")(f)
    return bootstrap_option(required=True)(f)


#: Exit status of a lookup that ran but found nothing (no peers, no item, no nodes).
EXIT_NOT_FOUND = EXIT_NO_RESULTS


@click.group("dht", cls=Group)
def dht() -> None:
    """Mainline DHT: serve a node, look up nodes, peers and BEP 44 items (BEP 5, 44).

    Lookups that find nothing (no peers, no item) say so and exit 1; bad input exits 2.
    The DHT is only joined through the --bootstrap nodes you name, never a public router.
    """


@dht.command("serve")
@listen_option("0.0.0.0:6881", help="UDP address to serve on (port 0: any free port).")
@bootstrap_option()
@click.option("--node-id", default=None, metavar="HEX",
              help="Our node id, 40 hex digits (default: random).")
@click.option("--enforce-node-id", is_flag=True, help="Ignore nodes whose id BEP 42 rejects.")
@duration_option()
@click.option("--status-every", type=click.FloatRange(0, min_open=True), default=60.0,
              show_default=True, metavar="SECONDS", help="Seconds between status reports.")
@json_option("Print the status reports as JSON lines.")
def serve(listen: Address, bootstraps: tuple[Address, ...], node_id: str | None,
          enforce_node_id: bool, duration: float | None, status_every: float,
          as_json: bool) -> None:
    """Serve a DHT node until SIGINT or SIGTERM (or for --duration seconds), then exit 0."""
    own = _hash20(node_id, "--node-id") if node_id else None

    def report(server: DhtServer, kind: str) -> None:
        node = server.node
        doc = {"event": kind, "host": server.address[0], "port": server.address[1],
               "id": node.id.hex(), "nodes": len(node.table), "torrents": len(node.peers),
               "items": len(node.items), "stats": dict(sorted(node.stats.items()))}
        if as_json:
            click.echo(json.dumps(doc))
        else:
            click.echo(f"{kind}: {show_host_port(doc['host'], doc['port'])} id {doc['id']} "
                       f"nodes {doc['nodes']} torrents {doc['torrents']} items {doc['items']} "
                       + " ".join(f"{k}={v}" for k, v in doc["stats"].items()))

    def on_event(event: Any) -> None:
        if isinstance(event, NodeIdMismatch) and not as_json:
            click.echo(f"BEP 42: node id {event.node_id.hex()} does not match "
                       f"{event.addr[0]}", err=True)

    async def main() -> str:
        with Stopper() as stopper:
            server = await DhtServer.start(listen[0], listen[1], node_id=own,
                                           on_event=on_event, enforce_node_id=enforce_node_id)
            report(server, "listening")

            async def work() -> None:
                if bootstraps:
                    done = await server.bootstrap(list(bootstraps))
                    report(server, f"joined via {len(bootstraps)} node(s), "
                                   f"{len(done.nodes)} found")
                while True:
                    await asyncio.sleep(status_every)
                    report(server, "status")

            task = asyncio.ensure_future(work())
            try:
                reason = await stopper.wait(duration)
                if duration is not None and reason.startswith("after"):
                    report(server, "status")
                return reason
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
                server.close()

    try:
        reason = asyncio.run(main())
    except (OSError, OverflowError) as e:
        raise BadInput(f"listening on {show_host_port(*listen)}", e) from None
    say_stopped("dht serve", reason)


@dht.command("ping")
@click.argument("address", type=HostPort())
@timeout_option(10.0)
@listen_option("0.0.0.0:0", help="Our own (read-only, BEP 43) node's address.")
@json_option()
def ping(address: Address, timeout: float, listen: Address, as_json: bool) -> None:
    """Send one BEP 5 ping to ADDRESS (HOST:PORT of a DHT node) and print its id."""
    addr = address

    async def work(server: DhtServer) -> tuple[PingCompleted, float]:
        started = time.monotonic()
        done = await server.ping(addr, timeout=timeout)
        return done, time.monotonic() - started

    done, rtt = _run(listen, (), timeout, work, asked=show_host_port(*addr))
    if done.node_id is None:
        raise BadInput(show_host_port(*addr), f"no answer within {timeout:g} s")
    if as_json:
        click.echo(json.dumps({"host": addr[0], "port": addr[1], "id": done.node_id.hex(),
                               "rtt_ms": round(rtt * 1000, 3)}))
    else:
        click.echo(f"{show_host_port(*addr)} id {done.node_id.hex()} in {rtt * 1000:.1f} ms")


def _found_nothing(done: LookupCompleted) -> str | None:
    """Why a finished lookup counts as "not found", or None."""
    if done.method == "get_peers" and not done.peers:
        return "no peers found"
    if done.method == "get" and done.item is None:
        return "no item found"
    if not done.nodes:
        return "no node answered"
    return None


def _lookup_command(name: str, what: str, start: str, doc: str) -> None:
    def command(target: str, bootstraps: tuple[Address, ...], listen: Address, timeout: float,
                as_json: bool, salt: str = "") -> int:
        value = _hash20(target, what)

        async def work(server: DhtServer) -> LookupCompleted:
            if start == "get":
                return await server.get(value, salt=salt.encode(), timeout=timeout)
            return await getattr(server, start)(value, timeout=timeout)

        done = _run(listen, bootstraps, timeout, work)
        if as_json:
            click.echo(json.dumps(_lookup_document(done)))
        else:
            _print_lookup(done)
        nothing = _found_nothing(done)
        if nothing is not None:
            click.echo(f"p2pkit: {nothing}", err=True)
            return EXIT_NOT_FOUND
        return 0

    command.__doc__ = doc
    if start == "get":
        command = click.option("--salt", default="", help="BEP 44 salt of a mutable item "
                               "(the one it was put with).")(command)
    command = _client_options(command)
    command = click.argument("target", metavar=what.upper().replace(" ", "-"))(command)
    dht.command(name)(command)


_lookup_command("find-node", "node id", "find_node",
                "Iterative find_node for NODE-ID (40 hex digits): the closest nodes (BEP 5).")
_lookup_command("get-peers", "info-hash", "get_peers",
                "Iterative get_peers for INFO-HASH (40 hex digits): peers of a torrent (BEP 5)."
                "\n\nExit 1 (\"no peers found\") when no node knows a peer.")
_lookup_command("get", "target", "get",
                "Iterative get of a BEP 44 item by TARGET (40 hex digits: the SHA-1 of the value, "
                "or of key and salt).\n\nExit 1 (\"no item found\") when nobody holds it.")


@dht.command("announce")
@click.argument("info_hash", metavar="INFO-HASH")
@click.option("--port", "peer_port", type=click.IntRange(1, 65535), default=None,
              help="Peer port to announce (BEP 5 announce_peer 'port').")
@click.option("--implied-port", is_flag=True, help="Announce our UDP source port instead.")
@_client_options
def announce(info_hash: str, peer_port: int | None, implied_port: bool,
             bootstraps: tuple[Address, ...], listen: Address, timeout: float,
             as_json: bool) -> None:
    """get_peers then announce_peer for INFO-HASH (40 hex digits) to the closest nodes (BEP 5).
    """
    value = _hash20(info_hash, "info-hash")
    if peer_port is None and not implied_port:
        raise click.UsageError("give --port or --implied-port")
    done = _run(listen, bootstraps, timeout, lambda server: server.announce_peer(
        value, peer_port or 0, implied_port=implied_port, timeout=timeout))
    _show_store(done, as_json)


@dht.command("put")
@click.argument("value")
@click.option("--seed", default=None, metavar="HEX",
              help="32-byte ed25519 private seed (64 hex digits): makes a mutable item.")
@click.option("--seq", type=click.IntRange(0), default=None,
              help="Sequence number of a mutable item (needs --seed).")
@click.option("--salt", default="", help="Salt of a mutable item (needs --seed).")
@click.option("--cas", type=click.IntRange(0), default=None,
              help="Store only if the current seq is this (mutable; needs --seed).")
@_client_options
def put(value: str, seed: str | None, seq: int | None, salt: str, cas: int | None,
        bootstraps: tuple[Address, ...], listen: Address, timeout: float,
        as_json: bool) -> None:
    """Store VALUE (a string) as a BEP 44 item: immutable, or mutable with --seed and --seq."""
    key = None
    if seed is not None:
        try:
            key = bytes.fromhex(seed)
        except ValueError:
            key = b""
        if len(key) != 32:
            raise BadInput(seed, "--seed must be 64 hex digits")
        if seq is None:
            raise click.UsageError("a mutable put needs --seq")
    elif seq is not None or salt or cas is not None:
        raise click.UsageError("--seq, --salt and --cas apply to mutable items: give --seed")
    done = _run(listen, bootstraps, timeout, lambda server: server.put(
        value.encode(), seed=key, seq=seq, salt=salt.encode(), cas=cas, timeout=timeout))
    _show_store(done, as_json)


dht.add_command(simulate_command)
