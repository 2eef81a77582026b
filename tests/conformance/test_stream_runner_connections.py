"""Cases over several harness connections at once (``Step.source`` names the connection): a
connection opens the first time a case names it, and a step's answer is what its connection
received since that connection's previous step."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from p2pkit.conformance.case import Case, Raw, Step
from p2pkit.conformance.stream_runner import Session, StreamProtocol, run_stream_cases
from p2pkit.conformance.stream_verifiers import NoMessage, Receives


@dataclass
class _Line:
    data: bytes
    message: dict[str, Any]


class _Lines:
    def __init__(self) -> None:
        self.buffer = b""

    def feed(self, data: bytes) -> list[_Line]:
        self.buffer += data
        *lines, self.buffer = self.buffer.split(b"\n")
        return [_Line(line + b"\n", {"type": "line", "text": line.decode()}) for line in lines]


class _LineProtocol(StreamProtocol):
    name = "lines"

    def framer(self) -> _Lines:
        return _Lines()

    def hello(self, ctx: Any) -> bytes:
        return b"hello\n"

    def served(self, session: Session, ctx: Any) -> bool:
        return bool(session.messages)


async def _relay() -> asyncio.AbstractServer:
    """Writes every line to every other connection; answers 'hello' with 'hi'."""
    writers: list[asyncio.StreamWriter] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        try:
            while line := await reader.readline():
                if line == b"hello\n":
                    writer.write(b"hi\n")
                for other in writers:
                    if other is not writer:
                        other.write(line)
        finally:
            writers.remove(writer)
            writer.close()
    return await asyncio.start_server(serve, "127.0.0.1", 0)


CASE = Case(
    id="lines/relay", title="a line sent on one connection arrives on the other", spec="",
    requirement="", level="MUST", rule="lines/relay", steps=(
        Step(send=Raw(b"x1\n"), source="a"),  # nobody else is connected yet
        Step(send=Raw(b"x2\n"), source="b", wait=0.2),  # opens b; a gets x2
        Step(send=None, source="a", expect=Receives("line", text="x2")),
        Step(send=None, source="b", wait=0.2, expect=NoMessage("line")),
        Step(send=Raw(b"x3\n"), source="a", wait=0.2),
        Step(send=None, source="b", expect=Receives("line", text="x3")),
        Step(send=None, source="a", wait=0.2, expect=NoMessage(
            "line", where=lambda m, ctx: m["text"] == "x3"))))


def test_steps_on_several_connections() -> None:
    async def scenario():
        server = await _relay()
        try:
            return await run_stream_cases([CASE], server.sockets[0].getsockname()[:2],
                                          _LineProtocol(), timeout=1.0)
        finally:
            server.close()

    report = asyncio.run(scenario())
    [result] = report.results
    assert result.verdict == "pass", result.reason
    assert [e.source for e in result.exchanges] == [
        "tcp a", "tcp b", "tcp a", "tcp b", "tcp a", "tcp b", "tcp a"]
    # the answer of step 3 is what a received while step 2 ran on b
    assert [m["text"] for m in result.exchanges[2].answer.messages] == ["x2"]


def test_a_wrong_expectation_on_the_other_connection_fails() -> None:
    wrong = Case(id="lines/wrong", title="", spec="", requirement="", level="MUST",
                 rule="lines/relay", steps=(
                     Step(send=Raw(b"x1\n"), source="a"),
                     Step(send=None, source="b", wait=0.3,
                          expect=Receives("line", text="x1"))))  # b opened after x1

    async def scenario():
        server = await _relay()
        try:
            return await run_stream_cases([wrong], server.sockets[0].getsockname()[:2],
                                          _LineProtocol(), timeout=0.5)
        finally:
            server.close()

    [result] = asyncio.run(scenario()).results
    assert result.verdict == "fail" and result.failed_step == 1
