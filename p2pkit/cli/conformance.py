"""``p2pkit conformance ...``: judge a peer live by address, or the traffic of a capture.

* ``p2pkit conformance run dht --target [LABEL=]HOST:PORT [--target …] [--cases GLOB] [--strict] [--list]
  [--junit F] [--json F] [--html F] [--timeout S]``: play the harness's side of each case
  against a live target; a line per case, then a summary table. Exit 0 only when no MUST case
  fails (under ``--strict``, no case at all), 1 otherwise, 2 on bad input. Several
  ``--target`` run the catalog against each in turn and give one report with a per-protocol
  matrix; exit 0 only when no MUST case fails on any target.
* ``p2pkit conformance run tracker --target URL``: the same for a tracker, by its announce URL
  (``http://HOST:PORT/announce`` runs the HTTP cases, ``udp://HOST:PORT`` the BEP 15 ones).
* ``p2pkit conformance run bittorrent --target HOST:PORT (--torrent F | --magnet M) ...``: the
  peer-wire cases over TCP against a peer that seeds the torrent F (the harness reads its
  info-hash, piece count and hashes); with a magnet link only the info-hash is known and the
  cases that need the torrent are unsupported.
* ``p2pkit conformance run gnutella --target HOST:PORT ...``: the Gnutella 0.6 cases over TCP
  against a servent (best an ultrapeer), several harness connections at once.
* ``p2pkit conformance check CAPTURE [--endpoint HOST:PORT] [--json]``: the DHT, tracker and
  Gnutella rules judge every endpoint seen in a pcap/pcapng. Exit 1 when a MUST rule fails, 2
  when the capture is not one or is corrupt or truncated (judged up to the damage, one line).
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import click

from p2pkit.addresses import parse_host_port
from p2pkit.cli.errors import EXIT_BAD_INPUT, EXIT_DEVIATIONS, BadInput, capture_source, read_input
from p2pkit.cli.options import HostPort, show_host_port
from p2pkit.conformance import CATALOGS, catalog
from p2pkit.conformance.case import select
from p2pkit.conformance.runner import DEFAULT_DEADLINE, DEFAULT_TIMEOUT, TargetError


@click.group("conformance")
def conformance() -> None:
    """Judge a peer against the specs, live or from a capture."""


_PROTOCOLS = "|".join(sorted(CATALOGS))


@conformance.command("run", help=(
    f"Run a PROTOCOL's conformance cases ({{{_PROTOCOLS}}}) against a live target."))
@click.argument("protocol", type=click.Choice(sorted(CATALOGS)))
@click.option("--target", "targets", multiple=True, metavar="[LABEL=]HOST:PORT|URL",
              help="The peer under test, HOST:PORT (a tracker: its announce URL, "
                   "http://HOST:PORT/announce or udp://HOST:PORT); repeatable: several "
                   "targets give one report with a per-protocol matrix, each named LABEL.")
@click.option("--cases", "patterns", multiple=True, metavar="GLOB",
              help="Only cases whose id matches (e.g. 'dht/bep44/*'); repeatable.")
@click.option("--strict", is_flag=True, help="SHOULD and MAY cases fail the run too.")
@click.option("--list", "list_only", is_flag=True, help="List the cases and exit.")
@click.option("--junit", "junit_path", type=click.Path(dir_okay=False), help="JUnit XML file.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="JSON report file.")
@click.option("--html", "html_path", type=click.Path(dir_okay=False), help="HTML report file.")
@click.option("--timeout", default=DEFAULT_TIMEOUT, show_default=True, type=float,
              help="Seconds each step waits for its answer.")
@click.option("--deadline", default=DEFAULT_DEADLINE, show_default=True, type=float,
              help="Seconds the whole run may take.")
@click.option("--torrent", "torrent_path", metavar="FILE.torrent|-",
              help="bittorrent: the .torrent the target seeds (- for standard input).")
@click.option("--magnet", metavar="URI",
              help="bittorrent: a magnet link of what the target seeds (info-hash only).")
@click.option("--cid", "cids", multiple=True, metavar="CID",
              help="ipfs: a block the target has (the Bitswap want-block cases); repeatable.")
@click.option("-v", "--verbose", is_flag=True, help="Show the reason of passing cases too.")
def run_command(protocol: str, targets: tuple[str, ...], patterns: tuple[str, ...],
                strict: bool, list_only: bool, junit_path: str | None, json_path: str | None,
                html_path: str | None, timeout: float, deadline: float,
                torrent_path: str | None, magnet: str | None, verbose: bool,
                cids: tuple[str, ...] = ()) -> int:
    stream = _stream_protocol(protocol, torrent_path, magnet, list_only)
    cases = select(catalog(protocol), patterns)
    from p2pkit.conformance.trace_replay import catalog_traces  # --cases 'dht/trace/*'
    cases += catalog_traces(protocol, patterns)
    if not cases:
        raise BadInput("--cases", f"no case matches {' '.join(patterns)!r}")
    if list_only:
        for case in cases:
            click.echo(f"{case.id:<58} {case.level:<6} {case.spec}")
        click.echo(f"{len(cases)} cases")
        return 0
    if not targets:
        raise BadInput("--target", "missing: give the peer under test as " + (
            "its announce URL" if protocol == "tracker" else "HOST:PORT"))
    if timeout <= 0 or deadline <= 0:
        raise BadInput("--timeout", "must be positive")
    from p2pkit.conformance.matrix import MatrixReport, parse_labelled_target
    from p2pkit.conformance.reporters.console import ConsoleReporter

    console = ConsoleReporter(verbose=verbose)
    labelled = [parse_labelled_target(t) for t in targets]
    labels = [label or target for label, target in labelled]
    if len(set(labels)) < len(labels):
        raise BadInput("--target", f"the same label twice in {' '.join(labels)}: "
                                   "name each target, LABEL=HOST:PORT")
    runs = []
    for label, (_, target) in zip(labels, labelled, strict=True):
        if len(labelled) > 1:
            console.console.print(f"[b]{label}[/b] ({target})")
        report = _run_target(protocol, target, cases, patterns, stream, strict, timeout,
                             deadline, console, label if len(labelled) > 1 else None,
                             cids=cids)
        report.label = label
        console.summary(report)
        runs.append(report)
    matrix = MatrixReport(runs)
    if len(runs) > 1:
        console.matrix(matrix)
    _write_reports(matrix, junit_path, json_path, html_path)
    return 0 if matrix.ok else EXIT_DEVIATIONS


def _run_target(protocol: str, target: str, cases: list, patterns: tuple[str, ...],
                stream: object | None, strict: bool, timeout: float, deadline: float,
                console: object, label: str | None, cids: tuple[str, ...] = ()) -> object:
    """One target's run (``label`` names it in a multi-target run's error messages)."""
    from p2pkit.conformance.runner import run_cases

    flag = f"--target {label}" if label else "--target"
    try:
        if protocol == "tracker":
            from p2pkit.conformance.tracker.live import parse_tracker_url, run_tracker

            url = parse_tracker_url(target)
            if not any(c.tags[0] == url.scheme for c in cases):
                raise BadInput("--cases", f"no {url.scheme} case matches "
                                          f"{' '.join(patterns)!r}")
            run = run_tracker(cases, url, strict=strict, timeout=timeout, deadline=deadline,
                              on_result=console.line)
        elif protocol == "ipfs":
            from p2pkit.conformance.ipfs.live import ipfs_target, run_ipfs_cases

            run = run_ipfs_cases(cases, ipfs_target(target, cids), strict=strict,
                                 timeout=timeout, deadline=deadline, on_result=console.line)
        else:
            try:
                address = parse_host_port(target)
            except ValueError as e:
                raise BadInput(flag, f"{target}: {e}") from None
            if stream is not None:
                from p2pkit.conformance.stream_runner import run_stream_cases

                run = run_stream_cases(cases, address, stream, name=protocol, strict=strict,
                                       timeout=timeout, deadline=deadline,
                                       on_result=console.line)
            else:
                run = run_cases(cases, address, protocol=protocol, strict=strict,
                                timeout=timeout, deadline=deadline, on_result=console.line)
        return asyncio.run(run)
    except TargetError as e:
        raise BadInput(flag, str(e)) from None
    except OSError as e:
        raise BadInput(flag, e) from None


def _stream_protocol(protocol: str, torrent_path: str | None, magnet: str | None,
                     list_only: bool) -> object | None:
    """The stream protocol a catalog runs over (None for the datagram catalogs), with what
    the harness knows of the target (``--torrent``/``--magnet`` for bittorrent)."""
    if protocol != "bittorrent":
        for flag, value in (("--torrent", torrent_path), ("--magnet", magnet)):
            if value is not None:
                raise BadInput(flag, f"only for 'run bittorrent', not {protocol!r}")
        if protocol == "gnutella":
            from p2pkit.conformance.gnutella import GnutellaWire

            return GnutellaWire()
        return None
    if torrent_path is not None and magnet is not None:
        raise BadInput("--torrent", "give --torrent or --magnet, not both")
    if list_only:
        return None
    from p2pkit.conformance.bittorrent import BitTorrentWire, TorrentFacts
    from p2pkit.errors import P2PKitError

    if torrent_path is not None:
        data = read_input(torrent_path)
        try:
            return BitTorrentWire(TorrentFacts.from_torrent(data))
        except P2PKitError as e:
            raise BadInput(torrent_path, e) from None
    if magnet is not None:
        try:
            return BitTorrentWire(TorrentFacts.from_magnet(magnet))
        except (P2PKitError, ValueError) as e:
            raise BadInput("--magnet", e) from None
    raise BadInput("--torrent", "missing: give the torrent the target seeds (--torrent F) "
                   "or its magnet link (--magnet M)")


def _write_reports(report: object, junit_path: str | None, json_path: str | None,
                   html_path: str | None) -> None:
    from p2pkit.conformance.reporters import html, json_report, junit

    for path, module in ((junit_path, junit), (json_path, json_report), (html_path, html)):
        if path:
            try:
                module.write(report, path)
            except OSError as e:
                raise BadInput(path, e) from None


@conformance.command("check")
@click.argument("capture", metavar="CAPTURE|-")
@click.option("--endpoint", type=HostPort(), help="Judge only this sender, HOST:PORT.")
@click.option("--json", "as_json", is_flag=True, help="One JSON document.")
@click.option("--torrent", "torrent_paths", multiple=True, metavar="F",
              help="A torrent the capture's peers exchange (its piece count and length for "
                   "the peer-wire bounds rules); repeatable.")
@click.option("--keylog", type=click.Path(dir_okay=False), metavar="FILE",
              help="Decrypt with this key log (MSE and Noise lines, as p2pkit dissect "
                   "--keylog): the libp2p rules then see yamux and the stream messages.")
def check_command(capture: str, endpoint: tuple[str, int] | None, as_json: bool,
                  torrent_paths: tuple[str, ...] = (), keylog: str | None = None) -> int:
    """Judge every DHT node, tracker, BitTorrent peer and Gnutella servent seen in a CAPTURE (pcap/pcapng), or
    - for standard input, by the DHT, tracker, peer-wire and Gnutella rules."""
    from p2pkit.bittorrent.wire.metainfo import Metainfo
    from p2pkit.cli.dissect import _secrets
    from p2pkit.conformance.offline import check_capture
    from p2pkit.errors import P2PKitError

    torrents = []
    for path in torrent_paths:
        try:
            torrents.append(Metainfo.parse(Path(path).read_bytes()))
        except (OSError, P2PKitError) as e:
            raise BadInput(path, e) from None

    secrets = _secrets(keylog)
    source = capture_source(capture)
    if capture == "-":
        capture = "standard input"
    where = None if endpoint is None else show_host_port(*endpoint)
    try:
        report = check_capture(source, where, torrents=torrents, secrets=secrets)
        report.capture = capture
    except OSError as e:
        raise BadInput(capture, e) from None
    except P2PKitError as e:
        raise BadInput(capture, e) from None
    if report.frames == 0 and report.warning:
        raise BadInput(capture, report.warning)
    if as_json:
        click.echo(json.dumps(report.to_json()))
    else:
        _print_check(report)
    if report.warning:  # a corrupt or truncated capture: judged up to there, exit 2
        click.echo(f"p2pkit: {capture}: {report.warning} (judged up to there)", err=True)
        return EXIT_BAD_INPUT
    return 0 if report.ok else EXIT_DEVIATIONS


def _print_check(report: object) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(file=sys.stdout, highlight=False, soft_wrap=True)
    if not report.endpoints:
        console.print(f"{report.capture}: no DHT, tracker, peer-wire, Gnutella or libp2p "
                      "traffic in "
                      f"{report.frames} frames")
        return
    for who in report.endpoints.values():
        table = Table(title=f"{who.endpoint} ({who.implementation}): {who.messages} messages")
        for column in ("rule", "level", "checked", "failed", "verdict", "first failures"):
            table.add_column(column)
        for t in who.tallies.values():
            if not t.checked:
                continue
            firsts = "; ".join(f"frame {f}: {r}" for f, r in t.failures[:2])
            table.add_row(t.rule.rule, t.rule.level, str(t.checked), str(t.failed), t.verdict,
                          firsts.replace("[", r"\["))
        console.print(table)
    console.print(f"{report.capture}: {len(report.endpoints)} endpoints, "
                  f"{'no MUST rule fails' if report.ok else 'a MUST rule fails'}")


# record and replay of traces (docs/conformance-traces.md) live in their own module
from p2pkit.cli.conformance_traces import register as _register_traces  # noqa: E402

_register_traces(conformance)
