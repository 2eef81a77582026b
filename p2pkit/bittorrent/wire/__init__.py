"""BitTorrent byte layouts and files: peer wire messages (BEP 3/5/6/10/52) and their framer,
extension payloads (BEP 9/10/11), bitfields, metainfo (BEP 3/52/47) and its creation, magnet
links (BEP 9/53) and uTP headers (BEP 29). Schemas only: no state, no I/O.
"""
