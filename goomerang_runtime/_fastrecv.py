"""Complete binary messages taken from the websockets protocol as they are parsed.

`websockets`' asyncio connections hand each message to `recv()` through an
assembler built for fragmented and text messages: queues, futures and a
decode step per message. Goomerang frames are binary and almost never
fragmented, so these connection classes put each complete binary message
into a plain deque instead, and the link reads it from there. The first
text or fragmented message turns the shortcut off for good on that
connection (what came before it is read first, so order holds); from then
on everything goes through `recv()` as usual.
"""

from __future__ import annotations

import asyncio
from collections import deque

from websockets.asyncio.client import ClientConnection
from websockets.asyncio.server import ServerConnection
from websockets.frames import Frame, Opcode
from websockets.protocol import Event

__all__ = ["Inbox", "InboxClientConnection", "InboxServerConnection"]

_HIGH = 64
_LOW = 16


class Inbox:
    """The deque of complete binary messages of one connection, with flow control."""

    __slots__ = ("_transport", "diverted", "frames", "paused", "waiter")

    def __init__(self) -> None:
        self.frames: deque[bytes] = deque()
        self.waiter: asyncio.Future[None] | None = None
        self.diverted = False
        self.paused = False
        self._transport: asyncio.Transport | None = None

    def take(self, event: Frame, transport: asyncio.Transport) -> bool:
        """Keep `event` if it is a complete binary message; False: let websockets have it."""
        if self.diverted:
            return False
        opcode = event.opcode
        if opcode is Opcode.BINARY and event.fin:
            frames = self.frames
            frames.append(bytes(event.data))
            if len(frames) >= _HIGH and not self.paused:
                self.paused = True
                self._transport = transport
                transport.pause_reading()
            self.wake()
            return True
        if opcode in (Opcode.TEXT, Opcode.BINARY, Opcode.CONT):
            self.diverted = True  # text or fragmented: websockets' assembler from now on
            self.wake()
        return False

    def pop(self) -> bytes:
        """The oldest message; resumes reading once the deque has drained enough."""
        data = self.frames.popleft()
        if self.paused and len(self.frames) <= _LOW:
            self.paused = False
            if self._transport is not None and not self._transport.is_closing():
                self._transport.resume_reading()
        return data

    def wake(self) -> None:
        """Wake the reader waiting for a message or a state change."""
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            if not waiter.done():
                waiter.set_result(None)


class InboxServerConnection(ServerConnection):
    """A websockets server connection feeding an :class:`Inbox`."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.inbox = Inbox()

    def process_event(self, event: Event) -> None:
        if self.request is None or not isinstance(event, Frame) or not self.inbox.take(event, self.transport):
            super().process_event(event)

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self.inbox.wake()

    def send_data(self) -> None:
        # After the close handshake a server closes TCP at once (RFC 6455
        # 7.1.1) instead of half-closing and waiting for the client's FIN,
        # which a Go client never sends: close() flushes what is buffered first.
        for data in self.protocol.data_to_send():
            if data:
                self.transport.write(data)
            else:
                self.transport.close()


class InboxClientConnection(ClientConnection):
    """A websockets client connection feeding an :class:`Inbox`."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.inbox = Inbox()

    def process_event(self, event: Event) -> None:
        if self.response is None or not isinstance(event, Frame) or not self.inbox.take(event, self.transport):
            super().process_event(event)

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self.inbox.wake()
