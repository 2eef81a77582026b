"""The protocol registry: a toy protocol registered in a few lines is detected, dissected from
a capture, accepted by ``--decode-as`` and ``--protocol``, and documented, touching no other
module; and the built-in protocols' descriptors say what their records really carry."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
from construct import Enum, GreedyBytes, Int8ub, Int16ub, Prefixed, Struct
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether
from scapy.utils import wrpcap

from p2pkit import registry
from p2pkit.capture.detect import parse_decode_as
from p2pkit.capture.dissect import FrameOrder, dissect
from p2pkit.capture.framed import framed_stream
from p2pkit.capture.record import Record
from p2pkit.cli import main
from p2pkit.errors import ParseError
from p2pkit.schema import Schema
from tests.docs.test_schema_docs import docs_ext
from tests.pcap_payloads import CAPTURES

# -- the toy protocol: this block is all it takes -------------------------------------------

# fmt: off
#: Toy §1: "a two-byte length, a kind (1 hello, 2 data), then the value".
ToyMessage = Schema(Prefixed(Int16ub, Struct(
    "kind" / Enum(Int8ub, hello=1, data=2),
    "value" / GreedyBytes,
)), protocol="toy", name="ToyMessage")
# fmt: on


def detect_toy(head: bytes, **_: object) -> bool | None:
    """Toy §2: a stream starts with a hello whose value starts with ``TOY``."""
    return None if len(head) < 6 else head[2:6] == b"\x01TOY"


@click.group("toy")
def toy_cli() -> None:
    """Toy: the protocol of tests/test_registry.py."""


@toy_cli.command("hello")
def toy_hello() -> None:
    click.echo(_toy("hello", b"TOY v1").hex())


TOY = registry.ProtocolDescriptor(
    name="toy", title="Toy protocol", specs=("Toy §1",),
    schemas=(f"{__name__}.ToyMessage",),
    stream_detector=detect_toy,
    stream_decoder=framed_stream(ToyMessage, protocol="toy", spec="Toy §1"),
    messages=("hello", "data", "undecoded"),
    cli=("toy", f"{__name__}:toy_cli"),
)

# -- a capture of it, written with scapy ----------------------------------------------------

CLIENT, SERVER = ("10.0.0.1", 40000), ("10.0.0.2", 7777)


def _toy(kind: str, value: bytes) -> bytes:
    return ToyMessage.build({"kind": kind, "value": value})


def _connection(client: tuple[str, int], server: tuple[str, int], segments, start: float):
    """SYN, SYN-ACK, ACK, then ``segments`` ((from_client, bytes), …), each acknowledged."""
    seq = {True: 1000, False: 5000}
    t = start
    out = []

    def packet(from_client: bool, flags: str, payload: bytes = b""):
        nonlocal t
        src, dst = (client, server) if from_client else (server, client)
        p = (Ether() / IP(src=src[0], dst=dst[0])
             / TCP(sport=src[1], dport=dst[1], flags=flags, seq=seq[from_client],
                   ack=seq[not from_client]) / payload)
        p.time = t
        t += 0.01
        out.append(p)
        seq[from_client] += len(payload) + (1 if "S" in flags or "F" in flags else 0)

    packet(True, "S")
    packet(False, "SA")
    packet(True, "A")
    for from_client, payload in segments:
        packet(from_client, "PA", payload)
    packet(True, "FA")
    packet(False, "FA")
    return out


@pytest.fixture
def toy():
    registry.register(TOY)
    yield TOY
    registry.unregister("toy")


@pytest.fixture
def toy_capture(tmp_path: Path) -> Path:
    hello, data = _toy("hello", b"TOY v1"), _toy("data", b"\x00\x01\x02")
    packets = _connection(CLIENT, SERVER, [
        (True, hello + data[:2]),        # a message split across segments
        (True, data[2:]),
        (False, _toy("hello", b"TOY ok")),
    ], start=100.0)
    # a second connection on the same port that starts mid-conversation: no hello, so only
    # --decode-as tcp.port==7777,toy says what it is
    packets += _connection(("10.0.0.3", 40001), SERVER, [(True, data + data)], start=200.0)
    path = tmp_path / "toy.pcap"
    wrpcap(str(path), packets)
    return path


def test_the_toy_protocol_is_detected_and_dissected_from_a_capture(toy, toy_capture):
    records = [r for r in dissect(toy_capture) if r.protocol == "toy"]
    assert [(r.src, r.message, r.fields["value"]) for r in records] == [
        ("10.0.0.1:40000", "hello", b"TOY v1".hex()),
        ("10.0.0.1:40000", "data", "000102"),
        ("10.0.0.2:7777", "hello", b"TOY ok".hex()),
    ]
    assert records[1].frame == 5 and records[1].offset == 9 and records[1].length == 6
    assert records[1].spans == {"kind": (2, 3), "value": (3, 6)}  # after the length prefix


def test_decode_as_accepts_the_toy_protocol_and_forces_it(toy, toy_capture):
    rule = parse_decode_as("tcp.port==7777,toy")
    forced = [r for r in dissect(toy_capture, decode_as=[rule]) if r.src == "10.0.0.3:40001"]
    assert [(r.protocol, r.message) for r in forced] == [("toy", "data"), ("toy", "data")]
    assert [(r.protocol, r.message) for r in dissect(toy_capture) if r.src == "10.0.0.3:40001"
            ] == [("data", "undecoded")]  # not detected: said, not dropped
    with pytest.raises(ParseError, match="unknown udp protocol 'toy'"):
        parse_decode_as("udp.port==7777,toy")


def test_the_cli_knows_the_toy_protocol(toy, toy_capture, capsys):
    status = main(["dissect", str(toy_capture), "--protocol", "toy", "--message", "data",
                   "--filter", "fields.kind == data", "--format", "jsonl",
                   "--decode-as", "tcp.port==7777,toy"])
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert status == 0 and [(r["src"], r["message"]) for r in lines] == [
        ("10.0.0.1:40000", "data"), ("10.0.0.3:40001", "data"), ("10.0.0.3:40001", "data")]


def test_the_cli_mounts_the_toy_command_group(toy, capsys):
    assert main(["--help"]) == 0
    assert "Toy: the protocol of tests/test_registry.py." in capsys.readouterr().out
    assert main(["toy", "hello"]) == 0
    assert capsys.readouterr().out.strip() == "0007" "01" + b"TOY v1".hex()


def test_the_toy_protocol_is_documented(toy):
    [reference] = docs_ext.protocol_reference("toy")
    assert reference.target == "tests.test_registry.ToyMessage"
    [frame] = reference.messages
    assert [(row.field, row.type, row.size) for row in frame.rows] == [
        ("(length)", "uint16 BE", "2"), ("kind", "uint8 enum", "1"),
        ("value", "bytes to the end", "variable")]
    assert ("toy", "Toy protocol", "Toy §1", "tcp", "tcp.port==P,toy") in docs_ext.protocol_rows()


def test_unregistered_the_toy_protocol_is_unknown_again(toy_capture, capsys):
    assert "toy" not in registry.names()
    assert main(["dissect", str(toy_capture), "--protocol", "toy"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown protocol 'toy'" in err


# -- the built-in protocols -------------------------------------------------------------------

ALL_CAPTURES = sorted(CAPTURES.glob("*.pcap*"))


def test_builtin_names_and_detection_order():
    assert registry.names() == ("bittorrent", "bt-utp", "bt-tracker", "bt-tracker-http",
                                "bt-dht", "gnutella", "emule-kad", "kademlia-rpcudp", "ipfs",
                                "data")
    # the content-heuristic catch-all (a run of plausible peer-wire messages) is asked last
    assert [d.name for d in registry.stream_protocols()] == [
        "gnutella", "bt-tracker-http", "ipfs", "bittorrent"]
    assert [d.name for d in registry.datagram_protocols()] == [
        "bt-tracker", "gnutella", "bt-dht", "kademlia-rpcudp", "emule-kad", "bt-utp"]
    with pytest.raises(ValueError, match="already registered"):
        registry.register(registry.get("bt-dht"))


@pytest.mark.parametrize("path", ALL_CAPTURES, ids=lambda p: p.name)
def test_descriptors_know_every_message_and_field_their_records_carry(path):
    """What ``--message`` and ``--filter`` accept covers what the dissector produces."""
    for r in dissect(path):
        descriptor = registry.get(r.protocol)
        assert r.message in descriptor.message_names(), (r.protocol, r.message)
        assert set(r.fields) <= descriptor.field_names(), (r.protocol, set(r.fields))


@pytest.mark.parametrize("path", ALL_CAPTURES, ids=lambda p: p.name)
def test_records_come_out_in_frame_order(path):
    completed = [r.frame for r in dissect(path, frame_order=False)]
    ordered = [r.frame for r in dissect(path)]
    assert ordered == sorted(completed)


def test_frame_order_matters_on_a_capture_that_starts_mid_connection():
    completed = [r.frame for r in dissect(CAPTURES / "ndpi-bittorrent.pcap", frame_order=False)]
    assert completed != sorted(completed)  # what FrameOrder fixes


def test_frame_order_holds_a_bounded_number_of_records():
    order = FrameOrder(window=1000, max_held=3)
    released = []
    for frame in (5, 3, 4, 1, 2):
        order.push(Record(frame=frame, time=0.0, transport="udp", src="a", dst="b",
                          protocol="p", message="m"))
        released += [r.frame for r in order.release(frame)]
    assert released == [1, 2] and [r.frame for r in order.flush()] == [3, 4, 5]
    # and by the bytes of the messages held (16 KiB pieces: a few, not thousands)
    order = FrameOrder(window=1000, max_held=1000, max_bytes=40_000)
    for frame in (2, 1, 3):
        order.push(Record(frame=frame, time=0.0, transport="tcp", src="a", dst="b",
                          protocol="p", message="piece", length=16397))
    assert order.full and [r.frame for r in order.release(3)] == [1]
    assert not order.full and order.held_bytes == 2 * 16397


def test_the_summary_and_the_tree_share_the_time_base(capsys):
    path = str(CAPTURES / "bt-04-libtorrent-utp-only.pcap")
    assert main(["dissect", path, "--message", "handshake", "-c", "1"]) == 0
    summary = capsys.readouterr().out.split()
    assert main(["dissect", path, "--message", "handshake", "-c", "1", "-V"]) == 0
    tree = capsys.readouterr().out.split()
    assert tree[0] == "Frame" and tree[1] == summary[0] + ":" and tree[2] == summary[1]
    assert float(summary[1]) < 60  # relative to the first frame, as tshark


@pytest.mark.parametrize("args, message", [
    (["--protocol", "nosuch"], "unknown protocol 'nosuch'"),
    (["--message", "nosuch"], "unknown message 'nosuch'"),
    (["--protocol", "bt-dht", "--message", "piece"], "unknown message 'piece' for bt-dht"),
    (["--filter", "fields.nosuch == 1"], "unknown field 'nosuch'"),
    (["--filter", 'fields["nosuch"] == 1'], "unknown field 'nosuch'"),
])
def test_unknown_names_are_one_line_errors(capsys, args, message):
    status = main(["dissect", str(CAPTURES / "bt-06-p2pkit-leech-libtorrent.pcap"), *args])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1 and message in err


def test_a_download_does_not_import_the_dissector():
    import subprocess
    import sys

    code = ("import sys; from p2pkit.cli import main; main(['bt', '--help']); "
            "print(sorted(m for m in sys.modules if m.startswith(('p2pkit.capture', 'scapy',"
            " 'p2pkit.bittorrent.dissect'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60).stdout
    assert out.splitlines()[-1] == "[]"
