"""``p2pkit bt ...``: BitTorrent commands.

* ``p2pkit bt info FILE.torrent [--json] [--lenient]``: what a torrent holds (BEP 3, 52, 9);
* ``p2pkit bt create PATH -o FILE.torrent [--v2|--hybrid] ...``: make one;
* ``p2pkit bt magnet URI [--json]``: the parts of a magnet link (BEP 9, 53);
* ``p2pkit bt seed`` / ``p2pkit bt download``: the reference peer (:mod:`p2pkit.cli.bt_peer`);
* ``p2pkit bt tracker``: the reference trackers (:mod:`p2pkit.cli.bt_tracker`).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from typing import Any

import click

from p2pkit.bittorrent.wire.create import create_torrent
from p2pkit.bittorrent.wire.magnet import MagnetLink
from p2pkit.bittorrent.wire.metainfo import Metainfo
from p2pkit.cli.errors import EXIT_DEVIATIONS, BadInput, Group, input_name, read_input
from p2pkit.errors import BuildError, ParseError


@click.group("bt", cls=Group)
def bt() -> None:
    """BitTorrent: torrents, magnet links, the reference peer and trackers (BEP 3, 9, 15, 52)."""


def _size(n: int) -> str:
    """``2097152`` as ``2.0 MiB``."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{n} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"  # pragma: no cover


def info_document(meta: Metainfo) -> dict[str, Any]:
    """The JSON document of ``bt info --json``."""
    return {
        "name": meta.name,
        "version": meta.version,
        "info_hash_v1": meta.info_hash_v1.hex() if meta.info_hash_v1 else None,
        "info_hash_v2": meta.info_hash_v2.hex() if meta.info_hash_v2 else None,
        "piece_length": meta.piece_length,
        "pieces": meta.piece_count,
        "total_length": meta.total_length,
        "multi_file": meta.multi_file,
        "files": [
            {
                "path": "/".join(f.path),
                "length": f.length,
                "offset": f.offset,
                "attr": f.attr,
                "padding": f.is_padding,
                "pieces_root": f.pieces_root.hex() if f.pieces_root else None,
            }
            for f in meta.files
        ],
        "trackers": [list(tier) for tier in meta.trackers],
        "web_seeds": list(meta.web_seeds),
        "private": meta.private,
        "creation_date": meta.creation_date,
        "comment": meta.comment,
        "created_by": meta.created_by,
        "metadata_size": len(meta.info_bytes),
        "magnet": MagnetLink.from_metainfo(meta).to_uri(),
    }


def _render_text(meta: Metainfo) -> str:
    doc = info_document(meta)
    rows = [
        ("name", meta.name),
        ("version", meta.version + (" (meta version 2)" if meta.meta_version else "")),
        ("info-hash v1", doc["info_hash_v1"] or "-"),
        ("info-hash v2", doc["info_hash_v2"] or "-"),
        ("piece length", f"{meta.piece_length} ({_size(meta.piece_length)})"),
        ("pieces", str(meta.piece_count)),
        ("total size", f"{meta.total_length} ({_size(meta.total_length)})"),
    ]
    if meta.private:
        rows.append(("private", "yes (BEP 27)"))
    for key, label in (("created_by", "created by"), ("creation_date", "creation date"),
                       ("comment", "comment")):
        if doc[key] is not None:
            rows.append((label, str(doc[key])))
    lines = [f"{label + ':':<14} {value}" for label, value in rows]
    real = [f for f in meta.files if not f.is_padding]
    padding = len(meta.files) - len(real)
    lines.append(f"files ({len(real)}" + (f", {padding} padding" if padding else "") + "):")
    width = max((len(str(f.length)) for f in real), default=1)
    prefix = meta.name + "/" if meta.multi_file else ""
    for f in real:
        lines.append(f"  {f.length:>{width}}  {prefix}{f.path_text}")
    lines.append("trackers:" + ("" if meta.trackers else " none"))
    for i, tier in enumerate(meta.trackers):
        for url in tier:
            lines.append(f"  tier {i}: {url}")
    lines.append("web seeds:" + ("" if meta.web_seeds else " none"))
    lines += [f"  {url}" for url in meta.web_seeds]
    lines.append(f"magnet: {doc['magnet']}")
    return "\n".join(lines)


@bt.command("info")
@click.argument("source", metavar="FILE.torrent|-")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--lenient", is_flag=True,
              help="Accept files that bend the specs; list each deviation, exit 1 if any.")
def info_command(source: str, as_json: bool, lenient: bool) -> int:
    """Show a torrent: files, pieces, info-hashes, magnet.

    Prints the name, files and sizes, piece length and count, v1 and v2 info-hashes, trackers,
    web seeds and the magnet link of FILE.torrent (or - for standard input).
    """
    data = read_input(source)
    deviations: tuple = ()
    try:
        if lenient:
            result = Metainfo.parse_lenient(data)
            meta, deviations = result.metainfo, result.deviations
        else:
            meta = Metainfo.parse(data)
    except ParseError as e:
        raise BadInput(input_name(source), e) from None
    if as_json:
        doc = info_document(meta)
        if lenient:
            doc["deviations"] = [
                {"offset": d.offset, "rule": d.rule, "message": d.message, "spec": d.spec,
                 "level": d.level}
                for d in deviations
            ]
        click.echo(json.dumps(doc, indent=2, ensure_ascii=False))
    else:
        click.echo(_render_text(meta))
        for d in deviations:
            click.echo(f"deviation: {d}", err=True)
    return EXIT_DEVIATIONS if deviations else 0


def magnet_document(link: MagnetLink) -> dict[str, Any]:
    """The JSON document of ``bt magnet --json``."""
    return {
        "info_hash_v1": link.info_hash_v1.hex() if link.info_hash_v1 else None,
        "info_hash_v2": link.info_hash_v2.hex() if link.info_hash_v2 else None,
        "display_name": link.display_name,
        "trackers": list(link.trackers),
        "web_seeds": list(link.web_seeds),
        "peers": [str(p) for p in link.peers],
        "select_only": [[r.start, r.stop - 1] for r in link.select_only],
        "exact_length": link.exact_length,
        "extra": [list(kv) for kv in link.extra],
        "magnet": link.to_uri(),
    }


@bt.command("magnet")
@click.argument("uri", metavar="MAGNET-URI")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def magnet_command(uri: str, as_json: bool) -> int:
    """Show the parts of MAGNET-URI, a magnet link (BEP 9, 53).

    Info-hashes (btih hex or base32, btmh), name, trackers, web seeds, peers, selected files.
    """
    try:
        link = MagnetLink.parse(uri)
    except ParseError as e:
        raise BadInput("magnet URI", e) from None
    doc = magnet_document(link)
    if as_json:
        click.echo(json.dumps(doc, indent=2, ensure_ascii=False))
        return 0
    rows = [
        ("info-hash v1", doc["info_hash_v1"] or "-"),
        ("info-hash v2", doc["info_hash_v2"] or "-"),
        ("name", link.display_name if link.display_name is not None else "-"),
    ]
    rows += [("tracker", url) for url in link.trackers]
    rows += [("web seed", url) for url in link.web_seeds]
    rows += [("peer", peer) for peer in doc["peers"]]
    if link.select_only:
        rows.append(("select only", ",".join(
            str(r.start) if len(r) == 1 else f"{r.start}-{r.stop - 1}"
            for r in link.select_only)))
    if link.exact_length is not None:
        rows.append(("exact length", f"{link.exact_length} ({_size(link.exact_length)})"))
    rows += [(f"({key})", value) for key, value in link.extra]
    click.echo("\n".join(f"{label + ':':<14} {value}" for label, value in rows))
    return 0


@bt.command("create")
@click.argument("path", type=click.Path(exists=True, file_okay=True, dir_okay=True,
                                        readable=True))
@click.option("-o", "--output", required=True, metavar="FILE.torrent",
              help="Where to write the torrent ('-' for standard output).")
@click.option("--v1", "v1", is_flag=True, help="v1 only (BEP 3; the default).")
@click.option("--v2", "v2", is_flag=True, help="v2 only (BEP 52).")
@click.option("--hybrid", is_flag=True, help="v1 and v2 (BEP 52 §Upgrade Path).")
@click.option("--tracker", "trackers", multiple=True, metavar="URL",
              help="Tracker URL; repeat for more tiers, separate with commas within a tier.")
@click.option("--web-seed", "web_seeds", multiple=True, metavar="URL", help="BEP 19 web seed.")
@click.option("--piece-length", type=int, metavar="BYTES",
              help="Bytes per piece: a power of two >= 16384 (default: chosen from the size).")
@click.option("--name", help="Torrent name (default: the file or directory name).")
@click.option("--comment", help="Free-text comment.")
@click.option("--private", is_flag=True, help="Set the BEP 27 private flag.")
@click.option("--creation-date", type=click.IntRange(0), metavar="UNIX-SECONDS",
              help="Record a creation date (omitted by default so output is reproducible).")
def create_command(path: str, output: str, v1: bool, v2: bool, hybrid: bool,
                   trackers: tuple[str, ...], web_seeds: tuple[str, ...],
                   piece_length: int | None, name: str | None, comment: str | None,
                   private: bool, creation_date: int | None) -> int:
    """Create a torrent from the file or directory PATH.

    --v1 (the default), --v2 and --hybrid choose the format; give at most one.
    """
    chosen = [flag for flag, on in (("--v1", v1), ("--v2", v2), ("--hybrid", hybrid)) if on]
    if len(chosen) > 1:
        raise click.UsageError(f"{' and '.join(chosen)} exclude each other: give one "
                               "(--hybrid makes a torrent that is both v1 and v2)")
    version = chosen[0][2:] if chosen else "v1"
    _check_urls(trackers, "--tracker", ("http", "https", "udp", "ws", "wss"), split=True)
    _check_urls(web_seeds, "--web-seed", ("http", "https", "ftp"))
    tiers = [[url.strip() for url in option.split(",") if url.strip()] for option in trackers]
    with contextlib.ExitStack() as stack:
        progress = None
        if sys.stderr.isatty():
            bar = stack.enter_context(click.progressbar(length=_total_size(path),
                                                        label="hashing", file=sys.stderr))
            progress = bar.update
        try:
            data = create_torrent(path, version=version,  # type: ignore[arg-type]
                                  piece_length=piece_length, trackers=tiers,
                                  web_seeds=web_seeds, comment=comment,
                                  created_by=_created_by(),
                                  creation_date=creation_date, private=private, name=name,
                                  progress=progress)
        except BuildError as e:
            raise BadInput(path, e) from None
    try:
        if output == "-":
            sys.stdout.buffer.write(data)
            sys.stdout.flush()
        else:
            with open(output, "wb") as f:
                f.write(data)
    except OSError as e:
        raise BadInput(output, e) from None
    meta = Metainfo.parse(data)
    report = [f"wrote {output}: {meta.version}, {len(meta.files)} files, "
              f"{meta.piece_count} pieces of {meta.piece_length} bytes"]
    if meta.info_hash_v1:
        report.append(f"info-hash v1: {meta.info_hash_v1.hex()}")
    if meta.info_hash_v2:
        report.append(f"info-hash v2: {meta.info_hash_v2.hex()}")
    click.echo("\n".join(report), err=output == "-")
    return 0


def _check_urls(values: tuple[str, ...], option: str, schemes: tuple[str, ...], *,
                split: bool = False) -> None:
    """A tracker or web seed that is not a URL of a known scheme is a usage error."""
    from urllib.parse import urlsplit

    for value in values:
        for url in (value.split(",") if split else [value]):
            url = url.strip()
            if split and not url:
                continue
            parts = urlsplit(url)
            if parts.scheme.lower() not in schemes or not parts.netloc:
                raise click.BadParameter(f"{url}: expected a URL ({', '.join(schemes)})",
                                         param_hint=f"'{option}'")


def _created_by() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"p2pkit {version('p2pkit')}"
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "p2pkit"


def _total_size(path: str) -> int:
    if os.path.isfile(path):
        return os.path.getsize(path)
    total = 0
    for dirpath, _, filenames in os.walk(path):
        for filename in filenames:
            full = os.path.join(dirpath, filename)
            if os.path.isfile(full) and not os.path.islink(full):
                total += os.path.getsize(full)
    return total


from p2pkit.cli.bt_peer import download, seed  # noqa: E402 - registered on the group above
from p2pkit.cli.bt_tracker import tracker  # noqa: E402

bt.add_command(tracker)
bt.add_command(seed)
bt.add_command(download)
