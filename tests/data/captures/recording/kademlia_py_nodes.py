"""Four python-kademlia nodes on 127.0.0.31-34:8468 bootstrap each other, set and get a key."""
import asyncio, sys
from kademlia.network import Server

async def main():
    nodes = []
    for i in range(4):
        s = Server()
        await s.listen(8468, interface=f"127.0.0.{31+i}")
        nodes.append(s)
    for i, s in enumerate(nodes[1:], 1):
        await s.bootstrap([("127.0.0.31", 8468)] + ([("127.0.0.%d" % (30 + i), 8468)] if i > 1 else []))
    await asyncio.sleep(0.5)
    print("set", await nodes[3].set("p2pkit-key", "hello from python-kademlia"))
    await asyncio.sleep(0.3)
    print("get", await nodes[1].get("p2pkit-key"))
    print("get missing", await nodes[2].get("no-such-key"))
    for s in nodes:
        s.stop()

asyncio.run(main())
