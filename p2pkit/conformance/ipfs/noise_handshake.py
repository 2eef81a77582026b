"""noise-libp2p (libp2p-noise.md): the XX handshake, the signed static key, transport messages.

The harness is the initiator. Well-behaved cases check what the target's handshake payload
proves; the hostile ones send message 3 with a payload that must be refused (a flipped
signature, a signature by another identity, an identity key that does not decode, none at
all) and judge that the target terminates the connection instead of serving it. Each hostile
case is a robustness case: a fresh session afterwards must be served.
"""

from __future__ import annotations

from typing import Any

from p2pkit.conformance.ipfs.live import IpfsContext, ipfs_case
from p2pkit.conformance.ipfs.session import Deviation, multistream_line
from p2pkit.ipfs import noise, yamux
from p2pkit.ipfs.identify import PROTOCOL_ID as IDENTIFY
from p2pkit.ipfs.keys import Ed25519Identity
from p2pkit.ipfs.noise import NoiseFrame
from p2pkit.ipfs.noise_payload import SIGNATURE_PREFIX

PAYLOAD = "libp2p-noise §The libp2p Handshake Payload"
XX = "The XX handshake MUST be supported by noise-libp2p implementations."
NAME = ("the Noise protocol name MUST be: `Noise_XX_25519_ChaChaPoly_SHA256`.")
SIGNED = ("The data to be signed is the UTF-8 string `noise-libp2p-static-key:`, followed by "
          "the Noise static public key")
TERMINATE = "If the signature is invalid, the connection MUST be terminated immediately."
DECODE = ("Upon receiving the handshake payload, peers MUST decode the public key from the "
          "`identity_key` field into a usable form.")
WIRE = ("The `noise_message_len` field stores the length in bytes of the `noise_message` "
        "field, encoded as a 16-bit big-endian unsigned integer.")
TRANSPORT = ("After the handshake completes, `noise_message` will be a Noise transport "
             "message, which is defined as an AEAD ciphertext consisting of an encrypted "
             "payload plus 16 bytes of authentication data.")
EARLY = ('noise-libp2p implementations MAY send additional "early data" in the handshake '
         "message payload.")


async def _completes(ctx: IpfsContext) -> None:
    async with ctx.session() as s:
        await s.secure()
        ctx.note(f"peer {s.remote_peer_id}")


async def _signature_checks(ctx: IpfsContext) -> None:
    """The target's message 2 carries an identity key and a signature over
    ``noise-libp2p-static-key:`` and its static key: the harness's Noise core checks both
    (:meth:`~p2pkit.ipfs.noise.NoiseSession._authenticate`) and refuses the handshake
    otherwise; the peer id is derived from that key."""
    from p2pkit.ipfs.peer_id import PeerId

    async with ctx.session() as s:
        await s.secure()
        complete = next(e for e in s.events if isinstance(e, noise.HandshakeComplete))
        if PeerId.from_public_key(complete.remote_public_key) != s.remote_peer_id:
            raise Deviation("the peer id does not derive from the identity key")
        ctx.note(f"identity_sig verified over the {len(complete.remote_static)}-byte static key")


def _refused(forge: Any, what: str) -> Any:
    async def play(ctx: IpfsContext) -> None:
        async with ctx.session() as s:
            answers = await s.propose(noise.PROTOCOL_ID)
            if answers[1:] != [noise.PROTOCOL_ID]:
                raise Deviation(f"/noise answered {answers}")
            await s.handshake(s.noise_session(forge))
            if s.remote_peer_id is None:
                raise Deviation(f"the target's own handshake did not complete ({s.closed})")
            # the target has our message 3; a session it accepted would now serve a stream
            s.yamux = yamux.YamuxSession(client=True)
            try:
                await s.open_stream(IDENTIFY)
            except Exception:  # noqa: BLE001 - whatever the target did, judged below
                pass
            served = any(v.data or v.acked for v in s.streams.values())
            if served:
                raise Deviation(f"a handshake with {what} was accepted: a stream was served")
            if not await s.closes(ctx.timeout):
                raise Deviation(f"the connection stayed open after {what}")
    return play


def _flip(fields: dict[str, Any], static: bytes,
          identity: Ed25519Identity) -> dict[str, Any]:
    sig = bytearray(fields["identity_sig"])
    sig[0] ^= 0x01
    return {**fields, "identity_sig": bytes(sig)}


def _other_key(fields: dict[str, Any], static: bytes,
               identity: Ed25519Identity) -> dict[str, Any]:
    """The identity key of another peer, with our (valid for our key) signature."""
    other = Ed25519Identity(bytes(range(32)))
    return {**fields, "identity_key": other.public_key}


def _no_signature(fields: dict[str, Any], static: bytes,
                  identity: Ed25519Identity) -> dict[str, Any]:
    return {**fields, "identity_sig": b""}


def _garbage_key(fields: dict[str, Any], static: bytes,
                 identity: Ed25519Identity) -> dict[str, Any]:
    return {**fields, "identity_key": b"\x08\x01\x12\x05nokey"}


def _foreign_static(fields: dict[str, Any], static: bytes,
                    identity: Ed25519Identity) -> dict[str, Any]:
    """A valid signature by the sender's identity, over another static key than the one in
    the handshake."""
    wrong = bytes(b ^ 0xFF for b in static)
    return {**fields, "identity_sig": identity.sign(SIGNATURE_PREFIX + wrong)}


async def _tampered(ctx: IpfsContext) -> None:
    """A transport message whose ciphertext was altered: its tag does not verify."""
    async with ctx.session() as s:
        await s.secure()
        frame = bytearray(s.noise.send(noise.SendData(data=bytes(12)), 0.0))
        frame[-1] ^= 0x80
        await s.write(bytes(frame))
        if not await s.closes(ctx.timeout):
            raise Deviation("a transport message with a bad tag left the connection open")


async def _truncated_frame(ctx: IpfsContext) -> None:
    """Message 1 announces 65535 bytes and brings 40, then stops."""
    async with ctx.session() as s:
        await s.write(multistream_line("/multistream/1.0.0") + multistream_line(
            noise.PROTOCOL_ID) + b"\xff\xff" + ctx.rng.randbytes(40))
        await s.closes(1.0)


async def _short_message_1(ctx: IpfsContext) -> None:
    """A first handshake message of 5 bytes (32 needed for the ephemeral key)."""
    async with ctx.session() as s:
        answers = await s.propose(noise.PROTOCOL_ID)
        if answers[1:] != [noise.PROTOCOL_ID]:
            raise Deviation(f"/noise answered {answers}")
        await s.write(NoiseFrame.build(b"short"))
        if not await s.closes(ctx.timeout):
            raise Deviation("a 5-byte handshake message 1 left the connection open")


async def _early_data(ctx: IpfsContext) -> None:
    async with ctx.session() as s:
        await s.secure()
        if not s.remote_muxers:
            ctx.note("no stream_muxers in the payload (muxer negotiated with multistream)")
            return
        ctx.note(f"stream_muxers {list(s.remote_muxers)}")


def _hostile(name: str, title: str, requirement: str, rule: str, play: Any,
             spec: str = PAYLOAD, depends: tuple[str, ...] = ()) -> Any:
    return ipfs_case(id=f"noise/{name}", title=title, spec=spec, requirement=requirement,
                     level="MUST", rule=rule, play=play, robustness=True,
                     depends=("ipfs/noise/xx", *depends))


CASES = [
    ipfs_case(id="noise/xx-handshake", title="the XX handshake completes as responder",
              spec="libp2p-noise §XX", requirement=XX, level="MUST", rule="ipfs/noise/xx",
              play=_completes),
    ipfs_case(id="noise/protocol-name", title="both ends derive the same keys from "
              "Noise_XX_25519_ChaChaPoly_SHA256 (a ping is echoed)",
              spec="libp2p-noise §Noise Protocol Name", requirement=NAME, level="MUST",
              rule="ipfs/noise/xx", play=_completes),
    ipfs_case(id="noise/signed-static-key", title="the target signs its static key with its "
              "identity key", spec=PAYLOAD, requirement=SIGNED, level="MUST",
              rule="ipfs/noise/sign", play=_signature_checks),
    ipfs_case(id="noise/early-data", title="the payload's early data (stream_muxers)",
              spec="libp2p-noise §libp2p Data in Handshake Messages", requirement=EARLY,
              level="MAY", rule="ipfs/noise/early-data", play=_early_data),
    _hostile("bad-signature", "message 3 with a flipped identity_sig is refused", TERMINATE,
             "ipfs/noise/verify-signature", _refused(_flip, "a flipped signature")),
    _hostile("foreign-identity-key", "message 3 with another peer's identity_key is refused",
             TERMINATE, "ipfs/noise/verify-signature",
             _refused(_other_key, "another peer's identity key")),
    _hostile("signature-other-static", "a signature over another static key is refused",
             TERMINATE, "ipfs/noise/verify-signature",
             _refused(_foreign_static, "a signature over another static key")),
    _hostile("missing-signature", "message 3 without identity_sig is refused", TERMINATE,
             "ipfs/noise/verify-signature", _refused(_no_signature, "no signature")),
    _hostile("undecodable-identity-key", "an identity_key that is no public key is refused",
             DECODE, "ipfs/noise/decode-key",
             _refused(_garbage_key, "an undecodable identity key"),
             depends=("ipfs/noise/verify-signature",)),
    _hostile("tampered-transport", "a transport message with a bad tag ends the connection",
             TRANSPORT, "ipfs/noise/aead", _tampered, spec="libp2p-noise §Wire Format"),
    ipfs_case(id="noise/truncated-frame", title="a frame announcing 65535 bytes, then "
              "silence and close", spec="libp2p-noise §Wire Format", requirement=WIRE,
              level="MUST", rule="ipfs/robustness", play=_truncated_frame, robustness=True),
    _hostile("short-message-1", "a 5-byte handshake message 1 ends the connection", WIRE,
             "ipfs/noise/message-1", _short_message_1, spec="libp2p-noise §Wire Format"),
]
