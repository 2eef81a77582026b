"""Drive aMule's Kad2 over loopback: every request is built with p2pkit's schemas, every answer
is aMule's (see README-kad2.md). aMule refuses 127/8 contacts in its routing table
(``IsGoodIPPort``), so two amuled instances on loopback never talk to each other by themselves;
this prober plays the other peers. Usage: kad2_prober.py HOST:PORT [HOST:PORT ...]
Prints every datagram it received as a JSON line {"from": "ip:port", "to": "ip:port", "hex": …}.
"""

from __future__ import annotations

import json
import os
import random
import socket
import sys
import time

from p2pkit.kad2.messages import KadPacket

rng = random.Random(12)
ME_PLAIN = ("127.0.0.40", 5040)    # says Kad version 5: aMule answers in plaintext
ME_NEW = ("127.0.0.41", 5041)      # says Kad version 8: aMule may obfuscate its answers


def sock(addr):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(addr)
    s.settimeout(1.0)
    return s


def send(s, peer, message, packed=False):
    data = KadPacket.build({"protocol": "kad_packed" if packed else "kad", "message": message})
    s.sendto(data, peer)


def drain(s, wait=1.0):
    out, end = [], time.time() + wait
    while time.time() < end:
        try:
            data, addr = s.recvfrom(65535)
        except TimeoutError:
            break
        to = s.getsockname()
        print(json.dumps({"from": f"{addr[0]}:{addr[1]}", "to": f"{to[0]}:{to[1]}",
                          "hex": data.hex()}), flush=True)
        try:
            out.append(KadPacket.parse(data).message)
        except Exception:
            out.append(None)
    return out


def tags(*pairs):
    return [{"type": t, "name": n, "value": v} for t, n, v in pairs]


def main(peers):
    plain, new = sock(ME_PLAIN), sock(ME_NEW)
    my_id = rng.randbytes(16)
    for host, port in peers:
        peer = (host, port)
        send(plain, peer, {"opcode": "bootstrap_req"})
        answers = drain(plain)
        their = next(m for m in answers if m is not None and m.opcode == "bootstrap_res")
        their_id = their.client_id
        for s, version in ((plain, 5), (new, 8)):
            send(s, peer, {"opcode": "hello_req", "client_id": my_id, "tcp_port": s.getsockname()[1],
                           "version": version,
                           "tags": tags(("uint16", "TAG_SOURCEUPORT", s.getsockname()[1]),
                                        ("uint8", "TAG_KADMISCOPTIONS", 0))})
            drain(s)
        send(plain, peer, {"opcode": "req", "type": 11, "target": rng.randbytes(16), "receiver": their_id})
        send(plain, peer, {"opcode": "ping"})
        drain(plain)
        # keyword and file ids close to the node (aMule indexes only within SEARCHTOLERANCE)
        keyword = their_id[:3] + rng.randbytes(13)
        files = [their_id[:3] + rng.randbytes(13) for _ in range(8)]
        entries = [{"id": f, "tags": tags(("string", "TAG_FILENAME", f"p2pkit kad2 sample {i}.txt"),
                                          ("uint32", "TAG_FILESIZE", 1000 + i),
                                          ("string", "TAG_FILETYPE", "Doc"),
                                          ("uint8", "TAG_SOURCES", 1))}
                   for i, f in enumerate(files)]
        send(plain, peer, {"opcode": "publish_key_req", "keyword": keyword, "entries": entries})
        send(plain, peer, {"opcode": "publish_source_req", "file": files[0], "source": my_id,
                           "tags": tags(("uint8", "TAG_SOURCETYPE", 1),
                                        ("uint16", "TAG_SOURCEPORT", 5040),
                                        ("uint32", "TAG_FILESIZE", 1000))})
        send(plain, peer, {"opcode": "publish_notes_req", "file": files[1], "source": my_id,
                           "tags": tags(("string", "TAG_FILENAME", "p2pkit kad2 sample 1.txt"),
                                        ("uint8", "TAG_FILERATING", 4),
                                        ("string", "TAG_DESCRIPTION", "a note from the prober"),
                                        ("uint32", "TAG_FILESIZE", 1001))})
        drain(plain)
        expression = {"op": "boolean", "term": {"operator": "AND",
                      "left": {"op": "string", "term": {"text": "p2pkit"}},
                      "right": {"op": "numeric32", "term": {"value": 500, "relation": "greater",
                                                            "tag_name": "\x02"}}}}
        send(plain, peer, {"opcode": "search_key_req", "target": keyword,
                           "start": {"restrictive": False, "start_position": 0}, "expression": None})
        send(plain, peer, {"opcode": "search_key_req", "target": keyword,
                           "start": {"restrictive": True, "start_position": 0}, "expression": expression})
        send(plain, peer, {"opcode": "search_source_req", "target": files[0],
                           "start": {"restrictive": False, "start_position": 0}, "file_size": 1000})
        send(plain, peer, {"opcode": "search_notes_req", "target": files[1], "file_size": 1001})
        drain(plain, 2.0)
        send(plain, peer, {"opcode": "firewalled2_req", "tcp_port": 5040, "user_id": my_id,
                           "connect_options": 0})
        send(plain, peer, {"opcode": "firewalled_req", "tcp_port": 5040})
        send(plain, peer, {"opcode": "findbuddy_req", "buddy_id": rng.randbytes(16), "user_id": my_id,
                           "tcp_port": 5040})
        send(plain, peer, {"opcode": "ping"}, packed=True)
        drain(plain, 2.0)
        drain(new, 0.5)
    # what aMule sends by itself afterwards (hello acks, firewall checks, obfuscated packets)
    end = time.time() + float(os.environ.get("LINGER", "20"))
    while time.time() < end:
        drain(plain, 0.5)
        drain(new, 0.5)


if __name__ == "__main__":
    main([(h, int(p)) for h, p in (a.rsplit(":", 1) for a in sys.argv[1:])])
