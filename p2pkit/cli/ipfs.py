"""``p2pkit ipfs ...``: identities, a minimal libp2p host, ping and identify.

* ``p2pkit ipfs id [PEER] [--key FILE]``: show a peer id (a given one decoded, ours from a
  libp2p ``PrivateKey`` file, or a fresh one), in both text forms;
* ``p2pkit ipfs key FILE``: write a new Ed25519 ``PrivateKey`` file (mode 0600);
* ``p2pkit ipfs add FILE [--profile …]``: the UnixFS CID of a file (Helia's, Kubo's settings);
* ``p2pkit ipfs car export FILE -o OUT.car`` / ``car import CAR``: CARv1 archives;
* ``p2pkit ipfs serve --listen /ip4/127.0.0.1/tcp/4001 [--key FILE] [--car FILE]
  [--bootstrap MULTIADDR] [--keylog FILE] [--repo DIR]``: serve ping, identify, the kad-dht
  and Bitswap until SIGINT or SIGTERM (or ``--duration``), joining the DHT through the
  --bootstrap peers;
* the commands that dial (ping, identify, get, dht …, name …) take ``--keylog FILE`` too
  (:mod:`p2pkit.cli.ipfs_keylog`);
* ``p2pkit ipfs get CID --peer MULTIADDR… | --bootstrap MULTIADDR… -o FILE``: fetch a file
  (or a directory tree) over Bitswap from several peers at once (the providers found through
  the DHT, without --peer);
* ``p2pkit ipfs dht put|get``, ``p2pkit ipfs name publish|resolve``: values in the DHT
  (:mod:`p2pkit.cli.ipfs_values`);
* ``p2pkit ipfs ping MULTIADDR [-c N]``: dial (TCP, Noise, yamux) and ping;
* ``p2pkit ipfs identify MULTIADDR``: dial and print the peer's identify message;
* ``p2pkit ipfs dht find-providers|find-peer|provide … --peer MULTIADDR``: iterative kad-dht
  lookups starting from the servers named.

Every command prints readable text, or one JSON document with ``--json``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
from pathlib import Path
from typing import Any

import click

from p2pkit.cli.errors import BadInput, Group
from p2pkit.cli.ipfs_keylog import client_host, keylog_option
from p2pkit.cli.options import duration_option, json_option, timeout_option
from p2pkit.cli.serving import Stopper, say_stopped
from p2pkit.errors import P2PKitError
from p2pkit.ipfs.keys import Ed25519Identity, PublicKeyMessage
from p2pkit.ipfs.multiaddr import Multiaddr
from p2pkit.ipfs.peer_id import PeerId

#: Largest key file read.
MAX_KEY_FILE = 16 * 1024
#: The UnixFS import settings by name (p2pkit.ipfs.unixfs_importer.PROFILES).
_PROFILE_NAMES = ("helia", "unixfs-v1-2025", "unixfs-v0-2015", "importer-default")


class MultiaddrParam(click.ParamType):
    """A multiaddr in text form."""

    name = "MULTIADDR"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> Multiaddr:
        if isinstance(value, Multiaddr):
            return value
        try:
            return Multiaddr.from_text(value)
        except P2PKitError as e:
            self.fail(str(e), param, ctx)


def _identity(key: Path | None) -> Ed25519Identity:
    if key is None:
        return Ed25519Identity(secrets.token_bytes(32))
    data = key.read_bytes()[: MAX_KEY_FILE + 1]
    if len(data) > MAX_KEY_FILE:
        raise BadInput(str(key), f"larger than {MAX_KEY_FILE} bytes: not a key file")
    try:
        return Ed25519Identity.from_private_key(data)
    except P2PKitError as e:
        raise BadInput(str(key), e) from None


def _peer_document(peer: PeerId) -> dict[str, Any]:
    doc: dict[str, Any] = {"id": str(peer), "cid": peer.to_cid_text()}
    if peer.public_key is not None:
        key = PublicKeyMessage.parse(peer.public_key)
        doc.update(key_type=key.Type, public_key=key.Data.hex())
    return doc


@click.group("ipfs", cls=Group)
def ipfs() -> None:
    """IPFS and libp2p: peer ids, a minimal host (TCP, Noise, yamux), ping and identify.

    Dials only the addresses you name; there is no public bootstrap, no DHT and no mDNS.
    """


@ipfs.command("id")
@click.argument("peer", required=False)
@click.option("--key", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A libp2p PrivateKey file (as `p2pkit ipfs key` writes).")
@json_option()
def id_command(peer: str | None, key: Path | None, as_json: bool) -> None:
    """Show PEER (a peer id or a multiaddr ending in /p2p/…), or our own id."""
    if peer is not None:
        try:
            if peer.startswith("/"):
                mh = Multiaddr.from_text(peer).peer_id
                if mh is None:
                    raise BadInput(peer, "the multiaddr has no /p2p/ component")
                pid = PeerId(mh)
            else:
                pid = PeerId.from_text(peer)
        except P2PKitError as e:
            raise BadInput(peer, e) from None
    else:
        pid = PeerId.from_public_key(_identity(key).public_key)
    doc = _peer_document(pid)
    if as_json:
        click.echo(json.dumps(doc))
        return
    click.echo(doc["id"])
    click.echo(f"  cid        {doc['cid']}")
    if "key_type" in doc:
        click.echo(f"  key        {doc['key_type']} {doc['public_key']}")


@ipfs.command("key")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
def key_command(path: Path) -> None:
    """Write a new Ed25519 identity to PATH (a libp2p PrivateKey) and print its peer id."""
    identity = Ed25519Identity(secrets.token_bytes(32))
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(identity.private_key)
    click.echo(str(PeerId.from_public_key(identity.public_key)))


def _tcp(addr: Multiaddr, what: str) -> tuple[str, int]:
    names = [n for n, _ in addr]
    if names[:2] not in (["ip4", "tcp"], ["ip6", "tcp"]) or any(
            n != "p2p" for n in names[2:]):
        raise BadInput(str(addr), f"{what} must be /ip4|ip6/ADDRESS/tcp/PORT[/p2p/PEER]")
    return str(addr.components[0][1]), addr.components[1][1]


@ipfs.command("serve")
@click.option("--listen", type=MultiaddrParam(), default="/ip4/127.0.0.1/tcp/4001",
              show_default=True, help="TCP multiaddr to listen on (port 0: any free port).")
@click.option("--key", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A libp2p PrivateKey file (default: a fresh identity).")
@click.option("--car", "cars", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              multiple=True, help="Serve the blocks of this CARv1 over Bitswap (repeatable).")
@click.option("--bootstrap", "bootstraps", type=MultiaddrParam(), multiple=True,
              help="Join the DHT through this peer, /ip4|ip6/ADDRESS/tcp/PORT/p2p/PEER "
                   "(repeatable; none is built in).")
@click.option("--refresh-interval", type=click.FloatRange(1.0, 86400.0), default=600.0,
              show_default=True, help="Seconds between routing-table refreshes.")
@click.option("--keylog", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
              help="Append each connection's Noise transport keys to FILE "
                   "(for p2pkit dissect --keylog).")
@click.option("--repo", type=click.Path(file_okay=False, path_type=Path), metavar="DIR",
              help="Keep blocks on disk in DIR (Kubo's flatfs layout; created when missing): "
                   "what --car adds and what was served before are served again.")
@duration_option()
@json_option("Print the listen address as JSON.")
def serve(listen: Multiaddr, key: Path | None, cars: tuple[Path, ...],
          bootstraps: tuple[Multiaddr, ...], refresh_interval: float, duration: float | None,
          as_json: bool, keylog: Path | None = None, repo: Path | None = None) -> None:
    """Serve ping, identify, the kad-dht and Bitswap until SIGINT or SIGTERM (or for
    --duration seconds); with --bootstrap, join the DHT through those peers first. The roots
    of the --car files are announced as provided (ADD_PROVIDER to the closest servers). The
    routing table is refreshed every --refresh-interval seconds (ipfs-kad-dht §Routing Table
    Refresh)."""
    from p2pkit.ipfs.car import read_car
    from p2pkit.ipfs.host import Host
    from p2pkit.ipfs.kad_refresh import RefreshPolicy, refresh_forever
    from p2pkit.ipfs.noise_keylog import NoiseKeyLogWriter

    host_name, port = _tcp(listen, "--listen")
    for addr in bootstraps:
        _tcp(addr, "--bootstrap")
    try:
        writer = NoiseKeyLogWriter(keylog) if keylog is not None else None
    except OSError as e:
        raise BadInput(str(keylog), e) from None
    store = None
    if repo is not None:
        from p2pkit.ipfs.blockstore import FlatfsBlockstore

        try:
            store = FlatfsBlockstore(repo)
        except (OSError, P2PKitError) as e:
            raise BadInput(str(repo), e) from None
    host = Host(_identity(key), keylog=writer, blocks=store)
    roots = []
    for car_path in cars:
        try:
            car_roots, blocks = read_car(car_path.read_bytes()[: MAX_CAR_FILE + 1])
        except P2PKitError as e:
            raise BadInput(str(car_path), e) from None
        host.add_blocks(blocks)
        roots += car_roots

    async def main() -> str:
        from p2pkit.ipfs.kad_lookup import provide

        with Stopper() as stopper:
            addr = await host.listen(host_name, port)
            if as_json:
                click.echo(json.dumps({"event": "listening", "address": str(addr),
                                       "id": str(host.peer_id)}))
            else:
                click.echo(f"listening on {addr}")
            for addr in bootstraps:
                await _join(host, addr)
            for root in roots:  # the CARs' roots, provided in our DHT and the closest servers'
                await provide(host, root.multihash, host.listen_addrs, timeout=10.0)
            policy = RefreshPolicy(interval=refresh_interval)
            refresher = asyncio.create_task(refresh_forever(
                host, policy, first_delay=0 if bootstraps else None,
                on_report=lambda r: _say_joined(host, r, as_json)))
            try:
                return await stopper.wait(duration)
            finally:
                refresher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await refresher
                await host.close()

    try:
        reason = asyncio.run(main())
    except OSError as e:
        raise BadInput(f"listening on {listen}", e) from None
    finally:
        if writer is not None:
            writer.close()
    say_stopped("ipfs serve", reason)


async def _join(host: Any, addr: Multiaddr) -> None:
    """Dial a --bootstrap peer and identify it: a DHT server enters the routing table (a peer
    that cannot be reached is reported, not fatal)."""
    try:
        connection = await host.dial(addr, timeout=10.0)
        try:
            await connection.identify(timeout=10.0)
        finally:
            await connection.close()
    except (P2PKitError, OSError, TimeoutError) as e:
        click.echo(f"bootstrap {addr}: {e or type(e).__name__}", err=True)


def _say_joined(host: Any, report: Any, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps({"event": "refreshed", "table": len(host.dht.table),
                               "removed": len(report.removed), "queries": report.queries}))
    else:
        click.echo(f"routing table: {len(host.dht.table)} servers "
                   f"({report.queries} queries, {len(report.removed)} removed)")


def _dial_and(addr: Multiaddr, timeout: float, work: Any, keylog: Path | None = None) -> Any:
    _tcp(addr, "the peer's address")
    with client_host(keylog) as host:
        return _run_dialed(host, addr, timeout, work)


def _run_dialed(host: Any, addr: Multiaddr, timeout: float, work: Any) -> Any:
    async def main() -> Any:
        try:
            connection = await host.dial(addr, timeout=timeout)
            try:
                return await asyncio.wait_for(work(connection), timeout)
            finally:
                await connection.close()
        finally:
            await host.close()

    try:
        return asyncio.run(main())
    except TimeoutError:
        raise BadInput(str(addr), f"no answer within {timeout:g} s") from None
    except OSError as e:
        raise BadInput(str(addr), e) from None


@ipfs.command("ping")
@click.argument("address", type=MultiaddrParam())
@click.option("-c", "--count", type=click.IntRange(1, 100), default=3, show_default=True,
              help="Pings to send on the stream.")
@timeout_option(10.0)
@keylog_option
@json_option()
def ping_command(address: Multiaddr, count: int, timeout: float, as_json: bool,
                 keylog: Path | None = None) -> None:
    """Dial ADDRESS (TCP, Noise, yamux) and ping it (/ipfs/ping/1.0.0)."""
    async def work(connection: Any) -> tuple[PeerId, list[float]]:
        return connection.remote_peer_id, await connection.ping(count, timeout=timeout)

    peer, rtts = _dial_and(address, timeout, work, keylog)
    if as_json:
        click.echo(json.dumps({"address": str(address), "id": str(peer),
                               "rtt_ms": [round(r * 1000, 3) for r in rtts]}))
        return
    for rtt in rtts:
        click.echo(f"pong from {peer} in {rtt * 1000:.2f} ms")


@ipfs.command("identify")
@click.argument("address", type=MultiaddrParam())
@timeout_option(10.0)
@keylog_option
@json_option()
def identify_command(address: Multiaddr, timeout: float, as_json: bool,
                     keylog: Path | None = None) -> None:
    """Dial ADDRESS and print its identify message (/ipfs/id/1.0.0)."""
    async def work(connection: Any) -> Any:
        return await connection.identify(timeout=timeout)

    info = _dial_and(address, timeout, work, keylog)
    doc = {
        "id": str(PeerId.from_public_key(info.publicKey)) if info.publicKey else None,
        "agentVersion": info.agentVersion, "protocolVersion": info.protocolVersion,
        "protocols": list(info.protocols),
        "listenAddrs": [str(Multiaddr.from_bytes(a)) for a in info.listenAddrs],
        "observedAddr": str(Multiaddr.from_bytes(info.observedAddr)) if info.observedAddr
        else None,
        "signedPeerRecord": bool(info.signedPeerRecord),
    }
    if as_json:
        click.echo(json.dumps(doc))
        return
    for name, value in doc.items():
        if isinstance(value, list):
            value = ", ".join(value)
        click.echo(f"{name:16} {value}")


@ipfs.command("add")
@click.argument("path", type=click.Path(allow_dash=True, path_type=Path))
@click.option("--profile", type=click.Choice(list(_PROFILE_NAMES)), default="helia",
              show_default=True,
              help="helia (= unixfs-v1-2025): 1 MiB chunks, 1024 links, CIDv1, raw leaves; "
                   "unixfs-v0-2015: Kubo's CIDv0, 256 KiB, 174 links, dag-pb leaves; "
                   "importer-default: 256 KiB, 174 links, CIDv1, raw leaves.")
@click.option("-r", "--recursive", is_flag=True,
              help="PATH is a directory: import its tree (directories over 256 KiB of links "
                   "become HAMT shards, as Kubo and Helia do).")
@click.option("--repo", type=click.Path(file_okay=False, path_type=Path), metavar="DIR",
              help="Also store the blocks in DIR (flatfs, as serve --repo reads them).")
@json_option()
def add_command(path: Path, profile: str, as_json: bool, recursive: bool = False,
                repo: Path | None = None) -> None:
    """Print the CID of the file at PATH (- for standard input), or of the directory tree at
    PATH with -r, as UnixFS (stored only with --repo; nothing is announced)."""
    import sys

    from p2pkit.ipfs.unixfs_directory import import_directory
    from p2pkit.ipfs.unixfs_importer import PROFILES, import_file

    blocks = None
    if repo is not None:
        from p2pkit.ipfs.blockstore import FlatfsBlockstore

        try:
            blocks = FlatfsBlockstore(repo)
        except (OSError, P2PKitError) as e:
            raise BadInput(str(repo), e) from None
    if str(path) == "-":
        cid = import_file(sys.stdin.buffer, PROFILES[profile], blocks=blocks)
    elif path.is_dir():
        if not recursive:
            raise BadInput(str(path), "is a directory (add -r imports a tree)")
        cid = import_directory(path, PROFILES[profile], blocks=blocks)
    else:
        with open(path, "rb") as f:
            cid = import_file(f, PROFILES[profile], blocks=blocks)
    if as_json:
        click.echo(json.dumps({"cid": str(cid), "profile": profile}))
    else:
        click.echo(str(cid))


@ipfs.group("car", cls=Group)
def car() -> None:
    """CARv1 archives: export a file's UnixFS DAG, check and list an archive."""


#: Largest CAR read by ``car import`` (the whole archive is read into memory).
MAX_CAR_FILE = 1 << 30


@car.command("export")
@click.argument("path", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The CAR file to write.")
@click.option("--profile", type=click.Choice(list(_PROFILE_NAMES)), default="helia",
              show_default=True, help="The import settings (as for add).")
@json_option()
def car_export(path: Path, output: Path, profile: str, as_json: bool) -> None:
    """Import the file at PATH (- for standard input) as UnixFS and write its blocks to a
    CARv1 whose root is the file's CID."""
    import sys

    from p2pkit.ipfs.car import write_car
    from p2pkit.ipfs.unixfs_importer import PROFILES, import_file

    blocks: dict[Any, bytes] = {}
    if str(path) == "-":
        root = import_file(sys.stdin.buffer, PROFILES[profile], blocks=blocks)
    else:
        with open(path, "rb") as f:
            root = import_file(f, PROFILES[profile], blocks=blocks)
    output.write_bytes(write_car([root], blocks.items()))
    if as_json:
        click.echo(json.dumps({"root": str(root), "blocks": len(blocks), "car": str(output)}))
    else:
        click.echo(f"{root} ({len(blocks)} blocks) -> {output}")


@car.command("import")
@click.argument("path", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path))
@json_option()
def car_import(path: Path, as_json: bool) -> None:
    """Read the CARv1 at PATH (- for standard input), check every block against its CID and
    print its roots (nothing is stored yet)."""
    import sys

    from p2pkit.ipfs.car import read_car

    source = sys.stdin.buffer if str(path) == "-" else open(path, "rb")  # noqa: SIM115
    with source:
        data = source.read(MAX_CAR_FILE + 1)
    if len(data) > MAX_CAR_FILE:
        raise BadInput(str(path), f"larger than {MAX_CAR_FILE} bytes")
    try:
        roots, blocks = read_car(data)
    except P2PKitError as e:
        raise BadInput(str(path), e) from None
    if as_json:
        click.echo(json.dumps({"roots": [str(r) for r in roots], "blocks": len(blocks),
                               "bytes": sum(len(b) for b in blocks.values())}))
    else:
        for root in roots:
            click.echo(f"root {root}")
        click.echo(f"{len(blocks)} blocks, every one matching its CID")


@ipfs.command("get")
@click.argument("cid")
@click.option("--peer", "peers", type=MultiaddrParam(), multiple=True,
              help="A peer to fetch from over Bitswap, /ip4|ip6/ADDRESS/tcp/PORT[/p2p/PEER] "
                   "(repeatable: the blocks are spread over them).")
@click.option("--bootstrap", "bootstraps", type=MultiaddrParam(), multiple=True,
              help="Find the providers of CID through the DHT, starting from this server "
                   "(repeatable); used when no --peer is given.")
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True,
              help="Where to write the file (or the directory tree).")
@timeout_option(60.0)
@keylog_option
@json_option()
def get_command(cid: str, peers: tuple[Multiaddr, ...], bootstraps: tuple[Multiaddr, ...],
                output: Path, timeout: float, as_json: bool, keylog: Path | None = None) -> None:
    """Fetch the UnixFS file or directory CID over Bitswap (level by level, every block
    checked against its CID) from the --peer peers, or from the providers a DHT lookup through
    --bootstrap finds, several at once, and write it to --output."""
    root = _cid(cid)
    if not peers and not bootstraps:
        raise BadInput(cid, "name the peers (--peer) or DHT servers to ask (--bootstrap)")
    for addr in (*peers, *bootstraps):
        _tcp(addr, "--peer/--bootstrap")
    with client_host(keylog) as host:
        blocks, stats = _fetch(host, root, cid, peers, bootstraps, output, timeout)
    size = (sum(p.stat().st_size for p in output.rglob("*") if p.is_file())
            if output.is_dir() else output.stat().st_size)
    if as_json:
        click.echo(json.dumps({"cid": cid, "blocks": blocks, "bytes": size,
                               "output": str(output),
                               "blocks_from": dict(stats.blocks_from),
                               "rerequests": stats.rerequests}))
    else:
        click.echo(f"{cid}: {size} bytes in {blocks} blocks from "
                   f"{len(stats.blocks_from)} peers -> {output}")


def _fetch(host: Any, root: Any, cid: str, peers: tuple[Multiaddr, ...],
           bootstraps: tuple[Multiaddr, ...], output: Path, timeout: float) -> tuple[int, Any]:
    """``ipfs get``'s work with ``host``: the blocks fetched and the session's stats."""
    from p2pkit.ipfs.bitswap_session import MAX_SESSION_PEERS, BitswapSession
    from p2pkit.ipfs.kad_lookup import lookup
    from p2pkit.ipfs.unixfs_directory import export_to_directory, is_directory
    from p2pkit.ipfs.unixfs_exporter import children, export

    found: dict[str, Any] = {}

    async def providers() -> list[Multiaddr]:
        seeds = []
        for addr in bootstraps:
            with contextlib.suppress(P2PKitError, OSError, TimeoutError):
                connection = await host.dial(addr, timeout=timeout)
                seeds.append((connection.remote_peer_id,
                              [Multiaddr(tuple(c for c in addr if c[0] != "p2p"))]))
                await connection.close()
        result = await lookup(host, root.multihash, kind="GET_PROVIDERS", seeds=seeds,
                              timeout=timeout)
        found["queries"] = result.queries
        out = []
        for pid, addrs in result.providers.items():
            tcp = [a for a in addrs if any(n == "tcp" for n, _ in a)]
            if tcp:
                out.append(Multiaddr(tuple(c for c in tcp[0] if c[0] != "p2p")).encapsulate(
                    Multiaddr((("p2p", pid.multihash),))))
        return out[:MAX_SESSION_PEERS]

    async def main() -> tuple[int, Any]:
        try:
            targets = list(peers) or await providers()
            if not targets:
                raise BadInput(cid, f"no provider found ({found.get('queries', 0)} queries)")
            connections = []
            for addr in targets[:MAX_SESSION_PEERS]:
                with contextlib.suppress(P2PKitError, OSError, TimeoutError):
                    connections.append(await host.dial(addr, timeout=timeout))
            if not connections:
                raise BadInput(cid, f"none of {len(targets)} peers could be reached")
            session = BitswapSession(host, connections)
            level, count = [root], 0
            while level:
                got = await session.fetch(level, timeout=timeout)
                count += len(got)
                level = [child for c in level for child in children(c, got[c])]
            if is_directory(root, host.blocks[root]):
                export_to_directory(root, host.blocks.__getitem__, output)
            else:
                with open(output, "wb") as f:
                    for piece in export(root, host.blocks.__getitem__):
                        f.write(piece)
            return count, session.stats
        finally:
            await host.close()

    try:
        return asyncio.run(main())
    except TimeoutError:
        raise BadInput(cid, f"not complete within {timeout:g} s") from None
    except BadInput:
        raise
    except P2PKitError as e:
        raise BadInput(cid, e) from None


# -- kad-dht: iterative lookups from the servers named -----------------------------------------


@ipfs.group("dht", cls=Group)
def dht() -> None:
    """kad-dht lookups starting from the servers named (--peer MULTIADDR, repeatable).

    find-providers and find-peer are iterative lookups (GET_PROVIDERS, FIND_NODE; k = 20,
    alpha = 3); provide finds the 20 closest servers and stores a provider record on each. A
    query that finds nothing exits 1. Only the --peer servers and those they name are
    contacted: there is no public bootstrap.
    """


def _peer_doc(pid: PeerId, addrs: list[Multiaddr]) -> dict[str, Any]:
    return {"id": str(pid), "addrs": [str(a) for a in addrs]}


def _cid(text: str) -> Any:
    from p2pkit.ipfs.cid import Cid

    try:
        return Cid.decode(text)
    except P2PKitError as e:
        raise BadInput(text, e) from None


def _peers_option(f: Any) -> Any:
    return click.option("--peer", "peers", type=MultiaddrParam(), required=True, multiple=True,
                        help="A DHT server to start from, /ip4|ip6/ADDRESS/tcp/PORT[/p2p/PEER] "
                             "(repeatable).")(f)


def _in_dht(peers: tuple[Multiaddr, ...], timeout: float, work: Any,
            keylog: Path | None = None) -> Any:
    """Dial the --peer servers (their ids become lookup seeds), then ``work(host, seeds)``;
    an unreachable or silent server is one line of bad input. ``keylog``: ``--keylog``."""
    for addr in peers:
        _tcp(addr, "--peer")
    with client_host(keylog) as host:
        return _seeded(host, peers, timeout, work)


def _seeded(host: Any, peers: tuple[Multiaddr, ...], timeout: float, work: Any) -> Any:
    async def main() -> Any:
        try:
            seeds = []
            for addr in peers:
                connection = await host.dial(addr, timeout=timeout)
                seeds.append((connection.remote_peer_id,
                              [Multiaddr(tuple(c for c in addr if c[0] != "p2p"))]))
                await connection.close()
            return await work(host, seeds)
        finally:
            await host.close()

    try:
        return asyncio.run(main())
    except TimeoutError:
        raise BadInput(", ".join(map(str, peers)), f"no answer within {timeout:g} s") from None
    except OSError as e:
        raise BadInput(", ".join(map(str, peers)), e) from None


def _lookup(peers: tuple[Multiaddr, ...], key: bytes, kind: str, timeout: float,
            then: Any = None, keylog: Path | None = None) -> Any:
    """Dial the --peer servers (to learn their ids), run the lookup, then ``then(host, result)``;
    returns (our peer id, the lookup's result)."""
    from p2pkit.ipfs.kad_lookup import lookup

    async def work(host: Any, seeds: list) -> Any:
        result = await lookup(host, key, kind=kind, seeds=seeds, timeout=timeout)
        if then is not None:
            await then(host, result)
        return host.peer_id, result

    return _in_dht(peers, timeout, work, keylog)


@dht.command("find-providers")
@click.argument("cid")
@_peers_option
@timeout_option(30.0)
@keylog_option
@json_option()
def find_providers(cid: str, peers: tuple[Multiaddr, ...], timeout: float,
                   as_json: bool, keylog: Path | None = None) -> None:
    """Find the providers of CID (iterative GET_PROVIDERS)."""
    from p2pkit.cli.errors import EXIT_NO_RESULTS

    _, result = _lookup(peers, _cid(cid).multihash, "GET_PROVIDERS", timeout, keylog=keylog)
    if as_json:
        click.echo(json.dumps({"cid": cid, "queries": result.queries, "hops": result.hops,
                               "providers": [_peer_doc(p, a)
                                             for p, a in result.providers.items()]}))
    else:
        for pid, addrs in result.providers.items():
            click.echo(f"provider {pid}  {', '.join(map(str, addrs)) or 'no address'}")
        click.echo(f"{result.queries} queries, {result.hops} hops", err=True)
    if not result.providers:
        raise SystemExit(EXIT_NO_RESULTS)


@dht.command("find-peer")
@click.argument("peer_id")
@_peers_option
@timeout_option(30.0)
@keylog_option
@json_option()
def find_peer(peer_id: str, peers: tuple[Multiaddr, ...], timeout: float,
              as_json: bool, keylog: Path | None = None) -> None:
    """Find PEER_ID's addresses (iterative FIND_NODE)."""
    from p2pkit.cli.errors import EXIT_NO_RESULTS

    try:
        target = PeerId.from_text(peer_id)
    except P2PKitError as e:
        raise BadInput(peer_id, e) from None
    _, result = _lookup(peers, target.multihash, "FIND_NODE", timeout, keylog=keylog)
    found = [(p, a) for p, a in result.closest if p == target]
    if as_json:
        click.echo(json.dumps({"target": peer_id, "found": bool(found),
                               "queries": result.queries, "hops": result.hops,
                               "closest": [_peer_doc(p, a) for p, a in result.closest]}))
    else:
        for pid, addrs in found:
            click.echo(f"{pid}  {', '.join(map(str, addrs))}")
    if not found:
        if not as_json:
            click.echo(f"{peer_id} not found ({result.queries} queries)", err=True)
        raise SystemExit(EXIT_NO_RESULTS)


@dht.command("provide")
@click.argument("cid")
@_peers_option
@click.option("--addr", "addrs", type=MultiaddrParam(), multiple=True,
              help="A multiaddr to announce with the record (repeatable; servers such as "
                   "js-libp2p ignore records without one).")
@timeout_option(30.0)
@keylog_option
@json_option()
def provide(cid: str, peers: tuple[Multiaddr, ...], addrs: tuple[Multiaddr, ...],
            timeout: float, as_json: bool, keylog: Path | None = None) -> None:
    """Store a provider record for CID on the 20 servers closest to it (FIND_NODE, then
    ADD_PROVIDER with our own peer id)."""
    key = _cid(cid).multihash
    stored: list[str] = []

    async def then(host: Any, result: Any) -> None:
        for pid, peer_addrs in result.closest:
            target = peer_addrs[0].encapsulate(Multiaddr((("p2p", pid.multihash),)))
            try:
                connection = await host.dial(target, timeout=timeout)
                await connection.kad_request({"type": "ADD_PROVIDER", "key": key,
                                              "providerPeers": [{
                                                  "id": host.peer_id.multihash,
                                                  "addrs": [bytes(a) for a in addrs]}]})
                await connection.close()
            except (P2PKitError, OSError, TimeoutError):
                continue
            stored.append(str(pid))

    me, _ = _lookup(peers, key, "FIND_NODE", timeout, then, keylog)
    if as_json:
        click.echo(json.dumps({"cid": cid, "provider": str(me), "stored_on": stored}))
    else:
        click.echo(f"provider record for {cid} ({me}) stored on {len(stored)} servers")
    if not stored:
        raise SystemExit(1)


# values: dht put/get, name publish/resolve (p2pkit.cli.ipfs_values)
from p2pkit.cli import ipfs_values  # noqa: E402

dht.add_command(ipfs_values.dht_put)
dht.add_command(ipfs_values.dht_get)
ipfs.add_command(ipfs_values.name)
