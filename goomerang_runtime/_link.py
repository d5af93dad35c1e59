"""The transport under a connection: one WebSocket, or an in-memory pipe.

Server and client speak to a `Link` only, so the in-memory test transport
(`goomerang_runtime.testing`) runs the very same code paths as a socket.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Protocol

from websockets.asyncio.connection import Connection
from websockets.exceptions import ConcurrencyError, ConnectionClosed, ConnectionClosedOK
from websockets.protocol import CLOSED, OPEN, SERVER

from ._coalesce import KEEP_LIMIT, server_frame_header, turn_flush
from ._fastrecv import GoCloseCodes, Inbox
from ._resume import Resume

__all__ = [
    "CLOSE_MESSAGE_TOO_BIG",
    "CLOSE_NORMAL",
    "CLOSE_POLICY_VIOLATION",
    "CLOSE_TRY_AGAIN_LATER",
    "Direct",
    "Link",
    "LinkClosed",
    "WebSocketLink",
    "format_address",
]

CLOSE_NORMAL = 1000
CLOSE_POLICY_VIOLATION = 1008
CLOSE_MESSAGE_TOO_BIG = 1009
CLOSE_TRY_AGAIN_LATER = 1013


Direct = Callable[[bytes], "bool | Resume"]
"""Takes a whole binary message straight from the transport (True), or leaves it to the reader (False).

A :class:`Resume` also takes it: the reader's next :meth:`Link.recv` returns
it, before anything received later, for the reader to await.
"""


class LinkClosed(Exception):
    """The link is closed; says how it ended."""

    def __init__(self, code: int | None, clean: bool, detail: str) -> None:
        self.code = code
        self.clean = clean
        self.detail = detail
        super().__init__(code, clean, detail)

    @property
    def too_big(self) -> bool:
        """Whether either side closed with 1009 (message too big)."""
        return self.code == CLOSE_MESSAGE_TOO_BIG

    def __str__(self) -> str:
        return self.detail


class Link(Protocol):
    """A message-oriented, bidirectional, closable transport."""

    @property
    def remote_address(self) -> str:
        """``host:port`` of the other end."""
        ...

    async def recv(self) -> bytes | str | Resume:
        """Next whole message (or what a :data:`Direct` left to finish); raises :class:`LinkClosed` once closed."""
        ...

    def recv_nowait(self) -> bytes | None:
        """A message already received, without waiting; None: await :meth:`recv`."""
        ...

    @property
    def unread(self) -> int:
        """Whole messages received and not read yet (what a cancelled reader leaves behind)."""
        ...

    async def send(self, data: bytes) -> None:
        """Send one binary message; raises :class:`LinkClosed` once closed."""
        ...

    def send_now(self, data: bytes) -> bool:
        """Write one binary message at once if the socket takes it without waiting.

        False when it would have to wait (or the link is closing): then use
        :meth:`send`. Messages written either way leave in call order.
        """
        ...

    def send_soon(self, data: bytes) -> bool:
        """Like :meth:`send_now`, but the message may wait for the end of this loop turn (fan-out).

        Messages taken so within one turn leave with one write (see
        :mod:`._coalesce`); anything sent after them still leaves after them.
        """
        ...

    def set_direct(self, direct: Direct | None) -> None:
        """Offer whole binary messages to `direct` first while the reader waits in :meth:`recv`.

        Called from the transport's callback, only when nothing received is
        queued before the message (so order holds); when it returns True it
        took the message, which the reader never sees; when it returns a
        :class:`Resume`, the reader's next :meth:`recv` returns that. At most
        :data:`._resume.DIRECT_BURST` messages of one read are offered. A link may
        never call it (the in-memory one does not).
        """
        ...

    def take_resume(self) -> Resume | None:
        """What a :data:`Direct` left for the reader and :meth:`recv` has not returned yet (once)."""
        ...

    async def ping(self) -> Awaitable[float]:
        """Send a ping; the awaitable completes when its pong arrives."""
        ...

    async def close(self, code: int = CLOSE_NORMAL) -> None:
        """Close handshake with `code`, bounded by the link's close timeout."""
        ...

    def abort(self) -> None:
        """Drop the connection at once, without a close handshake."""
        ...


def format_address(address: object) -> str:
    """``host:port`` of a socket address (a ``(host, port, ...)`` tuple); anything else as text."""
    return f"{address[0]}:{address[1]}" if isinstance(address, tuple) else str(address)


def _closed(exc: ConnectionClosed, failed: int | None = None) -> LinkClosed:
    rcvd, sent = exc.rcvd, exc.sent
    if failed == CLOSE_MESSAGE_TOO_BIG:  # sent as 1000 to a Go peer; still a message too big here
        return LinkClosed(failed, False, str(exc))
    code = sent.code if sent is not None and (rcvd is None or sent.code == CLOSE_MESSAGE_TOO_BIG) else None
    if code is None and rcvd is not None:
        code = rcvd.code
    return LinkClosed(code, isinstance(exc, ConnectionClosedOK), str(exc))


class WebSocketLink:
    """A :class:`Link` over a `websockets` asyncio connection."""

    __slots__ = ("_flush", "_go_fail", "_inbox", "_kept", "_loop", "_plain", "_ws", "close_codes", "remote_address")

    def __init__(self, ws: Connection) -> None:
        self._ws = ws
        # Set by the connection in the handshake, before any frame is read.
        self._go_fail: GoCloseCodes | None = getattr(ws, "go_close_codes", None)
        self.close_codes = self._go_fail is None
        """Whether close frames may carry codes other than 1000 (a Go peer: never)."""
        self._loop = ws.loop  # asyncio.get_running_loop() is a getpid() system call on Python 3.11
        self._inbox: Inbox | None = getattr(ws, "inbox", None)
        self.remote_address = format_address(ws.remote_address)
        self._flush = turn_flush(self._loop)
        self._kept = -1
        """Bytes framed by send_soon() and not written yet; -1: none, the link is not waiting for the flush."""
        protocol = ws.protocol
        self._plain = protocol.side is SERVER and not protocol.extensions and not protocol.debug
        """Frames are unmasked, untransformed and not logged: send_soon() lays them out itself."""

    def recv_nowait(self) -> bytes | None:
        inbox = self._inbox
        if inbox is not None and inbox.frames:  # before a close or a fragment, as in recv()
            return inbox.pop()
        return None

    async def recv(self) -> bytes | str | Resume:
        inbox = self._inbox
        if inbox is not None:
            resume = inbox.resume
            if resume is not None:  # a handling the transport's callback began (see Direct)
                inbox.resume = None
                return resume
            # While closing too: the peer's frames sent before it saw our close still come in.
            while not inbox.diverted and self._ws.protocol.state is not CLOSED:
                if inbox.frames:
                    return inbox.pop()
                inbox.waiter = waiter = self._loop.create_future()
                await waiter
                resume = inbox.resume
                if resume is not None:
                    inbox.resume = None
                    return resume
            if inbox.frames:  # what came before the connection closed, or before a fragment
                return inbox.pop()
        try:
            return await self._ws.recv()
        except ConnectionClosed as exc:
            raise self._closed(exc) from None

    def _closed(self, exc: ConnectionClosed) -> LinkClosed:
        return _closed(exc, None if self._go_fail is None else self._go_fail.code)

    async def send(self, data: bytes) -> None:
        try:
            await self._ws.send(data)
        except ConnectionClosed as exc:
            raise self._closed(exc) from None

    def send_now(self, data: bytes) -> bool:
        # What websockets.broadcast() does, minus writing into a full buffer:
        # one frame straight into the protocol and the transport.
        ws = self._ws
        if ws.paused or ws.send_in_progress is not None or ws.protocol.state is not OPEN:
            return False
        if ws.transport.is_closing():  # lost, not yet told: writing now only makes asyncio log warnings
            return False
        inbox = self._inbox
        if self._plain and inbox is not None and (inbox.frames or inbox.batching or self._kept >= 0):
            # More input is waiting for the reader (a batch of requests), or frames are kept already:
            # the reply joins them, and the batch's replies go out in one write.
            if not self.send_soon(data):
                return False
            if not inbox.frames and not inbox.batching:
                self.flush_kept()  # the batch's last frame is handled: nothing to wait for
            return True
        try:
            ws.protocol.send_binary(data)
            ws.send_data()
        except Exception:  # a broken transport: the next send() reports it
            return False
        return True

    def send_soon(self, data: bytes) -> bool:
        ws = self._ws
        if ws.paused or ws.send_in_progress is not None or ws.protocol.state is not OPEN:
            return False
        if ws.transport.is_closing():
            return False
        protocol = ws.protocol
        if self._plain and not protocol.expect_continuation_frame:
            # Framed now, in order with every other frame: the protocol's next send_data() writes them all.
            # Laid out here as websockets would (a final binary frame, unmasked) without a Frame object.
            protocol.writes += (server_frame_header(len(data)), data)
        else:
            try:
                protocol.send_binary(data)
            except Exception:
                return False
        kept = self._kept
        if kept < 0:
            self._kept = len(data)
            self._flush.add(self)
        elif kept + len(data) > KEEP_LIMIT:
            self.flush_kept()
        else:
            self._kept = kept + len(data)
        return True

    def flush_kept(self) -> None:
        """Write the frames send_soon() framed (any send since may have written them already)."""
        self._kept = -1
        ws = self._ws
        if ws.transport.is_closing():  # gone or going: written now, they would only make asyncio log warnings
            ws.protocol.data_to_send()
            return
        with contextlib.suppress(Exception):  # a broken transport: the next send() reports it
            ws.send_data()

    def set_direct(self, direct: Direct | None) -> None:
        inbox = self._inbox
        if inbox is not None:
            inbox.direct = direct
            # Replies to frames handled as they are split wait for the read's last frame (see send_now).
            inbox.batch_end = self._batch_end if direct is not None and self._plain else None

    def take_resume(self) -> Resume | None:
        inbox = self._inbox
        if inbox is None:
            return None
        resume, inbox.resume = inbox.resume, None
        return resume

    def _batch_end(self) -> None:
        if self._kept >= 0:
            self.flush_kept()

    async def ping(self) -> Awaitable[float]:
        try:
            return await self._ws.ping(b"ping")
        except ConnectionClosed as exc:
            raise self._closed(exc) from None
        except ConcurrencyError:
            # The previous ping is still unanswered: wait on it again.
            pong = self._ws.pending_pings[b"ping"][0]
            return asyncio.shield(pong)

    async def close(self, code: int = CLOSE_NORMAL) -> None:
        if self._inbox is not None and code == CLOSE_NORMAL:
            # A graceful close: the peer's close frame is behind what it sent before, read it all.
            self._inbox.read_to_close()
        await self._ws.close(code if self.close_codes else CLOSE_NORMAL)

    @property
    def unread(self) -> int:
        """Whole messages received and not read yet."""
        return len(self._inbox.frames) if self._inbox is not None else 0

    def abort(self) -> None:
        self._ws.transport.abort()
