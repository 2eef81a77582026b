"""Python kademlia (PyPI kademlia 2.2.3, rpcudp 5.0.1) on loopback: four nodes on
127.0.0.31-34:8468 bootstrap each other, one sets a key; a fifth node (127.0.0.35) joins
afterwards, forgets what its neighbours handed it and gets the key (a find_value answered
with the value), and asks for a missing key."""
import asyncio

from kademlia.network import Server


async def main():
    nodes = []
    for i in range(4):
        s = Server()
        await s.listen(8468, interface=f"127.0.0.{31 + i}")
        nodes.append(s)
    for i, s in enumerate(nodes[1:], 1):
        await s.bootstrap([("127.0.0.31", 8468)] + ([(f"127.0.0.{30 + i}", 8468)] if i > 1 else []))
    await asyncio.sleep(0.5)
    print("set", await nodes[3].set("p2pkit-key", "hello from python-kademlia"))
    await asyncio.sleep(0.3)
    late = Server()
    await late.listen(8468, interface="127.0.0.35")
    await late.bootstrap([("127.0.0.32", 8468)])
    await asyncio.sleep(0.3)
    # the nodes hand their keys to a newcomer (store): forget them so that the get goes out
    late.storage.data.clear()
    print("get", await late.get("p2pkit-key"))
    print("get missing", await late.get("no-such-key"))
    for s in (*nodes, late):
        s.stop()

asyncio.run(main())
