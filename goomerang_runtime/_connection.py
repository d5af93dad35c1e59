"""One accepted client connection on the server, and the senders bound to it."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable

from ._codec import encode_message
from ._empty import EMPTY, own
from ._gate import ReceiveGate
from ._link import CLOSE_NORMAL, CLOSE_TRY_AGAIN_LATER, Link
from ._outbox import Outbox, QueueFullTimeout, frames_text
from ._replies import error_reply
from .errors import ConnectionLostError, GoomerangError, SlowConsumerError
from .extensions import ERROR_REPLY, RECOVERY, SERVER_REQUESTS, TOPIC_HEADER, WILDCARDS
from .handler import PeerInfo
from .hooks import Hook
from .message import Message, ProtoMessage

__all__ = ["ConnectionSender", "ReplySender", "ServerConnection", "as_message"]


def as_message(msg: Message[ProtoMessage] | ProtoMessage) -> Message[ProtoMessage]:
    """Wrap a bare protobuf payload in a message without headers."""
    return msg if isinstance(msg, Message) else Message(msg)


class _Waiting:
    """A frame in a connection's backlog, and who waits for it to be queued, if anyone."""

    __slots__ = ("data", "queued")

    def __init__(self, data: bytes, queued: asyncio.Future[None] | None) -> None:
        self.data = data
        self.queued = queued


class ServerConnection:
    """A client connected to the server: its link, outbox and subscriptions.

    Frames go to the outbox at once while it has room. When it is full they
    wait, in order, in a backlog of up to `queue_size` more frames, fed to the
    outbox by one task; everything sent later queues behind them, so a slow
    client still gets every frame in order. The client is disconnected as a
    slow consumer (close code 1013, :class:`SlowConsumerError` reported) when
    the outbox stays full for `queue_timeout` or the backlog overflows.
    """

    __slots__ = (
        "_backlog",
        "_backlog_bytes",
        "_close_wait",
        "_drainer",
        "_queue_bytes",
        "_queue_size",
        "_queue_timeout",
        "_report",
        "catching_up",
        "closing",
        "error_details",
        "error_reply",
        "gate",
        "kicked",
        "link",
        "on_send",
        "outbox",
        "peer",
        "pending_sync",
        "recovery",
        "sender",
        "server_requests",
        "task",
        "topic_header",
        "topics",
        "unhandled",
        "wildcards",
    )

    def __init__(
        self,
        link: Link,
        peer: PeerInfo,
        *,
        queue_size: int,
        queue_timeout: float,
        queue_bytes: int | None = None,
        close_wait: float,
        error_details: bool,
        report: Callable[[BaseException], None],
        on_send: Hook[[str, int, float]] | None = None,
    ) -> None:
        self.link = link
        self.peer = peer
        self._queue_bytes = queue_bytes if queue_bytes is not None else 1 << 62
        self.outbox = Outbox(link, queue_size, self._queue_bytes)
        extensions = peer.extensions
        self.topic_header = TOPIC_HEADER in extensions
        """Publication deliveries carry the ``goomerang-topic`` header (not for Go clients)."""
        self.wildcards = WILDCARDS in extensions
        """Subscriptions are wildcard patterns; for a Go client every topic is a plain string."""
        self.error_reply = ERROR_REPLY in extensions
        """A failed sync request is answered with an ErrorReply; a Go client gets nothing, as from Go."""
        self.server_requests = SERVER_REQUESTS in extensions
        self.recovery = RECOVERY in extensions and self.topic_header
        """Deliveries carry their history position, and a subscribe may ask to catch up (never a Go client)."""
        """The server may send this client sync requests (``Server.send_sync``); never a Go client."""
        self.topics: set[str] = set()
        self.catching_up: set[str] | None = None
        """Topics whose replay waits for room (``_catchup.py``): their live publications skip this connection."""
        self.gate: ReceiveGate | None = None
        """Checks topics reached through wildcard subscriptions, when the server authorises."""
        self.sender = ConnectionSender(self)
        self.task: asyncio.Task[None] | None = None
        self._queue_size = queue_size
        self._queue_timeout = queue_timeout
        self._close_wait = close_wait
        self._report = report
        self._backlog: deque[_Waiting] = EMPTY  # a deque of its own from the first frame waiting
        self._backlog_bytes = 0
        self._drainer: asyncio.Task[None] | None = None
        self.error_details = error_details
        self.closing = False
        self.kicked = False
        """Disconnected by the server (slow consumer, revoked...): what it still reads is dropped."""
        self.unhandled = 0
        """Frames read and dropped since the kick, reported when the connection ends."""
        self.pending_sync = 0
        self.on_send: Hook[[str, int, float]] = on_send if on_send is not None else Hook("on_send", report)
        """Told ``(kind, size, seconds)`` after each message a sender of this connection queued."""

    def offer(self, data: bytes) -> bool:
        """Queue a frame if it can go now (room in the outbox, empty backlog)."""
        return not self._backlog and self.outbox.offer(data)

    def offer_soon(self, data: bytes) -> bool:
        """Like :meth:`offer`, for fan-out: the frames of one loop turn leave with one write."""
        return not self._backlog and self.outbox.offer_soon(data)

    def push(self, data: bytes) -> None:
        """Queue a frame from a handler without waiting, or raise why it cannot go.

        The frame waits behind what is queued (the backlog's drainer waits
        for room, up to the slow-consumer limit), so a handler, and the
        worker running it, never waits on a slow client: the client alone
        pays, with :class:`SlowConsumerError` once its backlog overflows.
        """
        if self.offer(data):
            return
        error = self._enqueue(_Waiting(data, None))
        if error is not None:
            raise error

    def deliver(self, data: bytes) -> None:
        """Queue a frame without waiting, behind everything queued before it.

        Fan-out uses this: a slow client never holds up the caller, and the
        frames of one loop turn leave with one write. A closed connection
        drops the frame; an overflowing backlog disconnects the client as a
        slow consumer.
        """
        if not self.offer_soon(data):
            self._enqueue(_Waiting(data, None))

    async def send_frame(self, data: bytes) -> None:
        """Queue one encoded frame, waiting for room up to the slow-consumer limit.

        A client whose queue stays full that long is disconnected (close code
        1013) and :class:`SlowConsumerError` is raised; after the connection
        closed, :class:`ConnectionLostError`. If the caller is cancelled while
        waiting, the frame is not sent.
        """
        if self.offer(data):
            return
        waiting = _Waiting(data, asyncio.get_running_loop().create_future())
        self._enqueue(waiting)
        assert waiting.queued is not None
        try:
            await waiting.queued
        except asyncio.CancelledError:
            with contextlib.suppress(ValueError):  # not queued yet: never will be
                self._backlog.remove(waiting)
                self._backlog_bytes -= len(waiting.data)
            raise

    def _enqueue(self, waiting: _Waiting) -> GoomerangError | None:
        error: GoomerangError | None = self.outbox.error
        backlog = self._backlog
        if error is None and (
            len(backlog) >= self._queue_size
            or (backlog and self._backlog_bytes + len(waiting.data) > self._queue_bytes)
        ):
            error = self._slow(len(self.outbox) + len(backlog), 0.0)
        if error is not None:
            if waiting.queued is not None:
                waiting.queued.set_exception(error)
            return error
        self._backlog = backlog = own(backlog)
        backlog.append(waiting)
        self._backlog_bytes += len(waiting.data)
        if self._drainer is None:
            self._drainer = asyncio.get_running_loop().create_task(self._drain())
        return None

    async def _drain(self) -> None:
        backlog = self._backlog
        try:
            while backlog:
                try:
                    await self.outbox.wait_room(self._queue_timeout, len(backlog[0].data))
                except QueueFullTimeout as exc:
                    self._slow(exc.queued + len(backlog), exc.waited)
                    return
                except ConnectionLostError as exc:
                    self._fail_backlog(exc)
                    return
                # No await from here to the offer: the room found is still there.
                waiting = backlog.popleft()
                self._backlog_bytes -= len(waiting.data)
                self.outbox.offer(waiting.data)
                if waiting.queued is not None and not waiting.queued.done():
                    waiting.queued.set_result(None)
        finally:
            self._drainer = None

    def overflow(self, queued: int) -> None:
        """More frames wait for this client than its queue size: a slow consumer."""
        if not self.closing and self.outbox.error is None:
            self._slow(queued, 0.0)

    def _slow(self, queued: int, waited: float) -> SlowConsumerError:
        queued_bytes = self.outbox.queued_bytes + self._backlog_bytes
        err = SlowConsumerError(f"{self.peer.id} ({self.peer.remote_address})", queued, waited, queued_bytes)
        if self.kicked:  # the backlog overflowed and the drainer's wait ran out at once: one kick, one report
            return err
        self.kick(CLOSE_TRY_AGAIN_LATER, err)
        self._report(err)
        return err

    def _fail_backlog(self, error: GoomerangError) -> None:
        backlog, self._backlog = self._backlog, EMPTY
        self._backlog_bytes = 0
        for waiting in backlog:
            if waiting.queued is not None and not waiting.queued.done():
                waiting.queued.set_exception(error)
                # Nobody may be left to retrieve it (the caller was cancelled).
                waiting.queued.exception()

    def kick(self, code: int, reason: GoomerangError) -> None:
        """Disconnect now: drop queued frames, try a close frame, then drop TCP."""
        self.kicked = True
        self.discard(ConnectionLostError(str(reason), code), reason)
        asyncio.get_running_loop().create_task(self._close_or_abort(code))

    def discard(self, reason: ConnectionLostError, backlog_error: GoomerangError | None = None) -> None:
        """Stop sending: close the outbox and fail every frame still waiting.

        Frames that never left and whose senders are not told otherwise are
        reported (unless `backlog_error`, a kick, already was).
        """
        dropped = self.outbox.close(reason) + sum(1 for waiting in self._backlog if waiting.queued is None)
        self._fail_backlog(backlog_error or reason)
        if dropped and backlog_error is None:
            lost = f"{self.peer.id}: {frames_text(dropped)} queued and never sent ({reason.reason})"
            self._report(ConnectionLostError(lost, reason.code, dropped))

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
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._close_wait
        drainer = self._drainer
        if drainer is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout_at(deadline):
                    await asyncio.shield(drainer)
        await self.outbox.flush(max(0.0, deadline - loop.time()))
        self.discard(ConnectionLostError("server closed the connection", CLOSE_NORMAL))
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
        on_send = self._conn.on_send
        started = time.perf_counter() if on_send.callables else 0.0  # no clock reads while nobody listens
        data, size, kind = encode_message(msg)
        self._conn.push(data)  # never waits on a slow client: see ServerConnection.push
        if on_send.callables:
            on_send(kind, size, time.perf_counter() - started)
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
        on_send = self._conn.on_send
        started = time.perf_counter() if on_send.callables else 0.0  # no clock reads while nobody listens
        if self.replied:
            data, size, kind = encode_message(msg)
        else:
            self.replied = True
            data, size, kind = encode_message(msg, uuid=self._uuid, is_sync=True)
        self._conn.push(data)
        if on_send.callables:
            on_send(kind, size, time.perf_counter() - started)
        return size

    async def fail(self, request_kind: str, error: BaseException) -> None:
        """Answer with an :class:`ErrorReply` unless a reply already went out.

        A Go client gets nothing (its call times out, as against a Go server).
        """
        if self.replied:
            return
        self.replied = True
        if not self._conn.error_reply:
            return
        data = error_reply(self._uuid, request_kind, error, self._conn.error_details)
        # If the client is gone, its caller fails on the lost connection instead.
        with contextlib.suppress(ConnectionLostError, SlowConsumerError):
            self._conn.push(data)
