"""What servers and clients share: registration, hooks and status."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from .errors import DuplicateHandlerError, RegistrationClosedError
from .handler import Handler, HandlerObject, Middleware, build_chain, to_handler
from .hooks import Hook
from .message import ProtoMessage, kind_of
from .registry import MessageRegistry
from .status import Status

__all__ = ["PeerBase"]

_log = logging.getLogger("goomerang")
C = TypeVar("C")
P = TypeVar("P", bound=ProtoMessage)
ErrorFn = TypeVar("ErrorFn", bound=Callable[[BaseException], object])
StatusFn = TypeVar("StatusFn", bound=Callable[[Status], object])
NoArgFn = TypeVar("NoArgFn", bound=Callable[[], object])
SendFn = TypeVar("SendFn", bound=Callable[[str, int, float], object])


class PeerBase(Generic[C]):
    """Registry, handlers, middlewares, hooks and status of a server or client."""

    _side = "peer"

    def __init__(self, config: C) -> None:
        self._config = config
        self._registry = MessageRegistry()
        self._handlers: dict[str, Handler[Any]] = {}
        self._middlewares: list[Middleware] = []
        self._status = Status.NEW
        self._error_hook: Hook[[BaseException]] = Hook("on_error", None)
        self._status_hook: Hook[[Status]] = Hook("on_status_change", self._report)
        self._close_hook: Hook[[]] = Hook("on_close", self._report)
        self._configuration_hook: Hook[[C]] = Hook("on_configuration", self._report)
        self._worker_start_hook: Hook[[]] = Hook("on_worker_start", self._report)
        self._worker_end_hook: Hook[[]] = Hook("on_worker_end", self._report)
        self._send_hook: Hook[[str, int, float]] = Hook("on_send", self._report)

    @property
    def config(self) -> C:
        """The validated configuration."""
        return self._config

    @property
    def status(self) -> Status:
        """Where the peer is in its lifecycle."""
        return self._status

    @property
    def registry(self) -> MessageRegistry:
        """The kinds this peer can decode."""
        return self._registry

    # Registration: only while not running.

    def _check_open(self, what: str) -> None:
        if self._status in (Status.RUNNING, Status.CLOSING):
            raise RegistrationClosedError(what)

    def handle(self, kind: type[P], handler: Handler[P] | HandlerObject[P]) -> None:
        """Run `handler` for every incoming message of `kind`; registers the kind.

        `handler` is an async callable ``(sender, message) -> None`` or an
        object with such a ``handle`` method. One handler per kind.
        """
        self._check_open(f"a handler for {kind_of(kind)!r}")
        name = kind_of(kind)
        if name in self._handlers:
            raise DuplicateHandlerError(name)
        self._registry.register(kind)
        self._handlers[name] = to_handler(handler)

    def handler(self, kind: type[P]) -> Callable[[Handler[P]], Handler[P]]:
        """Decorator form of :meth:`handle`: register the decorated function for `kind`.

        ::

            @server.handler(MessageV1)
            async def on_message(sender: Sender, msg: Message[MessageV1]) -> None:
                ...

        The function is returned unchanged. Typed: decorating a function
        whose message is not ``Message[MessageV1]`` (or a supertype) is a
        type error, and inside it ``msg.payload`` is a ``MessageV1``. The
        same rules as :meth:`handle` apply (one handler per kind, before
        the peer starts).
        """

        def register(fn: Handler[P]) -> Handler[P]:
            self.handle(kind, fn)
            return fn

        return register

    def middleware(self, middleware: Middleware) -> Middleware:
        """Add a middleware; they run in registration order, before the handler.

        Returns `middleware`, so this is usable as a decorator too
        (``@server.middleware`` above ``def log_kinds(next_handler): ...``).
        """
        self._check_open("a middleware")
        self._middlewares.append(middleware)
        return middleware

    def register_message(self, *kinds: type[ProtoMessage]) -> None:
        """Make kinds decodable without a handler (sync replies, pub/sub payloads)."""
        self._check_open("a message kind")
        for kind in kinds:
            self._registry.register(kind)

    def _build_chains(self) -> dict[str, Handler[Any]]:
        return {kind: build_chain(handler, self._middlewares) for kind, handler in self._handlers.items()}

    # Hooks: each registrable several times, run in registration order.

    def on_error(self, fn: ErrorFn) -> ErrorFn:
        """Call ``fn(error)`` for every error that has no caller to raise to."""
        self._error_hook.add(fn)
        return fn

    def on_status_change(self, fn: StatusFn) -> StatusFn:
        """Call ``fn(status)`` on every status change."""
        self._status_hook.add(fn)
        return fn

    def on_close(self, fn: NoArgFn) -> NoArgFn:
        """Call ``fn()`` once the peer reached CLOSED."""
        self._close_hook.add(fn)
        return fn

    def on_configuration(self, fn: Callable[[C], object]) -> Callable[[C], object]:
        """Call ``fn(config)`` when the peer starts, with its validated configuration."""
        self._configuration_hook.add(fn)
        return fn

    def on_worker_start(self, fn: NoArgFn) -> NoArgFn:
        """Call ``fn()`` when a handler starts running."""
        self._worker_start_hook.add(fn)
        return fn

    def on_worker_end(self, fn: NoArgFn) -> NoArgFn:
        """Call ``fn()`` when a handler finished running."""
        self._worker_end_hook.add(fn)
        return fn

    def on_send(self, fn: SendFn) -> SendFn:
        """Call ``fn(kind, size, duration)`` after each message this peer sent itself.

        That is a message sent with a handler's sender (replies included),
        with ``send_to`` on the server, and with ``send`` and ``send_sync``
        (the request) on the client. `size` is its payload in bytes and
        `duration` the seconds spent encoding it and queuing it on the
        connection (waiting for room). Broadcasts, publications and commands
        have hooks of their own.
        """
        self._send_hook.add(fn)
        return fn

    def _report(self, error: BaseException) -> None:
        if self._error_hook:
            self._error_hook(error)
        else:
            _log.warning("goomerang %s error: %s", self._side, error, exc_info=error.__cause__)

    def _set_status(self, status: Status) -> None:
        self._status = status
        self._status_hook(status)
