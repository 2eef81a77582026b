"""JSON lines (``dissect --json``) written without the intermediate document.

``p2pkit.capture.render.render_jsonl`` is ``json.dumps(record.to_json(),
ensure_ascii=False, separators=(",", ":"))``: a new encoder per call, and a dictionary per
record holding the header and the fields. :func:`json_line` writes the same text: the
record's header (frame, time, endpoints, protocol, message) in one f-string, its text values
quoted by the encoder's own function, and the fields by one C encoder made once (the one
``json.dumps`` makes with these settings). A record it does not take (a ``to_json`` of its
own, deviations, a value of another type than the header's usual ones, a time that is not
finite) and a fields value the encoder refuses are written by the generic path, which gives
the same text or raises the same error. Tests compare the two on every record of every
committed capture and on hypothesis-generated records.
"""

from __future__ import annotations

import json
from json import JSONEncoder
from json.encoder import c_make_encoder, encode_basestring
from math import isfinite
from typing import Any

from p2pkit.capture.record import Record

__all__ = ["json_line", "json_line_generic"]


def json_line_generic(record: Record) -> str:
    """The JSON line of ``record``, by ``json.dumps`` of ``record.to_json()``."""
    return json.dumps(record.to_json(), ensure_ascii=False, separators=(",", ":"))


_TO_JSON = Record.to_json

if c_make_encoder is not None:
    # json.dumps(..., ensure_ascii=False, separators=(",", ":")) makes this encoder per call
    # (with a dictionary of the containers being written, which finds cycles: fields are
    # trees, and a cycle or a nesting too deep still raises, then the generic path says which)
    _fields_chunks = c_make_encoder(None, JSONEncoder().default, encode_basestring, None,
                                    ":", ",", False, False, True)

    def json_line(record: Record) -> str:
        """The JSON line of ``record``, the text of :func:`json_line_generic`.

        >>> r = Record(frame=7, time=1.25, transport="udp", src="a:1", dst="b:2",
        ...            protocol="bt-dht", message="query", fields={"method": "ping"})
        >>> json_line(r)
        '{"frame":7,"time":1.25,"transport":"udp","src":"a:1","dst":"b:2","protocol":"bt-dht","message":"query","fields":{"method":"ping"}}'
        """
        frame, time = record.frame, record.time
        if type(record).to_json is not _TO_JSON or type(frame) is not int \
                or type(time) is not float or not isfinite(time):
            return json_line_generic(record)
        transport, src, dst = record.transport, record.src, record.dst
        protocol, message = record.protocol, record.message
        fields = record.fields
        if record.deviations or type(transport) is not str or type(src) is not str \
                or type(dst) is not str or type(protocol) is not str \
                or type(message) is not str:
            return json_line_generic(record)
        try:
            body = "".join(_fields_chunks(fields, 0))
        except Exception:  # what json.dumps reports: its own words
            return json_line_generic(record)
        last = _LAST_HEAD[0]  # the head of the record before, when it is this one's
        if (last[0] is time and last[1] == frame and last[2] is src and last[3] is dst
                and last[4] is transport):
            head = last[5]
        else:
            q = encode_basestring
            head = (f'{{"frame":{frame},"time":{round(time, 6)!r},"transport":{q(transport)},'
                    f'"src":{q(src)},"dst":{q(dst)},"protocol":')
            _LAST_HEAD[0] = (time, frame, src, dst, transport, head)
        named = _NAMED.get((protocol, message))
        if named is None:
            q = encode_basestring
            named = f'{q(protocol)},"message":{q(message)},"fields":'
            if len(_NAMED) >= _MAX_NAMED:
                _NAMED.clear()
            _NAMED[(protocol, message)] = named
        return f"{head}{named}{body}}}"

    #: The head json_line wrote last, with what it was written from (time, frame, src, dst,
    #: transport, head): the records of a frame and direction share it. Compared by identity
    #: (a decoder gives a direction's records the same strings, a frame's records its time)
    #: but the frame number (an int, checked above).
    _LAST_HEAD: list[tuple[Any, ...]] = [(None,) * 6]
    #: The quoted protocol and message names, per (protocol, message) (few: bounded all the
    #: same).
    _NAMED: dict[tuple[str, str], str] = {}
    _MAX_NAMED = 1024
else:  # pragma: no cover - Python builds without the C accelerator
    json_line = json_line_generic
