"""bye §2-§4 and Appendix 2: the Bye descriptor (code and message), TTL 1 and hops 0, nothing
read after it, and the connection closed by the side that receives it."""

from __future__ import annotations

import struct

from p2pkit.conformance.case import Computed, Raw, Step
from p2pkit.conformance.gnutella._common import bye, gn_case, join, ping
from p2pkit.conformance.stream_verifiers import Closes, NoMessage, Receives
from p2pkit.conformance.verifiers import Between, Satisfies
from p2pkit.gnutella.descriptors import Descriptor

RECEPTION = "bye §4. Reception of a Bye (0x02) Packet"
MUST_CLOSE = "upon reception of BYE, the servent MUST close() the connection."
STOP = ("Upon reading a a Bye packet, a node should immediately close the connection and stop "
        "processing of any other received packet from that connection that was still pending "
        "processing.")
NOT_BACK = ("A Bye packet should not be sent back on the connection before closing, since the "
            "remote party already initiated the farewell.")
SENDING = "bye §3. Sending a Bye (0x02) Packet"
TTL_HOPS = ("A Bye packet must be sent with TTL=1 (to avoid accidental propagation by an "
            "unaware servent), and hop=0 (of course!).")
LAST = ("Servents should send a Bye packet to a node as the last thing on the network, and "
        "then close the connection.")
PACKET = "bye §2. The Bye (0x02) Packet"
FOUR = "The User did something wrong, as far as the servent is concerned."
SERVER = ("Unless circumstances making that impossible (urgent disconnection due to a memory "
          "fault), the HTTP-like headers version should be used, with at least a Server: "
          "header, allowing better tracing and debugging.")
APPENDIX = "bye §B. Appendix 2: A Step Towards Controlled TIME_WAIT Penalty"
#: Seconds a target may linger after its Bye before it closes (bye Appendix 2: "twice the
#: typical round-trip for an 'alive PING'"; p2pkit waits 5 s).
LINGER = 8.0


def _too_big(ctx: object) -> bytes:
    """A descriptor header announcing a 1 MiB payload (bye §2's 400 "packets deemed too big"),
    and a few bytes of it."""
    return ctx.guid("big") + struct.pack("<BBBI", 0x80, 1, 0, 1 << 20) + bytes(64)


def _bye_then_ping(ctx: object) -> bytes:
    return (Descriptor.build(dict(guid=ctx.guid("bye"), type="bye", ttl=1, hops=0, code=200,
                                  message="Conformance run over"))
            + Descriptor.build(dict(guid=ctx.guid("ping"), type="ping", ttl=1, hops=0,
                                    extensions=[])))


#: A mistake every servent answers with a Bye (bye §2: 400, "packets deemed too big").
TOO_BIG = Raw(Computed(_too_big, "a 1 MiB payload length"))


def _provoke(expect: Receives | None = None) -> list[Step]:
    """Join as a leaf, then send :data:`TOO_BIG`: the target's Bye must come (``expect``)."""
    return [*join("a"), Step(send=TOO_BIG, name="bye",
                             expect=Receives("bye") if expect is None else expect)]


CASES = [
    gn_case(id="bye/receiver-closes", title="the target closes the connection on a Bye",
            spec=APPENDIX, requirement=MUST_CLOSE, level="MUST", rule="gnutella/bye/close",
            steps=[*join("a"), Step(send=bye(), expect=Closes())]),
    gn_case(id="bye/nothing-after", title="a ping after a Bye in the same segment is not "
            "answered", spec=RECEPTION, requirement=STOP, level="SHOULD",
            rule="gnutella/bye/nothing-after", depends=("gnutella/bye/close",),
            steps=[*join("a"), Step(send=Raw(Computed(_bye_then_ping, "Bye + ping")),
                                    expect=NoMessage("pong", text="after the Bye"))]),
    gn_case(id="bye/not-sent-back", title="no Bye comes back after the harness's Bye",
            spec=RECEPTION, requirement=NOT_BACK, level="SHOULD",
            rule="gnutella/bye/not-sent-back",
            steps=[*join("a"), Step(send=bye(), expect=NoMessage("bye", text="in return"))]),
    gn_case(id="bye/ttl1-hops0", title="the target's Bye has TTL 1 and hops 0",
            spec=SENDING, requirement=TTL_HOPS, level="MUST", rule="gnutella/bye/ttl-hops",
            depends=("gnutella/bye/sent",),
            steps=_provoke(Receives("bye", ttl=1, hops=0))),
    gn_case(id="bye/sent-on-bad-input", title="a descriptor too big is answered with a Bye",
            spec=PACKET, requirement=FOUR, level="SHOULD", rule="gnutella/bye/sent",
            steps=_provoke()),
    gn_case(id="bye/code-4xx", title="the Bye for the harness's mistake has a 4xx or 5xx code",
            spec=PACKET, requirement=FOUR, level="SHOULD", rule="gnutella/bye/code",
            depends=("gnutella/bye/sent",),
            steps=_provoke(Receives("bye", code=Between(400, 599)))),
    gn_case(id="bye/server-header", title="the Bye message carries a Server: header",
            spec=PACKET, requirement=SERVER, level="SHOULD", rule="gnutella/bye/message",
            depends=("gnutella/bye/sent",),
            steps=_provoke(Receives("bye", message=Satisfies(
                lambda v, ctx: "\r\nserver:" in str(v).lower(),
                "a message with a Server: header line")))),
    gn_case(id="bye/sender-closes", title="after its Bye the target closes the connection",
            spec=SENDING, requirement=LAST, level="SHOULD", rule="gnutella/bye/sender-closes",
            depends=("gnutella/bye/sent",),
            steps=[*_provoke(), Step(send=None, wait=LINGER, expect=Closes())]),
    gn_case(id="bye/nothing-after-own-bye", title="nothing follows the target's Bye",
            spec=SENDING, requirement=LAST, level="SHOULD", rule="gnutella/bye/sender-closes",
            depends=("gnutella/bye/sent",),
            steps=[*_provoke(), Step(send=ping(ttl=1, guid_name="late"),
                                     expect=NoMessage(text="after the target's Bye"))]),
]
