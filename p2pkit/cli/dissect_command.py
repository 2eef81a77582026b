"""``p2pkit dissect``'s click declaration: its argument and options (what ``--help`` shows), the
work done by :func:`p2pkit.cli.dissect.dissect` (a module without click, which a run with
flags only reaches without this one: :mod:`p2pkit.cli.dissect_argv`)."""

from __future__ import annotations

from typing import Any

import click

from p2pkit.cli.dissect import dissect

__all__ = ["dissect_command"]


@click.command("dissect", help=dissect.__doc__)
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
def dissect_command(**params: Any) -> int:
    return dissect(**params)

