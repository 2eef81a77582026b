"""Key log files (in the spirit of ``SSLKEYLOGFILE``): one text line per connection, appended
and flushed at once, so that several peers of different protocols (MSE for BitTorrent, Noise
for libp2p) may share a file and a dissector may read it while they run."""

from __future__ import annotations

import threading
from pathlib import Path

__all__ = ["KeyLogAppender"]


class KeyLogAppender:
    """Appends lines to a key log file, each flushed as written; safe across threads."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._file = open(self.path, "a", encoding="ascii")  # noqa: SIM115 - closed in close()
        self._lock = threading.Lock()

    def write_line(self, line: str) -> None:
        """Append ``line`` (no newline in it) and flush."""
        with self._lock:
            self._file.write(line + "\n")
            self._file.flush()

    def close(self) -> None:
        self._file.close()
