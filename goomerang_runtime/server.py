"""The goomerang server: accepts WebSocket clients and dispatches their frames."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import http
import inspect
import itertools
import logging
import time
import weakref
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import TYPE_CHECKING, NamedTuple, Self, TypeVar, Unpack, overload
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server as WsServer
from websockets.asyncio.server import ServerConnection as WsConnection
from websockets.asyncio.server import serve
from websockets.http11 import Request, Response

from ._calls import ServerCalls
from ._codec import (
    CALL_HEADER,
    COMMAND_KINDS,
    BroadcastCommand,
    Command,
    PublishCommand,
    SubscribeCommand,
    UnsubscribeCommand,
    decode_command,
    decode_frame,
    decode_message,
    encode_frame,
    encode_message,
)
from ._connection import ConnectionSender, ReplySender, ServerConnection, as_message
from ._dispatch import Dispatcher
from ._fastrecv import GoCloseCodes, InboxServerConnection, InflateBudget
from ._gate import ReceiveGate
from ._heartbeat import Heartbeats
from ._history import History
from ._limits import TokenBucket
from ._link import CLOSE_POLICY_VIOLATION, CLOSE_TRY_AGAIN_LATER, Link, LinkClosed, WebSocketLink, format_address
from ._outbox import frames_text
from ._peer import PeerBase
from ._pubsub import PubSub
from ._resume import Resume, TaskStepper
from .auth import Action, Authenticator, HandshakeRequest
from .config import DEFAULT_HISTORY_LINGER, ServerConfig, ServerOptions, parse_address
from .errors import (
    AlreadyRunningError,
    AuthenticationError,
    AuthorizationError,
    ConnectionLostError,
    FrameDecodeError,
    GoomerangError,
    GroupError,
    HookError,
    LimitError,
    MessageTooBigError,
    NotRunningError,
    PayloadDecodeError,
    ProtocolError,
    SlowConsumerError,
    TextFrameError,
    TopicError,
    UnknownKindError,
    UnsupportedPeerError,
)
from .extensions import (
    CLOSE_CODES,
    EXTENSIONS_HEADER,
    GO_WIRE,
    QUEUE_GROUPS,
    SERVER_REQUESTS,
    SUPPORTED,
    format_extensions,
    negotiate,
)
from .handler import PeerInfo, PeerRef
from .hooks import Hook
from .message import Message, ProtoMessage
from .routes import Route, answer_route
from .status import Status
from .topics import validate_group, validate_pattern, validate_topic

if TYPE_CHECKING:
    from ._picows import PicowsServer

__all__ = ["BroadcastResult", "Server"]

Fn = TypeVar("Fn", bound=Callable[..., object])
R = TypeVar("R", bound=ProtoMessage)
R2 = TypeVar("R2", bound=ProtoMessage)
R3 = TypeVar("R3", bound=ProtoMessage)

_TURN = 32
"""Frames a connection's read loop handles in a row, without waiting to read, before it yields a turn."""

_log = logging.getLogger("goomerang.server")
"""Connections, disconnections and refused handshakes; extras ``peer`` (the id, None before one is given),
``address`` and, for refusals, ``status`` and ``reason``."""


def _refuse(ws: WsConnection, status: int, text: str, level: int = logging.INFO) -> Response:
    """Answer a handshake with an HTTP error, and log the refusal."""
    if _log.isEnabledFor(level):
        remote = ws.remote_address
        address = f"{remote[0]}:{remote[1]}" if isinstance(remote, tuple) else str(remote)
        reason = text.strip()
        _log.log(
            level,
            "refused %s: HTTP %d %s",
            address,
            status,
            reason,
            extra={"peer": None, "address": address, "status": status, "reason": reason},
        )
    return ws.respond(status, text)


def _peer_id(to: PeerRef) -> str:
    """The connection id `to` names."""
    if isinstance(to, str):
        return to
    if isinstance(to, PeerInfo):
        return to.id
    return to.peer.id


def _check_topic(topic: str) -> str:
    """A Go client's topic or subscription: any string but the empty one.

    Go allows an empty topic too; here it would be taken for a broadcast
    between replicas, so it is refused and reported.
    """
    if not topic:
        raise TopicError(topic, "must not be empty")
    return topic


class BroadcastResult(NamedTuple):
    """What a broadcast did for one client (a named tuple: cheap to make per client)."""

    peer: PeerInfo
    size: int
    """Payload bytes queued for the client (0 on error)."""
    duration: float
    """Seconds until the frame was queued for the client."""
    error: GoomerangError | None = None
    """Why the client did not get the frame, if it did not."""


class Server(PeerBase[ServerConfig]):
    """A goomerang server.

    ::

        server = Server(listen="127.0.0.1:8080")
        server.handle(Ping, on_ping)
        async with server:            # or: await server.run()
            ...

    Options are keyword arguments validated by :class:`ServerConfig`. The
    endpoint is ``/ws``, or ``/wss`` when `tls` is set. A server runs once.
    """

    _side = "server"

    def __init__(self, **options: Unpack[ServerOptions]) -> None:
        super().__init__(ServerConfig.from_options("server", dict(options)))
        self._ws_server: WsServer | PicowsServer | None = None
        self._dispatcher: Dispatcher | None = None
        self._connections: dict[str, ServerConnection] = {}
        self._ids = itertools.count(1)
        self._addr: str | None = None
        self._closed: asyncio.Event | None = None
        self._principals: weakref.WeakKeyDictionary[object, object] = weakref.WeakKeyDictionary()
        """Each handshake connection's principal, from authentication until it is served."""
        config = self._config
        history = (
            History(config.history_size, config.history_ttl, max_bytes=config.history_max_bytes)
            if config.history_size
            else None
        )
        linger = config.history_ttl if config.history_ttl is not None else DEFAULT_HISTORY_LINGER
        self._pubsub = PubSub(config.broker, self._connections.values, self._report, history, linger)
        self._heartbeats: Heartbeats | None = None
        """Pings every connection each ``heartbeat_interval`` (one task for all of them)."""
        if config.heartbeat_interval is not None:
            timeout = config.heartbeat_timeout or config.heartbeat_interval
            self._heartbeats = Heartbeats(config.heartbeat_interval, timeout, self._report)
        self._calls = ServerCalls(self._registry.classes, self._report)
        self._broadcast_hook: Hook[[str, list[BroadcastResult], float]] = Hook("on_broadcast", self._report)
        self._client_broadcast_hook: Hook[[str]] = Hook("on_client_broadcast", self._report)
        self._subscribe_hook: Hook[[str]] = Hook("on_subscribe", self._report)
        self._unsubscribe_hook: Hook[[str]] = Hook("on_unsubscribe", self._report)
        self._publish_hook: Hook[[str, str]] = Hook("on_publish", self._report)
        self._connect_hook: Hook[[PeerInfo]] = Hook("on_connect", self._report)
        self._disconnect_hook: Hook[[PeerInfo]] = Hook("on_disconnect", self._report)
        self._routes: dict[str, Route] = {}

    # Where it listens.

    @property
    def endpoint(self) -> str:
        """The WebSocket path: ``/ws``, or ``/wss`` with TLS."""
        return "/wss" if self._config.tls is not None else "/ws"

    @property
    def addr(self) -> str:
        """The bound ``host:port`` (the real port when listening on port 0)."""
        if self._addr is None:
            raise NotRunningError("read the address", self._status.name)
        return self._addr

    @property
    def url(self) -> str:
        """``ws://host:port/ws`` or ``wss://host:port/wss``."""
        scheme = "wss" if self._config.tls is not None else "ws"
        return f"{scheme}://{self.addr}{self.endpoint}"

    @property
    def peers(self) -> list[PeerInfo]:
        """The clients connected now."""
        return [conn.peer for conn in self._connections.values()]

    @property
    def pending_sync(self) -> int:
        """:meth:`send_sync` calls waiting for a client's reply now."""
        return len(self._calls)

    @property
    def replica_id(self) -> str:
        """This server's id among the replicas sharing its broker (random per server)."""
        return self._pubsub.replica

    # Pub/sub hooks.

    def on_broadcast(self, fn: Fn) -> Fn:
        """Call ``fn(kind, results, duration)`` after each broadcast."""
        self._broadcast_hook.add(fn)
        return fn

    def on_client_broadcast(self, fn: Fn) -> Fn:
        """Call ``fn(kind)`` when a client asks for a broadcast."""
        self._client_broadcast_hook.add(fn)
        return fn

    def on_subscribe(self, fn: Fn) -> Fn:
        """Call ``fn(topic)`` when a client subscribes."""
        self._subscribe_hook.add(fn)
        return fn

    def on_unsubscribe(self, fn: Fn) -> Fn:
        """Call ``fn(topic)`` when a client unsubscribes."""
        self._unsubscribe_hook.add(fn)
        return fn

    def on_connect(self, fn: Fn) -> Fn:
        """Call ``fn(peer)`` when a client is connected (after authentication)."""
        self._connect_hook.add(fn)
        return fn

    def on_disconnect(self, fn: Fn) -> Fn:
        """Call ``fn(peer)`` once a client's connection ended and its state is gone."""
        self._disconnect_hook.add(fn)
        return fn

    def on_publish(self, fn: Fn) -> Fn:
        """Call ``fn(topic, kind)`` for each publication (client or server)."""
        self._publish_hook.add(fn)
        return fn

    # Plain HTTP routes on the same listener.

    def route(self, path: str, fn: Route) -> None:
        """Answer ``GET path`` on the server's listener with ``fn(request)``.

        `fn` returns ``(status, headers, body)`` (e.g. an
        :class:`~goomerang_runtime.routes.HttpResponse`); it runs in the event
        loop, so it must be quick. Routes answer in every status, and one
        that raises answers 500 and is reported as :class:`RouteError`.
        Register routes before the server starts; the WebSocket endpoints
        ``/ws`` and ``/wss`` cannot be routes.
        """
        self._check_open(f"a route for {path!r}")
        if not path.startswith("/") or "?" in path:
            raise ValueError(f"a route path starts with '/' and has no query: {path!r}")
        if path in ("/ws", "/wss"):
            raise ValueError(f"{path!r} is a WebSocket endpoint")
        if path in self._routes:
            raise ValueError(f"{path!r} already has a route")
        self._routes[path] = fn

    # Lifecycle.

    async def start(self, *, listen: bool = True) -> None:
        """Start listening; returns once RUNNING. See also :meth:`run`.

        With ``listen=False`` no socket is opened: clients are attached with
        :meth:`serve_link` (what :mod:`goomerang_runtime.testing` does).
        """
        if self._status is not Status.NEW:
            raise AlreadyRunningError(f"a server runs only once (status {self._status.name})")
        config = self._config
        self._dispatcher = Dispatcher(
            self._build_chains(),
            config.max_concurrency,
            self._worker_start_hook,
            self._worker_end_hook,
            self._report,
        )
        self._closed = asyncio.Event()
        if not listen:
            self._addr = "in-memory"
            self._configuration_hook(config)
            self._set_status(Status.RUNNING)
            return
        host, port = parse_address(config.listen)
        if config.transport == "picows":
            from ._picows import serve as picows_serve  # the optional extra: imported only when used

            self._ws_server = await picows_serve(
                self._serve_handshake,
                host,
                port,
                ssl=config.tls,
                process_request=self._process_request,
                process_response=self._process_response,
                open_timeout=config.handshake_timeout,
                close_timeout=config.close_wait,
                max_size=config.max_message_size,
            )
        else:
            self._ws_server = await serve(
                self._serve_websocket,
                host,
                port,
                ssl=config.tls,
                process_request=self._process_request,
                process_response=self._process_response,
                compression="deflate" if config.compression else None,
                open_timeout=config.handshake_timeout,
                ping_interval=None,  # only clients ping (PROTOCOL.md)
                ping_timeout=None,
                close_timeout=config.close_wait,
                max_size=config.max_message_size,
                server_header=None,
                create_connection=InboxServerConnection,
            )
        try:
            await self._pubsub.start()
        except BaseException:
            self._ws_server.close()
            raise
        sockname = self._ws_server.sockets[0].getsockname()
        self._addr = f"[{sockname[0]}]:{sockname[1]}" if ":" in sockname[0] else f"{sockname[0]}:{sockname[1]}"
        self._configuration_hook(config)
        self._set_status(Status.RUNNING)

    async def run(self, *, shutdown_timeout: float | None = None) -> None:
        """Start and serve until :meth:`shutdown` completes.

        Cancelled (Ctrl-C under ``asyncio.run``, an enclosing task group or
        timeout ending), it shuts down gracefully first: every client gets a
        close frame (1000) and running handlers finish within
        `shutdown_timeout`, then the cancellation goes on. To stop on SIGTERM
        as well, run it inside :func:`goomerang_runtime.graceful_exit`.
        """
        await self.start()
        closed = self._closed
        assert closed is not None
        try:
            await closed.wait()
        except asyncio.CancelledError:
            if self._status is Status.RUNNING:
                await self.shutdown(shutdown_timeout)
            else:  # a shutdown under way: let it finish
                await closed.wait()
            raise

    async def wait_closed(self) -> None:
        """Wait until the server reached CLOSED."""
        if self._closed is None:
            raise NotRunningError("wait for close", self._status.name)
        await self._closed.wait()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._status is Status.RUNNING:
            await self.shutdown()

    async def shutdown(self, timeout: float | None = None) -> None:
        """Close every client (code 1000, in parallel), then wait for handlers.

        Returns once CLOSED. Handlers still running after `timeout` seconds
        are cancelled and reported to the error hooks.
        """
        if self._status is not Status.RUNNING:
            raise NotRunningError("shut down", self._status.name)
        assert self._dispatcher is not None
        assert self._closed is not None
        self._set_status(Status.CLOSING)
        # Go's order: close every client first (new upgrades get 503 meanwhile),
        # then stop listening, then close any client that slipped in between.
        await self._close_connections()
        if self._ws_server is not None:
            self._ws_server.close(close_connections=False)
        await self._close_connections()
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        # Clients' frames sent before they saw the close are still read and handled.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout_at(deadline):
                if self._ws_server is not None:
                    await self._ws_server.wait_closed()
                tasks = [conn.task for conn in self._connections.values() if conn.task is not None]
                if tasks:
                    await asyncio.wait(tasks)
        remaining = None if deadline is None else max(0.0, deadline - loop.time())
        await self._dispatcher.drain(remaining, "shutdown")
        # From here what a read loop still reads is reported, not handled: quick.
        readers = [conn.task for conn in self._connections.values() if conn.task is not None and not conn.task.done()]
        if readers:
            _, late = await asyncio.wait(readers, timeout=self._config.close_wait)
            for task in late:
                task.cancel()  # its frames still unread are reported as it ends
            if late:
                await asyncio.wait(late, timeout=self._config.close_wait)
        await self._pubsub.close()
        self._set_status(Status.CLOSED)
        self._close_hook()
        self._closed.set()

    async def _close_connections(self) -> None:
        conns = [conn for conn in self._connections.values() if not conn.closing]
        if conns:
            await asyncio.gather(*(conn.close() for conn in conns))

    # Handshake.

    async def _process_request(self, ws: WsConnection, request: Request) -> Response | None:
        url = urlsplit(request.path)
        route = self._routes.get(url.path)
        if route is not None:
            return answer_route(route, request, self._report)
        if url.path != self.endpoint:
            return _refuse(ws, http.HTTPStatus.NOT_FOUND, "Not Found\n", logging.DEBUG)
        if self._status is not Status.RUNNING:
            return _refuse(ws, http.HTTPStatus.SERVICE_UNAVAILABLE, "Service Unavailable\n")
        origins = request.headers.get_all("Origin")
        hosts = request.headers.get_all("Host")
        if len(origins) > 1 or len(hosts) > 1:
            return _refuse(ws, http.HTTPStatus.BAD_REQUEST, "Bad Request: repeated Origin or Host header\n")
        origin = origins[0] if origins else None
        if origin is not None and urlsplit(origin).netloc.lower() != (hosts[0] if hosts else "").lower():
            return _refuse(ws, http.HTTPStatus.FORBIDDEN, "Forbidden: origin not allowed\n")
        if len(self._connections) >= self._config.max_connections:
            return _refuse(ws, http.HTTPStatus.SERVICE_UNAVAILABLE, "Service Unavailable: too many connections\n")
        authenticate = self._config.authenticate
        if authenticate is not None:
            return await self._authenticate(authenticate, ws, request, url.path, url.query)
        return None

    def _extensions(self, request: Request) -> frozenset[str] | None:
        """What a handshake agreed on; None: a client without the header (Go)."""
        if not self._config.extensions:
            return None
        return negotiate(request.headers.get(EXTENSIONS_HEADER))

    def _process_response(self, ws: WsConnection, request: Request, response: Response) -> Response | None:
        if response.status_code == http.HTTPStatus.SWITCHING_PROTOCOLS:
            extensions = self._extensions(request)
            if extensions is not None:
                response.headers[EXTENSIONS_HEADER] = format_extensions(extensions)
            if extensions is None or CLOSE_CODES not in extensions:
                GoCloseCodes.install(ws)  # before the first frame is read
            if isinstance(ws, InboxServerConnection):
                ws.inflate_budget = InflateBudget.install(ws)
        return None

    async def _authenticate(
        self, authenticate: Authenticator, ws: WsConnection, request: Request, path: str, query: str
    ) -> Response | None:
        headers: dict[str, str] = {}
        for name, value in request.headers.raw_items():
            key = name.lower()
            headers[key] = f"{headers[key]},{value}" if key in headers else value
        handshake = HandshakeRequest(
            path=path,
            query=parse_qs(query),
            headers=headers,
            remote_address=format_address(ws.remote_address),
            peer_certificate=ws.transport.get_extra_info("peercert"),
        )
        try:
            principal = authenticate(handshake)
            if inspect.isawaitable(principal):
                principal = await principal
        except AuthenticationError as exc:
            return _refuse(ws, exc.status, f"{exc}\n")
        except Exception as exc:
            err = HookError("authenticate", exc)
            err.__cause__ = exc
            self._report(err)
            return _refuse(ws, http.HTTPStatus.INTERNAL_SERVER_ERROR, "Internal Server Error\n")
        if principal is None:
            return _refuse(ws, http.HTTPStatus.UNAUTHORIZED, "401 unauthorized\n")
        self._principals[ws] = principal
        return None

    async def _serve_websocket(self, ws: WsConnection) -> None:
        assert ws.request is not None
        await self._serve_handshake(ws, ws.request, WebSocketLink(ws))

    async def _serve_handshake(self, handshake: object, request: Request, link: Link) -> None:
        """Serve a connection whose upgrade `request` was accepted (either transport's listener calls it)."""
        principal = self._principals.pop(handshake, None)
        extensions = self._extensions(request) or GO_WIRE
        await self.serve_link(link, dict(request.headers.raw_items()), principal, extensions)

    async def serve_link(
        self,
        link: Link,
        headers: dict[str, str] | None = None,
        principal: object | None = None,
        extensions: frozenset[str] = SUPPORTED,
    ) -> None:
        """Serve one connected client over `link` until it closes.

        The WebSocket listener calls this for each client; the in-memory test
        transport calls it directly. `extensions` are what the connection
        uses beyond the Go wire (none for a Go client).
        """
        config = self._config
        if not config.extensions:
            extensions = GO_WIRE
        peer = PeerInfo(f"conn-{next(self._ids)}", link.remote_address, principal, headers or {}, extensions)
        if len(self._connections) >= config.max_connections:
            # Handshakes that passed the check together: the late ones go away.
            self._report(LimitError(peer.id, "max_connections", config.max_connections, "closed with 1013"))
            _log.info(
                "refused %s: too many connections, closed with 1013",
                peer.remote_address,
                extra={"peer": peer.id, "address": peer.remote_address, "status": None, "reason": "max_connections"},
            )
            await link.close(CLOSE_TRY_AGAIN_LATER)
            return
        conn = ServerConnection(
            link,
            peer,
            queue_size=config.send_queue_size,
            queue_timeout=config.slow_consumer_timeout,
            queue_bytes=config.send_queue_bytes,
            close_wait=config.close_wait,
            error_details=config.error_details,
            report=self._report,
            on_send=self._send_hook,
        )
        if config.authorize is not None:
            conn.gate = ReceiveGate(
                lambda topic: self._receive_verdict(conn, topic), conn.deliver, conn.overflow, config.send_queue_size
            )
        conn.task = asyncio.current_task()
        self._connections[peer.id] = conn
        heartbeats = self._heartbeats
        if heartbeats is not None:
            heartbeats.add(link)
        _log.info(
            "%s connected from %s",
            peer.id,
            peer.remote_address,
            extra={"peer": peer.id, "address": peer.remote_address, "go_wire": not peer.extensions},
        )
        self._connect_hook(peer)
        try:
            await self._read_loop(conn)
        except asyncio.CancelledError:
            link.abort()  # nobody reads this connection any more: it is not left open until its close times out
            raise
        finally:
            unhandled = conn.unhandled + link.unread
            if unhandled:
                lost = f"{conn.peer.id}: {frames_text(unhandled)} received and never handled"
                self._report(ConnectionLostError(lost, None, unhandled))
            if heartbeats is not None:
                heartbeats.discard(link)
            del self._connections[peer.id]
            self._calls.fail_peer(peer.id, ConnectionLostError(f"{peer.id} left before replying"))
            conn.discard(ConnectionLostError("connection closed"))
            if conn.gate is not None:
                conn.gate.close()
            self._pubsub.leave(conn)
            _log.info(
                "%s disconnected (%s)",
                peer.id,
                peer.remote_address,
                extra={"peer": peer.id, "address": peer.remote_address, "kicked": conn.kicked},
            )
            self._disconnect_hook(peer)

    # Reading.

    async def _read_loop(self, conn: ServerConnection) -> None:
        link = conn.link
        report = self._report
        config = self._config
        bucket = TokenBucket(config.rate_limit, config.rate_burst) if config.rate_limit is not None else None
        throttled = False
        streak = 0
        handle = self._handle
        stepper = self._stepper(conn) if bucket is None else None  # a rate limit is applied here only
        if stepper is not None:
            step = stepper.step
            link.set_direct(lambda data: step(lambda: handle(conn, data)))
        try:
            while True:
                if streak >= _TURN:
                    # Frames already read are handled without yielding: let the other connections have
                    # their turn, so one that sends without pause costs only its own share. Before taking
                    # the next frame: a reader cancelled here (a shutdown's last resort) holds none.
                    streak = 0
                    await asyncio.sleep(0)
                data: bytes | str | Resume | None = link.recv_nowait()
                if data is not None:
                    streak += 1
                else:
                    streak = 0
                    try:
                        data = await link.recv()
                    except LinkClosed as exc:
                        if exc.too_big:
                            report(MessageTooBigError(f"from {conn.peer.remote_address}: {exc}"))
                        elif not exc.clean:
                            report(ConnectionLostError(f"{conn.peer.id} ({conn.peer.remote_address}): {exc}", exc.code))
                        return
                    if type(data) is Resume:  # a message the transport's callback began handling: finish it
                        await data
                        continue
                if bucket is not None:
                    wait = bucket.take()
                    if wait and not throttled:
                        report(LimitError(conn.peer.id, "rate_limit", config.rate_limit or 0.0, "reading slowed down"))
                    throttled = bool(wait)
                    if wait:
                        try:
                            await asyncio.sleep(wait)
                        except asyncio.CancelledError:
                            conn.unhandled += 1  # the frame taken: reported with the unread ones
                            raise
                assert not isinstance(data, Resume)
                handling = handle(conn, data)
                if handling is not None:
                    await handling
        finally:
            if stepper is not None:
                link.set_direct(None)
            # A handling the transport's callback began and this reader never took (it was cancelled
            # meanwhile) is cancelled here, as the reader, so it reports its cancellation as if awaited.
            left = link.take_resume()
            if left is not None:
                left.abandon()

    def _stepper(self, conn: ServerConnection) -> TaskStepper | None:
        """What lets the transport's callback handle a message as `conn`'s reader task (see ``_resume.py``)."""
        task = conn.task
        if task is None:
            return None
        get_context = getattr(task, "get_context", None)  # Python 3.12+
        context = get_context() if get_context is not None else getattr(conn.link, "context", None)
        if not isinstance(context, contextvars.Context):
            return None
        return TaskStepper(task.get_loop(), task, context)

    def _handle(self, conn: ServerConnection, data: bytes | str) -> Awaitable[None] | None:
        """Handle one message read from `conn`: what is left to await, if anything.

        The read loop awaits it; a transport callback runs it as the reader
        (``_resume.py``). Either way messages of one connection are handled
        in the order they came.
        """
        report = self._report
        if conn.kicked:
            conn.unhandled += 1
            return None
        if isinstance(data, str):
            report(TextFrameError(len(data)))
            return None
        try:
            frame = decode_frame(data)
        except FrameDecodeError as exc:
            report(exc)
            return None
        try:
            if frame.is_sync and conn.server_requests and CALL_HEADER in frame.headers:
                self._calls.complete(conn.peer.id, frame)  # a reply to our own request
                return None
            if frame.kind in COMMAND_KINDS:
                return self._run_command(conn, decode_command(frame))
            msg = decode_message(frame, self._registry.classes)
        except (UnknownKindError, PayloadDecodeError) as exc:
            report(exc)
            return ReplySender(conn, frame.uuid).fail(frame.kind, exc) if frame.is_sync else None
        dispatcher = self._dispatcher
        assert dispatcher is not None
        if not msg.metadata.is_sync:
            return dispatcher.dispatch(conn.sender, msg)
        replier = ReplySender(conn, frame.uuid)
        config = self._config
        if conn.pending_sync >= config.max_pending_sync:
            err = LimitError(conn.peer.id, "max_pending_sync", config.max_pending_sync, "request refused")
            report(err)
            return replier.fail(frame.kind, err)
        replier.hold()
        return dispatcher.dispatch(replier, msg)

    # Commands from clients (run in the read loop, so per-connection order holds).

    async def _run_command(self, conn: ServerConnection, cmd: Command) -> None:
        if isinstance(cmd, PublishCommand):
            try:
                # A Go client's topic is a plain string, wildcard characters included.
                (validate_topic if conn.wildcards else _check_topic)(cmd.topic)
                self._registry.decode(cmd.kind, cmd.payload)
            except (TopicError, ProtocolError) as exc:
                self._report(exc)
                return
            if not await self._allowed(conn, "publish", cmd.topic, cmd.kind):
                return
            self._publish_hook(cmd.topic, cmd.kind)
            if (room := self._pubsub.room()) is not None:
                await room  # the broker is behind: this client's frames wait (backpressure)
            self._pubsub.publish(cmd.topic, encode_frame(cmd.kind, cmd.payload, cmd.headers))
        elif isinstance(cmd, BroadcastCommand):
            try:
                self._registry.decode(cmd.kind, cmd.payload)
            except ProtocolError as exc:
                self._report(exc)
                return
            if not await self._allowed(conn, "broadcast", "", cmd.kind):
                return
            self._client_broadcast_hook(cmd.kind)
            if (room := self._pubsub.room()) is not None:
                await room
            data = encode_frame(cmd.kind, cmd.payload, cmd.headers)
            for other in list(self._connections.values()):
                other.deliver(data)
            self._pubsub.broadcast_to_replicas(data)
        elif isinstance(cmd, SubscribeCommand):
            # A queue group only from a peer that agreed on the extension (never a Go client).
            group = cmd.group if QUEUE_GROUPS in conn.peer.extensions else ""
            try:
                (validate_pattern if conn.wildcards else _check_topic)(cmd.topic)
                if group:
                    self._pubsub.check_groups(validate_group(group))
            except (TopicError, GroupError) as exc:
                self._report(exc)
                return
            pubsub = self._pubsub
            limit = self._config.max_subscriptions
            known = pubsub.in_group(conn, group, cmd.topic) if group else cmd.topic in conn.topics
            if not known and len(conn.topics) + pubsub.memberships(conn) >= limit:
                self._report(
                    LimitError(conn.peer.id, "max_subscriptions", limit, f"subscription to {cmd.topic!r} refused")
                )
                return
            if not await self._allowed(conn, "subscribe", cmd.topic, ""):
                return
            # Awaited: with a broker, the subscription is in effect across
            # replicas before this connection's next frame is read.
            if group:
                await pubsub.join(conn, group, cmd.topic)  # no history for a group: one member gets each
            else:
                await pubsub.subscribe(conn, cmd.topic, cmd.since)
            self._subscribe_hook(cmd.topic)
        elif isinstance(cmd, UnsubscribeCommand):
            if cmd.group and QUEUE_GROUPS in conn.peer.extensions:
                self._pubsub.leave_group(conn, cmd.group, cmd.topic)  # confirmed to the client
            else:
                self._pubsub.unsubscribe(conn, cmd.topic)
            self._unsubscribe_hook(cmd.topic)

    async def _allowed(self, conn: ServerConnection, action: Action, topic: str, kind: str) -> bool:
        """Ask the authorisation hook; a denial (or a raising hook) drops the command and is reported."""
        authorize = self._config.authorize
        if authorize is None:
            return True
        try:
            verdict = authorize(conn.peer, action, topic, kind)
            if inspect.isawaitable(verdict):
                verdict = await verdict
        except Exception as exc:
            err = HookError("authorize", exc)
            err.__cause__ = exc
            self._report(err)
            verdict = False
        if verdict is True:
            return True
        self._report(AuthorizationError(conn.peer.id, action, topic, kind))
        return False

    def _receive_verdict(self, conn: ServerConnection, topic: str) -> Awaitable[bool] | bool:
        """May `conn` get a publication on `topic` (reached through a wildcard)?

        The hook is asked as if the client subscribed to exactly `topic`.
        """
        authorize = self._config.authorize
        assert authorize is not None
        try:
            verdict = authorize(conn.peer, "subscribe", topic, "")
        except Exception as exc:
            return self._refused(conn, topic, exc)
        if inspect.isawaitable(verdict):
            return self._await_verdict(conn, topic, verdict)
        return True if verdict is True else self._refused(conn, topic, None)

    async def _await_verdict(self, conn: ServerConnection, topic: str, verdict: Awaitable[bool]) -> bool:
        try:
            allowed = await verdict
        except Exception as exc:
            return self._refused(conn, topic, exc)
        return True if allowed is True else self._refused(conn, topic, None)

    def _refused(self, conn: ServerConnection, topic: str, error: Exception | None) -> bool:
        if error is not None:
            err = HookError("authorize", error)
            err.__cause__ = error
            self._report(err)
        self._report(AuthorizationError(conn.peer.id, "subscribe", topic, ""))
        return False

    # Server-side publish and broadcast.

    async def publish(self, topic: str, msg: Message[ProtoMessage] | ProtoMessage) -> None:
        """Send `msg` as a plain frame to every client subscribed to `topic`, on every replica.

        Never waits for slow clients: each gets the frame queued behind what
        it already has, and one that cannot keep up is disconnected.
        Raises :class:`TopicError` for an empty topic. A topic with
        wildcard tokens is a plain string here (as in Go): it reaches only
        subscriptions with exactly that string.
        """
        if self._status is not Status.RUNNING:
            raise NotRunningError("publish", self._status.name)
        _check_topic(topic)  # a wildcard-looking topic is a plain string: Go clients may subscribe to it
        m = as_message(msg)
        data = encode_frame(m.kind, m.payload.SerializeToString(), m.headers)
        self._publish_hook(topic, m.kind)
        if (room := self._pubsub.room()) is not None:
            await room  # the broker is behind: wait for it, as configured by its `overflow`
        self._pubsub.publish(topic, data)

    async def broadcast(
        self, msg: Message[ProtoMessage] | ProtoMessage, timeout: float | None = None
    ) -> list[BroadcastResult]:
        """Send `msg` to every connected client, in parallel, and to every other replica's.

        Returns one result per client of this server; a client that failed
        (gone, or too slow within `timeout`) has its error in its result and
        in the error hooks, and never stops the others. Other replicas'
        clients get it through the broker, without results.
        """
        if self._status is not Status.RUNNING:
            raise NotRunningError("broadcast", self._status.name)
        if (room := self._pubsub.room()) is not None:
            await room
        data, size, kind = encode_message(msg)
        started = time.perf_counter()
        results: list[BroadcastResult] = []
        slow: list[ServerConnection] = []
        for conn in list(self._connections.values()):
            if conn.offer_soon(data):
                results.append(BroadcastResult(conn.peer, size, time.perf_counter() - started))
            else:
                slow.append(conn)
        self._pubsub.broadcast_to_replicas(data)
        if slow:
            results.extend(await asyncio.gather(*(self._deliver(conn, data, size, timeout) for conn in slow)))
        self._broadcast_hook(kind, results, time.perf_counter() - started)
        return results

    async def _deliver(self, conn: ServerConnection, data: bytes, size: int, timeout: float | None) -> BroadcastResult:
        """Wait for room in a full queue, up to `timeout` and the slow-consumer limit."""
        started = time.perf_counter()
        try:
            async with asyncio.timeout(timeout):
                await conn.send_frame(data)
        except TimeoutError:
            err: GoomerangError = ConnectionLostError(f"broadcast to {conn.peer.id} timed out after {timeout}s")
            self._report(err)
            return BroadcastResult(conn.peer, 0, time.perf_counter() - started, err)
        except GoomerangError as exc:
            if not isinstance(exc, SlowConsumerError):  # the connection reported it when it kicked
                self._report(exc)
            return BroadcastResult(conn.peer, 0, time.perf_counter() - started, exc)
        return BroadcastResult(conn.peer, size, time.perf_counter() - started)

    # Direct sends.

    async def disconnect(self, peer_id: str, reason: str = "disconnected by the server") -> None:
        """Drop one connected client now, e.g. once its credentials were revoked.

        Frames queued for it are dropped (and reported), its close frame
        says 1008 (policy violation; 1000 for a Go client), and what it still
        sends is not handled. Returns once it is gone. A reconnecting client
        refused at its next handshake (401/403) stops retrying.
        """
        conn = self._connections.get(peer_id)
        if conn is None:
            raise ConnectionLostError(f"no connected client {peer_id!r}")
        gone = conn.task
        conn.kick(CLOSE_POLICY_VIOLATION, ConnectionLostError(reason, CLOSE_POLICY_VIOLATION))
        if gone is not None and gone is not asyncio.current_task():
            await asyncio.shield(gone)

    @overload
    async def send_sync(
        self,
        to: PeerRef,
        msg: Message[ProtoMessage] | ProtoMessage,
        *,
        timeout: float | None = None,
        expect: None = None,
    ) -> Message[ProtoMessage]: ...

    @overload
    async def send_sync(
        self, to: PeerRef, msg: Message[ProtoMessage] | ProtoMessage, *, timeout: float | None = None, expect: type[R]
    ) -> Message[R]: ...

    @overload
    async def send_sync(
        self,
        to: PeerRef,
        msg: Message[ProtoMessage] | ProtoMessage,
        *,
        timeout: float | None = None,
        expect: tuple[type[R], type[R2]],
    ) -> Message[R | R2]: ...

    @overload
    async def send_sync(
        self,
        to: PeerRef,
        msg: Message[ProtoMessage] | ProtoMessage,
        *,
        timeout: float | None = None,
        expect: tuple[type[R], type[R2], type[R3]],
    ) -> Message[R | R2 | R3]: ...

    @overload
    async def send_sync(
        self,
        to: PeerRef,
        msg: Message[ProtoMessage] | ProtoMessage,
        *,
        timeout: float | None = None,
        expect: tuple[type[ProtoMessage], ...],
    ) -> Message[ProtoMessage]: ...

    async def send_sync(
        self,
        to: PeerRef,
        msg: Message[ProtoMessage] | ProtoMessage,
        *,
        timeout: float | None = None,
        expect: type[ProtoMessage] | tuple[type[ProtoMessage], ...] | None = None,
    ) -> Message[ProtoMessage]:
        """Send a request to one client and wait for its reply (the ``server-requests`` extension).

        `to` is a handler's sender or context, a :class:`PeerInfo` or a
        connection id. The client's handler of the request's kind answers
        with what it returns. With `expect` (a class, or a tuple of classes:
        the result is typed as their union) only those kinds are accepted and
        they need no registration; without it any registered kind is.
        Raises :class:`UnsupportedPeerError` before sending anything to a
        client that did not agree on the extension (a Go client),
        :class:`ConnectionLostError` if the client is not connected or leaves
        before replying, :class:`SyncTimeoutError` after `timeout` seconds,
        :class:`RemoteHandlerError` if the client's handler raised (or
        returned no reply) and :class:`UnexpectedReplyError` for a reply kind
        outside `expect`.
        """
        if self._status is not Status.RUNNING:
            raise NotRunningError("send_sync", self._status.name)
        if timeout is not None and timeout != timeout:  # NaN
            raise ValueError("send_sync timeout is NaN")
        peer = _peer_id(to)
        conn = self._connections.get(peer)
        if conn is None:
            raise ConnectionLostError(f"no connected client {peer!r}")
        if not conn.server_requests:
            raise UnsupportedPeerError(peer, "send_sync", SERVER_REQUESTS)
        return await self._calls.call(conn, msg, expect, timeout)

    async def send_to(self, peer_id: str, msg: Message[ProtoMessage] | ProtoMessage) -> int:
        """Send `msg` to one connected client by its :attr:`PeerInfo.id`."""
        conn = self._connections.get(peer_id)
        if conn is None:
            raise ConnectionLostError(f"no connected client {peer_id!r}")
        return await ConnectionSender(conn).send(msg)
