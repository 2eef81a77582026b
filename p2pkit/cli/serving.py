"""How every ``p2pkit`` server runs: until SIGINT, SIGTERM or ``--duration``, then a clean stop.

``bt seed``, ``bt tracker``, ``dht serve`` and ``gnutella serve`` all wait with
``wait_for_stop``, close their sockets, print one line (``p2pkit: dht serve stopped
(SIGTERM)``) on stderr and exit 0: an interrupt is how a server is meant to end.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal

import click

#: The signals that stop a server cleanly.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Stopper:
    """Signal handlers on the running loop that set ``event`` (and remember the signal)."""

    def __init__(self) -> None:
        self.event = asyncio.Event()
        self.reason: str | None = None
        self._installed: list[signal.Signals] = []

    def __enter__(self) -> Stopper:
        loop = asyncio.get_running_loop()
        for sig in STOP_SIGNALS:
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, self._stop, sig)  # main thread only
                self._installed.append(sig)
        return self

    def _stop(self, sig: signal.Signals) -> None:
        if self.reason is None:
            self.reason = sig.name
        self.event.set()

    def __exit__(self, *exc: object) -> None:
        loop = asyncio.get_running_loop()
        for sig in self._installed:
            loop.remove_signal_handler(sig)

    async def wait(self, duration: float | None = None) -> str:
        """Wait for a stop signal or ``duration`` seconds; return why we stopped."""
        try:
            await asyncio.wait_for(self.event.wait(), duration)
        except TimeoutError:
            return f"after {duration:g} s"
        return self.reason or "stopped"


def say_stopped(what: str, reason: str) -> None:
    """The one line a server prints when it has shut down."""
    click.echo(f"p2pkit: {what} stopped ({reason})", err=True)
