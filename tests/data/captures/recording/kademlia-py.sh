ip link set lo up; ip link set lo mtu 1500
tcpdump -i lo -s 0 -B 65536 -w /tmp/kad2-rpc/kademlia.pcap udp port 8468 2>/tmp/kad2-rpc/tcpdump.log &
TD=$!
sleep 1
timeout 30 /tmp/kad2-scratch/bin/python /tmp/kad2-rpc/nodes.py
sleep 1
kill $TD; wait $TD
