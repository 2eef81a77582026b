"""multistream-select (multistream-select.md): the header, agreement, ``na``, ``ls``.

The harness dials and proposes; the target listens. Cases run on the raw TCP connection (the
negotiation of the security protocol) and on a yamux stream (the negotiation of each stream's
protocol, connections §Opening new streams over a connection).
"""

from __future__ import annotations

from p2pkit.conformance.ipfs.live import IpfsContext, NotApplicable, ipfs_case
from p2pkit.conformance.ipfs.session import MULTISTREAM, Deviation, multistream_line
from p2pkit.errors import P2PKitError
from p2pkit.ipfs import noise
from p2pkit.ipfs.identify import PROTOCOL_ID as IDENTIFY
from p2pkit.ipfs.multistream import LsResponse
from p2pkit.ipfs.varint import decode_uvarint

SPEC = "multistream-select §Protocol"
ENTER = ("The actual protocol is very simple. It is a multistream protocol itself, with a "
         "multistream header.")
NA = ("The `<multistream-header-for-whatever-protocol-is-then-selected>` hopefully describes "
      'a valid protocol listed. Otherwise we return a `na`("not available") error:')
NOTE1 = ('**Note 1:** Every multistream message is a "length-prefixed-message", which means '
         "that every message is preprended by a varint that describes the size of the message.")
NOTE2 = ("**Note 2:** Every multistream message is appended by a `\\n` character, this "
         "character is included in the byte count that is accounted by the prepended varint.")
SAME_PACKET = ("Similarly, the responder SHOULD send its first response in the same packet as "
               "the multistream protocol.")
LS = 'Implementations MAY support "listing" of the available protocols.'


async def _header_echoed(ctx: IpfsContext) -> None:
    async with ctx.session() as s:
        answers = await s.propose(noise.PROTOCOL_ID)
        if not answers or answers[0] != MULTISTREAM:
            raise Deviation(f"first message {answers[:1]}, not {MULTISTREAM}")


async def _noise_agreed(ctx: IpfsContext) -> None:
    async with ctx.session() as s:
        answers = await s.propose(noise.PROTOCOL_ID)
        if answers != [MULTISTREAM, noise.PROTOCOL_ID]:
            raise Deviation(f"answered {answers} to /noise")


async def _na(ctx: IpfsContext) -> None:
    async with ctx.session() as s:
        answers = await s.propose("/p2pkit/conformance/not-a-protocol/" + ctx.rng.randbytes(
            4).hex())
        if answers[1:] != ["na"]:
            raise Deviation(f"answered {answers} to an unknown protocol")


async def _na_then_agree(ctx: IpfsContext) -> None:
    async with ctx.session() as s:
        answers = await s.propose("/tls/9.9.9-unknown")
        if answers[1:] != ["na"]:
            raise Deviation(f"answered {answers} to an unknown protocol")
        await s.write(multistream_line(noise.PROTOCOL_ID))
        again = await s.read_lines(1)
        if again != [noise.PROTOCOL_ID]:
            raise Deviation(f"after na, /noise was answered {again}")


async def _na_on_stream(ctx: IpfsContext) -> None:
    async with ctx.session() as s:
        await s.secure()
        _, lines = await s.open_stream("/p2pkit/conformance/unknown/1.0.0")
        if lines[1:] != ["na"]:
            raise Deviation(f"a stream proposing an unknown protocol got {lines}")


async def _stream_agreed(ctx: IpfsContext) -> None:
    async with ctx.session() as s:
        await s.secure()
        await s.negotiated(IDENTIFY)


async def _length_counts_newline(ctx: IpfsContext) -> None:
    """The raw bytes of the target's first answer: varint length, text, ``\\n``."""
    async with ctx.session() as s:
        await s.write(multistream_line(MULTISTREAM) + multistream_line(noise.PROTOCOL_ID))
        await s.until(lambda: len(s.raw) >= 1 + len(MULTISTREAM) + 1)
        first = bytes(s.raw[:1 + len(MULTISTREAM) + 1])
        want = bytes([len(MULTISTREAM) + 1]) + MULTISTREAM.encode() + b"\n"
        if first != want:
            raise Deviation(f"first bytes {first!r}, not {want!r}")


async def _same_packet(ctx: IpfsContext) -> None:
    async with ctx.session() as s:
        await s.write(multistream_line(MULTISTREAM) + multistream_line(noise.PROTOCOL_ID))
        data = await s._read(ctx.timeout)
        want = multistream_line(MULTISTREAM) + multistream_line(noise.PROTOCOL_ID)
        if not data or not data.startswith(want):
            raise Deviation(f"the first read held {data!r}, not both answers")


async def _ls(ctx: IpfsContext) -> None:
    async with ctx.session() as s:
        await s.write(multistream_line(MULTISTREAM) + multistream_line("ls"))
        header = await s.read_lines(1)
        if header != [MULTISTREAM]:
            raise Deviation(f"answered {header}")
        def whole() -> bool:  # the answer's varint announces its size: wait for all of it
            try:
                length, used = decode_uvarint(bytes(s.raw[:10]))
            except P2PKitError:
                return len(s.raw) >= 10
            return len(s.raw) >= used + length

        await s.until(whole, ctx.timeout)
        raw = bytes(s.raw)
        if raw[:1] == b"\x03" and raw.startswith(multistream_line("na")):
            raise NotApplicable("ls answered na")
        try:
            listed = LsResponse.parse(raw)
        except P2PKitError as e:
            raise Deviation(f"the ls answer {raw[:40]!r} does not parse: {e}") from None
        if noise.PROTOCOL_ID not in listed:
            raise Deviation(f"ls listed {listed}, without /noise")
        ctx.note(f"ls: {', '.join(listed)}")


CASES = [
    ipfs_case(id="multistream/header", title="the listener answers with the multistream "
              "header", spec=SPEC, requirement=ENTER, level="MUST",
              rule="ipfs/multistream/header", play=_header_echoed),
    ipfs_case(id="multistream/agree-noise", title="/noise is echoed (agreed)", spec=SPEC,
              requirement=ENTER, level="MUST", rule="ipfs/multistream/agree",
              play=_noise_agreed),
    ipfs_case(id="multistream/na-unknown", title="an unknown protocol is answered na",
              spec=SPEC, requirement=NA, level="MUST", rule="ipfs/multistream/na",
              play=_na),
    ipfs_case(id="multistream/na-then-agree", title="after na the dialer may propose again "
              "and be agreed", spec=SPEC, requirement=NA, level="MUST",
              rule="ipfs/multistream/na", depends=("ipfs/multistream/agree",),
              play=_na_then_agree),
    ipfs_case(id="multistream/na-on-stream", title="a stream proposing an unknown protocol "
              "is answered na", spec=SPEC, requirement=NA, level="MUST",
              rule="ipfs/multistream/na", play=_na_on_stream),
    ipfs_case(id="multistream/stream-agree", title="a yamux stream agrees on "
              "/ipfs/id/1.0.0", spec=SPEC, requirement=ENTER, level="MUST",
              rule="ipfs/multistream/agree", play=_stream_agreed),
    ipfs_case(id="multistream/length-prefix", title="the varint length counts the text and "
              "its newline", spec=SPEC, requirement=NOTE2, level="MUST",
              rule="ipfs/multistream/framing", play=_length_counts_newline),
    ipfs_case(id="multistream/varint-prefix", title="every message is varint "
              "length-prefixed", spec=SPEC, requirement=NOTE1, level="MUST",
              rule="ipfs/multistream/framing", play=_noise_agreed),
    ipfs_case(id="multistream/same-packet", title="the header and the first answer come "
              "in one packet", spec="multistream-select §Implementation Recommendations",
              requirement=SAME_PACKET, level="SHOULD", rule="ipfs/multistream/same-packet",
              play=_same_packet),
    ipfs_case(id="multistream/ls", title="ls lists the protocols (optional)",
              spec="multistream-select §Listing", requirement=LS, level="MAY",
              rule="ipfs/multistream/ls", play=_ls),
]
