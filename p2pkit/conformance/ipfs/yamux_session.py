"""yamux (libp2p-yamux.md): framing, stream ACK, FIN, ping, flow control, the ACK backlog.

Cases run on a Noise-secured session with yamux, the harness as the client (odd stream ids).
Well-behaved cases open a stream for ``/ipfs/id/1.0.0`` (every libp2p node serves it); hostile ones
write raw frames built from :data:`~p2pkit.ipfs.yamux.YamuxHeader` (a wrong version, data on
stream 0, more data than the window allows, a flood of SYNs) and then a fresh session must
be served.
"""

from __future__ import annotations

from p2pkit.conformance.ipfs.live import IpfsContext, ipfs_case
from p2pkit.conformance.ipfs.session import MULTISTREAM, Deviation, StreamView, multistream_line
from p2pkit.ipfs import yamux
from p2pkit.ipfs.identify import PROTOCOL_ID as IDENTIFY

FLOW = "libp2p-yamux §Opening a stream"
ACK = ("The receiver must then reply with either a data or window update frame with the "
       "StreamID along with the ACK flag to accept the stream or with the RST flag to reject "
       "the stream.")
PING_ECHO = "Ping - Contains an opaque value, echoed back"
PING_ACK = "Also sent with a ping to indicate response."
VERSION = "At the current time, the field is always set to 0, to indicate the initial version."
FIN = ("To close a stream, either side sends a data or window update frame along with the FIN "
       "flag.")
WINDOW = "When Yamux is initially starts each stream with a 256KiB window size."
BACKLOG = "SHOULD at most allow an ACK backlog of 256 streams."
SESSION_ID = "Additionally, the 0 ID is reserved to represent the session."
GOAWAY = "0x3 Go Away - Used to close a session."
SERVER_EVEN = "The client side should use odd ID's, and the server even."


async def _acked(ctx: IpfsContext) -> None:
    async with ctx.session() as s:
        await s.secure()
        sid, _ = await s.open_stream(IDENTIFY)
        if not s.streams[sid].acked:
            raise Deviation(f"stream {sid} was answered without ACK or RST")


async def _ping(ctx: IpfsContext) -> None:
    async with ctx.session() as s:
        await s.secure()
        opaque = ctx.rng.getrandbits(32)
        await s.send_yamux(yamux.Ping(opaque=opaque))
        pongs = lambda: [e for e in s.events if isinstance(e, yamux.PongReceived)]  # noqa: E731
        await s.pump(lambda: bool(pongs()))
        if not pongs():
            raise Deviation("no ping frame with ACK came back")
        if pongs()[0].opaque != opaque:
            raise Deviation(f"the pong carried {pongs()[0].opaque:#x}, not {opaque:#x}")


async def _version(ctx: IpfsContext) -> None:
    """Every frame the target sends parses with version 0 (the header schema's Const)."""
    async with ctx.session() as s:
        await s.secure()
        if not await s.serves():
            raise Deviation(f"the session did not serve a ping ({s.closed})")
        if s.closed:
            raise Deviation(s.closed)


async def _fin(ctx: IpfsContext) -> None:
    async with ctx.session() as s:
        await s.secure()
        sid = await s.negotiated(IDENTIFY)
        await s.read_stream(sid, lambda b: False)
        if not s.streams[sid].ended:
            raise Deviation("the identify stream was not half-closed with FIN"
                            + (" (it was reset)" if s.streams[sid].reset else ""))


async def _window_violation(ctx: IpfsContext) -> None:
    """300 KiB on a fresh identify stream at once, past the initial 256 KiB window."""
    async with ctx.session() as s:
        await s.secure()
        sid = s.yamux.open_stream()
        s.streams[sid] = StreamView(sid)
        head = multistream_line(MULTISTREAM) + multistream_line(IDENTIFY)
        await s.send_frame("data", sid, len(head), head, SYN=True)
        chunk = bytes(60 * 1024)
        for _ in range(5):
            await s.send_frame("data", sid, len(chunk), chunk)
        await s.pump(lambda: s.streams[sid].reset, 1.0)


async def _flood(ctx: IpfsContext) -> None:
    """600 SYNs without negotiating anything: the backlog beyond 256 is reset."""
    async with ctx.session() as s:
        await s.secure()
        frames = b""
        sids = range(1, 1201, 2)
        for sid in sids:
            s.streams[sid] = StreamView(sid)
            frames += yamux.YamuxHeader.build({"version": 0, "type": "window_update",
                                               "flags": {"SYN": True}, "stream_id": sid,
                                               "length": 0})
        s.yamux._next_id = 1201
        await s.send_plain(frames)
        await s.pump(lambda: all(s.streams[i].acked for i in sids), 2.0)
        accepted = sum(1 for i in sids if s.streams[i].acked and not s.streams[i].reset)
        ctx.note(f"{accepted} of {len(sids)} flooded streams accepted")
        if accepted > 256 and not s.closed:
            raise Deviation(f"{accepted} unacknowledged-by-the-application streams accepted "
                            f"at once")


def _raw(name: str, title: str, requirement: str, frame: dict, payload: bytes = b"",
         spec: str = "libp2p-yamux §StreamID Field") -> object:
    async def play(ctx: IpfsContext) -> None:
        async with ctx.session() as s:
            await s.secure()
            header = yamux.YamuxHeader.build({"version": 0, "type": "data", "flags": {},
                                              "stream_id": 1, "length": len(payload),
                                              **frame})
            await s.send_plain(header + payload)
            await s.closes(1.0)
    return ipfs_case(id=f"yamux/{name}", title=title, spec=spec, requirement=requirement,
                     level="MUST", rule="ipfs/robustness", play=play, robustness=True)


async def _bad_version(ctx: IpfsContext) -> None:
    async with ctx.session() as s:
        await s.secure()
        await s.send_plain(b"\x01\x00\x00\x01\x00\x00\x00\x01\x00\x00\x00\x00")
        await s.closes(1.0)


async def _goaway(ctx: IpfsContext) -> None:
    async with ctx.session() as s:
        await s.secure()
        await s.send_yamux(yamux.GoAway(code=yamux.GoAwayCode.normal))
        sid = s.yamux._next_id
        await s.send_frame("window_update", sid, 0, SYN=True)
        s.streams[sid] = StreamView(sid)
        await s.pump(lambda: s.streams[sid].acked or bool(s.closed), 1.0)
        view = s.streams[sid]
        ctx.note("closed" if s.closed else "reset the new stream" if view.reset else
                 "accepted a stream after Go Away" if view.acked else "silent")


async def _server_even(ctx: IpfsContext) -> None:
    """The target opens a stream of its own when it answers Bitswap (§Interaction Pattern):
    its id must be even."""
    from p2pkit.conformance.ipfs.bitswap import bitswap_session_answers

    async with ctx.session(accept=("/ipfs/bitswap/1.2.0",)) as s:
        await bitswap_session_answers(ctx, s, have_only=True)
        inbound = [v.stream_id for v in s.streams.values() if v.inbound]
        if not inbound:
            raise Deviation("the target opened no stream (no Bitswap answer on s_receive, "
                            "see bitswap/s-receive)")
        odd = [i for i in inbound if i % 2]
        if odd:
            raise Deviation(f"the target (server side) opened odd stream ids {odd}")


CASES = [
    ipfs_case(id="yamux/ack-new-stream", title="a SYN is answered with ACK (or RST)",
              spec=FLOW, requirement=ACK, level="MUST", rule="ipfs/yamux/ack", play=_acked),
    ipfs_case(id="yamux/ping-echo", title="a ping's opaque value is echoed",
              spec="libp2p-yamux §Length Field", requirement=PING_ECHO, level="MUST",
              rule="ipfs/yamux/ping", play=_ping),
    ipfs_case(id="yamux/ping-ack", title="the ping is answered with the ACK flag",
              spec="libp2p-yamux §Flag Field", requirement=PING_ACK, level="MUST",
              rule="ipfs/yamux/ping", play=_ping),
    ipfs_case(id="yamux/version-0", title="every frame has version 0",
              spec="libp2p-yamux §Version Field", requirement=VERSION, level="MUST",
              rule="ipfs/yamux/framing", play=_version),
    ipfs_case(id="yamux/fin-half-close", title="the target closes its identify stream with "
              "FIN", spec="libp2p-yamux §Closing a stream", requirement=FIN, level="MUST",
              rule="ipfs/yamux/fin", play=_fin),
    ipfs_case(id="yamux/server-even-ids", title="streams the target opens have even ids",
              spec="libp2p-yamux §StreamID Field", requirement=SERVER_EVEN, level="SHOULD",
              rule="ipfs/yamux/stream-ids", depends=("ipfs/bitswap/s-receive",),
              play=_server_even),
    ipfs_case(id="yamux/go-away", title="what the target does after the harness's Go Away",
              spec="libp2p-yamux §Type Field", requirement=GOAWAY, level="INFO",
              rule="ipfs/yamux/go-away", play=_goaway),
    ipfs_case(id="yamux/ack-backlog", title="a flood of 600 SYNs: at most 256 accepted",
              spec="libp2p-yamux §ACK backlog & backpressure", requirement=BACKLOG,
              level="SHOULD", rule="ipfs/yamux/backlog", play=_flood, robustness=True),
    ipfs_case(id="yamux/window-violation", title="300 KiB sent into a 256 KiB window",
              spec="libp2p-yamux §Flow Control", requirement=WINDOW, level="MUST",
              rule="ipfs/robustness", play=_window_violation, robustness=True),
    _raw("data-on-stream-0", "a data frame on stream 0", SESSION_ID,
         {"stream_id": 0}, b"x" * 8),
    _raw("window-update-4gib", "a window update of 0xFFFFFFFF on a new stream", WINDOW,
         {"type": "window_update", "flags": {"SYN": True}, "length": 0xFFFFFFFF},
         spec="libp2p-yamux §Flow Control"),
    ipfs_case(id="yamux/bad-version", title="a frame of version 1",
              spec="libp2p-yamux §Version Field", requirement=VERSION, level="MUST",
              rule="ipfs/robustness", play=_bad_version, robustness=True),
]
