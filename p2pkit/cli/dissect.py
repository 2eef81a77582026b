"""``p2pkit dissect FILE|-``: decode the traffic of every registered protocol in a capture.

Exit status: 0 when the file was read to its end; 1 when it is damaged part-way (the records
before the damage are printed, then a one-line warning); 2 when it is not a capture at all, or
when ``--protocol``, ``--message`` or a ``--filter`` field names something no registered
protocol has (one line saying so).
"""

from __future__ import annotations

import json
import os
import sys
from operator import attrgetter

import click

from p2pkit import registry
from p2pkit.capture.detect import parse_decode_as
from p2pkit.capture.dissect import Dissection
from p2pkit.capture.record import Record
from p2pkit.capture.render import Statistics, render_jsonl, tree_block
from p2pkit.capture.summary_lines import SummaryLines
from p2pkit.cli.errors import EXIT_DEVIATIONS, BadInput, capture_source
from p2pkit.cli.young_collections import collect_young_less_often
from p2pkit.errors import ParseError

#: Records whose summary lines are written in one call (small batches, one a frame, gathered),
#: and the bytes of their messages at most.
SUMMARY_CHUNK = 256
SUMMARY_CHUNK_BYTES = 1 << 20
_length = attrgetter("length")


def _progress(path: str, enabled: bool):
    """A rich progress bar over the file's bytes on a terminal, or None."""
    if not enabled:
        return None
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

    try:
        total = os.path.getsize(path)
    except OSError:
        return None
    progress = Progress("[progress.description]{task.description}", BarColumn(),
                        DownloadColumn(), TimeRemainingColumn(),
                        console=Console(stderr=True), transient=True)
    task = progress.add_task("dissecting", total=total)
    return progress, task


def _secrets(keylog: str | None) -> dict[str, object]:
    """``--keylog FILE``: the MSE key log, for the ``bittorrent`` decoder, and the Noise key
    log, for the ``ipfs`` decoder (one file may hold both)."""
    if keylog is None:
        return {}
    from p2pkit.bittorrent.mse.keylog import parse_keylog
    from p2pkit.ipfs.noise_keylog import parse_noise_keylog

    try:
        with open(keylog, encoding="ascii", errors="replace") as f:
            text = f.read()
        return {"bittorrent": parse_keylog(text), "ipfs": parse_noise_keylog(text)}
    except OSError as e:
        raise BadInput(keylog, e) from None
    except ParseError as e:
        raise BadInput(keylog, e) from None


@click.command("dissect")
@click.argument("path", metavar="FILE|-")
@click.option("-V", "--tree", is_flag=True, help="Show each message's field tree.")
@click.option("--format", "fmt", type=click.Choice(["text", "jsonl"]), default="text",
              show_default=True, help="Output format.")
@click.option("--json", "as_json", is_flag=True, help="Same as --format jsonl.")
@click.option("--protocol", "protocols", multiple=True,
              help="Only this protocol (a registered name: bittorrent, bt-dht, bt-utp, "
                   "bt-tracker, bt-tracker-http, gnutella …); repeatable.")
@click.option("--message", "messages", multiple=True, help="Only this message; repeatable.")
@click.option("--filter", "expression", help='Filter expression, e.g. '
              '\'protocol == "bittorrent" and fields.index > 3\'.')
@click.option("--decode-as", "decode_as", multiple=True, metavar="tcp.port==P,PROTO",
              help="Decode a port as a protocol (as tshark -d); repeatable.")
@click.option("--stats", is_flag=True, help="Print message and conversation statistics.")
@click.option("-c", "--count", type=int, default=None, help="Stop after this many messages.")
@click.option("--keylog", type=click.Path(dir_okay=False), metavar="FILE",
              help="Decrypt the MSE/PE BitTorrent connections and libp2p Noise sessions "
                   "listed in this key log (written by p2pkit bt download/seed --keylog, "
                   "p2pkit ipfs serve --keylog).")
@click.option("--no-undecoded", "hide_undecoded", is_flag=True,
              help="Hide the 'undecoded' records (bytes no protocol decoded, and why).")
def dissect_command(path: str, tree: bool, fmt: str, as_json: bool, protocols: tuple[str, ...],
                    messages: tuple[str, ...], expression: str | None,
                    decode_as: tuple[str, ...], stats: bool, count: int | None,
                    hide_undecoded: bool, keylog: str | None = None) -> int:
    """Dissect the P2P messages in a pcap/pcapng FILE (optionally gzip-compressed), or - for
    standard input."""
    if as_json:
        fmt = "jsonl"
    for name in protocols:
        registry.get(name)  # an unknown name: one line listing the known ones, exit 2
    if messages:
        known = registry.known_message_names(protocols)
        for name in messages:
            if name not in known:
                raise ParseError(f"unknown message {name!r} for "
                                 f"{', '.join(protocols) or 'any registered protocol'}",
                                 protocol="dissect")
    try:
        rules = [parse_decode_as(text) for text in decode_as]
    except ParseError as e:
        raise click.BadParameter(str(e)) from None
    keep = None
    if expression:  # (the filter compiler, and ast, imported only with --filter)
        from p2pkit.capture.filters import compile_filter

        keep = compile_filter(expression, known_fields=registry.known_field_names(protocols))
    source = capture_source(path)
    if path == "-":
        path = "standard input"
    statistics = Statistics() if stats else None
    # summary lines of every record: a batch (the records released after one frame) at once
    whole_batches = not (hide_undecoded or protocols or messages or keep is not None
                         or statistics is not None or tree or fmt == "jsonl")
    # (and then decoders may give runs of summary lines instead of records; -c counts records)
    # every record drawn whole (-V, JSON, no filter): decoders may decode as they frame
    fields_read = (tree or fmt == "jsonl") and not (protocols or messages or keep is not None)
    dissection = Dissection(source, decode_as=rules, secrets=_secrets(keylog),
                            summary_runs=whole_batches and count is None,
                            fields_read=fields_read)
    bar = _progress(path, sys.stderr.isatty() and not sys.stdout.isatty() or
                    (sys.stderr.isatty() and stats))
    shown = 0
    out = sys.stdout
    lines: SummaryLines | None = None
    pending: list[Record] = []  # whole batches gathered, their lines written together
    pending_bytes = 0  # (of their messages: a lazy record may hold its message's bytes)
    seen = 0
    restore_collections = collect_young_less_often()
    try:
        if bar:
            bar[0].start()
        for batch in dissection.batches():
            if bar and seen // 256 != (seen + len(batch)) // 256:
                bar[0].update(bar[1], completed=dissection.position)
            seen += len(batch)
            if lines is None:
                lines = SummaryLines(dissection.first_time or 0.0)
            if whole_batches:
                if count is not None and shown + len(batch) > count:
                    del batch[count - shown:]
                pending += batch
                shown += len(batch)
                pending_bytes += sum(map(_length, batch))
                if len(pending) >= SUMMARY_CHUNK or pending_bytes > SUMMARY_CHUNK_BYTES:
                    lines.write(pending, out)
                    pending.clear()
                    pending_bytes = 0
                if count is not None and shown >= count:
                    break
                continue
            # one record at a time, each let go once handled: a decoded record holds all its
            # values, and a batch may be the 2,048 records FrameOrder held
            batch.reverse()
            while batch:
                record = batch.pop()
                if hide_undecoded and record.message == "undecoded":
                    continue
                if protocols and record.protocol not in protocols:
                    continue
                if messages and record.message not in messages:
                    continue
                if keep is not None and not keep(record):
                    continue
                if statistics is not None:
                    statistics.add(record)
                    if not (tree or fmt == "jsonl"):
                        continue
                if fmt == "jsonl":
                    out.write(render_jsonl(record) + "\n")
                elif tree:  # the frame line, then the rest (mostly ASCII: cheaper to encode)
                    head, rest = tree_block(record, dissection.first_time or 0.0)
                    out.write(head)
                    out.write(rest)
                else:
                    out.write(lines.text((record,)))
                shown += 1
                if count is not None and shown >= count:
                    break
            if count is not None and shown >= count:
                break
        if pending and lines is not None:
            lines.write(pending, out)
    finally:
        restore_collections()
        if bar:
            bar[0].stop()
    if statistics is not None:
        if fmt == "jsonl":
            out.write(json.dumps({"stats": statistics.to_json()}) + "\n")
        else:
            out.write(statistics.render() + "\n")
    out.flush()
    if dissection.error is not None:
        if dissection.frames == 0:
            raise BadInput(path, dissection.error)
        click.echo(f"p2pkit: warning: {path}: {dissection.error} "
                   f"(after {dissection.frames} frames)", err=True)
        return EXIT_DEVIATIONS
    return 0


