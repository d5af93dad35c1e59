"""The ``picows`` transport: a :class:`~goomerang_runtime._link.Link` and a listener on picows.

picows (a Cython WebSocket library for asyncio, the optional extra
``goomerang[fast]``) parses frames in C and writes each frame with one
``send()`` system call. This module puts the same wire and the same rules
as the ``websockets`` transport (``_link.py``, ``_fastrecv.py``) on it:

- The opening handshake is parsed, checked and answered by the very code
  the ``websockets`` transport uses: websockets' sans-I/O
  :class:`~websockets.server.ServerProtocol` and the server's own
  ``process_request`` / ``process_response`` (endpoint, 404, 503, 403, 400,
  authentication, routes, ``Goomerang-Extensions``). Only a 101 hands the
  socket to picows, which takes over the connection from there.
- A peer that did not agree on ``close-codes`` (a Go peer) gets close
  frames with 1000 and no reason only; the code meant (1009 for a message
  past ``max_message_size``) is kept for our own reports.
- Messages are bounded in size before they are buffered whole (the frame
  being read is cut off once it passes the limit), in fragments per message
  (4,096, as websockets) and in unread input (64 frames or 1 MiB: reading
  pauses); a peer that does not read what it provokes (pongs) is not read.
- Close handshake: a received close is echoed; a server then closes TCP at
  once, a client waits up to ``close_wait`` for the server to close it.

picows has no permessage-deflate: ``compression=True`` with this transport
is refused by the configuration. Protocol violations picows itself detects
(a bad opcode, an unmasked client frame) close with picows' own code, also
to a Go peer; a Go peer never commits them.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import importlib
import logging
import ssl as ssl_module
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Final, cast
from urllib.parse import urlsplit

from picows import (
    WSAutoPingStrategy,
    WSError,
    WSFrame,
    WSInvalidStatusError,
    WSListener,
    WSMsgType,
    WSTransport,
    WSUpgradeRequest,
    WSUpgradeResponse,
    WSUpgradeResponseWithListener,
)
from websockets.datastructures import Headers
from websockets.exceptions import (
    ConnectionClosedError,
    ConnectionClosedOK,
    InvalidHandshake,
    InvalidStatus,
    ProtocolError,
)
from websockets.frames import OK_CLOSE_CODES, Close
from websockets.http11 import Request, Response
from websockets.server import ServerProtocol

from ._coalesce import KEEP_LIMIT, server_frame_header, turn_flush
from ._empty import EMPTY, own
from ._fastrecv import _HIGH, _HIGH_BYTES, _LOW, _LOW_BYTES, _WRITE_HIGH
from ._link import CLOSE_NORMAL, Direct, LinkClosed, _closed, format_address
from ._resume import DIRECT_BURST, Resume
from .extensions import CLOSE_CODES, EXTENSIONS_HEADER, parse_extensions

__all__ = ["PicowsLink", "PicowsServer", "connect", "serve"]

# picows' protocol class is not in its public API; ws_connect and ws_create_server build it the same way.
_WSProtocol: Any = getattr(importlib.import_module("picows.picows"), "WSProtocol")  # noqa: B009

# The event loop's own transports, not aiofastnet's (which picows >= 2.3 uses by default): on this
# transport they cost the same CPU per message, 5 KiB less per idle connection, and under uvloop they
# are uvloop's.

_BINARY: Final = WSMsgType.BINARY
_TEXT: Final = WSMsgType.TEXT
_CONTINUATION: Final = WSMsgType.CONTINUATION
_PING: Final = WSMsgType.PING
_PONG: Final = WSMsgType.PONG
_CLOSE: Final = WSMsgType.CLOSE

_CLOSE_PROTOCOL_ERROR: Final = 1002
_CLOSE_INVALID_DATA: Final = 1007
_CLOSE_MESSAGE_TOO_BIG: Final = 1009
_CLOSE_INTERNAL_ERROR: Final = 1011

_MAX_FRAGMENTS: Final = 4096
"""Fragments one message may have (websockets' bound, >= 17.4)."""
_NO_FRAME_LIMIT: Final = 1 << 62
"""picows' own frame limit, off: it would close with 1009 even on a Go link; the link bounds sizes itself."""
_FRAME_HEADER: Final = 14
"""Bytes of the longest frame header."""
_WRITE_LIMIT: Final = 32 * 1024
"""High-water mark of the socket's write buffer above which sends wait (websockets' default ``write_limit``)."""
_READ_BUFFER: Final = 4 * 1024
"""picows' initial read buffer per connection (it doubles as needed): idle connections stay small."""
_MAX_READ: Final = 256 * 1024
"""Bytes read from the socket at once at most (asyncio's own read size)."""
_PING_PAYLOAD: Final = b"ping"

_server_logger = logging.LoggerAdapter(logging.getLogger("picows.server"), {})
_client_logger = logging.LoggerAdapter(logging.getLogger("picows.client"), {})
"""Adapters, not loggers: picows makes no child logger per connection for them."""


class _Protocol(_WSProtocol):  # type: ignore[misc, unused-ignore]
    """picows' protocol, reading at most 256 KiB at a time and cutting off oversized frames early."""

    def get_buffer(self, size_hint: int) -> memoryview:
        # picows offers all the free room of its read buffer, which grows to the largest frame seen:
        # one read could then hand the read loop several MiB of frames to fan out before any write
        # task runs. Reads as large as asyncio's own keep batches what they are with websockets.
        # The base class's methods called directly: super() costs an object per call, two calls per read.
        view: memoryview = _base_get_buffer(self, size_hint)
        return view[:_MAX_READ] if len(view) > _MAX_READ else view

    def buffer_updated(self, nbytes: int) -> None:
        link = self.listener
        if link is None:  # the handshake: no frames yet
            _base_buffer_updated(self, nbytes)
            return
        link.partial += nbytes
        _base_buffer_updated(self, nbytes)
        if link.partial > link.partial_limit:
            link.too_big()


_base_get_buffer: Callable[[_Protocol, int], memoryview] = _WSProtocol.get_buffer
_base_buffer_updated: Callable[[_Protocol, int], None] = _WSProtocol.buffer_updated


def _settled(future: asyncio.Future[Any], error: BaseException) -> None:
    """Fail `future` and mark its error as seen: nobody may be left to await it."""
    if not future.done():
        future.set_exception(error)
        future.exception()


class PicowsLink(WSListener):
    """A :class:`~goomerang_runtime._link.Link` over one picows connection (also its listener)."""

    __slots__ = (
        "_batching",
        "_blocked",
        "_bytes",
        "_client",
        "_close_wait",
        "_continuation",
        "_direct",
        "_direct_run",
        "_discard",
        "_drained",
        "_failed",
        "_flush",
        "_frames",
        "_kept",
        "_kept_bytes",
        "_loop",
        "_lost",
        "_max_size",
        "_message",
        "_message_size",
        "_message_text",
        "_pause_pending",
        "_paused",
        "_ping_at",
        "_pong",
        "_rcvd",
        "_rcvd_then_sent",
        "_sent",
        "_tcp",
        "_timer",
        "_unbounded",
        "_waiter",
        "_write_held",
        "_write_paused",
        "_ws",
        "close_codes",
        "context",
        "extensions_header",
        "partial",
        "partial_limit",
        "remote_address",
    )

    def __init__(self, loop: asyncio.AbstractEventLoop, *, client: bool, max_size: int, close_wait: float) -> None:
        super().__init__()
        self._loop = loop
        self._client = client
        self._max_size = max_size
        self._close_wait = close_wait
        self.close_codes = True
        """Whether close frames may carry codes other than 1000 (a Go peer: never)."""
        self.remote_address = "unknown"
        self.extensions_header: str | None = None
        """The ``Goomerang-Extensions`` header of the handshake response (clients)."""
        self.partial = 0
        """Bytes of the frame being read so far (an upper bound); see :class:`_Protocol`."""
        self.partial_limit = max_size + _FRAME_HEADER
        self._ws: WSTransport | None = None
        self._tcp: asyncio.Transport | None = None
        self._frames: deque[bytes | str] = EMPTY  # a deque of its own from the first message
        self._direct: Direct | None = None
        self._continuation: Resume | None = None
        """What the direct callable began and left to the reader: its next recv() returns it."""
        self._batching = False
        """A message is being handled from the callback and more follow it in the same read."""
        self._direct_run = 0
        """Messages of the current read before this one (offered to the direct callable up to DIRECT_BURST)."""
        self.context: contextvars.Context | None = None
        """The context of the task serving the connection (a server's; see :mod:`._resume`)."""
        self._bytes = 0
        self._waiter: asyncio.Future[None] | None = None
        self._paused = False
        self._pause_pending = False
        self._unbounded = False
        self._write_held = False
        self._write_paused = False
        self._blocked = True
        """send_now() may not write: not open yet, writes paused, closing or closed."""
        self._discard = False
        """No more input is taken: a close frame came, the link failed or it is gone."""
        self._drained: asyncio.Future[None] | None = None
        self._message: list[bytes] | None = None
        self._message_text = False
        self._message_size = 0
        self._rcvd: Close | None = None
        self._sent: Close | None = None
        self._rcvd_then_sent: bool | None = None
        self._failed: int | None = None
        self._pong: asyncio.Future[float] | None = None
        self._ping_at = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._lost: asyncio.Future[None] = loop.create_future()
        self._flush = turn_flush(loop)
        self._kept: list[bytes] | None = None
        """Frames send_soon() framed for the end of the turn (headers and payloads), or None."""
        self._kept_bytes = 0

    # picows' callbacks.

    def on_ws_connected(self, transport: WSTransport) -> None:
        self._ws = transport
        tcp = self._tcp = transport.underlying_transport
        tcp.set_write_buffer_limits(high=_WRITE_LIMIT)
        self.remote_address = format_address(tcp.get_extra_info("peername"))
        self.partial = 0
        self._blocked = False

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        run = self._direct_run
        last = frame.last_in_buffer
        if last:
            self.partial = frame.tail_size  # what is read of the next frame
            self._direct_run = 0
        else:
            self._direct_run = run + 1
        if frame.msg_type is _BINARY and frame.fin and self._message is None and not self._discard:
            if frame.payload_size > self._max_size:
                self._too_big_frame(frame.payload_size)
                return
            data = frame.get_payload_as_bytes()
            frames = self._frames
            direct = self._direct
            if direct is not None and self._waiter is not None and not frames and run < DIRECT_BURST:
                # Frames after this one in the same read are handled next: replies wait for the last one.
                self._batching = not last
                try:
                    taken = direct(data)
                finally:
                    self._batching = False
                if taken is True:
                    return
                if taken is not False:  # the reader finishes it, before anything later
                    self._continuation = taken
                    self._wake()
                    return
            if frames is EMPTY:
                self._frames = frames = deque()
            frames.append(data)
            self._bytes += len(data)
            if (len(frames) >= _HIGH or self._bytes >= _HIGH_BYTES) and not self._paused and not self._pause_pending:
                self._pause_pending = True  # decided after the reader's turn, as in _fastrecv.Inbox
                self._loop.call_soon(self._pause_if_behind)
            waiter = self._waiter
            if waiter is not None:
                self._waiter = None
                if not waiter.done():
                    waiter.set_result(None)
            return
        self._other_frame(transport, frame)

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        self._discard = True
        self._blocked = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._lost.done():
            self._lost.set_result(None)
        if self._pong is not None:
            _settled(self._pong, self._link_closed())
            self._pong = None
        self._wake()
        self._wake_writers()

    def pause_writing(self) -> None:
        self._write_paused = True
        self._blocked = True

    def resume_writing(self) -> None:
        self._write_paused = False
        self._blocked = self._discard or self._sent is not None
        self._wake_writers()
        if self._write_held:
            self._write_held = False
            self._resume()

    # What is not a whole binary message.

    def _other_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if self._discard:
            return  # after a close frame (or a failure) input is discarded, as websockets does
        msg_type = frame.msg_type
        if msg_type is _PING:
            if self._kept is not None:
                self.flush_kept()
            transport.send_pong(frame.get_payload_as_bytes())
            tcp = self._tcp
            if tcp is not None and not self._write_held and tcp.get_write_buffer_size() > _WRITE_HIGH:
                self._write_held = True  # pongs it provokes and does not read: stop reading it
                tcp.pause_reading()
        elif msg_type is _PONG:
            pong = self._pong
            if pong is not None and frame.get_payload_as_bytes() == _PING_PAYLOAD:
                self._pong = None
                if not pong.done():
                    pong.set_result(self._loop.time() - self._ping_at)
        elif msg_type is _CLOSE:
            self._close_frame(frame)
        elif msg_type is _CONTINUATION:
            message = self._message
            if message is None:
                self.fail(_CLOSE_PROTOCOL_ERROR, "unexpected continuation frame")
                return
            if len(message) >= _MAX_FRAGMENTS:
                self.fail(_CLOSE_MESSAGE_TOO_BIG, "too many fragments")
                return
            self._message_size += frame.payload_size
            if self._message_size > self._max_size:
                self._too_big_frame(self._message_size)
                return
            message.append(frame.get_payload_as_bytes())
            if frame.fin:
                self._message = None
                self._deliver(b"".join(message), self._message_text)
        elif msg_type is _BINARY or msg_type is _TEXT:
            if self._message is not None:
                self.fail(_CLOSE_PROTOCOL_ERROR, "expected a continuation frame")
                return
            if frame.payload_size > self._max_size:
                self._too_big_frame(frame.payload_size)
                return
            data = frame.get_payload_as_bytes()
            if frame.fin:
                self._deliver(data, True)  # a text message: binary ones took the fast path
            else:
                self._message = [data]
                self._message_text = msg_type is _TEXT
                self._message_size = len(data)

    def _deliver(self, data: bytes, text: bool) -> None:
        item: bytes | str = data
        if text:
            try:
                item = data.decode()
            except UnicodeDecodeError as exc:
                self.fail(_CLOSE_INVALID_DATA, f"{exc.reason} at position {exc.start}")
                return
        self._frames = own(self._frames)
        self._frames.append(item)
        self._bytes += len(data)
        if (len(self._frames) >= _HIGH or self._bytes >= _HIGH_BYTES) and not self._paused and not self._pause_pending:
            self._pause_pending = True
            self._loop.call_soon(self._pause_if_behind)
        self._wake()

    def _close_frame(self, frame: WSFrame) -> None:
        payload = frame.get_payload_as_bytes()
        try:
            close = Close.parse(payload)
        except ProtocolError as exc:
            self.fail(_CLOSE_PROTOCOL_ERROR, str(exc))
            return
        except UnicodeDecodeError as exc:
            self.fail(_CLOSE_INVALID_DATA, f"{exc.reason} at position {exc.start}")
            return
        self._rcvd = close
        if self._sent is None:
            # Echo it, as websockets does; a Go peer gets 1000 and no reason whatever it sent.
            if self.close_codes:
                self._write_close(close, payload)
            else:
                normal = Close(CLOSE_NORMAL, "")
                self._write_close(normal, normal.serialize())
            self._rcvd_then_sent = True
        else:
            self._rcvd_then_sent = False
        self._message = None
        self._ended()

    def _write_close(self, close: Close, payload: bytes) -> None:
        if self._kept is not None:
            self.flush_kept()  # before the close frame, as they were sent before it
        self._sent = close
        self._blocked = True
        ws = self._ws
        if ws is not None and not ws.is_disconnected:
            ws.send(_CLOSE, payload)

    def _ended(self) -> None:
        """No more input: a server closes TCP at once, a client gives the server `close_wait` to do it."""
        self._discard = True
        self._blocked = True
        self._wake()
        ws = self._ws
        if ws is None or ws.is_disconnected:
            return
        if not self._client:
            ws.disconnect()  # after what is buffered, our close frame included
        elif self._timer is None:
            self._timer = self._loop.call_later(self._close_wait, ws.disconnect)

    def too_big(self) -> None:
        """The frame being read passed ``max_message_size`` before it was complete."""
        self._too_big_frame(self.partial)

    def _too_big_frame(self, size: int) -> None:
        self.fail(_CLOSE_MESSAGE_TOO_BIG, f"frame with {size} bytes exceeds limit of {self._max_size} bytes")

    def fail(self, code: int, reason: str) -> None:
        """Fail the connection (RFC 6455 7.1.7): a close frame with `code` (1000 to a Go peer), no more input."""
        if self._discard:
            return
        self._failed = code
        if self._sent is None:
            close = Close(code, reason) if self.close_codes else Close(CLOSE_NORMAL, "")
            self._write_close(close, close.serialize())
            if self._rcvd is not None:
                self._rcvd_then_sent = True
        self._message = None
        tcp = self._tcp
        if tcp is not None and not tcp.is_closing():
            tcp.pause_reading()
        self._ended()

    # Reading.

    def _pause_if_behind(self) -> None:
        """After the reader's turn: pause reading if it left the inbox above its high marks."""
        self._pause_pending = False
        if self._paused or self._unbounded or self._discard:
            return
        if len(self._frames) >= _HIGH or self._bytes >= _HIGH_BYTES:
            tcp = self._tcp
            if tcp is not None and not tcp.is_closing():
                self._paused = True
                tcp.pause_reading()

    def _resume(self) -> None:
        tcp = self._tcp
        if not self._paused and not self._write_held and not self._discard and tcp is not None and not tcp.is_closing():
            tcp.resume_reading()

    def reading_allowed(self) -> bool:
        """Whether nothing holds the reading of this connection (after the handshake's pause)."""
        return not self._paused and not self._write_held and not self._discard

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def _pop(self) -> bytes | str:
        frames = self._frames
        data = frames.popleft()
        self._bytes -= len(data)
        if self._paused and len(frames) <= _LOW and self._bytes <= _LOW_BYTES:
            self._paused = False
            self._resume()
        return data

    def recv_nowait(self) -> bytes | None:
        frames = self._frames
        if frames and type(frames[0]) is bytes:
            data = self._pop()
            assert isinstance(data, bytes)
            return data
        return None

    async def recv(self) -> bytes | str | Resume:
        while True:
            resume = self._continuation
            if resume is not None:  # a handling the transport's callback began (see Direct)
                self._continuation = None
                return resume
            if self._frames:  # read anew each time: the first message gives the link a deque of its own
                return self._pop()
            if self._discard:
                raise self._link_closed()
            self._waiter = waiter = self._loop.create_future()
            await waiter

    @property
    def unread(self) -> int:
        """Whole messages received and not read yet."""
        return len(self._frames)

    # Writing.

    def _wake_writers(self) -> None:
        drained = self._drained
        if drained is not None:
            self._drained = None
            if not drained.done():
                drained.set_result(None)

    async def _writable(self) -> WSTransport:
        """The transport once a frame may be written (the buffer under its high-water mark)."""
        while True:
            ws = self._ws
            if ws is None or self._discard or self._sent is not None or self._lost.done():
                raise self._link_closed()
            if not self._write_paused:
                return ws
            if self._drained is None:
                self._drained = self._loop.create_future()
            await asyncio.shield(self._drained)

    async def send(self, data: bytes) -> None:
        ws = await self._writable()
        if self._kept is not None:
            self.flush_kept()
        ws.send(_BINARY, data)

    def send_now(self, data: bytes) -> bool:
        if self._blocked:
            return False
        tcp = self._tcp
        if tcp is None or tcp.is_closing():  # lost, not yet told
            return False
        if not self._client and (self._frames or self._batching or self._kept is not None):
            # More input is waiting for the reader (a batch of requests), or frames are kept already:
            # the reply joins them, and the batch's replies go out in one write (see _keep).
            self._keep(data)
            if not self._frames and not self._batching:
                self.flush_kept()  # the batch's last frame is handled: nothing to wait for
            return True
        ws = self._ws
        assert ws is not None
        if self._kept is not None:
            self.flush_kept()
            if self._blocked:  # that filled the socket's buffer: this frame waits
                return False
        try:
            ws.send(_BINARY, data)
        except Exception:  # a broken transport: the next send() reports it
            return False
        return True

    def send_soon(self, data: bytes) -> bool:
        if self._client:  # picows masks a client's frames itself: nothing kept (clients do not fan out)
            return self.send_now(data)
        if self._blocked:
            return False
        tcp = self._tcp
        if tcp is None or tcp.is_closing():
            return False
        self._keep(data)
        return True

    def _keep(self, data: bytes) -> None:
        """Frame `data` (unmasked: a server's) for one write at the turn's end, or sooner past KEEP_LIMIT."""
        size = len(data)
        header = server_frame_header(size)  # as picows lays it out
        kept = self._kept
        if kept is None:
            self._kept = [header, data]
            self._kept_bytes = size
            self._flush.add(self)
            return
        kept += (header, data)
        self._kept_bytes += size
        if self._kept_bytes > KEEP_LIMIT:
            self.flush_kept()

    def flush_kept(self) -> None:
        """Write the frames send_soon() kept, with one write; nothing once the transport is closing."""
        kept, self._kept = self._kept, None
        tcp = self._tcp
        if kept is None or tcp is None or tcp.is_closing():
            return
        with contextlib.suppress(Exception):  # a broken transport: the next send() reports it
            tcp.write(b"".join(kept))

    def take_resume(self) -> Resume | None:
        resume, self._continuation = self._continuation, None
        return resume

    def set_direct(self, direct: Direct | None) -> None:
        self._direct = direct

    async def ping(self) -> Awaitable[float]:
        pong = self._pong
        if pong is not None:  # the previous ping is still unanswered: wait on it again
            return asyncio.shield(pong)
        ws = await self._writable()
        if self._kept is not None:
            self.flush_kept()
        self._pong = pong = self._loop.create_future()
        self._ping_at = self._loop.time()
        ws.send_ping(_PING_PAYLOAD)
        return pong

    # Closing.

    async def close(self, code: int = CLOSE_NORMAL) -> None:
        if code == CLOSE_NORMAL:
            # A graceful close: the peer's close frame is behind what it sent before, read it all.
            self._unbounded = True
            if self._paused:
                self._paused = False
                self._resume()
        if self._sent is None and self._rcvd is None and not self._lost.done():
            close = Close(code, "") if self.close_codes else Close(CLOSE_NORMAL, "")
            self._write_close(close, close.serialize())
        if self._lost.done():
            return
        try:
            async with asyncio.timeout(self._close_wait):
                await asyncio.shield(self._lost)
        except TimeoutError:
            self.abort()
            await asyncio.shield(self._lost)

    def abort(self) -> None:
        self._blocked = True
        tcp = self._tcp
        if tcp is not None:
            tcp.abort()

    def _link_closed(self) -> LinkClosed:
        rcvd, sent = self._rcvd, self._sent
        both = rcvd is not None and sent is not None
        ok = rcvd is not None and sent is not None and rcvd.code in OK_CLOSE_CODES and sent.code in OK_CLOSE_CODES
        kind = ConnectionClosedOK if ok else ConnectionClosedError
        exc = kind(rcvd, sent, self._rcvd_then_sent if both else None)
        return _closed(exc, None if self.close_codes else self._failed)


def _protocol(
    factory: Callable[..., object],
    *,
    client: bool,
    logger: logging.LoggerAdapter[logging.Logger],
    netloc: str | None = None,
    path: str | None = None,
    handshake_timeout: float | None = None,
    headers: dict[str, str] | None = None,
) -> Any:
    return _Protocol(
        netloc,
        path,
        client,
        factory,
        logger,
        True,  # disconnect_on_exception: a bug of ours closes with 1011
        handshake_timeout,
        False,  # auto ping: our heartbeat pings, with Go's payload
        10.0,
        10.0,
        WSAutoPingStrategy.PING_WHEN_IDLE,
        False,  # auto pong: the link answers pings, so that every frame passes through it
        _NO_FRAME_LIMIT,
        headers,
        _READ_BUFFER,
    )


# Clients.


async def connect(
    url: str,
    *,
    ssl: ssl_module.SSLContext | None,
    handshake_timeout: float,
    close_wait: float,
    max_size: int,
    headers: dict[str, str],
) -> PicowsLink:
    """Open a picows connection to `url`; the link's :attr:`~PicowsLink.extensions_header` says what was agreed.

    Fails as websockets' ``connect`` does (``InvalidStatus``, ``InvalidHandshake``, ``OSError``,
    ``TimeoutError``), so that the client reports both transports' failures the same way.
    """
    parts = urlsplit(url)
    secure = parts.scheme == "wss"
    host = parts.hostname or ""
    port = parts.port or (443 if secure else 80)
    loop = asyncio.get_running_loop()
    link = PicowsLink(loop, client=True, max_size=max_size, close_wait=close_wait)

    def listener(request: WSUpgradeRequest, response: WSUpgradeResponse) -> PicowsLink:
        # Decided as the response is parsed, before the frames that follow it in the same read.
        value = response.headers.get(EXTENSIONS_HEADER)
        link.extensions_header = value
        link.close_codes = CLOSE_CODES in parse_extensions(value)
        return link

    proto = _protocol(
        listener,
        client=True,
        logger=_client_logger,
        netloc=parts.netloc,
        path=parts.path or "/",
        handshake_timeout=handshake_timeout,
        headers=headers,
    )
    context = (ssl or ssl_module.create_default_context()) if secure else None
    tls: dict[str, Any] = {"ssl": context}
    if context is not None:
        tls.update(server_hostname=host, ssl_handshake_timeout=handshake_timeout)
    try:
        async with asyncio.timeout(handshake_timeout):
            await loop.create_connection(lambda: proto, host, port, **tls)
            await proto.wait_until_handshake_complete()
    except WSInvalidStatusError as exc:
        answer = exc.response
        status = int(answer.status) if answer is not None else 0
        body = (answer.body or b"") if answer is not None else b""
        headers_seen = Headers(list(answer.headers.items()) if answer is not None else [])
        raise InvalidStatus(Response(status, answer.status.phrase if answer else "", headers_seen, body)) from exc
    except WSError as exc:
        raise InvalidHandshake(str(exc)) from exc
    except BaseException:
        transport = proto.transport
        if transport is not None:
            transport.disconnect(False)
        raise
    if proto.listener is None:
        raise InvalidHandshake("connection closed during the opening handshake")
    return link


# Servers.


class HandshakeConnection:
    """A connection in its opening handshake, as the server's ``process_request`` sees it.

    It has what the server reads of a websockets ``ServerConnection`` there
    (``remote_address``, ``respond()``, ``transport``, ``request``,
    ``protocol``): both transports run one handshake code.
    """

    def __init__(self, transport: asyncio.Transport, protocol: ServerProtocol) -> None:
        self.transport = transport
        self.protocol: ServerProtocol = protocol
        self.remote_address: Any = transport.get_extra_info("peername")
        self.request: Request | None = None
        self.link: PicowsLink | None = None

    def respond(self, status: int, text: str) -> Response:
        """A plain-text HTTP answer refusing the upgrade."""
        return self.protocol.reject(status, text)

    def handed_over(self) -> None:
        """The handshake is over: keep nothing of it but the request (an idle connection stays small)."""
        self.protocol = _SPENT


_SPENT = ServerProtocol()
"""What a handed-over connection keeps instead of its own handshake parser."""

ProcessRequest = Callable[[Any, Request], Awaitable[Response | None]]
ProcessResponse = Callable[[Any, Request, Response], Response | None]
Handler = Callable[[HandshakeConnection, Request, PicowsLink], Awaitable[None]]

_HANDSHAKE_FAILED = "Failed to open a WebSocket connection.\nSee server log for more information.\n"
_log = logging.getLogger("goomerang.server")


class _Handshake(asyncio.Protocol):
    """Reads and answers the opening handshake of one accepted connection, then hands it to picows."""

    def __init__(self, server: PicowsServer) -> None:
        self._server = server
        self._data = bytearray()
        self._transport: asyncio.Transport | None = None
        self._protocol = ServerProtocol(max_size=None, logger=_server_logger)
        self._conn: HandshakeConnection | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._started = False
        self._gone = False
        self.context: contextvars.Context | None = None
        """The context of the task that answers the handshake and serves the connection."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        tcp = cast(asyncio.Transport, transport)  # uvloop's have asyncio's methods, not its class
        self._transport = tcp
        self._conn = HandshakeConnection(tcp, self._protocol)
        self._timer = asyncio.get_running_loop().call_later(self._server.open_timeout, self._timed_out)

    def _timed_out(self) -> None:
        self._timer = None
        if not self._started and self._transport is not None:
            self._transport.abort()

    def data_received(self, data: bytes) -> None:
        if self._started:  # read before the pause took effect: picows gets it after the request
            self._data += data
            return
        transport = self._transport
        assert transport is not None
        self._data += data
        protocol = self._protocol
        protocol.receive_data(data)
        for chunk in protocol.data_to_send():  # an answer the parser gave itself (414, 431), or an EOF
            if chunk:
                transport.write(chunk)
            else:
                transport.close()
                return
        for event in protocol.events_received():
            if isinstance(event, Request):
                self._started = True
                transport.pause_reading()
                self._server.start_handshake(self, event)
                return

    def connection_lost(self, exc: Exception | None) -> None:
        self._gone = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    async def run(self, request: Request) -> None:
        """Answer the request; on a 101, serve the connection until it ends."""
        server = self._server
        conn = self._conn
        transport = self._transport
        assert conn is not None
        assert transport is not None
        conn.request = request
        timer = self._timer
        deadline = timer.when() if timer is not None else asyncio.get_running_loop().time()
        if timer is not None:
            timer.cancel()
            self._timer = None
        try:
            async with asyncio.timeout_at(deadline):
                response = await self._respond(conn, request)
        except TimeoutError:
            transport.abort()
            return
        if self._gone:
            return
        if response.status_code != 101:
            transport.write(response.serialize())
            transport.close()
            return
        link = self._hand_over(conn, request, response)
        conn.handed_over()
        self._protocol = _SPENT
        self._conn = None
        try:
            await server.handler(conn, request, link)
        except Exception:
            _log.exception("connection handler failed")
            await link.close(_CLOSE_INTERNAL_ERROR)
        else:
            await link.close()

    async def _respond(self, conn: HandshakeConnection, request: Request) -> Response:
        """What websockets' server does with a request: its hooks, then accept or refuse."""
        server = self._server
        protocol = self._protocol
        try:
            answer = await server.process_request(conn, request)
        except Exception as exc:
            _log.exception("process_request failed")
            protocol.handshake_exc = exc
            answer = protocol.reject(500, _HANDSHAKE_FAILED)
        response = protocol.accept(request) if answer is None else answer
        try:
            replaced = server.process_response(conn, request, response)
        except Exception as exc:
            _log.exception("process_response failed")
            protocol.handshake_exc = exc
            replaced = protocol.reject(500, _HANDSHAKE_FAILED)
        if replaced is not None:
            response = replaced
        if response.status_code == 101 and not server.is_serving():
            response = protocol.reject(503, "Server is shutting down.\n")
        return response

    def _hand_over(self, conn: HandshakeConnection, request: Request, response: Response) -> PicowsLink:
        """Give the socket to picows, which answers the upgrade with `response`'s headers."""
        transport = self._transport
        assert transport is not None
        server = self._server
        link = PicowsLink(
            asyncio.get_running_loop(), client=False, max_size=server.max_size, close_wait=server.close_timeout
        )
        link.context = self.context
        # Agreed in the response: no close-codes (a Go client, or extensions=False) means 1000 only.
        link.close_codes = CLOSE_CODES in parse_extensions(response.headers.get(EXTENSIONS_HEADER))
        conn.link = link
        extra = [
            (name, value)
            for name, value in response.headers.raw_items()
            if name.lower() not in ("upgrade", "connection", "sec-websocket-accept")
        ]
        upgrade = WSUpgradeResponseWithListener(WSUpgradeResponse.create_101_response(extra), link)
        proto = _protocol(lambda _request: upgrade, client=False, logger=_server_logger)
        # picows reads the upgrade itself: a minimal request with the client's key, then what followed it.
        key = request.headers["Sec-WebSocket-Key"]
        data = self._data
        tail = data[data.index(b"\r\n\r\n") + 4 :]
        head = (
            "GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {key}\r\n\r\n"
        ).encode()
        self._data = bytearray()
        transport.set_protocol(proto)
        proto.connection_made(transport)
        view = memoryview(head + tail)
        while view:
            buffer = proto.get_buffer(len(view))
            size = min(len(buffer), len(view))
            buffer[:size] = view[:size]
            proto.buffer_updated(size)
            view = view[size:]
        if link.reading_allowed() and not transport.is_closing():
            transport.resume_reading()
        return link


class PicowsServer:
    """The listener of a server on the picows transport (what the server uses of websockets' ``Server``)."""

    def __init__(
        self,
        handler: Handler,
        process_request: ProcessRequest,
        process_response: ProcessResponse,
        *,
        open_timeout: float,
        close_timeout: float,
        max_size: int,
    ) -> None:
        self.handler = handler
        self.process_request = process_request
        self.process_response = process_response
        self.open_timeout = open_timeout
        self.close_timeout = close_timeout
        self.max_size = max_size
        self._server: asyncio.AbstractServer | None = None
        self._serving = False
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self, host: str, port: int, ssl: ssl_module.SSLContext | None) -> None:
        loop = asyncio.get_running_loop()
        options: dict[str, Any] = {"ssl": ssl}
        if ssl is not None:
            options["ssl_handshake_timeout"] = self.open_timeout
        self._server = await loop.create_server(lambda: _Handshake(self), host, port, **options)
        self._serving = True

    def start_handshake(self, handshake: _Handshake, request: Request) -> None:
        # A context of its own, known to the link: handling in callbacks runs in it (see _resume.py).
        handshake.context = context = contextvars.copy_context()
        task = asyncio.get_running_loop().create_task(handshake.run(request), context=context)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @property
    def sockets(self) -> tuple[Any, ...]:
        """The listening sockets."""
        assert self._server is not None
        return tuple(getattr(self._server, "sockets", ()))

    def is_serving(self) -> bool:
        """Whether upgrades are still accepted (false once :meth:`close` was called)."""
        return self._serving

    def close(self, close_connections: bool = True) -> None:
        """Stop listening; handshakes under way are answered 503. Connections stay (the server closes them)."""
        self._serving = False
        if self._server is not None:
            self._server.close()

    async def wait_closed(self) -> None:
        """Wait until every connection's handler ended."""
        while self._tasks:
            await asyncio.wait(list(self._tasks))


async def serve(
    handler: Handler,
    host: str,
    port: int,
    *,
    ssl: ssl_module.SSLContext | None,
    process_request: ProcessRequest,
    process_response: ProcessResponse,
    open_timeout: float,
    close_timeout: float,
    max_size: int,
) -> PicowsServer:
    """Listen on `host`:`port`; `handler` serves each upgraded connection, as with websockets' ``serve``."""
    server = PicowsServer(
        handler,
        process_request,
        process_response,
        open_timeout=open_timeout,
        close_timeout=close_timeout,
        max_size=max_size,
    )
    await server.start(host, port, ssl)
    return server
