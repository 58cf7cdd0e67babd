"""Listening sockets that a channel's next source takes over on a redeploy.

A redeploy starts the new source before the old one stops (``engine.control``). Were the new
one to bind the port itself, it would fail (the old one still listens) or, with the old one
closed first, senders would be refused in between. Instead each channel has one
:class:`ListeningSockets` for as long as the engine runs: a source takes its socket from there,
and while the channel's previous source still listens on the same address the new one gets a
duplicate of that socket (the same accept queue), so no connection is refused or lost when the
old one closes its copy. Other channels, and other engines in the process, never share it.

:class:`Refusals` is the listeners' shared log of connections closed over a limit.
"""

from __future__ import annotations

import socket
import time

import structlog

__all__ = ["ListeningSockets", "Refusals", "bind_listener"]

log = structlog.get_logger(__name__)


def bind_listener(host: str, port: int, backlog: int) -> socket.socket:
    """A new non-blocking TCP socket listening on ``host:port`` (SO_REUSEADDR, TCP_NODELAY)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP matters: asyncio sets TCP_NODELAY on accepted sockets only when the
    # protocol is TCP, and without it Nagle + delayed ACK stall each response ~40 ms.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host, port))
        sock.listen(backlog)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


class ListeningSockets:
    """One channel's listening sockets by configured address (see the module docstring)."""

    def __init__(self) -> None:
        self._held: dict[tuple[str, int], socket.socket] = {}

    def take(self, host: str, port: int, backlog: int) -> socket.socket:
        """A socket listening on ``host:port`` (``port`` 0: the port the channel's previous
        source had, if it still listens): a duplicate of the one still open, else a new one."""
        key = (host, port)
        held = self._held.get(key)
        sock = held.dup() if held is not None and held.fileno() >= 0 else None
        if sock is None:
            sock = bind_listener(host, port, backlog)
        self._held[key] = sock
        return sock

    def release(self, sock: socket.socket) -> None:
        """``sock``'s owner closes it: a later source binds afresh (unless a newer one holds a
        duplicate already)."""
        for key, held in list(self._held.items()):
            if held is sock:
                del self._held[key]


class Refusals:
    """Connections closed over a limit, logged by address at most once per ``interval`` with
    how many there were (a flood of them must not flood the log); never any content."""

    def __init__(self, channel: str | None, protocol: str, interval: float = 10.0) -> None:
        self.channel = channel
        self.protocol = protocol
        self.interval = interval
        self._counts: dict[tuple[str, str], tuple[int, float]] = {}

    def note(self, address: str, limit: str) -> None:
        now = time.monotonic()
        count, logged = self._counts.get((address, limit), (0, 0.0))
        count += 1
        if now - logged >= self.interval:
            log.warning(f"{self.protocol} connection over a limit, closed",
                        channel=self.channel, address=address, limit=limit, closed=count)
            self._counts[(address, limit)] = (0, now)
        else:
            self._counts[(address, limit)] = (count, logged)
        if len(self._counts) > 10_000:  # many addresses: forget the quiet ones
            self._counts = {k: v for k, v in self._counts.items() if v[0]}
