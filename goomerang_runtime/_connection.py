"""One accepted client connection on the server, and the senders bound to it."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

from ._codec import encode_frame, encode_message
from ._link import CLOSE_NORMAL, CLOSE_TRY_AGAIN_LATER, Link
from ._outbox import Outbox, QueueFullTimeout
from .errors import ConnectionLostError, HandlerError, SlowConsumerError
from .handler import PeerInfo
from .message import Message, ProtoMessage, kind_of
from .reply_pb2 import ErrorReply

__all__ = ["ConnectionSender", "ReplySender", "ServerConnection", "as_message"]

ERROR_REPLY_KIND = kind_of(ErrorReply)


def as_message(msg: Message[ProtoMessage] | ProtoMessage) -> Message[ProtoMessage]:
    """Wrap a bare protobuf payload in a message without headers."""
    return msg if isinstance(msg, Message) else Message(msg)


class ServerConnection:
    """A client connected to the server: its link, outbox and subscriptions."""

    __slots__ = (
        "_close_wait",
        "_queue_timeout",
        "closing",
        "error_details",
        "link",
        "on_send",
        "outbox",
        "peer",
        "pending_sync",
        "sender",
        "task",
        "topics",
    )

    def __init__(
        self,
        link: Link,
        peer: PeerInfo,
        *,
        queue_size: int,
        queue_timeout: float,
        close_wait: float,
        error_details: bool,
        on_send: Callable[[str, int, float], None] | None = None,
    ) -> None:
        self.link = link
        self.peer = peer
        self.outbox = Outbox(link, queue_size)
        self.topics: set[str] = set()
        self.sender = ConnectionSender(self)
        self.task: asyncio.Task[None] | None = None
        self._queue_timeout = queue_timeout
        self._close_wait = close_wait
        self.error_details = error_details
        self.closing = False
        self.pending_sync = 0
        self.on_send = on_send
        """Told ``(kind, size, seconds)`` after each message a sender of this connection queued."""

    def offer(self, data: bytes) -> bool:
        """Queue a frame if there is room now, without waiting."""
        return self.outbox.offer(data)

    async def send_frame(self, data: bytes) -> None:
        """Queue one encoded frame, waiting for room up to the slow-consumer limit.

        A client whose queue stays full that long is disconnected (close code
        1013) and :class:`SlowConsumerError` is raised.
        """
        try:
            await self.outbox.put(data, self._queue_timeout)
        except QueueFullTimeout as exc:
            err = SlowConsumerError(f"{self.peer.id} ({self.peer.remote_address})", exc.queued, exc.waited)
            self.kick(CLOSE_TRY_AGAIN_LATER, err)
            raise err from None

    def kick(self, code: int, reason: BaseException) -> None:
        """Disconnect now: drop queued frames, try a close frame, then drop TCP."""
        self.outbox.close(ConnectionLostError(str(reason), code))
        asyncio.get_running_loop().create_task(self._close_or_abort(code))

    async def _close_or_abort(self, code: int) -> None:
        try:
            async with asyncio.timeout(self._close_wait):
                await self.link.close(code)
        except TimeoutError:
            pass
        self.link.abort()

    async def close(self) -> None:
        """Flush what was accepted, then the close handshake with code 1000."""
        self.closing = True
        await self.outbox.flush(self._close_wait)
        self.outbox.close(ConnectionLostError("server closed the connection", CLOSE_NORMAL))
        try:
            async with asyncio.timeout(self._close_wait * 2):
                await self.link.close(CLOSE_NORMAL)
        except TimeoutError:
            self.link.abort()


class ConnectionSender:
    """Sends plain frames to one connected client."""

    __slots__ = ("_conn",)

    def __init__(self, conn: ServerConnection) -> None:
        self._conn = conn

    @property
    def peer(self) -> PeerInfo:
        """The client this sender writes to."""
        return self._conn.peer

    async def send(self, msg: Message[ProtoMessage] | ProtoMessage) -> int:
        """Send `msg` to the client; returns the payload size."""
        started = time.perf_counter()
        m = as_message(msg)
        data, size = encode_message(m)
        await self._conn.send_frame(data)
        if self._conn.on_send is not None:
            self._conn.on_send(m.kind, size, time.perf_counter() - started)
        return size


class ReplySender:
    """The sender of a sync request: its first send is the reply."""

    __slots__ = ("_conn", "_held", "_uuid", "replied")

    def __init__(self, conn: ServerConnection, uuid: str) -> None:
        self._conn = conn
        self._uuid = uuid
        self._held = False
        self.replied = False

    def hold(self) -> None:
        """Count this request among its connection's pending sync requests."""
        self._held = True
        self._conn.pending_sync += 1

    def release(self) -> None:
        """The request's handler finished: it is pending no more."""
        if self._held:
            self._held = False
            self._conn.pending_sync -= 1

    @property
    def peer(self) -> PeerInfo:
        """The client waiting for the reply."""
        return self._conn.peer

    async def send(self, msg: Message[ProtoMessage] | ProtoMessage) -> int:
        """Reply (first call) or send a plain frame (later calls)."""
        started = time.perf_counter()
        m = as_message(msg)
        if self.replied:
            data, size = encode_message(m)
        else:
            self.replied = True
            data, size = encode_message(m, uuid=self._uuid, is_sync=True)
        await self._conn.send_frame(data)
        if self._conn.on_send is not None:
            self._conn.on_send(m.kind, size, time.perf_counter() - started)
        return size

    async def fail(self, request_kind: str, error: BaseException) -> None:
        """Answer with an :class:`ErrorReply` unless a reply already went out."""
        if self.replied:
            return
        self.replied = True
        cause = error.error if isinstance(error, HandlerError) else error
        reply = ErrorReply(
            request_kind=request_kind,
            error_type=type(cause).__name__,
            message=str(cause) if self._conn.error_details else "",
        ).SerializeToString()
        data = encode_frame(ERROR_REPLY_KIND, reply, uuid=self._uuid, is_sync=True)
        # If the client is gone, its caller fails on the lost connection instead.
        with contextlib.suppress(ConnectionLostError, SlowConsumerError):
            await self._conn.send_frame(data)
