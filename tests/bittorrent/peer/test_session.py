"""TorrentSession: whole swarms in memory (no sockets), real storage on disk, real hashes."""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from p2pkit.bittorrent.peer.session import (
    MAX_HASH_FAILURES,
    BlockRequested,
    MetadataCompleted,
    PeerClosed,
    PeersDiscovered,
    PieceDownloaded,
    TorrentSession,
)
from p2pkit.bittorrent.peer.storage import Storage
from p2pkit.bittorrent.wire.create import create_torrent
from p2pkit.bittorrent.wire.framer import MessageFramer
from p2pkit.bittorrent.wire.messages import PeerMessage
from p2pkit.bittorrent.wire.metainfo import Metainfo
from p2pkit.core import NEED_DATA, MemoryNetwork
from tests.bittorrent.album import write_album

PIECE = 32768


class Node:
    """One session with its storage, as a driver would hold them."""

    def __init__(self, name: str, meta: Metainfo | None, root: Path, *, info_hash=None,
                 have=None, seed: int = 0, upload_slots: int | None = 4,
                 request_queue: int = 128) -> None:
        self.name = name
        self.root = root
        self.meta = meta
        self.storage = Storage(meta, root) if meta is not None else None
        if meta is not None and have is None:
            have = self.storage.check()
        self.session = TorrentSession(peer_id=name.encode().ljust(20, b"-"), metainfo=meta,
                                      info_hash=info_hash, have=have, rng=random.Random(seed),
                                      upload_slots=upload_slots, request_queue=request_queue)
        self.closed: list[PeerClosed] = []
        self.discovered: list[tuple[str, int]] = []
        #: BEP 11 ``added.f`` 0x04 of each discovered address (None: no flags).
        self.discovered_utp: list[bool | None] = []
        self.ip = f"127.0.0.{sum(name.encode()) % 250 + 2}"
        self.banned: set[str] = set()
        self.sent_requests = 0

    def act(self, now: float) -> None:
        s = self.session
        while (event := s.next_event()) is not NEED_DATA:
            if isinstance(event, BlockRequested):
                s.block_read(event.peer, event.index, event.begin,
                             self.storage.read(event.index, event.begin, event.length), now)
            elif isinstance(event, PieceDownloaded):
                ok = self.storage.verify(event.index, event.data)
                if ok:
                    self.storage.write(event.index, event.data)
                s.piece_checked(event.index, ok, now)
            elif isinstance(event, PeerClosed):
                self.closed.append(event)
                if event.ban:
                    self.banned.add(event.peer)
            elif isinstance(event, PeersDiscovered):
                self.discovered += event.addresses
                self.discovered_utp += event.utp
            elif isinstance(event, MetadataCompleted):
                self.meta = event.metainfo
                self.storage = Storage(event.metainfo, self.root)
                s.start(event.metainfo, self.storage.check(), now=now)


class Swarm:
    """Nodes wired pairwise by reliable streams of a :class:`p2pkit.core.MemoryNetwork` (no
    latency: what a step writes arrives in that step); ``run`` moves bytes until quiet, then
    jumps the network's clock to the next timer."""

    def __init__(self, net: MemoryNetwork | None = None) -> None:
        self.net = net if net is not None else MemoryNetwork(seed=0)
        self.links: list[tuple[Node, str, Node, str]] = []
        self.taps: dict[tuple[str, str], list[bytes]] = {}

    @property
    def now(self) -> float:
        return self.net.now

    def connect(self, a: Node, b: Node) -> None:
        a.session.add_peer(b.name, outgoing=True, address=(b.ip, 6881), now=self.now)
        b.session.add_peer(a.name, outgoing=False, address=(a.ip, 40000), now=self.now)
        self.links.append((a, b.name, b, a.name))

    def _write(self, src: Node, dst: Node, src_key: str, data: bytes) -> None:
        def deliver(data: bytes, now: float) -> None:
            if src_key in dst.session.peers:
                dst.session.receive_data(src_key, data, now)

        self.net.send_stream((src.name, 0), (dst.name, 0), data, deliver)
        self.net.run(until=self.now)  # no latency: delivered now

    def step(self) -> bool:
        moved = False
        for a, a_key, b, b_key in self.links:
            for src, dst_key, dst, src_key in ((a, a_key, b, b_key), (b, b_key, a, a_key)):
                data = src.session.data_to_send(dst_key)
                if data and src_key in dst.session.peers:
                    self.taps.setdefault((src.name, dst.name), []).append(data)
                    self._write(src, dst, src_key, data)
                    moved = True
        for node in self.nodes():
            node.act(self.now)
        return moved

    def nodes(self) -> list[Node]:
        return list({id(n): n for link in self.links for n in (link[0], link[2])}.values())

    def run(self, limit: int = 100_000, horizon: float = 600.0) -> None:
        """Move bytes until nothing moves, then jump to the next timer; stop at ``horizon``."""
        end = self.now + horizon
        for _ in range(limit):
            if self.step():
                continue
            timers = [t for n in self.nodes() if (t := n.session.get_timer()) is not None]
            if not timers or min(timers) > end:
                return
            self.net.run(until=max(self.now, min(timers)))
            for node in self.nodes():
                node.session.handle_timer(self.now)
        raise AssertionError("the swarm did not settle")

    def frames(self, src: str, dst: str) -> list:
        """The peer-wire messages ``src`` sent to ``dst`` after the handshake, parsed."""
        data = b"".join(self.taps.get((src, dst), []))
        return [f.message for f in MessageFramer(handshake=True).feed(data)][1:]

    def messages(self, src: str, dst: str) -> list[str]:
        """Types of the peer-wire messages ``src`` sent to ``dst`` (after the handshake)."""
        return [m.type for m in self.frames(src, dst)]


@pytest.fixture
def content(tmp_path):
    """A three-file torrent (files cross piece boundaries), its seed directory and its files."""
    files = write_album(tmp_path / "seed", {"a.bin": 100_000, "b/c.bin": 250_000, "d.txt": 5},
                        seed=7)
    seed = tmp_path / "seed" / "album"

    def torrent(version: str = "v1") -> Metainfo:
        return Metainfo.parse(create_torrent(seed, piece_length=PIECE, version=version))

    return Content((torrent, tmp_path / "seed", files))


class Content(tuple):
    """(torrent factory, seed root, files), with a short repr for hypothesis reports."""

    def __repr__(self) -> str:
        return f"Content({self[1]})"


def same_files(root: Path, files: dict[str, bytes]) -> bool:
    return all((root / "album" / name).read_bytes() == data for name, data in files.items())


@pytest.mark.parametrize("version", ["v1", "v2", "hybrid"])
def test_leecher_downloads_everything_from_a_seeder(content, tmp_path, version):
    torrent, seed_root, files = content
    meta = torrent(version)
    seeder = Node("seeder", meta, seed_root)
    leecher = Node("leecher", meta, tmp_path / "leech")
    assert seeder.session.complete and not leecher.session.complete
    swarm = Swarm()
    swarm.connect(leecher, seeder)
    swarm.run()
    assert leecher.session.complete and same_files(tmp_path / "leech", files)
    sent = swarm.messages("leecher", "seeder")
    # One request per block, none repeated (one peer: no end-game duplicates).
    assert sent.count("request") == sum(len(leecher.storage.blocks(i))
                                        for i in range(meta.piece_count))
    # BEP 6: a seed says have_all, the leecher have_none; BEP 3: have after each check.
    assert swarm.messages("seeder", "leecher")[:2] == ["extended", "have_all"]
    assert sent.count("have") == meta.piece_count and "interested" in sent
    last_have = len(sent) - 1 - sent[::-1].index("have")
    assert "not_interested" in sent[last_have:]


def test_three_peers_trade_pieces_between_leechers(content, tmp_path):
    torrent, seed_root, files = content
    meta = torrent()
    seeder = Node("seeder", meta, seed_root, seed=1)
    # Short pipelines, so that one peer cannot ask the seeder for the whole torrent at once.
    a = Node("a", meta, tmp_path / "a", seed=2, request_queue=2)
    b = Node("b", meta, tmp_path / "b", seed=3, request_queue=2)
    swarm = Swarm()
    swarm.connect(a, seeder)
    swarm.connect(b, seeder)
    swarm.connect(a, b)
    swarm.run()
    assert a.session.complete and b.session.complete
    assert same_files(tmp_path / "a", files) and same_files(tmp_path / "b", files)
    between = swarm.messages("a", "b").count("piece") + swarm.messages("b", "a").count("piece")
    assert between > 0  # leechers uploaded to each other
    total = sum(len(d) for d in files.values())
    sent = seeder.session.uploaded_bytes + a.session.uploaded_bytes + b.session.uploaded_bytes
    assert sent == a.session.received_bytes + b.session.received_bytes >= 2 * total


def test_resume_fetches_only_missing_pieces(content, tmp_path):
    torrent, seed_root, files = content
    meta = torrent()
    partial = tmp_path / "partial"
    (partial / "album").mkdir(parents=True)
    (partial / "album" / "a.bin").write_bytes(files["a.bin"])  # pieces 0..2 complete
    leecher = Node("leecher", meta, partial)
    have = leecher.storage.check()
    assert list(have[:3]) == [1, 1, 1] and not all(have)
    swarm = Swarm()
    swarm.connect(leecher, Node("seeder", meta, seed_root))
    swarm.run()
    requested = {m for m in swarm.messages("leecher", "seeder") if m == "request"}
    assert leecher.session.complete and same_files(partial, files) and requested
    indices = {m.index for m in swarm.frames("leecher", "seeder") if m.type == "request"}
    assert indices == {i for i in range(meta.piece_count) if not have[i]}


def test_bad_data_is_discarded_and_its_sender_banned(content, tmp_path):
    """A peer claiming every piece but serving garbage: the hash check catches each piece, the
    peer is banned after MAX_HASH_FAILURES, and the download completes from the honest seed."""
    torrent, seed_root, files = content
    meta = torrent()
    liar_root = tmp_path / "liar"
    for name, data in files.items():
        path = liar_root / "album" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(bytes(b ^ 0x5A for b in data))
    liar = Node("liar", meta, liar_root, have=bytearray(b"\x01") * meta.piece_count)
    leecher = Node("leecher", meta, tmp_path / "leech", seed=5)
    swarm = Swarm()
    swarm.connect(leecher, liar)
    swarm.run()
    assert leecher.banned == {"liar"}
    # Pieces already in flight when the ban fell fail too; none is ever stored.
    assert leecher.session.failed_pieces >= MAX_HASH_FAILURES
    assert not leecher.session.complete
    swarm.connect(leecher, Node("seeder", meta, seed_root))
    swarm.run()
    assert leecher.session.complete and same_files(tmp_path / "leech", files)


def test_malformed_message_closes_only_that_peer(content, tmp_path):
    torrent, seed_root, files = content
    meta = torrent()
    seeder = Node("seeder", meta, seed_root)
    good = Node("good", meta, tmp_path / "good")
    bad = Node("bad", meta, tmp_path / "bad")
    swarm = Swarm()
    swarm.connect(good, seeder)
    swarm.connect(bad, seeder)
    swarm.step()
    swarm.step()
    # "bad" sends a request for a piece beyond the torrent (BEP 3 index out of range).
    seeder.session.receive_data("bad", PeerMessage.build(dict(
        type="request", index=meta.piece_count, begin=0, length=16384)), swarm.now)
    seeder.act(swarm.now)
    assert [c.peer for c in seeder.closed] == ["bad"] and "bad" not in seeder.session.peers
    swarm.links = [link for link in swarm.links if link[2] is not bad and link[0] is not bad]
    swarm.run()
    assert good.session.complete and same_files(tmp_path / "good", files)


def test_magnet_download_gets_metadata_then_content(content, tmp_path):
    torrent, seed_root, files = content
    meta = torrent()
    seeder = Node("seeder", meta, seed_root)
    leecher = Node("leecher", None, tmp_path / "leech", info_hash=meta.info_hash)
    assert leecher.session.picker is None
    swarm = Swarm()
    swarm.connect(leecher, seeder)
    swarm.run()
    assert leecher.meta is not None and leecher.meta.info_hash == meta.info_hash
    assert leecher.session.complete and same_files(tmp_path / "leech", files)
    extended = swarm.messages("leecher", "seeder")
    assert "extended" in extended


def test_endgame_cancels_duplicate_requests(content, tmp_path):
    """BEP 3 end game: the last blocks go to both seeders, and the copy that loses the race is
    cancelled; BEP 6: every request still gets exactly one answer (the piece or a reject)."""
    torrent, seed_root, files = content
    meta = torrent()
    leecher = Node("leecher", meta, tmp_path / "leech", seed=11, request_queue=4)
    seeders = [Node(f"seed{i}", meta, seed_root, seed=20 + i) for i in range(2)]
    swarm = Swarm()
    for s in seeders:
        swarm.connect(leecher, s)
    swarm.run()
    assert leecher.session.complete and same_files(tmp_path / "leech", files)
    blocks = sum(len(leecher.storage.blocks(i)) for i in range(meta.piece_count))
    requests = sum(swarm.messages("leecher", s.name).count("request") for s in seeders)
    cancels = sum(swarm.messages("leecher", s.name).count("cancel") for s in seeders)
    answers = sum(swarm.messages(s.name, "leecher").count(kind) for s in seeders
                  for kind in ("piece", "reject_request"))
    assert cancels > 0 and requests == blocks + cancels and answers == requests


def test_choker_limits_upload_slots(content, tmp_path):
    torrent, seed_root, files = content
    meta = torrent()
    seeder = Node("seeder", meta, seed_root, upload_slots=1)
    leechers = [Node(f"l{i}", meta, tmp_path / f"l{i}", seed=i) for i in range(3)]
    swarm = Swarm()
    for leecher in leechers:
        swarm.connect(leecher, seeder)
    for _ in range(3):
        swarm.step()
    assert len(seeder.session.choker.unchoked) <= 1 + 1  # one slot plus the optimistic unchoke
    swarm.run()
    assert all(leecher.session.complete for leecher in leechers)


def test_requests_for_missing_pieces_are_rejected(content, tmp_path):
    torrent, seed_root, files = content
    meta = torrent()
    a = Node("a", meta, tmp_path / "a")
    b = Node("b", meta, tmp_path / "b")
    swarm = Swarm()
    swarm.connect(a, b)
    swarm.run(horizon=5)
    b.session.peers["a"].conn.am_choking = False
    b.session.receive_data("a", PeerMessage.build(dict(type="request", index=0, begin=0,
                                                       length=16384)), 0.0)
    out = b.session.data_to_send("a")
    assert PeerMessage.parse(out).type == "reject_request"
    assert not [x for x in iter(b.session.next_event, NEED_DATA) if isinstance(x, BlockRequested)]


def test_sha_of_download_matches(content, tmp_path):
    torrent, seed_root, files = content
    meta = torrent("hybrid")
    leecher = Node("leecher", meta, tmp_path / "leech")
    swarm = Swarm()
    swarm.connect(Node("seeder", meta, seed_root), leecher)
    swarm.run()
    for name, data in files.items():
        got = (tmp_path / "leech" / "album" / name).read_bytes()
        assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()


def test_pex_tells_each_peer_about_the_others(content, tmp_path):
    """BEP 11: after a minute the seeder sends each leecher a ut_pex message whose ``added``
    holds the other leecher's listen address (the dialled address, or the source IP with the
    BEP 10 ``p`` port); a private torrent (BEP 27) exchanges none."""
    torrent, seed_root, files = content
    meta = torrent()
    for private in (False, True):
        if private:
            meta = Metainfo.parse(create_torrent(seed_root / "album", piece_length=PIECE,
                                                 private=True))
        seeder = Node("seeder", meta, seed_root)
        a = Node("a", meta, tmp_path / f"a{private}")
        b = Node("b", meta, tmp_path / f"b{private}")
        a.session.listen_port = 7001
        b.session.listen_port = 7002
        swarm = Swarm()
        swarm.connect(a, seeder)
        swarm.connect(b, seeder)
        swarm.run(horizon=70)
        if private:
            assert a.discovered == [] and b.discovered == []
            assert "extended" in swarm.messages("seeder", "a")  # only the handshake
            continue
        assert a.discovered == [(b.ip, 7002)] and b.discovered == [(a.ip, 7001)]


def test_started_pieces_are_bounded_whatever_the_torrent_size(content, tmp_path, monkeypatch):
    """Pieces are buffered until their hash check: at most MAX_BUFFERED_BYTES of them are
    started at once, even with a deep request pipeline and several seeders."""
    from p2pkit.bittorrent.peer import session as session_module

    monkeypatch.setattr(session_module, "MAX_BUFFERED_BYTES", 3 * PIECE)
    torrent, seed_root, files = content
    meta = torrent()
    leecher = Node("leecher", meta, tmp_path / "leech")
    swarm = Swarm()
    for i in range(3):
        swarm.connect(leecher, Node(f"seed{i}", meta, seed_root, seed=i))
    most = 0
    for _ in range(10_000):
        moved = swarm.step()
        most = max(most, len(leecher.session._started))
        assert set(leecher.session._pieces) <= set(leecher.session._started)
        if not moved:
            break
    assert leecher.session.complete and same_files(tmp_path / "leech", files)
    assert most == 3  # the budget was used, never exceeded
    assert len(leecher.session._started) == 0


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(messages=st.lists(st.one_of(
    st.binary(max_size=40),
    st.builds(lambda t, i, b, n: PeerMessage.build(dict(type=t, index=i, begin=b, length=n)),
              st.sampled_from(["request", "cancel", "reject_request"]),
              st.integers(0, 20), st.integers(0, 70000), st.integers(0, 20000)),
    st.builds(lambda i: PeerMessage.build(dict(type="have", index=i)), st.integers(0, 20)),
    st.builds(lambda b: PeerMessage.build(dict(type="bitfield", bitfield=b)),
              st.binary(max_size=3)),
    st.sampled_from([PeerMessage.build(dict(type=t)) for t in (
        "choke", "unchoke", "interested", "not_interested", "have_all", "have_none")]),
), max_size=12))
def test_hostile_bytes_close_only_that_peer(content, tmp_path_factory, messages):
    """Whatever a peer sends after its handshake, the session raises nothing: it answers, or
    drops that peer with a PeerClosed, and keeps serving the others."""
    torrent, seed_root, files = content
    meta = torrent()
    seeder = Node("seeder", meta, seed_root)
    good = Node("good", meta, tmp_path_factory.mktemp("good"))
    evil = Node("evil", meta, tmp_path_factory.mktemp("evil"))
    swarm = Swarm()
    swarm.connect(good, seeder)
    swarm.connect(evil, seeder)
    swarm.step()
    swarm.step()
    for data in messages:
        if "evil" in seeder.session.peers:
            seeder.session.receive_data("evil", data, swarm.now)
            seeder.act(swarm.now)
    assert "evil" in seeder.session.peers or [c.peer for c in seeder.closed] == ["evil"]
    swarm.links = [link for link in swarm.links if evil not in (link[0], link[2])]
    swarm.run(horizon=30)
    assert good.session.complete


def test_pex_sets_the_utp_flag_for_peers_that_speak_utp(content, tmp_path):
    """BEP 11 ``added.f`` 0x04 "supports uTP": set for a peer whose connection runs over uTP
    (BEP 29), clear for a TCP one; the receiver gets it per address."""
    torrent, seed_root, files = content
    meta = torrent()
    seeder = Node("seeder", meta, seed_root)
    a, b = Node("a", meta, tmp_path / "a"), Node("b", meta, tmp_path / "b")
    a.session.listen_port, b.session.listen_port = 7001, 7002
    swarm = Swarm()
    swarm.connect(a, seeder)
    seeder.session.peers["a"].utp = True  # as TorrentClient adds a peer that dialled over uTP
    swarm.connect(b, seeder)
    swarm.run(horizon=70)
    assert b.discovered == [(a.ip, 7001)] and b.discovered_utp == [True]
    assert a.discovered == [(b.ip, 7002)] and a.discovered_utp == [False]
