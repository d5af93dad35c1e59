"""Fan-out frames for one connection within one event-loop turn, written with one socket write.

A publication or broadcast gives each subscriber one frame; a producer that
publishes a batch in one turn would make one ``send()`` system call per
frame per subscriber, the largest cost of fan-out. A link that takes a
frame with ``send_soon()`` keeps it (already framed, in order) and registers
with its loop's :class:`TurnFlush`; at the start of the loop's next turn each
such link writes what it kept at once. Each frame is still its own
WebSocket message: only the system calls are shared. Any other write on the
link (a reply, a close, a ping) writes what it kept first, so frames never
change order; a link whose transport is closing by then writes nothing.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Protocol

__all__ = ["KEEP_LIMIT", "Kept", "TurnFlush", "server_frame_header", "turn_flush"]

KEEP_LIMIT = 32 * 1024
"""Bytes a link keeps for the turn's end at most; past them it writes at once (then flow control applies)."""


def server_frame_header(size: int) -> bytes:
    """The header of a final, unmasked binary frame of `size` bytes: what a server writes before the payload.

    Byte for byte what websockets and picows lay out (a test compares them),
    so a link can frame a fan-out message without building a frame object.
    """
    if size < 126:
        return bytes((0x82, size))
    if size < 65536:
        return b"\x82\x7e" + size.to_bytes(2, "big")
    return b"\x82\x7f" + size.to_bytes(8, "big")


class Kept(Protocol):
    """A link holding frames for the end of the turn."""

    def flush_kept(self) -> None:
        """Write what it kept (nothing if its transport is closing); never raises."""
        ...


class TurnFlush:
    """The links of one event loop that kept frames this turn; each writes them once, next turn."""

    __slots__ = ("_links", "_loop", "_scheduled")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._links: list[Kept] = []
        self._scheduled = False

    def add(self, link: Kept) -> None:
        """`link` kept its first frame of this turn."""
        self._links.append(link)
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self._run)

    def _run(self) -> None:
        links, self._links = self._links, []
        self._scheduled = False
        for link in links:
            link.flush_kept()


_flushes: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, TurnFlush] = weakref.WeakKeyDictionary()


def turn_flush(loop: asyncio.AbstractEventLoop) -> TurnFlush:
    """The :class:`TurnFlush` of `loop`."""
    flush = _flushes.get(loop)
    if flush is None:
        flush = _flushes[loop] = TurnFlush(loop)
    return flush
