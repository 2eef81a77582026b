"""compression §3: Accept-Encoding / Content-Encoding: deflate, negotiated in the handshake,
and the deflated stream that follows it (each direction on its own)."""

from __future__ import annotations

from p2pkit.conformance.case import Step
from p2pkit.conformance.gnutella._common import LEAF_HEADERS, connect, final, gn_case, ping
from p2pkit.conformance.stream_verifiers import Receives
from p2pkit.conformance.verifiers import Satisfies

SPEC = "compression §3. HANDSHAKING NEGOTIATION"
PICKS = ("The servant just picks the compression scheme it supports amongst the ones "
         "advertised by the remote end in the Accept-Encoding line.")
ONE = "The Content-Encoding MUST contain only one value."
ACK = "And to accept compression, the other side acknowledges by sending:"
ASYMMETRIC = ("This also means that compression settings is asymmetric: a node can send "
              "compressed data but receive uncompressed data.")
SAYS = "Basically, the side supporting decompression will say:"
OFFER = (("Accept-Encoding", "deflate"),)


def _no_content_encoding(headers: dict, ctx: object) -> bool:
    return "deflate" not in str(headers.get("content_encoding") or "").lower()


def _one_value(headers: dict, ctx: object) -> bool:
    value = headers.get("content_encoding")
    return value is None or ("," not in value and bool(value.strip()))


CASES = [
    gn_case(id="compression/not-unasked", title="no Content-Encoding: deflate to a client "
            "that did not offer Accept-Encoding", spec=SPEC, requirement=PICKS, level="MUST",
            rule="gnutella/compression/negotiated",
            steps=[connect(expect=Receives("handshake", kind="response",
                                           headers=Satisfies(
                                               _no_content_encoding,
                                               "no Content-Encoding: deflate")))]),
    gn_case(id="compression/one-value", title="Content-Encoding names one scheme",
            spec=SPEC, requirement=ONE, level="MUST", rule="gnutella/compression/one-value",
            steps=[connect(extra=OFFER + (("Accept-Encoding", "x-unknown"),),
                           expect=Receives("handshake", kind="response",
                                           headers=Satisfies(
                                               _one_value, "no Content-Encoding, or one "
                                               "value")))]),
    gn_case(id="compression/deflated-stream", title="a target that says Content-Encoding: "
            "deflate sends one zlib stream after its handshake", spec=SPEC, requirement=ACK,
            level="MUST", rule="gnutella/compression/deflated-stream",
            tags=("deflate", "content-encoding"),
            steps=[connect(extra=OFFER), final(),
                   Step(send=ping(ttl=1), expect=Receives("pong"))]),
    gn_case(id="compression/inflates", title="a target that offers Accept-Encoding: deflate "
            "reads the client's deflated stream", spec=SPEC, requirement=SAYS, level="MUST",
            rule="gnutella/compression/inflate", tags=("deflate", "accept-encoding"),
            steps=[connect(headers=LEAF_HEADERS), final(extra=(("Content-Encoding",
                                                               "deflate"),)),
                   Step(send=ping(ttl=1), expect=Receives("pong"))]),
    gn_case(id="compression/asymmetric", title="the client compresses while the target's "
            "direction stays plain", spec=SPEC, requirement=ASYMMETRIC, level="MUST",
            rule="gnutella/compression/inflate", tags=("deflate", "accept-encoding"),
            steps=[connect(headers=LEAF_HEADERS), final(extra=(("Content-Encoding",
                                                               "deflate"),)),
                   Step(send=ping(ttl=1, guid_name="p1"), expect=Receives("pong")),
                   Step(send=ping(ttl=1, guid_name="p2"), expect=Receives("pong"))]),
]
