"""``p2pkit ipfs dht put|get`` and ``p2pkit ipfs name publish|resolve``: values in the kad-dht.

* ``dht put /pk/PEER|/ipns/NAME FILE --peer MULTIADDR``: validate the value in FILE for the key
  and ``PUT_VALUE`` it on the 20 closest servers;
* ``dht get /pk/PEER|/ipns/NAME --peer MULTIADDR [-o FILE]``: a ``GET_VALUE`` lookup with a
  quorum (16 for IPNS, ipfs-kad-dht §Quorum), stale servers corrected;
* ``name publish /ipfs/CID --key FILE --peer MULTIADDR``: sign an IPNS record with the key
  (sequence: one more than the best found, unless given) and put it under ``/ipns/``;
* ``name resolve NAME --peer MULTIADDR``: the value of the best valid IPNS record.

Only the --peer servers and those they name are contacted (no public bootstrap).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import click

from p2pkit.cli.errors import EXIT_NO_RESULTS, BadInput, Group
from p2pkit.cli.ipfs_keylog import keylog_option
from p2pkit.cli.options import json_option, timeout_option
from p2pkit.errors import P2PKitError
from p2pkit.ipfs.multiaddr import Multiaddr
from p2pkit.ipfs.peer_id import PeerId

__all__ = ["dht_get", "dht_put", "name"]

#: Largest value file read (an IPNS record is at most 10 KiB).
MAX_VALUE_FILE = 16 * 1024


def _peers_option(f: Any) -> Any:
    from p2pkit.cli.ipfs import MultiaddrParam

    return click.option("--peer", "peers", type=MultiaddrParam(), required=True, multiple=True,
                        help="A DHT server to start from, /ip4|ip6/ADDRESS/tcp/PORT[/p2p/PEER] "
                             "(repeatable).")(f)


def record_key(text: str) -> bytes:
    """``/pk/PEER`` or ``/ipns/NAME`` (peer ids in either text form) as the binary DHT key."""
    for prefix in ("/pk/", "/ipns/"):
        if text.startswith(prefix):
            try:
                return prefix.encode() + PeerId.from_text(text[len(prefix):]).multihash
            except P2PKitError as e:
                raise BadInput(text, e) from None
    raise BadInput(text, "a DHT key is /pk/PEER or /ipns/NAME")


def _in_dht(peers: tuple[Multiaddr, ...], timeout: float, work: Any,
            keylog: Path | None = None) -> Any:
    """:func:`p2pkit.cli.ipfs._in_dht` (imported here, when called: that module registers
    this one's commands)."""
    from p2pkit.cli.ipfs import _in_dht as in_dht

    return in_dht(peers, timeout, work, keylog)


def _get(peers: tuple[Multiaddr, ...], key: bytes, timeout: float, quorum: int | None,
         keylog: Path | None = None) -> Any:
    from p2pkit.ipfs.kad_values import get_value

    async def work(host: Any, seeds: list) -> Any:
        return await get_value(host, key, quorum=quorum, seeds=seeds, timeout=timeout)

    return _in_dht(peers, timeout, work, keylog)


def _put(peers: tuple[Multiaddr, ...], key: bytes, value: bytes, timeout: float,
         keylog: Path | None = None) -> list:
    from p2pkit.ipfs.kad_values import put_value

    async def work(host: Any, seeds: list) -> Any:
        return await put_value(host, key, value, seeds=seeds, timeout=timeout)

    return _in_dht(peers, timeout, work, keylog)


def _validated(key: bytes, value: bytes, what: str) -> None:
    from p2pkit.ipfs.dht_records import validate_value

    try:
        validate_value(key, value)
    except P2PKitError as e:
        raise BadInput(what, e) from None


@click.command("put")
@click.argument("key")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_peers_option
@timeout_option(30.0)
@keylog_option
@json_option()
def dht_put(key: str, file: Path, peers: tuple[Multiaddr, ...], timeout: float,
            as_json: bool, keylog: Path | None = None) -> None:
    """Store the value in FILE under KEY (/pk/PEER or /ipns/NAME) on the 20 closest servers;
    the value is validated first (a public key of PEER, a signed IPNS record of NAME)."""
    binary = record_key(key)
    value = file.read_bytes()[: MAX_VALUE_FILE + 1]
    _validated(binary, value, str(file))
    stored = _put(peers, binary, value, timeout, keylog)
    if as_json:
        click.echo(json.dumps({"key": key, "stored_on": [str(p) for p in stored]}))
    else:
        click.echo(f"{key}: stored on {len(stored)} servers")
    if not stored:
        raise SystemExit(EXIT_NO_RESULTS)


@click.command("get")
@click.argument("key")
@_peers_option
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the value here (default: its hex on stdout).")
@click.option("--quorum", type=click.IntRange(1, 20), default=None,
              help="Valid answers to collect (default: 16 for /ipns/, 1 for /pk/).")
@timeout_option(30.0)
@keylog_option
@json_option()
def dht_get(key: str, peers: tuple[Multiaddr, ...], output: Path | None, quorum: int | None,
            timeout: float, as_json: bool, keylog: Path | None = None) -> None:
    """The best valid value of KEY (/pk/PEER or /ipns/NAME): an iterative GET_VALUE lookup,
    servers that answered a stale value (or none, among the closest) corrected."""
    result = _get(peers, record_key(key), timeout, quorum, keylog)
    if result.value is not None and output is not None:
        output.write_bytes(result.value)
    if as_json:
        click.echo(json.dumps({"key": key, "found": result.value is not None,
                               "value": result.value.hex() if result.value else None,
                               "answers": result.answers, "invalid": result.invalid,
                               "corrected": [str(p) for p in result.corrected],
                               "queries": result.queries}))
    elif result.value is not None and output is None:
        click.echo(result.value.hex())
    if result.value is None:
        if not as_json:
            click.echo(f"{key}: no valid value found ({result.queries} queries)", err=True)
        raise SystemExit(EXIT_NO_RESULTS)


@click.group("name", cls=Group)
def name() -> None:
    """IPNS names in the kad-dht: publish a signed record, resolve one."""


@name.command("publish")
@click.argument("value")
@click.option("--key", "key_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              required=True, help="The libp2p PrivateKey file of the name (Ed25519).")
@click.option("--sequence", type=click.IntRange(0, 2**64 - 1), default=None,
              help="Sequence number (default: one more than the best record found).")
@click.option("--lifetime", type=click.FloatRange(1, 365 * 86400), default=48 * 3600.0,
              show_default=True, help="Seconds until the record's EOL.")
@click.option("--ttl", type=click.FloatRange(0, 365 * 86400), default=300.0,
              show_default=True, help="Seconds resolvers may cache it.")
@_peers_option
@timeout_option(30.0)
@keylog_option
@json_option()
def publish(value: str, key_file: Path, sequence: int | None, lifetime: float, ttl: float,
            peers: tuple[Multiaddr, ...], timeout: float, as_json: bool,
            keylog: Path | None = None) -> None:
    """Sign an IPNS record pointing at VALUE (e.g. /ipfs/CID) and put it in the DHT."""
    from p2pkit.cli.ipfs import _identity
    from p2pkit.ipfs.ipns import create_record, routing_key, validate_record
    from p2pkit.ipfs.kad_values import get_value, put_value

    identity = _identity(key_file)
    owner = PeerId.from_public_key(identity.public_key)
    key = routing_key(owner)

    async def work(host: Any, seeds: list) -> Any:
        seq = sequence
        if seq is None:
            found = await get_value(host, key, seeds=seeds, timeout=timeout, correct=False)
            seq = 1 if found.value is None else \
                validate_record(owner, found.value, time.time_ns()).sequence + 1
        record = create_record(identity, value.encode(), seq,
                               time.time_ns() + int(lifetime * 1e9), int(ttl * 1e9))
        host.dht.values.records.pop(key, None)  # ours replaces what the lookup kept
        return seq, await put_value(host, key, record, seeds=seeds, timeout=timeout)

    seq, stored = _in_dht(peers, timeout, work, keylog)
    if as_json:
        click.echo(json.dumps({"name": str(owner), "value": value, "sequence": seq,
                               "stored_on": [str(p) for p in stored]}))
    else:
        click.echo(f"/ipns/{owner} -> {value} (sequence {seq}) stored on {len(stored)} servers")
    if not stored:
        raise SystemExit(EXIT_NO_RESULTS)


@name.command("resolve")
@click.argument("ipns_name", metavar="NAME")
@_peers_option
@click.option("--quorum", type=click.IntRange(1, 20), default=None,
              help="Valid records to collect (default 16, ipfs-kad-dht §Quorum).")
@timeout_option(30.0)
@keylog_option
@json_option()
def resolve(ipns_name: str, peers: tuple[Multiaddr, ...], quorum: int | None, timeout: float,
            as_json: bool, keylog: Path | None = None) -> None:
    """The value of NAME's best valid IPNS record (highest sequence, then latest EOL)."""
    from p2pkit.ipfs.ipns import validate_record

    text = ipns_name.removeprefix("/ipns/")
    key = record_key("/ipns/" + text)
    owner = PeerId(key[len(b"/ipns/"):])
    result = _get(peers, key, timeout, quorum, keylog)
    if result.value is None:
        if as_json:
            click.echo(json.dumps({"name": text, "found": False, "queries": result.queries}))
        else:
            click.echo(f"/ipns/{text}: no valid record ({result.queries} queries)", err=True)
        raise SystemExit(EXIT_NO_RESULTS)
    record = validate_record(owner, result.value, time.time_ns())
    shown = record.value.decode("utf-8", "replace")
    if as_json:
        click.echo(json.dumps({"name": text, "found": True, "value": shown,
                               "sequence": record.sequence, "answers": result.answers,
                               "corrected": [str(p) for p in result.corrected]}))
    else:
        click.echo(shown)
