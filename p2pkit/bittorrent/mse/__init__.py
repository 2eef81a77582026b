"""Message Stream Encryption (MSE/PE) below the BitTorrent peer wire: MSE (Vuze wiki).

:mod:`.keys` (Diffie-Hellman, hashes, RC4), :mod:`.connection` (the sans-I/O handshake and
stream), :mod:`.keylog` (what a dissector needs to decrypt a connection) and
:mod:`.observer` (decrypting a captured direction with those keys).
"""
