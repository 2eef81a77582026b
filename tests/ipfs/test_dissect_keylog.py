"""Decrypting libp2p Noise sessions with a key log.

tests/data/captures/ipfs-03-p2pkit-js-libp2p-keylog.pcap: p2pkit ↔ js-libp2p 3.3.11 and Helia
7 (tests/interop/test_ipfs_interop.py --keylog), four connections whose keys p2pkit's host
logged; and two in-memory p2pkit cores whose muxer is negotiated by multistream-select."""

from __future__ import annotations

import random
from pathlib import Path

from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pkit.capture.dissect import dissect
from p2pkit.cli import cli
from p2pkit.core import NEED_DATA
from p2pkit.ipfs import ping
from p2pkit.ipfs.bitswap import cid_from_prefix
from p2pkit.ipfs.cid import Cid
from p2pkit.ipfs.connection import Libp2pConnection, StreamData, StreamNegotiated
from p2pkit.ipfs.dissect import libp2p_stream
from p2pkit.ipfs.keys import Ed25519Identity
from p2pkit.ipfs.noise_keylog import NoiseKeyLog, NoiseKeyLogEntry, parse_noise_keylog
from p2pkit.ipfs.session_dissect import PlaintextDirection

CAPTURES = Path(__file__).parents[1] / "data" / "captures"
CAPTURE = CAPTURES / "ipfs-03-p2pkit-js-libp2p-keylog.pcap"
KEYLOG = CAPTURE.with_suffix(".keylog")


def records(keylog: NoiseKeyLog | None):
    return list(dissect(CAPTURE, secrets={"ipfs": keylog} if keylog is not None else None))


def test_every_session_is_decrypted():
    got = records(parse_noise_keylog(KEYLOG.read_text()))
    assert {r.protocol for r in got} == {"ipfs"}
    assert not [r for r in got if r.message == "undecoded" or r.deviations]
    transport = [r for r in got if r.message == "noise_transport"]
    assert transport and all(r.fields["decrypted"] == r.fields["encrypted"] - 16
                             for r in transport)
    # each direction's nonces count from 0 without a hole
    by_direction: dict = {}
    for r in transport:
        by_direction.setdefault((r.src, r.dst), []).append(r.fields["nonce"])
    assert len(by_direction) == 8
    assert all(n == list(range(len(n))) for n in by_direction.values())
    # every decrypted byte is inside a yamux frame (inlined muxer: no multistream round)
    for (src, dst), _ in by_direction.items():
        plain = sum(r.fields["decrypted"] for r in transport if (r.src, r.dst) == (src, dst))
        framed = sum(r.length for r in got if r.message == "yamux" and (r.src, r.dst) == (src, dst))
        assert plain == framed


def test_application_messages():
    got = records(parse_noise_keylog(KEYLOG.read_text()))
    names = {r.message for r in got}
    assert {"yamux", "ping", "identify", "kad_dht", "bitswap"} <= names
    # stream protocols as negotiated inside the streams
    lines = {r.fields["line"] for r in got if r.message == "multistream" and "stream_id" in r.fields}
    assert {"/ipfs/ping/1.0.0", "/ipfs/id/1.0.0", "/ipfs/kad/1.0.0",
            "/ipfs/bitswap/1.2.0"} <= lines
    # every ping is echoed with the same 32 bytes
    pings: dict = {}
    for r in (r for r in got if r.message == "ping"):
        pings.setdefault((frozenset((r.src, r.dst)), r.fields["stream_id"]), []).append(
            (r.src, r.fields["payload"]))
    assert sum(len(v) for v in pings.values()) == 16
    for seq in pings.values():
        for (a, x), (b, y) in zip(seq[::2], seq[1::2], strict=True):
            assert a != b and x == y and len(bytes.fromhex(x)) == 32
    agents = sorted(r.fields["agentVersion"] for r in got if r.message == "identify")
    assert agents == ["js-libp2p/3.3.11 node/22.23.5"] + ["p2pkit/0.1.0"] * 4
    kinds = [r.fields["type"] for r in got if r.message == "kad_dht"]
    assert {"ADD_PROVIDER", "GET_PROVIDERS", "FIND_NODE", "PING"} <= set(kinds)
    # Bitswap: each block sent matches a CID the other side asked for
    wanted = {(r.src, Cid.from_bytes(e.block)) for r in got if r.message == "bitswap"
              and r.value.wantlist for e in r.value.wantlist.entries}
    blocks = [(r.dst, cid_from_prefix(b.prefix, b.data), len(b.data)) for r in got
              if r.message == "bitswap" for b in r.value.payload]
    assert sorted(size for _, _, size in blocks) == [100_000, 150_000]
    assert all((dst, cid) in wanted for dst, cid, _ in blocks)


def test_without_keys_everything_stays_encrypted():
    got = records(None)
    assert not {"yamux", "ping", "identify", "kad_dht", "bitswap"} & {r.message for r in got}
    transport = [r for r in got if r.message == "noise_transport"]
    assert transport and not [r for r in transport if "decrypted" in r.fields]


def test_a_partial_or_wrong_key_log():
    lines = KEYLOG.read_text().splitlines()
    one = parse_noise_keylog(lines[0])
    got = records(one)
    decrypted = {frozenset((r.src, r.dst)) for r in got if "decrypted" in r.fields}
    assert decrypted == {frozenset(lines[0].split()[1:3])}
    fields = lines[0].split()
    bad = fields[4][:-2] + ("00" if fields[4][-2:] != "00" else "01")
    got = records(parse_noise_keylog(" ".join([*fields[:4], bad, *fields[5:]])))
    deviations = [d for r in got for d in r.deviations]
    assert [d.rule for d in deviations] == ["ipfs/noise-tag"]
    # the wrong direction stays encrypted; the other one still decrypts
    initiator = fields[1]
    assert not [r for r in got if r.src == initiator and "decrypted" in r.fields]
    assert [r for r in got if r.dst == initiator and "decrypted" in r.fields]


def test_cli(tmp_path):
    runner = CliRunner()
    done = runner.invoke(cli, ["dissect", str(CAPTURE), "--keylog", str(KEYLOG),
                               "--message", "kad_dht"], prog_name="p2pkit")
    assert done.exit_code == 0, done.output
    assert "type=ADD_PROVIDER" in done.output
    bad = tmp_path / "bad.keylog"
    bad.write_text("NOISE_SECRETS a b c\n")
    done = runner.invoke(cli, ["dissect", str(CAPTURE), "--keylog", str(bad)],
                         catch_exceptions=False, prog_name="p2pkit")
    assert done.exit_code not in (0, None) and "Traceback" not in done.output
    assert len(done.stderr.strip().splitlines()) == 1 and "NOISE_SECRETS" in done.stderr


def _pump(a: Libp2pConnection, b: Libp2pConnection, wire: list) -> None:
    """Deliver what each end wrote until both are quiet; ``wire``: (sender, bytes) in order."""
    while True:
        moved = False
        for src, dst, name in ((a, b, "a"), (b, a, "b")):
            data = src.data_to_send()
            if data:
                wire.append((name, data))
                dst.receive_data(data, 0.0)
                moved = True
        if not moved:
            return


def test_muxer_negotiated_by_multistream():
    """Two p2pkit cores, muxer not inlined: ``/yamux/1.0.0`` negotiated inside Noise."""
    alice = Libp2pConnection(initiator=True, identity=Ed25519Identity(bytes(range(32))),
                             rng=random.Random(1), offer_muxers=False)
    bob = Libp2pConnection(initiator=False, identity=Ed25519Identity(bytes(range(1, 33))),
                           rng=random.Random(2), protocols=[ping.PROTOCOL_ID])
    wire: list = []
    _pump(alice, bob, wire)
    sid = alice.open_stream([ping.PROTOCOL_ID], 0.0)
    _pump(alice, bob, wire)
    payload = bytes(range(32))
    data = alice.send_stream(sid, payload, 0.0)
    wire.append(("a", data))
    bob.receive_data(data, 0.0)
    _pump(alice, bob, wire)
    e, ikey, rkey, h = alice.noise_secrets()
    assert bob.noise_secrets() == (e, ikey, rkey, h)
    keylog = NoiseKeyLog([NoiseKeyLogEntry(initiator="a:1", responder="b:2",
                                           initiator_ephemeral=e, initiator_key=ikey,
                                           responder_key=rkey, handshake_hash=h)])
    a = libp2p_stream(src="a:1", dst="b:2", secrets=keylog)
    b = libp2p_stream(src="b:2", dst="a:1", peer=a, secrets=keylog)
    offsets = {"a": 0, "b": 0}
    out = []
    for frame, (name, data) in enumerate(wire):
        stream = a if name == "a" else b
        out += [(name, r) for r in stream.data(offsets[name], data, frame, float(frame))]
        offsets[name] += len(data)
    muxer = [(n, r.fields["line"]) for n, r in out
             if r.message == "multistream" and r.fields.get("layer") == "muxer"]
    assert ("a", "/yamux/1.0.0") in muxer and ("b", "/yamux/1.0.0") in muxer
    streams = [(n, r.fields["line"]) for n, r in out
               if r.message == "multistream" and "stream_id" in r.fields]
    assert ("a", ping.PROTOCOL_ID) in streams and ("b", ping.PROTOCOL_ID) in streams
    pings = [(n, r.fields["payload"]) for n, r in out if r.message == "ping"]
    assert pings == [("a", payload.hex())]
    assert not [r for _, r in out if r.deviations or r.message == "undecoded"]
    events = list(iter(bob.next_event, NEED_DATA))
    assert StreamNegotiated(stream_id=sid, protocol=ping.PROTOCOL_ID, local=False) in events
    assert StreamData(stream_id=sid, data=payload) in events


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=300), max_size=8), st.booleans())
def test_random_plaintext_never_raises(chunks, yamux_first):
    direction = PlaintextDirection(transport="tcp", src="a:1", dst="b:2")
    for i, chunk in enumerate(chunks):
        data = (b"\0" + chunk) if yamux_first and i == 0 else chunk
        for record in direction.feed(data, i, 0.0):
            assert record.protocol == "ipfs" and record.length >= 0
    assert len(direction.streams) <= 1024


def test_handshake_secrets_alone_decrypt_and_show_identities():
    """Only the NOISE_HANDSHAKE_SECRETS lines: the handshake replays, the payloads' peer ids
    and signatures show, and the transport keys it derives decrypt the same records."""
    text = KEYLOG.read_text()
    handshakes_only = "\n".join(line for line in text.splitlines()
                                if line.startswith("NOISE_HANDSHAKE_SECRETS "))
    replayed = records(parse_noise_keylog(handshakes_only))
    logged = records(parse_noise_keylog(text))
    assert [r.to_json() for r in replayed] == [r.to_json() for r in logged]
    shown = [r.fields for r in replayed if r.message == "noise_handshake"
             and r.fields["step"] in (2, 3)]
    assert len(shown) == 8 and all(f["signature"] == "valid" for f in shown)
    # every peer id is the one its identify message carries on that connection
    ids = {f["peer_id"] for f in shown}
    assert "12D3KooWA4Xop1JaT3MHxwYMkCepYsv4iPVopMXwCz5iHYdBfeSB" in ids  # p2pkit's host
    from p2pkit.ipfs.peer_id import PeerId
    proved = {(r.src, r.fields["peer_id"]) for r in replayed
              if r.message == "noise_handshake" and r.fields["step"] in (2, 3)}
    told = {(r.src, str(PeerId.from_public_key(r.value.publicKey))) for r in replayed
            if r.message == "identify"}
    assert told and told <= proved
