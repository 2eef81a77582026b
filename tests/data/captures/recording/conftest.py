"""The recording scripts run inside ``unshare -n`` with the software they record (the Python
``kademlia`` package lives in a scratch virtualenv), not under pytest."""

collect_ignore_glob = ["*.py"]
