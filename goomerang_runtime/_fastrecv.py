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
from collections.abc import Callable

from websockets.asyncio.client import ClientConnection
from websockets.asyncio.connection import Connection
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import PayloadTooBig
from websockets.extensions.permessage_deflate import PerMessageDeflate
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.protocol import SERVER, Event

from ._empty import EMPTY
from ._framesplit import at_frame_start, split_binary
from ._resume import DIRECT_BURST, Resume
from .extensions import CLOSE_CODES, EXTENSIONS_HEADER, parse_extensions

__all__ = ["GoCloseCodes", "Inbox", "InflateBudget", "InboxClientConnection", "InboxServerConnection"]

_HIGH = 64
_LOW = 16
_HIGH_BYTES = 1024 * 1024
_LOW_BYTES = 256 * 1024
_WRITE_HIGH = 4 * 1024 * 1024
"""Bytes written and not yet taken by the peer above which its connection stops being read."""
# Reading pauses at _HIGH frames or _HIGH_BYTES unread, and resumes under both low marks. The pause is
# decided after the reader had its turn (a callback queued behind its wake-up, and so before this
# connection's next read): a reader that takes at once what one read brought costs no pause and resume
# (two epoll_ctl system calls each time), and one that lags is paused before anything more is read.


class Inbox:
    """The deque of complete binary messages of one connection, with flow control."""

    __slots__ = (
        "_loop",
        "_transport",
        "batch_end",
        "batching",
        "bytes",
        "direct",
        "direct_run",
        "diverted",
        "frames",
        "pause_pending",
        "paused",
        "resume",
        "unbounded",
        "waiter",
        "write_held",
    )

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.frames: deque[bytes] = EMPTY  # a deque of its own from the first message
        self.bytes = 0
        """Bytes of the unread frames."""
        self.waiter: asyncio.Future[None] | None = None
        self.direct: Callable[[bytes], bool | Resume] | None = None
        """Offered each message first while the reader waits and nothing is queued (``Link.set_direct``)."""
        self.resume: Resume | None = None
        """What :attr:`direct` began and left to the reader: its next read returns it."""
        self.batching = False
        """Whole frames of one read are being handed over: a reply may wait for the last of them."""
        self.direct_run = 0
        """Messages of the current read so far (offered to :attr:`direct` up to DIRECT_BURST)."""
        self.batch_end: Callable[[], None] | None = None
        """Called after the frames of one read were handed over (the link writes what waited)."""
        self.diverted = False
        self.paused = False
        self.unbounded = False
        self.write_held = False
        """Reading is paused because what we write (pongs included) is not being read by the peer."""
        self.pause_pending = False
        """A check whether the reader lags (then reading pauses) is queued."""
        self._transport: asyncio.Transport | None = None

    def read_to_close(self) -> None:
        """Stop pausing the transport: read all the peer sent up to its close frame.

        Used once this side sent its close: what comes now is only what the
        peer sent before it saw the close (its socket buffers' worth), and
        it must be read to reach the peer's close frame.
        """
        self.unbounded = True
        if self.paused:
            self.paused = False
            self._resume()

    def take(self, event: Frame, transport: asyncio.Transport) -> bool:
        """Keep `event` if it is a complete binary message; False: let websockets have it."""
        if self.diverted:
            return False
        opcode = event.opcode
        if opcode is Opcode.BINARY and event.fin:
            self.put(bytes(event.data), transport)
            return True
        if opcode in (Opcode.TEXT, Opcode.BINARY, Opcode.CONT):
            self.diverted = True  # text or fragmented: websockets' assembler from now on
            self.wake()
        return False

    def put(self, data: bytes, transport: asyncio.Transport) -> None:
        """Keep one complete binary message (or hand it to :attr:`direct`) and wake the reader."""
        frames = self.frames
        direct = self.direct
        run = self.direct_run
        self.direct_run = run + 1  # reset after each read
        if direct is not None and self.waiter is not None and not frames and run < DIRECT_BURST:
            taken = direct(data)
            if taken is True:
                return
            if taken is not False:  # the reader finishes it, before anything later
                self.resume = taken
                self.wake()
                return
        if frames is EMPTY:
            self.frames = frames = deque()
        frames.append(data)
        self.bytes += len(data)
        if (len(frames) >= _HIGH or self.bytes >= _HIGH_BYTES) and not self.paused and not self.pause_pending:
            self.pause_pending = True
            self._transport = transport
            self._loop.call_soon(self.pause_if_behind)
        self.wake()

    def pause_if_behind(self) -> None:
        """After the reader's turn: pause reading if it left the inbox above its high marks."""
        self.pause_pending = False
        frames = self.frames
        if self.paused or self.unbounded or (len(frames) < _HIGH and self.bytes < _HIGH_BYTES):
            return
        transport = self._transport
        if transport is not None and not transport.is_closing():
            self.paused = True
            transport.pause_reading()

    def pop(self) -> bytes:
        """The oldest message; resumes reading once the deque has drained enough."""
        data = self.frames.popleft()
        self.bytes -= len(data)
        if self.paused and len(self.frames) <= _LOW and self.bytes <= _LOW_BYTES:
            self.paused = False
            self._resume()
        return data

    def _resume(self) -> None:
        transport = self._transport
        if not self.paused and not self.write_held and transport is not None and not transport.is_closing():
            transport.resume_reading()

    def check_writes(self, transport: asyncio.Transport) -> None:
        """After reading: stop reading a peer while what we wrote to it piles up unread.

        Answers the peer provokes (pongs to its pings) would otherwise grow
        our write buffer without bound; once it is read down, reading goes on.
        """
        if not self.write_held and transport.get_write_buffer_size() > _WRITE_HIGH:
            self.write_held = True
            self._transport = transport
            transport.pause_reading()

    def writes_drained(self) -> None:
        """The transport's write buffer went down again."""
        if self.write_held:
            self.write_held = False
            self._resume()

    def wake(self) -> None:
        """Wake the reader waiting for a message or a state change."""
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            if not waiter.done():
                waiter.set_result(None)


_CLOSE_NORMAL = 1000
_ABNORMAL_CLOSURE = 1006  # websockets' code for a failure that sends no close frame


class GoCloseCodes:
    """Stands in for a websockets protocol's ``fail()``: the close frame says 1000, no reason.

    A Go peer mishandles every other close code (PROTOCOL.md), so on a Go
    link the failures websockets detects itself (message too big, protocol
    error, invalid UTF-8, internal error) close with 1000; the code meant is
    kept in :attr:`code` for our own reports.
    """

    __slots__ = ("_fail", "code")

    def __init__(self, fail: Callable[[int, str], None]) -> None:
        self._fail = fail
        self.code: int | None = None

    def __call__(self, code: int, reason: str = "") -> None:
        if self.code is None:
            self.code = code
        self._fail(code if code == _ABNORMAL_CLOSURE else _CLOSE_NORMAL, "")

    @classmethod
    def install(cls, conn: Connection) -> None:
        """Make `conn` close with 1000 only; call it in the handshake, before any frame is read."""
        go = cls(conn.protocol.fail)
        setattr(conn.protocol, "fail", go)  # noqa: B010  an instance attribute over the method
        setattr(conn, "go_close_codes", go)  # noqa: B010  read by WebSocketLink


_INFLATE_BUDGET = 8 * 1024 * 1024
"""Bytes one read may inflate to, with what is still unread, before the connection fails (1009);
at least the largest message allowed."""


class InflateBudget:
    """Bounds what permessage-deflate inflates per connection, not only per message.

    websockets checks each message against ``max_size``, but one read of a
    few hundred compressed kilobytes can hold hundreds of such messages (a
    compression bomb). Each read may inflate at most what the budget has
    left after the messages not read yet.
    """

    __slots__ = ("limit", "used")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    @classmethod
    def install(cls, conn: Connection, limit: int = _INFLATE_BUDGET) -> InflateBudget | None:
        """Wrap the deflate extension of `conn`, if it negotiated one."""
        limit = max(limit, conn.protocol.max_message_size or 0)
        budget: InflateBudget | None = None
        for extension in conn.protocol.extensions:
            if isinstance(extension, PerMessageDeflate):
                budget = cls(limit)
                setattr(extension, "decode", budget._bounded(extension.decode))  # noqa: B010  instance over method
        return budget

    def _bounded(self, decode: Callable[..., Frame]) -> Callable[..., Frame]:
        def bounded(frame: Frame, *, max_size: int | None = None) -> Frame:
            out = decode(frame, max_size=max_size)
            self.used += len(out.data)
            if self.used > self.limit:
                raise PayloadTooBig(self.used, self.limit)
            return out

        return bounded


class _Bounded(Connection):
    """What both sides' connections do around reading: wake the reader, keep the bounds."""

    inbox: Inbox
    inflate_budget: InflateBudget | None

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self.inbox.wake()

    def data_received(self, data: bytes) -> None:
        budget = self.inflate_budget
        if budget is not None:
            budget.used = self.inbox.bytes
        inbox = self.inbox
        inbox.direct_run = 0
        protocol = self.protocol
        if not inbox.diverted and at_frame_start(protocol):
            # Whole final binary frames are split here; websockets gets the rest (see _framesplit.py).
            transport = self.transport
            limit = protocol.max_message_size
            if protocol.max_fragment_size is not None:
                limit = protocol.max_fragment_size if limit is None else min(limit, protocol.max_fragment_size)
            inbox.batching = True
            try:
                used = split_binary(data, protocol.side is SERVER, limit, lambda message: inbox.put(message, transport))
            finally:
                inbox.batching = False
            if inbox.batch_end is not None:
                inbox.batch_end()
            if used == len(data):
                inbox.check_writes(transport)
                return
            if used:
                data = data[used:]
        super().data_received(data)
        inbox.check_writes(self.transport)

    def resume_writing(self) -> None:
        super().resume_writing()
        self.inbox.writes_drained()


class InboxServerConnection(_Bounded, ServerConnection):
    """A websockets server connection feeding an :class:`Inbox`."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type, unused-ignore]
        self.inbox = Inbox(self.loop)
        self.inflate_budget: InflateBudget | None = None

    def process_event(self, event: Event) -> None:
        if self.request is None or not isinstance(event, Frame) or not self.inbox.take(event, self.transport):
            super().process_event(event)

    def send_data(self) -> None:
        # After the close handshake a server closes TCP at once (RFC 6455
        # 7.1.1) instead of half-closing and waiting for the client's FIN,
        # which a Go client never sends: close() flushes what is buffered first.
        # Frames framed since the last write (fan-out, see _coalesce.py) leave with one write.
        writes = self.protocol.data_to_send()
        if len(writes) == 1 and writes[0]:
            self.transport.write(writes[0])
            return
        pending: list[bytes] = []
        for data in writes:
            if data:
                pending.append(data)
                continue
            if pending:
                self.transport.write(b"".join(pending))
                pending = []
            self.transport.close()
        if pending:
            self.transport.write(b"".join(pending) if len(pending) > 1 else pending[0])


class InboxClientConnection(_Bounded, ClientConnection):
    """A websockets client connection feeding an :class:`Inbox`."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type, unused-ignore]
        self.inbox = Inbox(self.loop)
        self.inflate_budget: InflateBudget | None = None
        process_response = self.protocol.process_response

        def check_response(response: Response) -> None:
            process_response(response)
            # Decided as the response is parsed, before the frames that follow it in the same read.
            if CLOSE_CODES not in parse_extensions(response.headers.get(EXTENSIONS_HEADER)):
                GoCloseCodes.install(self)  # a Go server (or one that agreed to no precise codes)
            self.inflate_budget = InflateBudget.install(self)

        setattr(self.protocol, "process_response", check_response)  # noqa: B010  an instance attribute

    def process_event(self, event: Event) -> None:
        if self.response is None or not isinstance(event, Frame) or not self.inbox.take(event, self.transport):
            super().process_event(event)
