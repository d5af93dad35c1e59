"""The goomerang client: one WebSocket to a server, sends, sync requests, pub/sub."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self, TypeVar, Unpack, cast, overload

from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import InvalidHandshake, InvalidStatus, InvalidURI

from ._answer import RequestSender, answering, settled
from ._codec import (
    CALL_HEADER,
    MISSED_HEADER,
    POSITION_HEADER,
    REASON_HEADER,
    RECOVERED_HEADER,
    RECOVERY_KIND,
    TOPIC_HEADER,
    UNSUBSCRIBE_KIND,
    RequestIds,
    UnsubscribeCommand,
    decode_command,
    decode_frame,
    decode_message,
    encode_broadcast,
    encode_message,
    encode_publish,
    encode_subscribe,
    encode_unsubscribe,
)
from ._connection import as_message
from ._deadlines import Deadlines
from ._dispatch import Dispatcher
from ._fastrecv import InboxClientConnection
from ._heartbeat import keep_alive
from ._link import CLOSE_NORMAL, Link, LinkClosed, WebSocketLink
from ._outbox import Outbox, frames_text
from ._peer import PeerBase
from ._replies import accepted, read_reply
from ._resume import Resume
from .config import ClientConfig, ClientOptions
from .errors import (
    AlreadyRunningError,
    ConfigError,
    ConnectError,
    ConnectionLostError,
    FrameDecodeError,
    GoomerangError,
    GroupError,
    LimitError,
    MessageTooBigError,
    NotRunningError,
    PayloadDecodeError,
    ReconnectFailedError,
    RecoveryError,
    RemoteHandlerError,
    SlowSubscriptionError,
    SyncTimeoutError,
    TextFrameError,
    UnexpectedReplyError,
    UnknownKindError,
    UnknownReplyError,
)
from .extensions import (
    EXTENSIONS_HEADER,
    GO_WIRE,
    QUEUE_GROUPS,
    RECOVERY,
    SERVER_REQUESTS,
    SUPPORTED,
    WILDCARDS,
    format_extensions,
    parse_extensions,
)
from .handler import Handler, HandlerObject, PeerInfo, Responder, build_chain, to_handler
from .hooks import Hook
from .message import Message, ProtoMessage, kind_of
from .protocol_pb2 import Frame
from .status import Status
from .subscription import DEFAULT_MAX_PENDING, DEFAULT_MAX_PENDING_BYTES, Subscription
from .topics import is_pattern, pattern_matches, validate_group, validate_pattern, validate_topic

__all__ = ["Client"]

R = TypeVar("R", bound=ProtoMessage)
R2 = TypeVar("R2", bound=ProtoMessage)
R3 = TypeVar("R3", bound=ProtoMessage)
ReconnectFn = TypeVar("ReconnectFn", bound=Callable[[int, float, BaseException | None], object])
RecoveryFn = TypeVar("RecoveryFn", bound=Callable[[str, int, "RecoveryError | None"], object])
P = TypeVar("P", bound=ProtoMessage)
SyncFn = TypeVar("SyncFn", bound=Callable[[str, float, GoomerangError | None], object])
KindFn = TypeVar("KindFn", bound=Callable[[str], object])
TopicFn = TypeVar("TopicFn", bound=Callable[[str], object])
PublishFn = TypeVar("PublishFn", bound=Callable[[str, str], object])


_log = logging.getLogger("goomerang.client")
"""Connections, disconnections, reconnection attempts and refusals; extras ``peer`` (``"server"``),
``address`` (the server's ``host:port``) and ``url``, with ``status``, ``reason``, ``code``, ``attempt``
or ``delay`` where they apply."""


_Key = tuple[str, str]
"""A subscription's topic (or pattern) and queue group ("" for none)."""

DEFAULT_LEAVE_TIMEOUT = 5.0
"""Seconds ``unsubscribe(..., group=...)`` waits for the server to confirm the group was left."""


class _Leave:
    """A queue group being left: confirmations the server still owes, and who waits for them."""

    __slots__ = ("done", "owed")

    def __init__(self) -> None:
        self.owed = 0
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()


class _Pending:
    """A send_sync call waiting for its reply, and the reply classes it accepts."""

    __slots__ = ("expect", "future", "kind")

    def __init__(
        self, kind: str, future: asyncio.Future[Message[ProtoMessage]], expect: dict[str, type[ProtoMessage]] | None
    ) -> None:
        self.kind = kind
        self.future = future
        self.expect = expect


class _ClientSender:
    """The sender client handlers get: it sends to the server."""

    __slots__ = ("_client", "peer")

    def __init__(self, client: Client, peer: PeerInfo) -> None:
        self._client = client
        self.peer = peer

    async def send(self, msg: Message[ProtoMessage] | ProtoMessage) -> int:
        return await self._client.send(msg)


class Client(PeerBase[ClientConfig]):
    """A goomerang client.

    ::

        client = Client(server="127.0.0.1:8080")
        client.register_message(Pong)
        async with client:                     # or: await client.connect()
            reply = await client.send_sync(Ping(), timeout=2)

    Options are keyword arguments validated by :class:`ClientConfig`. A
    client may connect again after it reached CLOSED.
    """

    _side = "client"

    def __init__(self, **options: Unpack[ClientOptions]) -> None:
        super().__init__(ClientConfig.from_options("client", dict(options)))
        self._link: Link | None = None
        self._extensions: frozenset[str] = GO_WIRE
        self._outbox: Outbox | None = None
        self._dispatcher: Dispatcher | None = None
        self._reader: asyncio.Task[None] | None = None
        self._heartbeat: asyncio.Task[None] | None = None
        self._pending: dict[str, _Pending] = {}
        self._request_ids = RequestIds()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._deadlines: Deadlines | None = None
        self._topic_routes: dict[_Key, tuple[str, Handler[Any]]] = {}
        self._request_chains: dict[str, Handler[Any]] = {}
        """Kind -> the chain answering the server's requests of that kind (its handler's reply is sent)."""
        self._streams: dict[_Key, list[Subscription[Any]]] = {}
        """Subscription iterators by topic and group, in the order they were entered."""
        self._leaving: dict[_Key, _Leave] = {}
        """Queue groups left and not yet confirmed: what the server routed before still reaches them."""
        self._stream_kinds: dict[str, int] = {}
        """Kind -> how many subscription iterators take it (a cheap test in the read loop)."""
        self._lost: ConnectionLostError | None = None
        """Why the last connection ended, when it was not a clean close."""
        self._unsubscribing: set[asyncio.Task[None]] = set()
        self._closing_by_us = False
        self._finished: asyncio.Event | None = None
        self._topics: set[_Key] = set()
        self._positions: dict[str, str] = {}
        """Exact topic -> the last ``epoch:offset`` seen there (``recovery``), asked for again on reconnect."""
        self._patterns_fed = False
        """A publication with a position came through a wildcard subscription (not recovered: reported)."""
        self._predecoded: tuple[bytes, Frame] | None = None
        """A message :meth:`_direct` decoded and left to the read loop, so that it is not decoded twice."""
        self._recovery_hook: Hook[[str, int, RecoveryError | None]] = Hook("on_recovery", self._report)
        self._reconnecting: asyncio.Task[None] | None = None
        self._reconnect_hook: Hook[[int, float, BaseException | None]] = Hook("on_reconnect", self._report)
        self._sync_hook: Hook[[str, float, GoomerangError | None]] = Hook("on_send_sync", self._report)
        self._broadcast_hook: Hook[[str]] = Hook("on_broadcast", self._report)
        self._publish_hook: Hook[[str, str]] = Hook("on_publish", self._report)
        self._subscribe_hook: Hook[[str]] = Hook("on_subscribe", self._report)
        self._unsubscribe_hook: Hook[[str]] = Hook("on_unsubscribe", self._report)

    @property
    def url(self) -> str:
        """The server's WebSocket URL."""
        if self._config.tls is not None:
            return f"wss://{self._config.server}/wss"
        return f"ws://{self._config.server}/ws"

    @property
    def extensions(self) -> frozenset[str]:
        """What the connection uses beyond the Go wire (:mod:`goomerang_runtime.extensions`).

        Empty against a Go server, or with ``extensions=False``.
        """
        return self._extensions

    @property
    def pending_sync(self) -> int:
        """send_sync calls waiting for their reply now."""
        return len(self._pending)

    @property
    def subscriptions(self) -> frozenset[str]:
        """Topics this client is subscribed to (with :meth:`subscribe` or an entered :meth:`subscription`).

        Queue group subscriptions are in :attr:`group_subscriptions`.
        """
        return frozenset(topic for topic, group in self._topics | self._streams.keys() if not group)

    @property
    def group_subscriptions(self) -> frozenset[tuple[str, str]]:
        """(topic, group) of this client's queue group subscriptions, until each is left (confirmed)."""
        keys = self._topics | self._streams.keys()
        return frozenset(key for key in keys if key[1] and key not in self._leaving)

    def handle(self, kind: type[P], handler: Responder[P] | HandlerObject[P]) -> None:
        """Run `handler` for every incoming message of `kind`; registers the kind.

        As on a server, `handler` is an async callable ``(sender, message)``
        or an object with such a ``handle`` method. On a client it may also
        return a reply: when the message is a request of the server
        (:meth:`Server.send_sync <goomerang_runtime.Server.send_sync>`), what
        it returns is sent back as the reply; a handler that raises or
        returns None answers with an error (the server's call raises
        :class:`RemoteHandlerError`). For a plain message the return value is
        ignored. The handler's sender sends plain messages, never the reply.
        """
        super().handle(kind, cast("Handler[P] | HandlerObject[P]", handler))

    # Hooks of the client's own operations (see also PeerBase.on_send).

    def on_send_sync(self, fn: SyncFn) -> SyncFn:
        """Call ``fn(kind, duration, error)`` when a ``send_sync`` ends.

        `kind` is the request's, `duration` the seconds from the call to the
        reply, and `error` what the call raised (timeout, lost connection,
        remote handler error), or None when a reply came.
        """
        self._sync_hook.add(fn)
        return fn

    def on_broadcast(self, fn: KindFn) -> KindFn:
        """Call ``fn(kind)`` after a broadcast command was queued for the server."""
        self._broadcast_hook.add(fn)
        return fn

    def on_publish(self, fn: PublishFn) -> PublishFn:
        """Call ``fn(topic, kind)`` after a publish command was queued for the server."""
        self._publish_hook.add(fn)
        return fn

    def on_subscribe(self, fn: TopicFn) -> TopicFn:
        """Call ``fn(topic)`` after a subscribe command was queued for the server."""
        self._subscribe_hook.add(fn)
        return fn

    def on_unsubscribe(self, fn: TopicFn) -> TopicFn:
        """Call ``fn(topic)`` after an unsubscribe command was queued for the server."""
        self._unsubscribe_hook.add(fn)
        return fn

    # Lifecycle.

    async def connect(self, timeout: float | None = None) -> None:
        """Open the connection; returns once RUNNING.

        Raises :class:`ConnectError` if the server cannot be reached or
        refuses the handshake, :class:`AlreadyRunningError` if connected.
        """
        if self._status in (Status.RUNNING, Status.CLOSING):
            raise AlreadyRunningError(f"client is {self._status.name}")
        config = self._config
        headers = dict(config.headers or {})
        if config.extensions:
            headers[EXTENSIONS_HEADER] = format_extensions(SUPPORTED)
        link: Link
        try:
            async with asyncio.timeout(timeout):
                if config.transport == "picows":
                    from ._picows import connect as picows_connect  # the optional extra: imported only when used

                    # It fails as websockets does: the same errors below for both transports.
                    link = picows_link = await picows_connect(
                        self.url,
                        ssl=config.tls,
                        handshake_timeout=config.handshake_timeout,
                        close_wait=config.close_wait,
                        max_size=config.max_message_size,
                        headers=headers,
                    )
                    answered = picows_link.extensions_header
                else:
                    ws = await ws_connect(
                        self.url,
                        ssl=config.tls,
                        open_timeout=config.handshake_timeout,
                        ping_interval=None,  # our heartbeat pings with the Go payload
                        ping_timeout=None,
                        close_timeout=config.close_wait,
                        max_size=config.max_message_size,
                        compression="deflate" if config.compression else None,
                        additional_headers=headers or None,
                        user_agent_header=None,
                        create_connection=InboxClientConnection,
                    )
                    link = WebSocketLink(ws)
                    answered = ws.response.headers.get(EXTENSIONS_HEADER) if ws.response is not None else None
        except TimeoutError:
            waited = timeout if timeout is not None else config.handshake_timeout  # else the handshake's own
            raise self._cannot(ConnectError(self.url, f"timed out after {waited:g}s")) from None
        except InvalidStatus as exc:
            status = exc.response.status_code
            raise self._cannot(ConnectError(self.url, f"the server answered HTTP {status}", status)) from exc
        except OSError as exc:
            raise self._cannot(ConnectError(self.url, str(exc) or type(exc).__name__, errno=exc.errno)) from exc
        except (InvalidHandshake, InvalidURI) as exc:
            raise self._cannot(ConnectError(self.url, str(exc) or type(exc).__name__)) from exc
        extensions = GO_WIRE
        if config.extensions:
            # A Go server answers no header: its wire, exactly.
            extensions = parse_extensions(answered) & SUPPORTED
        await self.attach(link, extensions)

    def _log_extra(self, **fields: object) -> dict[str, object]:
        return {"peer": "server", "address": self._config.server, "url": self.url, **fields}

    def _cannot(self, error: ConnectError) -> ConnectError:
        """Log a failed connection attempt (a refusal at INFO, a network error at DEBUG); returns `error`."""
        level = logging.INFO if error.status is not None else logging.DEBUG
        if _log.isEnabledFor(level):
            what = "refused by" if error.status is not None else "cannot connect to"
            extra = self._log_extra(status=error.status, reason=error.reason)
            _log.log(level, "%s %s: %s", what, self.url, error.reason, extra=extra)
        return error

    async def attach(self, link: Link, extensions: frozenset[str] = SUPPORTED) -> None:
        """Start running over an already open `link` (used by :meth:`connect`
        and by the in-memory test transport), with the `extensions` agreed."""
        if self._status in (Status.RUNNING, Status.CLOSING):
            raise AlreadyRunningError(f"client is {self._status.name}")
        config = self._config
        self._link = link
        self._extensions = extensions if config.extensions else GO_WIRE
        self._outbox = Outbox(link, config.send_queue_size, config.send_queue_bytes)
        self._dispatcher = Dispatcher(
            self._build_chains(),
            config.max_concurrency,
            self._worker_start_hook,
            self._worker_end_hook,
            self._report,
        )
        self._closing_by_us = False
        self._finished = asyncio.Event()
        self._request_chains = {}
        if SERVER_REQUESTS in self._extensions:
            self._request_chains = {
                kind: settled(build_chain(answering(handler), self._middlewares), self._report)
                for kind, handler in self._handlers.items()
            }
        sender = _ClientSender(self, PeerInfo("server", link.remote_address, extensions=self._extensions))
        loop = self._loop = asyncio.get_running_loop()
        self._deadlines = Deadlines(loop, self._pending, self._expire)
        self._configuration_hook(config)
        self._set_status(Status.RUNNING)
        _log.info(
            "connected to %s (%s)",
            self.url,
            link.remote_address,
            extra=self._log_extra(address=link.remote_address, go_wire=not self._extensions),
        )
        self._predecoded = None
        link.set_direct(self._direct)
        self._reader = loop.create_task(self._read_loop(link, sender))
        if config.heartbeat_interval is not None:
            timeout = config.heartbeat_timeout or config.heartbeat_interval
            self._heartbeat = loop.create_task(keep_alive(link, config.heartbeat_interval, timeout, self._report))

    async def close(self, timeout: float | None = None) -> None:
        """Close handshake (code 1000), then wait for in-flight handlers.

        What was already sent is flushed first. Returns once CLOSED; handlers
        still running after `timeout` seconds are cancelled and reported.
        """
        if self._reconnecting is not None and not self._reconnecting.done() and self._status is not Status.RUNNING:
            await self._stop_reconnecting()
            return
        if self._status is not Status.RUNNING:
            raise NotRunningError("close", self._status.name)
        assert self._link is not None
        assert self._outbox is not None
        assert self._reader is not None
        self._closing_by_us = True
        self._set_status(Status.CLOSING)
        await self._outbox.flush(self._config.close_wait)
        try:
            async with asyncio.timeout(self._config.close_wait * 2):
                await self._link.close(CLOSE_NORMAL)
        except TimeoutError:
            self._link.abort()
        reader = self._reader
        done, _ = await asyncio.wait({reader}, timeout=self._config.close_wait)
        if not done and self._dispatcher is not None:
            # The read loop waits for room among handlers that do not finish (backpressure): drain
            # them (those left after `timeout` are cancelled and reported), so that it reads on and ends.
            await self._dispatcher.drain(timeout, "close")
        await asyncio.shield(reader)
        await self._finish(timeout)

    async def flush(self, timeout: float | None = None) -> bool:
        """Wait until every frame sent so far was written to the connection.

        Returns False if that did not happen within `timeout` seconds or the
        connection closed first (the error hooks then say how many were lost).
        """
        return await self._running_outbox("flush").flush(timeout)

    async def wait_closed(self) -> None:
        """Wait until the client reached CLOSED (e.g. after the server closed it)."""
        if self._finished is None:
            raise NotRunningError("wait for close", self._status.name)
        await self._finished.wait()

    async def __aenter__(self) -> Self:
        await self.connect()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._status is Status.RUNNING:
            await self.close()
        elif self._status is Status.CLOSING and self._finished is not None:
            await self._finished.wait()

    async def _finish(self, timeout: float | None) -> None:
        assert self._dispatcher is not None
        assert self._finished is not None
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            self._heartbeat = None
        await self._dispatcher.drain(timeout, "close")
        reconnect = self._config.reconnect is not None and not self._closing_by_us
        if not reconnect:
            # Subscriptions survive a lost connection when the client reconnects.
            self._topics.clear()
            self._topic_routes.clear()
            self._positions.clear()
            self._end_streams(None if self._closing_by_us else self._lost)
        self._set_status(Status.CLOSED)
        self._close_hook()
        self._finished.set()
        if reconnect:
            self._reconnecting = asyncio.get_running_loop().create_task(self._reconnect())

    # Reconnection.

    def on_reconnect(self, fn: ReconnectFn) -> ReconnectFn:
        """Call ``fn(attempt, delay, last_error)`` before each reconnection attempt."""
        self._reconnect_hook.add(fn)
        return fn

    async def _reconnect(self) -> None:
        policy = self._config.reconnect
        assert policy is not None
        delay = policy.initial_delay
        last_error: BaseException | None = None
        attempt = 0
        while policy.max_attempts is None or attempt < policy.max_attempts:
            attempt += 1
            wait = delay * (1.0 + random.uniform(-policy.jitter, policy.jitter))
            _log.info(
                "reconnecting to %s: attempt %d in %.3gs",
                self.url,
                attempt,
                wait,
                extra=self._log_extra(attempt=attempt, delay=wait, reason=str(last_error) if last_error else None),
            )
            self._reconnect_hook(attempt, wait, last_error)
            await asyncio.sleep(wait)
            delay = min(policy.max_delay, delay * policy.multiplier)
            try:
                await self.connect(timeout=self._config.handshake_timeout)
            except ConnectError as exc:
                last_error = exc
                if exc.retryable:
                    continue
                _log.info(
                    "stopped reconnecting to %s: refused with HTTP %s",
                    self.url,
                    exc.status,
                    extra=self._log_extra(attempt=attempt, status=exc.status, reason=exc.reason),
                )
                break  # refused (401, 403, ...): trying again cannot help; reported below
            outbox = self._outbox
            assert outbox is not None
            await self._resubscribe(outbox)
            return
        self._topics.clear()
        self._topic_routes.clear()
        self._positions.clear()
        failed = ReconnectFailedError(attempt, last_error)
        self._end_streams(failed)
        self._report(failed)

    async def _resubscribe(self, outbox: Outbox) -> None:
        """Subscribe again to every topic; with ``recovery``, ask for what followed the last position seen."""
        recovering = RECOVERY in self._extensions
        wildcards = WILDCARDS in self._extensions
        positions = self._positions
        for topic, group in sorted(self._topics | self._streams.keys()):
            if group:  # a queue group has no history to catch up on: one member got each
                await outbox.put(encode_subscribe(topic, group=group))
                continue
            since = ""
            if recovering:
                if wildcards and is_pattern(topic):
                    if self._patterns_fed:
                        self._report(RecoveryError(topic, reason="wildcard subscriptions are not recovered"))
                else:
                    since = positions.get(topic, "")
                    if not since:  # cut before the server named where this subscription began
                        why = "the connection was lost before the server named the subscription's position"
                        self._report(RecoveryError(topic, reason=why))
            elif topic in positions or (self._patterns_fed and is_pattern(topic)):
                self._report(RecoveryError(topic, reason="the server does not recover (a Go server?)"))
            await outbox.put(encode_subscribe(topic, since))
        self._patterns_fed = False
        if not recovering:
            positions.clear()

    def on_recovery(self, fn: RecoveryFn) -> RecoveryFn:
        """Call ``fn(topic, replayed, error)`` when the server has replayed what a reconnect missed on `topic`.

        `replayed` publications came back, before any newer one; `error` is
        None when nothing is lost, else the :class:`RecoveryError` that also
        goes to the error hooks.
        """
        self._recovery_hook.add(fn)
        return fn

    def _recovered(self, frame: Frame) -> None:
        """The frame that ends a replay, or names a new subscription's position (``recovery``)."""
        headers = frame.headers
        topic = headers.get(TOPIC_HEADER, "")
        position = headers.get(POSITION_HEADER, "")
        if position:
            self._positions[topic] = position
        if RECOVERED_HEADER not in headers:
            return
        count = headers[RECOVERED_HEADER]
        replayed = int(count) if count.isdigit() and len(count) <= 19 else 0
        error: RecoveryError | None = None
        missed = headers.get(MISSED_HEADER, "")
        if missed == "?":
            error = RecoveryError(topic, reason=headers.get(REASON_HEADER, ""))
        elif missed:
            first, _, last = missed.partition("-")
            if first.isdigit() and last.isdigit() and len(first) <= 19 and len(last) <= 19:
                error = RecoveryError(topic, int(first), int(last))
            else:
                error = RecoveryError(topic, reason=f"the server reported {missed[:64]!r}")
        if error is not None:
            self._report(error)
        self._recovery_hook(topic, replayed, error)

    async def _stop_reconnecting(self) -> None:
        task, self._reconnecting = self._reconnecting, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._topics.clear()
        self._topic_routes.clear()
        self._positions.clear()
        self._end_streams(None)
        if self._status is Status.RUNNING:
            await self.close()

    def _connection_ended(self, reason: ConnectionLostError) -> None:
        if self._status is Status.RUNNING:
            self._set_status(Status.CLOSING)
        self._lost = None if reason.code == CLOSE_NORMAL else reason
        _log.info(
            "disconnected from %s: %s",
            self.url,
            reason.reason,
            extra=self._log_extra(code=reason.code, reason=reason.reason),
        )
        assert self._outbox is not None
        dropped = self._outbox.close(reason)
        if dropped:
            self._report(
                ConnectionLostError(
                    f"{frames_text(dropped)} queued and never sent ({reason.reason})", reason.code, dropped
                )
            )
        self._left_all()  # nothing more comes for the queue groups being left
        pending = list(self._pending.values())
        self._pending.clear()  # in place: the deadlines read this very dict
        if self._deadlines is not None:
            self._deadlines.clear()
        for call in pending:
            if not call.future.done():
                call.future.set_exception(reason)

    # Reading.

    def _direct(self, data: bytes) -> bool:
        """A reply that arrives while the read loop waits completes its call here, from the transport.

        Saves the loop turn of waking the read loop (the caller still wakes):
        a third of a round trip's turns. Anything else (and anything that does
        not decode) is left to the read loop, which reports it.
        """
        if not self._pending:
            return False
        try:
            frame = decode_frame(data)
        except FrameDecodeError:
            return False
        if not frame.is_sync or (CALL_HEADER in frame.headers and SERVER_REQUESTS in self._extensions):
            self._predecoded = (data, frame)
            return False
        self._complete(frame)
        return True

    async def _read_loop(self, link: Link, sender: _ClientSender) -> None:
        classes = self._registry.classes
        dispatcher = self._dispatcher
        assert dispatcher is not None
        report = self._report
        reason = ConnectionLostError("the server closed the connection", CLOSE_NORMAL)
        answers = SERVER_REQUESTS in self._extensions
        recovering = RECOVERY in self._extensions
        positions = self._positions
        try:
            while True:
                data: bytes | str | Resume | None = link.recv_nowait()
                if data is None:
                    try:
                        data = await link.recv()
                    except LinkClosed as exc:
                        if self._closing_by_us:
                            reason = ConnectionLostError("the client closed the connection", exc.code)
                        elif exc.too_big:
                            reason = ConnectionLostError(f"message too big: {exc}", exc.code)
                            report(MessageTooBigError(str(exc)))
                        elif not exc.clean:
                            reason = ConnectionLostError(str(exc), exc.code)
                            report(reason)
                        break
                if isinstance(data, Resume):  # what a direct callable began (ours never leaves any)
                    await data
                    continue
                if isinstance(data, str):
                    report(TextFrameError(len(data)))
                    continue
                predecoded = self._predecoded
                if predecoded is not None and predecoded[0] is data:
                    frame = predecoded[1]
                    self._predecoded = None
                else:
                    try:
                        frame = decode_frame(data)
                    except FrameDecodeError as exc:
                        report(exc)
                        continue
                if frame.is_sync:
                    if answers and CALL_HEADER in frame.headers:
                        await self._answer_request(frame, sender.peer)
                    else:
                        self._complete(frame)
                    continue
                try:
                    msg = decode_message(frame, classes)
                except (UnknownKindError, PayloadDecodeError) as exc:
                    if recovering and frame.kind == RECOVERY_KIND:
                        self._recovered(frame)
                    elif frame.kind == UNSUBSCRIBE_KIND and QUEUE_GROUPS in self._extensions:
                        self._confirmed(frame)  # a queue group left: the server's confirmation
                    else:
                        report(exc)
                    continue
                if recovering and (position := msg.headers.pop(POSITION_HEADER, None)) is not None:
                    topic = msg.metadata.topic
                    plain = (topic, "")
                    if plain in self._topics or plain in self._streams:
                        positions[topic] = position
                    else:
                        self._patterns_fed = True
                if (self._topic_routes or self._streams) and (chains := self._topic_chains(msg)) is not None:
                    for chain in chains:
                        await dispatcher.dispatch(sender, msg, chain)
                    continue
                await dispatcher.dispatch(sender, msg)
        finally:
            self._connection_ended(reason)
        if not self._closing_by_us:
            await self._finish(self._config.close_wait)

    async def _answer_request(self, frame: Frame, peer: PeerInfo) -> None:
        """A request of the server: run the chain of its kind, which answers (see ``_answer.py``)."""
        replier = RequestSender(peer, frame.uuid, self.send, self._send_reply)
        try:
            msg = decode_message(frame, self._registry.classes)
        except (UnknownKindError, PayloadDecodeError) as exc:
            self._report(exc)
            await replier.fail(frame.kind, exc)
            return
        del msg.headers[CALL_HEADER]
        assert self._dispatcher is not None
        # Without a chain of its kind, the dispatcher answers NoHandlerError.
        await self._dispatcher.dispatch(replier, msg, self._request_chains.get(msg.kind))

    async def _send_reply(self, data: bytes, kind: str, size: int) -> None:
        """Queue a reply to the server's request; one the closed connection cannot take is reported."""
        lost = f"reply of kind {kind!r} to the server's request never sent"
        outbox = self._outbox
        if outbox is None or self._status is not Status.RUNNING:
            self._report(ConnectionLostError(f"{lost}: the client is {self._status.name}"))
            return
        started = time.perf_counter()
        try:
            if not outbox.offer(data):
                await outbox.put(data)
        except ConnectionLostError as exc:
            self._report(ConnectionLostError(f"{lost}: {exc.reason}", exc.code))
            return
        if size >= 0 and self._send_hook.callables:
            self._send_hook(kind, size, time.perf_counter() - started)

    def _expire(self, request_id: str, timeout: float) -> None:
        call = self._pending.get(request_id)
        if call is not None and not call.future.done():
            call.future.set_exception(SyncTimeoutError(call.kind, timeout))

    def _complete(self, frame: Frame) -> None:
        call = self._pending.pop(frame.uuid, None)
        if call is None or call.future.done():
            self._report(UnknownReplyError(frame.uuid, frame.kind))
            return
        fut = call.future
        try:
            fut.set_result(read_reply(frame, call.expect, self._registry.classes))
        except RemoteHandlerError as exc:
            fut.set_exception(exc)
        except (UnknownKindError, PayloadDecodeError, UnexpectedReplyError) as exc:
            # The caller gets it, and so do the error hooks: no frame stops the read loop.
            fut.set_exception(exc)
            self._report(exc)

    # Sending.

    def _running_outbox(self, operation: str) -> Outbox:
        if self._status is not Status.RUNNING or self._outbox is None:
            raise NotRunningError(operation, self._status.name)
        return self._outbox

    async def send(self, msg: Message[ProtoMessage] | ProtoMessage) -> int:
        """Fire and forget: send `msg` to the server; returns the payload size."""
        outbox = self._running_outbox("send")
        hook = self._send_hook
        started = time.perf_counter() if hook.callables else 0.0  # no clock reads while nobody listens
        data, size, kind = encode_message(msg)
        if not outbox.offer(data):
            await outbox.put(data)
        if hook.callables:
            hook(kind, size, time.perf_counter() - started)
        return size

    @overload
    async def send_sync(
        self, msg: Message[ProtoMessage] | ProtoMessage, *, timeout: float | None = None, expect: None = None
    ) -> Message[ProtoMessage]: ...

    @overload
    async def send_sync(
        self, msg: Message[ProtoMessage] | ProtoMessage, *, timeout: float | None = None, expect: type[R]
    ) -> Message[R]: ...

    @overload
    async def send_sync(
        self,
        msg: Message[ProtoMessage] | ProtoMessage,
        *,
        timeout: float | None = None,
        expect: tuple[type[R], type[R2]],
    ) -> Message[R | R2]: ...

    @overload
    async def send_sync(
        self,
        msg: Message[ProtoMessage] | ProtoMessage,
        *,
        timeout: float | None = None,
        expect: tuple[type[R], type[R2], type[R3]],
    ) -> Message[R | R2 | R3]: ...

    @overload
    async def send_sync(
        self,
        msg: Message[ProtoMessage] | ProtoMessage,
        *,
        timeout: float | None = None,
        expect: tuple[type[ProtoMessage], ...],
    ) -> Message[ProtoMessage]: ...

    async def send_sync(
        self,
        msg: Message[ProtoMessage] | ProtoMessage,
        *,
        timeout: float | None = None,
        expect: type[ProtoMessage] | tuple[type[ProtoMessage], ...] | None = None,
    ) -> Message[ProtoMessage]:
        """Send a request and wait for its reply.

        The reply may be of any registered kind. With `expect` (a class or a
        tuple of classes) only those kinds are accepted, they need no
        registration, and a class or a tuple of two or three types the
        result (as their union). Raises
        :class:`SyncTimeoutError` after `timeout` seconds,
        :class:`ConnectionLostError` at once if the connection ends first,
        :class:`RemoteHandlerError` if the server's handler raised and
        :class:`UnexpectedReplyError` for a reply kind outside `expect`.
        """
        outbox = self._running_outbox("send_sync")
        if timeout is not None and timeout != timeout:  # NaN
            raise ValueError("send_sync timeout is NaN")
        limit = self._config.max_pending_sync
        if limit is not None and len(self._pending) >= limit:
            raise LimitError("client", "max_pending_sync", limit, "too many send_sync calls waiting")
        started = time.perf_counter()
        request_id = self._request_ids.next()
        data, size, kind = encode_message(msg, uuid=request_id, is_sync=True)
        assert self._loop is not None  # set while RUNNING, which the outbox implies
        fut: asyncio.Future[Message[ProtoMessage]] = self._loop.create_future()
        pending = self._pending
        # The request leaves first when it can go at once: no reply is read before this task yields, so the
        # bookkeeping below overlaps the server's work instead of delaying the request.
        sent = outbox.offer(data)
        pending[request_id] = _Pending(kind, fut, None if expect is None else accepted(expect))
        if timeout is not None:  # no task cancellation scope nor timer per call: see _deadlines.py
            assert self._deadlines is not None
            self._deadlines.add(request_id, timeout)
        try:
            if not sent:
                await outbox.put(data)
            if self._send_hook.callables:
                self._send_hook(kind, size, time.perf_counter() - started)
            reply = await fut
        except GoomerangError as exc:
            if self._sync_hook.callables:
                self._sync_hook(kind, time.perf_counter() - started, exc)
            raise
        finally:
            self._pending.pop(request_id, None)
        if self._sync_hook.callables:
            self._sync_hook(kind, time.perf_counter() - started, None)
        return reply

    # Broadcast and pub/sub commands (the server does the fan-out).

    async def broadcast(self, msg: Message[ProtoMessage] | ProtoMessage) -> int:
        """Ask the server to send `msg` to every connected client, this one included."""
        outbox = self._running_outbox("broadcast")
        m = as_message(msg)
        data, size = encode_broadcast(m)
        await outbox.put(data)
        self._broadcast_hook(m.kind)
        return size

    async def publish(self, topic: str, msg: Message[ProtoMessage] | ProtoMessage) -> int:
        """Ask the server to send `msg` to every subscriber of `topic`."""
        outbox = self._running_outbox("publish")
        m = as_message(msg)
        if WILDCARDS in self._extensions:
            validate_topic(topic)  # a Go server takes any string: a plain topic
        data, size = encode_publish(topic, m)
        await outbox.put(data)
        self._publish_hook(topic, m.kind)
        return size

    @overload
    async def subscribe(self, topic: str, *, group: str | None = None) -> None: ...

    @overload
    async def subscribe(
        self, topic: str, kind: type[P], handler: Handler[P] | HandlerObject[P], *, group: str | None = None
    ) -> None: ...

    async def subscribe(
        self,
        topic: str,
        kind: type[ProtoMessage] | None = None,
        handler: Handler[Any] | HandlerObject[Any] | None = None,
        *,
        group: str | None = None,
    ) -> None:
        """Receive what is published on `topic` (wildcards: see :mod:`.topics`).

        Without a handler, publications go to the handler of their kind. With
        `kind` and `handler`, publications of that kind on matching topics go
        to `handler` (through the middlewares), and `kind` is registered.

        With `group`, this client joins that queue group: each publication
        goes to one member of the group (on any replica) instead of to all.
        Raises :class:`GroupError` for a bad name, or when the server does
        not take groups (a Go server, or ``extensions=False``).
        """
        outbox = self._running_outbox("subscribe")
        if WILDCARDS in self._extensions:
            validate_pattern(topic)  # a Go server takes any string: a plain topic
        key = (topic, self._check_group(group))
        if handler is not None and kind is not None:
            self._registry.register(kind)
            self._topic_routes[key] = (kind_of(kind), build_chain(to_handler(handler), self._middlewares))
        await outbox.put(encode_subscribe(key[0], group=key[1]))
        self._topics.add(key)
        self._subscribe_hook(topic)

    def _check_group(self, group: str | None) -> str:
        """`group` checked ("" for None); raises GroupError when the server does not take groups."""
        if group is None:
            return ""
        validate_group(group)
        if QUEUE_GROUPS not in self._extensions:
            why = "the server does not take queue groups (a Go server, or extensions=False on either side)"
            raise GroupError(group, why)
        return group

    async def unsubscribe(
        self, topic: str, *, group: str | None = None, timeout: float | None = DEFAULT_LEAVE_TIMEOUT
    ) -> None:
        """Stop receiving what is published on `topic`.

        Subscription iterators on exactly `topic` end too (after what they buffered).

        With `group`, leave that queue group: the server gives later
        publications to the other members, and what it already routed here
        still reaches this subscription's handler or iterators. Returns once
        the server confirmed (then nothing more comes), or raises
        :class:`SyncTimeoutError` after `timeout` seconds, dropping what
        might still come. Do not await it in a handler run inline by the read
        loop (``max_concurrency`` 1): the confirmation would wait behind it.
        """
        outbox = self._running_outbox("unsubscribe")
        key = (topic, self._check_group(group))
        if not key[1]:
            await outbox.put(encode_unsubscribe(topic))
            self._topics.discard(key)
            self._positions.pop(topic, None)
            self._drop_key(key)
            self._unsubscribe_hook(topic)
            return
        leave = self._leaving.get(key)
        if leave is None:
            leave = self._leaving[key] = _Leave()
        leave.owed += 1
        try:
            await outbox.put(encode_unsubscribe(key[0], group=key[1]))
        except BaseException:
            self._owe_less(key)
            raise
        self._topics.discard(key)
        self._unsubscribe_hook(topic)
        try:
            async with asyncio.timeout(timeout):
                await asyncio.shield(leave.done)
        except TimeoutError:
            if self._leaving.get(key) is leave:
                del self._leaving[key]
                self._finish_leave(key, leave)
            raise SyncTimeoutError(UNSUBSCRIBE_KIND, timeout or 0.0) from None

    def _drop_key(self, key: _Key) -> None:
        """No more publications for `key`: forget its handler, end its iterators."""
        self._topic_routes.pop(key, None)
        for sub in self._streams.pop(key, []):
            self._forget_kind(sub)
            sub._end(None)

    def _owe_less(self, key: _Key) -> None:
        leave = self._leaving.get(key)
        if leave is not None:
            leave.owed -= 1
            if leave.owed <= 0:
                del self._leaving[key]
                self._finish_leave(key, leave)

    def _finish_leave(self, key: _Key, leave: _Leave) -> None:
        if key not in self._topics:  # not joined again meanwhile
            self._drop_key(key)
        if not leave.done.done():
            leave.done.set_result(None)

    def _confirmed(self, frame: Frame) -> None:
        """The server confirmed a queue group was left: everything it routed here came before."""
        try:
            cmd = decode_command(frame)
        except PayloadDecodeError as exc:
            self._report(exc)
            return
        if isinstance(cmd, UnsubscribeCommand):
            self._owe_less((cmd.topic, cmd.group))

    def _left_all(self) -> None:
        """The connection ended: no confirmation will come, and nothing more for the groups being left."""
        leaving, self._leaving = self._leaving, {}
        for key, leave in leaving.items():
            self._finish_leave(key, leave)

    def subscription(
        self,
        topic: str,
        kind: type[P],
        *,
        max_pending: int = DEFAULT_MAX_PENDING,
        max_pending_bytes: int = DEFAULT_MAX_PENDING_BYTES,
        group: str | None = None,
    ) -> Subscription[P]:
        """A subscription to `topic` (wildcards allowed) read as an async iterator of ``Message[P]``.

        ::

            async with client.subscription("rooms.*", Said) as sub:
                async for msg in sub:
                    ...

        Entering the block subscribes (the client must be RUNNING) and
        registers `kind`; leaving it unsubscribes, unless another
        subscription of this client uses the same topic. Up to
        `max_pending` messages and `max_pending_bytes` payload bytes wait
        for the reader; past that the subscription ends as a slow consumer
        (:class:`SlowSubscriptionError`, reported and raised by the
        iterator once it drained the buffer). With `group`, a member of
        that queue group, as :meth:`subscribe`. See
        :mod:`goomerang_runtime.subscription`.
        """
        problems = {
            name: "must be greater than 0"
            for name, value in (("max_pending", max_pending), ("max_pending_bytes", max_pending_bytes))
            if value <= 0
        }
        if problems:
            raise ConfigError("subscription", problems)
        if group is not None:
            validate_group(group)
        return Subscription(
            topic, kind, max_pending, max_pending_bytes, self._open_stream, self._close_stream, group or ""
        )

    async def _open_stream(self, sub: Subscription[Any]) -> None:
        outbox = self._running_outbox("subscribe")
        topic = sub.topic
        if WILDCARDS in self._extensions:
            validate_pattern(topic)  # a Go server takes any string: a plain topic
        key = (topic, self._check_group(sub.group or None))
        self._registry.register(sub.kind)
        subscribed = key in self._topics or key in self._streams
        self._streams.setdefault(key, []).append(sub)
        kind = kind_of(sub.kind)
        self._stream_kinds[kind] = self._stream_kinds.get(kind, 0) + 1
        if not subscribed:
            try:
                await outbox.put(encode_subscribe(key[0], group=key[1]))
            except BaseException:
                self._drop_stream(sub)
                raise
            self._subscribe_hook(topic)

    async def _close_stream(self, sub: Subscription[Any]) -> None:
        if not self._drop_stream(sub):
            return
        topic = sub.topic
        if self._status is Status.RUNNING and self._outbox is not None:
            await self._outbox.put(encode_unsubscribe(topic, group=sub.group))
            self._unsubscribe_hook(topic)

    def _drop_stream(self, sub: Subscription[Any]) -> bool:
        """Forget `sub`; True when nothing else of this client uses its key (time to unsubscribe)."""
        key = (sub.topic, sub.group)
        subs = self._streams.get(key)
        if subs is None or sub not in subs:
            return False
        subs.remove(sub)
        self._forget_kind(sub)
        if subs:
            return False
        del self._streams[key]
        return key not in self._topics

    def _forget_kind(self, sub: Subscription[Any]) -> None:
        kind = kind_of(sub.kind)
        left = self._stream_kinds.get(kind, 0) - 1
        if left > 0:
            self._stream_kinds[kind] = left
        else:
            self._stream_kinds.pop(kind, None)

    def _end_streams(self, error: BaseException | None) -> None:
        streams = [sub for subs in self._streams.values() for sub in subs]
        self._streams.clear()
        self._stream_kinds.clear()
        for sub in streams:
            sub._end(error)

    def _overflow(self, sub: Subscription[Any]) -> None:
        """A subscription's reader fell behind: end it, report it, unsubscribe if it was the topic's last."""
        error = SlowSubscriptionError(sub.topic, kind_of(sub.kind), sub.pending, sub.pending_bytes)
        sub._end(error)
        self._report(error)
        if self._drop_stream(sub) and self._outbox is not None:
            data = encode_unsubscribe(sub.topic, group=sub.group)
            if not self._outbox.offer(data):
                task = asyncio.get_running_loop().create_task(self._outbox.put(data))
                self._unsubscribing.add(task)
                task.add_done_callback(self._unsubscribed)
            self._unsubscribe_hook(sub.topic)

    def _unsubscribed(self, task: asyncio.Task[None]) -> None:
        self._unsubscribing.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved: a connection that ended first has nothing subscribed any more

    def _topic_chains(self, msg: Message[ProtoMessage]) -> list[Handler[Any]] | None:
        """Handlers of the callback subscriptions a publication belongs to; iterators get it here.

        A Python server names the topic of each publication it delivers. A
        message without one (any push from a Go server) goes to the handler of
        its kind if there is one, else to every subscription of its kind.
        A delivery for a queue group goes to one subscription of that group
        only (the first that matches: a handler, else an iterator), and a
        plain one to the plain subscriptions only.
        None: no subscription takes it (it goes to the handler of its kind).
        """
        metadata = msg.metadata
        topic = metadata.topic
        group = metadata.group
        kind = msg.kind
        if group:
            return self._group_chains(msg, topic, group)
        if not topic and self._dispatcher is not None and self._dispatcher.handles(kind):
            return None
        chains = [
            chain
            for (pattern, in_group), (route_kind, chain) in self._topic_routes.items()
            if route_kind == kind and not in_group and (not topic or pattern_matches(pattern, topic))
        ]
        delivered = False
        if kind in self._stream_kinds:
            for (pattern, in_group), subs in list(self._streams.items()):
                if in_group or (topic and not pattern_matches(pattern, topic)):
                    continue
                for sub in list(subs):
                    if kind_of(sub.kind) == kind:
                        delivered = True
                        if not sub._put(msg):
                            self._overflow(sub)
        return chains if chains or delivered else None

    def _group_chains(self, msg: Message[ProtoMessage], topic: str, group: str) -> list[Handler[Any]] | None:
        kind = msg.kind
        for (pattern, in_group), (route_kind, chain) in self._topic_routes.items():
            if in_group == group and route_kind == kind and (not topic or pattern_matches(pattern, topic)):
                return [chain]
        if kind in self._stream_kinds:
            for (pattern, in_group), subs in self._streams.items():
                if in_group != group or (topic and not pattern_matches(pattern, topic)):
                    continue
                for sub in subs:
                    if kind_of(sub.kind) == kind:
                        if not sub._put(msg):
                            self._overflow(sub)
                        return []
        return None
