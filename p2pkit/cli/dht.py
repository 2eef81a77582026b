"""``p2pkit dht ...``: run a Mainline DHT node and query the DHT (BEP 5, 44).

* ``p2pkit dht serve --port P [--bootstrap HOST:PORT ...]``: serve a node until interrupted;
* ``p2pkit dht ping HOST:PORT``: one BEP 5 ping;
* ``p2pkit dht find-node|get-peers|get TARGET --bootstrap HOST:PORT``: iterative lookups;
* ``p2pkit dht announce INFO_HASH --port N --bootstrap ...``: announce_peer (BEP 5);
* ``p2pkit dht put VALUE [--seed HEX --seq N [--salt S] [--cas N]] --bootstrap ...``: BEP 44.

Every command prints readable text, or one JSON document with ``--json``.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import click

from p2pkit.cli.bencode import to_json
from p2pkit.cli.errors import BadInput
from p2pkit.dht.node import Contact, LookupCompleted, NodeIdMismatch, PingCompleted, StoreCompleted
from p2pkit.dht.server import DhtServer

Address = tuple[str, int]


def _address(text: str) -> Address:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536 or not host:
        raise BadInput(text, "expected HOST:PORT")
    return host.strip("[]"), int(port)


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


def _run(bind: str, bootstraps: tuple[str, ...], timeout: float,
         work: Callable[[DhtServer], Awaitable[Any]]) -> Any:
    addrs = [_address(b) for b in bootstraps]

    async def main() -> Any:
        # BEP 43: a one-shot client is read-only, so nodes do not keep it in their tables
        server = await DhtServer.start(bind, 0, read_only=True)
        try:
            if addrs:
                await server.bootstrap(addrs, timeout=timeout)
            return await asyncio.wait_for(work(server), timeout)
        finally:
            server.close()

    try:
        return asyncio.run(main())
    except TimeoutError:
        raise BadInput("dht", f"no answer within {timeout:g} s") from None
    except OSError as e:
        raise BadInput(bind, e) from None


def _common(f: Callable) -> Callable:
    f = click.option("--json", "as_json", is_flag=True, help="One JSON document.")(f)
    f = click.option("--timeout", default=30.0, show_default=True, help="Seconds in all.")(f)
    f = click.option("--bind", default="0.0.0.0", show_default=True,
                     help="Local address of the client node.")(f)
    return click.option("--bootstrap", "bootstraps", multiple=True, required=True,
                        metavar="HOST:PORT", help="A node to join through (repeatable).")(f)


@click.group("dht")
def dht() -> None:
    """Mainline DHT: serve a node, look up nodes, peers and BEP 44 items."""


@dht.command("serve")
@click.option("--host", default="0.0.0.0", show_default=True, help="Address to bind.")
@click.option("--port", default=6881, show_default=True, help="UDP port (0 picks one).")
@click.option("--bootstrap", "bootstraps", multiple=True, metavar="HOST:PORT",
              help="A node to join through (repeatable).")
@click.option("--node-id", default=None, metavar="HEX", help="40 hex digits (default random).")
@click.option("--enforce-node-id", is_flag=True, help="Ignore nodes whose id BEP 42 rejects.")
@click.option("--duration", default=None, type=float, help="Stop after this many seconds.")
@click.option("--status-every", default=60.0, show_default=True, help="Seconds between reports.")
@click.option("--json", "as_json", is_flag=True, help="Status as JSON lines.")
def serve(host: str, port: int, bootstraps: tuple[str, ...], node_id: str | None,
          enforce_node_id: bool, duration: float | None, status_every: float,
          as_json: bool) -> None:
    """Serve a DHT node until interrupted (or for --duration seconds)."""
    addrs = [_address(b) for b in bootstraps]
    own = _hash20(node_id, "--node-id") if node_id else None

    def report(server: DhtServer, kind: str) -> None:
        node = server.node
        doc = {"event": kind, "host": server.address[0], "port": server.address[1],
               "id": node.id.hex(), "nodes": len(node.table), "torrents": len(node.peers),
               "items": len(node.items), "stats": dict(sorted(node.stats.items()))}
        if as_json:
            click.echo(json.dumps(doc))
        else:
            click.echo(f"{kind}: {doc['host']}:{doc['port']} id {doc['id']} "
                       f"nodes {doc['nodes']} torrents {doc['torrents']} items {doc['items']} "
                       + " ".join(f"{k}={v}" for k, v in doc["stats"].items()))

    def on_event(event: Any) -> None:
        if isinstance(event, NodeIdMismatch) and not as_json:
            click.echo(f"BEP 42: node id {event.node_id.hex()} does not match "
                       f"{event.addr[0]}", err=True)

    async def main() -> None:
        server = await DhtServer.start(host, port, node_id=own, on_event=on_event,
                                       enforce_node_id=enforce_node_id)
        report(server, "listening")
        started = time.monotonic()
        try:
            if addrs:
                done = await server.bootstrap(addrs)
                report(server, f"joined via {len(addrs)} node(s), {len(done.nodes)} found")
            while duration is None or time.monotonic() - started < duration:
                left = status_every if duration is None else min(
                    status_every, duration - (time.monotonic() - started))
                await asyncio.sleep(max(left, 0.0))
                report(server, "status")
        finally:
            server.close()

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
    except OSError as e:
        raise BadInput(f"{host}:{port}", e) from None


@dht.command("ping")
@click.argument("address")
@click.option("--timeout", default=10.0, show_default=True)
@click.option("--bind", default="0.0.0.0", show_default=True)
@click.option("--json", "as_json", is_flag=True)
def ping(address: str, timeout: float, bind: str, as_json: bool) -> None:
    """Send one BEP 5 ping to HOST:PORT."""
    addr = _address(address)

    async def work(server: DhtServer) -> tuple[PingCompleted, float]:
        started = time.monotonic()
        done = await server.ping(addr, timeout=timeout)
        return done, time.monotonic() - started

    done, rtt = _run(bind, (), timeout, work)
    if done.node_id is None:
        raise BadInput(address, "no answer")
    if as_json:
        click.echo(json.dumps({"host": addr[0], "port": addr[1], "id": done.node_id.hex(),
                               "rtt_ms": round(rtt * 1000, 3)}))
    else:
        click.echo(f"{addr[0]}:{addr[1]} id {done.node_id.hex()} in {rtt * 1000:.1f} ms")


def _lookup_command(name: str, what: str, start: str) -> None:
    @dht.command(name)
    @click.argument("target")
    @_common
    @click.option("--salt", default="", help="BEP 44 salt (get of a salted mutable item).")
    def command(target: str, bootstraps: tuple[str, ...], bind: str, timeout: float,
                as_json: bool, salt: str) -> None:
        value = _hash20(target, what)

        async def work(server: DhtServer) -> LookupCompleted:
            if start == "get":
                return await server.get(value, salt=salt.encode(), timeout=timeout)
            return await getattr(server, start)(value, timeout=timeout)

        done = _run(bind, bootstraps, timeout, work)
        if as_json:
            click.echo(json.dumps(_lookup_document(done)))
        else:
            _print_lookup(done)

    command.__doc__ = f"Iterative {start} for a {what} (40 hex digits)."


_lookup_command("find-node", "node id", "find_node")
_lookup_command("get-peers", "info-hash", "get_peers")
_lookup_command("get", "BEP 44 target", "get")


@dht.command("announce")
@click.argument("info_hash")
@click.option("--port", "peer_port", type=int, default=None, help="Peer port to announce.")
@click.option("--implied-port", is_flag=True, help="Announce our UDP source port instead.")
@_common
def announce(info_hash: str, peer_port: int | None, implied_port: bool,
             bootstraps: tuple[str, ...], bind: str, timeout: float, as_json: bool) -> None:
    """get_peers then announce_peer to the closest nodes (BEP 5)."""
    value = _hash20(info_hash, "info-hash")
    if peer_port is None and not implied_port:
        raise BadInput("announce", "give --port or --implied-port")
    done = _run(bind, bootstraps, timeout, lambda server: server.announce_peer(
        value, peer_port or 0, implied_port=implied_port, timeout=timeout))
    _show_store(done, as_json)


@dht.command("put")
@click.argument("value")
@click.option("--seed", default=None, metavar="HEX",
              help="32-byte ed25519 private seed: makes a mutable item.")
@click.option("--seq", type=int, default=None, help="Sequence number (mutable).")
@click.option("--salt", default="", help="Salt (mutable).")
@click.option("--cas", type=int, default=None, help="Expected current seq (mutable).")
@_common
def put(value: str, seed: str | None, seq: int | None, salt: str, cas: int | None,
        bootstraps: tuple[str, ...], bind: str, timeout: float, as_json: bool) -> None:
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
            raise BadInput("put", "a mutable put needs --seq")
    done = _run(bind, bootstraps, timeout, lambda server: server.put(
        value.encode(), seed=key, seq=seq, salt=salt.encode(), cas=cas, timeout=timeout))
    _show_store(done, as_json)


@dht.command("simulate")
@click.option("--nodes", default=1000, show_default=True, help="Nodes in the network.")
@click.option("--lookups", default=200, show_default=True, help="Lookups measured per phase.")
@click.option("--churn", default=0.3, show_default=True, help="Fraction of nodes then removed.")
@click.option("--loss", default=0.0, show_default=True, help="Datagram loss rate.")
@click.option("--seed", default=1, show_default=True)
@click.option("--join", type=click.Choice(["populate", "protocol"]), default="populate",
              show_default=True, help="Fill routing tables directly, or bootstrap each node.")
@click.option("--json", "as_json", is_flag=True)
def simulate_command(nodes: int, lookups: int, churn: float, loss: float, seed: int, join: str,
                     as_json: bool) -> None:
    """Run N nodes in one process (in-memory transport) and measure lookups."""
    from dataclasses import asdict

    from p2pkit.dht.simulator import simulate

    if nodes < 2 or lookups < 1 or not 0 <= churn < 1 or not 0 <= loss < 1:
        raise BadInput("simulate", "need --nodes >= 2, --lookups >= 1, 0 <= churn, loss < 1")
    if join == "protocol" and not as_json:
        with click.progressbar(length=nodes - 1, label="joining", file=None) as bar:
            report = simulate(nodes=nodes, lookups=lookups, seed=seed, churn=churn, loss=loss,
                              join=join, progress=lambda i, n: bar.update(1))
    else:
        report = simulate(nodes=nodes, lookups=lookups, seed=seed, churn=churn, loss=loss,
                          join=join)
    if as_json:
        click.echo(json.dumps(asdict(report)))
        return
    click.echo(f"network built ({join}) in {report.build_seconds:.1f} s, seed {seed}, "
               f"loss {loss:g}")
    phases = [("stable", report.stable)]
    if report.churned is not None:
        phases.append((f"after {churn:.0%} churn", report.churned))
    for label, s in phases:
        click.echo(f"{label}: {s.nodes} nodes (log2 N = {s.log2_n:.2f}), {s.lookups} lookups: "
                   f"success {s.success_rate:.1%}, hops {s.mean_hops:.2f}, "
                   f"queries {s.mean_queries:.1f}, datagrams/lookup "
                   f"{s.datagrams / s.lookups:.1f}")
