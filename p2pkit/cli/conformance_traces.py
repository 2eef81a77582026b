"""``p2pkit conformance record`` and ``p2pkit conformance replay``: recorded traffic.

* ``p2pkit conformance record CAPTURE --endpoint HOST:PORT [--session N] [--steps N]
  -o TRACE_DIR``: cut one session of the endpoint under test out of a capture into a trace
  (``trace.pcap`` + ``manifest.json`` with rules inferred from the recorded answers).
* ``p2pkit conformance record --proxy LISTEN_HOST:PORT --to TARGET_HOST:PORT [--udp]
  --duration S -o TRACE_DIR``: relay between any client and the target for S seconds,
  write what passed as a pcap, and cut the trace out of it.
* ``p2pkit conformance replay TRACE_DIR|NAME... --target HOST:PORT``: replay the recorded
  client's side against a live target with fresh values and judge its answers; ``NAME`` is a
  shipped trace (``--list`` shows them). Reports as ``conformance run`` (console, ``--junit``,
  ``--json``, ``--html``); exit 0 when no MUST trace fails, 1 otherwise, 2 on bad input.

See docs/conformance-traces.md.
"""

from __future__ import annotations

import asyncio
import fnmatch
from pathlib import Path
from typing import TYPE_CHECKING

import click

from p2pkit.cli.errors import EXIT_DEVIATIONS, BadInput
from p2pkit.cli.options import HostPort, show_host_port
from p2pkit.conformance.runner import DEFAULT_DEADLINE, DEFAULT_TIMEOUT, TargetError
from p2pkit.conformance.trace_session import TraceError
from p2pkit.errors import P2PKitError

if TYPE_CHECKING:
    from p2pkit.conformance.trace_replay import Trace

__all__ = ["register"]

#: Longest proxy recording, seconds.
MAX_PROXY_DURATION = 3600.0


@click.command("record")
@click.argument("capture", required=False, metavar="CAPTURE")
@click.option("--endpoint", type=HostPort(), help="The endpoint under test in CAPTURE.")
@click.option("--session", "session_number", default=1, show_default=True, type=int,
              help="Which of the endpoint's sessions (1 = the first).")
@click.option("--steps", "max_steps", type=click.IntRange(1, 10_000),
              help="Keep only the first N replayed messages (or turns).")
@click.option("--proxy", type=HostPort(allow_zero=True), help="Record through a loopback proxy listening "
                                                "here (LISTEN_HOST:PORT).")
@click.option("--to", "to", type=HostPort(), help="The proxy's target, HOST:PORT.")
@click.option("--udp", is_flag=True, help="Proxy UDP datagrams (default: TCP).")
@click.option("--duration", type=click.FloatRange(0.1, MAX_PROXY_DURATION),
              help="Seconds the proxy records.")
@click.option("--name", help="The trace's name: its id is PROTOCOL/trace/NAME (default: the "
                             "output directory's name).")
@click.option("--title", help="The trace's title (default: made from the software and "
                              "protocol).")
@click.option("--source", "source_name", help="How the provenance names the capture "
                                              "(default: its file name).")
@click.option("--software", default="unknown", show_default=True,
              help="Which software produced the replayed side (provenance).")
@click.option("-o", "--output", "output", required=True, type=click.Path(file_okay=False),
              help="The trace directory to write.")
def record_command(capture: str | None, endpoint: tuple[str, int] | None, session_number: int,
                   max_steps: int | None, proxy: tuple[str, int] | None,
                   to: tuple[str, int] | None, udp: bool, duration: float | None,
                   name: str | None, title: str | None, source_name: str | None,
                   software: str, output: str) -> int:
    """Cut a trace (capture + manifest) out of CAPTURE, or record one through a proxy."""
    from p2pkit.conformance.trace_record import record_from_capture

    if proxy is not None:
        if capture is not None:
            raise BadInput(capture, "give a CAPTURE or --proxy, not both")
        if to is None or duration is None:
            raise BadInput("--proxy", "needs --to TARGET_HOST:PORT and --duration S")
        from p2pkit.conformance.trace_proxy import record_proxy

        out = Path(output)
        out.mkdir(parents=True, exist_ok=True)
        pcap = out / "proxy.pcap"
        try:
            sessions = asyncio.run(record_proxy(
                proxy, to, pcap, udp=udp, duration=duration, ready=lambda where: click.echo(
                    f"recording {'udp' if udp else 'tcp'} {show_host_port(*where)} → "
                    f"{show_host_port(*to)} for {duration:g} s", err=True)))
        except OSError as e:
            raise BadInput(f"--proxy {show_host_port(*proxy)}", e) from None
        if not sessions:
            pcap.unlink(missing_ok=True)
            raise BadInput("--proxy", f"nothing passed through the proxy in {duration:g} s")
        capture, endpoint = str(pcap), to
        software = software if software != "unknown" else "the proxied client"
    elif capture is None:
        raise BadInput("CAPTURE", "missing: give a capture file, or --proxy and --to")
    if endpoint is None:
        raise BadInput("--endpoint", "missing: which HOST:PORT of the capture is under test")
    if not Path(capture).is_file():
        raise BadInput(capture, "no such file")
    try:
        manifest = record_from_capture(capture, show_host_port(*endpoint), output,
                                       session=session_number, max_steps=max_steps,
                                       name=name, software=software, title=title,
                                       source=source_name)
    except P2PKitError as e:  # a TraceError, or the capture's own ParseError
        raise BadInput("", e) from None
    if proxy is not None:
        Path(capture).unlink(missing_ok=True)
    click.echo(f"{output}: {manifest.id}: {len(manifest.steps)} steps, "
               f"{manifest.client} → {manifest.server} ({manifest.protocol})")
    return 0


@click.command("replay")
@click.argument("traces", nargs=-1, metavar="TRACE_DIR|NAME...")
@click.option("--target", metavar="HOST:PORT", help="The peer under test.")
@click.option("--list", "list_only", is_flag=True, help="List the shipped traces and exit.")
@click.option("--strict", is_flag=True, help="SHOULD and MAY traces fail the run too.")
@click.option("--junit", "junit_path", type=click.Path(dir_okay=False), help="JUnit XML file.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="JSON report file.")
@click.option("--html", "html_path", type=click.Path(dir_okay=False), help="HTML report file.")
@click.option("--timeout", default=DEFAULT_TIMEOUT, show_default=True,
              type=click.FloatRange(0.01, 600), help="Seconds each step waits for its answer.")
@click.option("--deadline", default=DEFAULT_DEADLINE, show_default=True,
              type=click.FloatRange(0.1), help="Seconds the whole run may take.")
@click.option("-v", "--verbose", is_flag=True, help="Show the reason of passing traces too.")
def replay_command(traces: tuple[str, ...], target: str | None, list_only: bool, strict: bool,
                   junit_path: str | None, json_path: str | None, html_path: str | None,
                   timeout: float, deadline: float, verbose: bool) -> int:
    """Replay recorded traces against a live target and judge its answers: each a TRACE_DIR
    (written by ``conformance record``) or a NAME (or glob) that selects shipped traces by id
    or directory name."""
    from p2pkit.conformance.trace_replay import replay, shipped_traces

    if list_only:
        for path in shipped_traces():
            m = _load(path).manifest
            click.echo(f"{m.id:<52} {len(m.steps):>3} steps  {m.provenance['software']}")
        return 0
    if not traces:
        raise BadInput("TRACE_DIR", "missing: give trace directories or shipped trace names "
                                    "(--list)")
    loaded = []
    for name in traces:
        if Path(name).is_dir():
            loaded.append(_load(Path(name)))
            continue
        matches = [trace for trace in map(_load, shipped_traces())
                   if fnmatch.fnmatchcase(trace.manifest.path.name, name)
                   or fnmatch.fnmatchcase(trace.id, name)]
        if not matches:
            raise BadInput(name, "not a trace directory, nor a shipped trace (--list)")
        loaded += matches
    if target is None:
        raise BadInput("--target", "missing: give the peer under test as HOST:PORT")
    from p2pkit.addresses import parse_host_port

    try:
        address = parse_host_port(target)
    except ValueError as e:
        raise BadInput("--target", f"{target}: {e}") from None
    from p2pkit.cli.conformance import _write_reports
    from p2pkit.conformance.reporters.console import ConsoleReporter

    console = ConsoleReporter(verbose=verbose)
    try:
        report = asyncio.run(replay(loaded, address, strict=strict, timeout=timeout,
                                    deadline=deadline, on_result=console.line))
    except TargetError as e:
        raise BadInput("--target", str(e)) from None
    except TraceError as e:
        raise BadInput("", e) from None
    except OSError as e:
        raise BadInput("--target", e) from None
    console.summary(report)
    _write_reports(report, junit_path, json_path, html_path)
    return 0 if report.ok else EXIT_DEVIATIONS


def _load(path: Path) -> Trace:
    from p2pkit.conformance.trace_replay import load_trace

    try:
        return load_trace(path)
    except TraceError as e:
        raise BadInput("", e) from None


def register(group: click.Group) -> None:
    """Add ``record`` and ``replay`` to the ``conformance`` group."""
    group.add_command(record_command)
    group.add_command(replay_command)
