"""``p2pkit bt seed`` and ``p2pkit bt download``: the reference BitTorrent peer.

* ``p2pkit bt seed FILE.torrent --data PATH [--listen HOST:PORT] [--peer HOST:PORT ...]``
  checks the data (BEP 3 hash check of every piece), then serves it until interrupted or
  ``--duration`` seconds (SIGINT and SIGTERM stop it cleanly, exit 0);
* ``p2pkit bt download FILE.torrent|MAGNET -o DIR [--peer HOST:PORT ...] [--seed]``
  downloads into ``DIR`` (resuming what is already there) from the given peers, the torrent's
  or magnet's trackers and the magnet's ``x.pe`` peers; exit status 0 only when every piece
  passed its hash check.

A progress bar with rate and peer count is shown on a terminal; ``--quiet`` hides it and
``--json`` prints one summary document at the end. Registered in :mod:`p2pkit.cli.bt`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import click

from p2pkit.bittorrent.peer.client import (
    ENCRYPTION_POLICIES,
    TRANSPORTS,
    ClientStats,
    TorrentClient,
)
from p2pkit.bittorrent.peer.session import REQUEST_QUEUE
from p2pkit.bittorrent.utp.endpoint import MTU_POLICIES
from p2pkit.bittorrent.wire.magnet import MagnetLink
from p2pkit.bittorrent.wire.metainfo import Metainfo
from p2pkit.cli.errors import BadInput, input_name, read_input
from p2pkit.cli.options import (
    bootstrap_option,
    duration_option,
    listen_option,
    peer_option,
    show_host_port,
    timeout_option,
)
from p2pkit.cli.serving import Stopper, say_stopped
from p2pkit.errors import P2PKitError

#: Exit status when the download did not complete (timeout, no peers, interrupted).
EXIT_INCOMPLETE = 1


def _source(text: str) -> Metainfo | MagnetLink:
    if text.startswith("magnet:"):
        try:
            return MagnetLink.parse(text)
        except P2PKitError as e:
            raise BadInput("magnet link", e) from None
    data = read_input(text)
    try:
        return Metainfo.parse(data)
    except P2PKitError as e:
        raise BadInput(input_name(text), e) from None


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{n:.0f} B"
        n /= 1024
    return f"{n:.1f} GiB"  # pragma: no cover


class _Progress:
    """A rich progress bar on a terminal; nothing otherwise."""

    def __init__(self, enabled: bool, label: str) -> None:
        self.enabled = enabled
        self._bar: Any = None
        self._task: Any = None
        self.label = label

    def __enter__(self) -> _Progress:
        if self.enabled:
            from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

            self._bar = Progress(TextColumn("{task.description}"), BarColumn(),
                                 TextColumn("{task.percentage:>5.1f}%"),
                                 TextColumn("{task.fields[detail]}"), TimeRemainingColumn(),
                                 transient=False)
            self._bar.__enter__()
            self._task = self._bar.add_task(self.label, total=None, detail="")
        return self

    def update(self, stats: ClientStats) -> None:
        if self._bar is None:
            return
        detail = (f"{_size(stats.download_rate)}/s down  {_size(stats.upload_rate)}/s up  "
                  f"{stats.peers} peers")
        self._bar.update(self._task, total=stats.pieces_total or None,
                         completed=stats.pieces_have, detail=detail)

    def __exit__(self, *exc: Any) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)


async def _run(client: TorrentClient, *, until_complete: bool, duration: float | None,
               progress: _Progress) -> tuple[bool, str | None]:
    """Run the client until complete (when asked), ``duration``, SIGINT or SIGTERM; return
    whether every piece is verified and the signal that stopped us, if one did."""
    started = time.monotonic()
    with Stopper() as stopper:
        stop = asyncio.ensure_future(stopper.event.wait())
        starting = asyncio.ensure_future(client.start())
        waiters = [stop]
        try:
            await asyncio.wait([starting, stop], return_when=asyncio.FIRST_COMPLETED)
            if not starting.done():
                starting.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await starting
            else:
                starting.result()  # a port in use, unreadable data: raised here
                if not until_complete:
                    session = client.session
                    if session is not None and session.picker is not None \
                            and session.picker.have_count == 0 and session.picker.piece_count:
                        raise BadInput(str(client.root / session.metainfo.name),
                                       "holds none of the torrent's pieces (check --data)")
                    name = client.metainfo.name if client.metainfo else "the torrent"
                    host = client.listen[0]
                    click.echo(f"seeding {name} on {show_host_port(host, client.listen_port)}",
                               err=True)
            if until_complete:
                waiters.append(asyncio.ensure_future(client.wait_complete()))
            while not stop.done():
                done, _ = await asyncio.wait(waiters, timeout=0.5,
                                             return_when=asyncio.FIRST_COMPLETED)
                progress.update(client.stats())
                if done or client.fatal:
                    break
                if duration is not None and time.monotonic() - started > duration:
                    break
        finally:
            for waiter in waiters:
                if waiter.done() and not waiter.cancelled():
                    waiter.exception()  # a fatal stop: reported from client.fatal below
                waiter.cancel()
            complete = bool(client.session and client.session.complete)
            progress.update(client.stats())
            await client.close()
    return complete, stopper.reason


def _summary(client: TorrentClient, complete: bool, elapsed: float) -> dict[str, Any]:
    session = client.session
    meta = client.metainfo
    return {
        "info_hash": session.info_hash.hex() if session else None,
        "name": meta.name if meta else None,
        "complete": complete,
        "pieces": session.picker.piece_count if session and session.picker else None,
        "pieces_verified": session.picker.have_count if session and session.picker else 0,
        "failed_pieces": session.failed_pieces if session else 0,
        "downloaded_bytes": session.verified_bytes if session else 0,
        "received_bytes": session.received_bytes if session else 0,
        "uploaded_bytes": session.uploaded_bytes if session else 0,
        "seconds": round(elapsed, 3),
        "banned": sorted(client.banned),
        "errors": client.errors,
        "stopped_because": client.fatal,
    }


def _verbose(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value:
        logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                            format="%(asctime)s %(name)s: %(message)s")


def _common(function: Any) -> Any:
    options = [
        listen_option("0.0.0.0:6881", help="Address for incoming peer connections (port 0: any "
                      "free port)."),
        peer_option("Connect to this peer, HOST:PORT (repeatable)."),
        click.option("--no-trackers", is_flag=True, help="Do not announce to trackers."),
        bootstrap_option("Run a DHT node (BEP 5) joined through this node, HOST:PORT "
                         "(repeatable); peers are then also looked up and announced there."),
        click.option("--dht-port", type=click.IntRange(0, 65535), metavar="PORT",
                     help="UDP port of the DHT node (default: the listening port; 0: any)."),
        click.option("--upload-slots", type=click.IntRange(1, 1000), default=4,
                     show_default=True, help="Peers unchoked at once (BEP 3 choking)."),
        click.option("--request-queue", type=click.IntRange(1, 2000), default=REQUEST_QUEUE,
                     show_default=True,
                     help="Requests kept outstanding per peer (BEP 3 pipelining)."),
        click.option("--encryption", type=click.Choice(ENCRYPTION_POLICIES), default="prefer",
                     show_default=True,
                     help="Message Stream Encryption (MSE/PE): prefer (dial with MSE, fall back "
                     "to plaintext; accept both), require (RC4 only), plaintext (never MSE)."),
        click.option("--keylog", type=click.Path(dir_okay=False), metavar="FILE",
                     help="Append each MSE connection's keys to FILE (for p2pkit dissect "
                     "--keylog)."),
        click.option("--transport", type=click.Choice(TRANSPORTS), default="both",
                     show_default=True,
                     help="Peer connections over TCP, uTP (BEP 29, on the UDP port of the same "
                     "number, shared with the DHT node) or both (accept both, dial uTP first)."),
        click.option("--utp-mtu", type=click.Choice(MTU_POLICIES), default="ethernet",
                     show_default=True,
                     help="Largest uTP datagrams: up to Ethernet's MTU (as libtorrent), or up to "
                     "the interface's (p2pkit peers among themselves; 65536 on loopback)."),
        click.option("--json", "as_json", is_flag=True, help="Print a JSON summary at the end."),
        click.option("-q", "--quiet", is_flag=True, help="No progress bar."),
        click.option("-v", "--verbose", is_flag=True, callback=_verbose, expose_value=False,
                     help="Log connections, closes and tracker answers to stderr."),
    ]
    for option in reversed(options):
        function = option(function)
    return function


Address = tuple[str, int]


def _client(source: Metainfo | MagnetLink, root: Path, listen: Address,
            peers: tuple[Address, ...], no_trackers: bool, upload_slots: int,
            progress: _Progress, bootstraps: tuple[Address, ...], dht_port: int | None,
            request_queue: int, encryption: str = "prefer", keylog: str | None = None,
            transport: str = "both", utp_mtu: str = "ethernet") -> TorrentClient:
    return TorrentClient(source, root, listen=listen, peers=list(peers),
                         encryption=encryption, keylog=keylog, transport=transport,
                         utp_mtu=utp_mtu,
                         trackers=not no_trackers, upload_slots=upload_slots,
                         on_progress=progress.update,
                         dht_bootstrap=list(bootstraps) if bootstraps else None,
                         dht_port=dht_port, request_queue=request_queue)


def _run_client(client: TorrentClient, listen: Address, **options: Any
                ) -> tuple[bool, str | None]:
    """:func:`_run` under ``asyncio.run``, with a busy port or unreadable data as BadInput."""
    try:
        return asyncio.run(_run(client, **options))
    except (OSError, OverflowError) as e:
        if isinstance(e, OSError) and e.filename:
            raise BadInput(str(e.filename), e) from None
        raise BadInput(f"listening on {show_host_port(*listen)}", e) from None


def _finish(client: TorrentClient, complete: bool, elapsed: float, as_json: bool,
            verb: str) -> None:
    summary = _summary(client, complete, elapsed)
    if as_json:
        click.echo(json.dumps(summary, indent=2))
    else:
        state = "complete" if complete else "INCOMPLETE"
        if client.fatal:
            click.echo(f"p2pkit: {client.fatal}", err=True)
        click.echo(f"{verb} {summary['name'] or summary['info_hash']}: {state}, "
                   f"{summary['pieces_verified']}/{summary['pieces']} pieces verified, "
                   f"{summary['failed_pieces']} failed hash checks, {elapsed:.1f} s")


@click.command("download")
@click.argument("source", metavar="FILE.torrent|MAGNET|-")
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False),
              metavar="DIR", help="Directory to download into (resumes what is there).")
@click.option("--seed", "keep_seeding", is_flag=True,
              help="Keep seeding after the download completes (until SIGINT or SIGTERM).")
@timeout_option(None, help="Give up after this many seconds (exit 1 if incomplete).")
@_common
def download(source: str, output: str, keep_seeding: bool, timeout: float | None,
             listen: Address, peers: tuple[Address, ...], no_trackers: bool,
             bootstraps: tuple[Address, ...], dht_port: int | None, upload_slots: int,
             request_queue: int, encryption: str, keylog: str | None, transport: str,
             utp_mtu: str, as_json: bool, quiet: bool) -> int:
    """Download FILE.torrent (- for standard input) or MAGNET (a magnet link) into DIR.

    Exit 0 only when every piece is verified; 1 when the download is incomplete (timeout,
    no peers, interrupted).
    """
    torrent = _source(source)
    root = Path(output)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise BadInput(output, e) from None
    begin = time.monotonic()
    with _Progress(not quiet and sys.stderr.isatty(), "download") as progress:
        client = _client(torrent, root, listen, peers, no_trackers, upload_slots, progress,
                         bootstraps, dht_port, request_queue, encryption, keylog, transport,
                         utp_mtu)
        complete, reason = _run_client(client, listen, until_complete=not keep_seeding,
                                       duration=timeout, progress=progress)
    _finish(client, complete, time.monotonic() - begin, as_json, "download")
    if reason is not None:
        say_stopped("bt download", reason)
    return 0 if complete else EXIT_INCOMPLETE


@click.command("seed")
@click.argument("torrent", metavar="FILE.torrent|-")
@click.option("--data", required=True, type=click.Path(exists=True), metavar="PATH",
              help="The directory that holds the torrent's content (its name inside it).")
@duration_option()
@_common
def seed(torrent: str, data: str, duration: float | None, listen: Address,
         peers: tuple[Address, ...], no_trackers: bool, bootstraps: tuple[Address, ...],
         dht_port: int | None, upload_slots: int, request_queue: int, encryption: str,
         keylog: str | None, transport: str, utp_mtu: str, as_json: bool,
         quiet: bool) -> None:
    """Check the data in PATH against FILE.torrent (- for standard input), then seed it.

    Runs until SIGINT, SIGTERM or --duration, then exits 0.
    """
    meta = _source(torrent)
    if not isinstance(meta, Metainfo):
        raise BadInput(torrent, "seeding needs a .torrent file")
    root = Path(data)
    if not (root / meta.name).exists() and root.name == meta.name:  # --data names the content
        root = root.parent
    begin = time.monotonic()
    with _Progress(not quiet and sys.stderr.isatty(), "seed") as progress:
        client = _client(meta, root, listen, peers, no_trackers, upload_slots, progress,
                         bootstraps, dht_port, request_queue, encryption, keylog, transport,
                         utp_mtu)
        complete, reason = _run_client(client, listen, until_complete=False, duration=duration,
                                       progress=progress)
    _finish(client, complete, time.monotonic() - begin, as_json, "seed")
    if not complete:
        click.echo(f"warning: the data in {root} does not hold every piece", err=True)
    say_stopped("bt seed", reason or f"after {duration:g} s")
