"""Ready middlewares: an exception guard, a logger and a metrics observer.

Each is a plain :data:`~goomerang_runtime.Middleware` built on the public
API, usable on servers and clients alike::

    server.middleware(exception_guard(lambda error, msg: log.error("%s: %s", msg.kind, error)))
    server.middleware(logging_middleware(logging.getLogger("app.messages")))
    server.middleware(metrics_middleware(observer))

Middlewares run in registration order, so register the exception guard
first: it then protects every middleware registered after it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Protocol, runtime_checkable

from .handler import Handler, Middleware, Sender
from .message import Message, ProtoMessage

__all__ = [
    "MessageObserver",
    "exception_guard",
    "logging_middleware",
    "metrics_middleware",
]

_NS = 1_000_000_000


@runtime_checkable
class _Replier(Protocol):
    async def fail(self, request_kind: str, error: BaseException) -> None: ...


async def _fail_request(sender: Sender, kind: str, error: Exception) -> None:
    """Answer a sync request with an error reply, if its sender can (a server's reply sender)."""
    if isinstance(sender, _Replier):
        await sender.fail(kind, error)  # does nothing once a reply went out, or for a Go client


def exception_guard(on_exception: Callable[[Exception, Message[ProtoMessage]], object]) -> Middleware:
    """Catch what the rest of the chain raises and pass it to ``on_exception(error, message)``.

    The Go library's panic middleware: the exception goes no further, so the
    peer does not report it to its error hooks and the connection goes on.
    A sync caller still learns at once: a request whose handler raised is
    answered with an error reply (the caller's ``send_sync`` raises
    :class:`~goomerang_runtime.RemoteHandlerError`, as without the guard)
    unless the handler replied before raising; a Go caller, which has no
    error replies, waits for its timeout as with a Go server. Cancellation
    is never caught. If `on_exception` itself raises, that error goes on up
    the chain as usual.
    """

    def middleware(next_handler: Handler[ProtoMessage]) -> Handler[ProtoMessage]:
        async def guarded(sender: Sender, msg: Message[ProtoMessage]) -> None:
            try:
                await next_handler(sender, msg)
            except Exception as exc:
                on_exception(exc, msg)
                if msg.metadata.is_sync:
                    await _fail_request(sender, msg.kind, exc)

        return guarded

    return middleware


def logging_middleware(
    logger: logging.Logger | None = None,
    level: int = logging.INFO,
    error_level: int = logging.WARNING,
) -> Middleware:
    """Log one record per handled message, with structured ``extra`` fields.

    Each record carries ``kind``, ``size`` (payload bytes), ``duration``
    (seconds in the rest of the chain), ``outcome`` (``"ok"``,
    ``"error"`` or ``"cancelled"``), ``error`` (the exception's type name,
    or None),
    ``is_sync`` and ``peer`` (the connection's id), as attributes a
    formatter or a JSON handler can read. Successes are logged at `level`,
    the rest at `error_level`; the exception itself goes on up the chain
    (the peer reports it with its traceback). The default logger is
    ``goomerang.messages``.
    """
    log = logger if logger is not None else logging.getLogger("goomerang.messages")

    def middleware(next_handler: Handler[ProtoMessage]) -> Handler[ProtoMessage]:
        async def logged(sender: Sender, msg: Message[ProtoMessage]) -> None:
            started = time.perf_counter()
            outcome = "cancelled"
            error: str | None = None
            try:
                await next_handler(sender, msg)
                outcome = "ok"
            except Exception as exc:
                outcome = "error"
                error = type(exc).__name__
                raise
            finally:
                record_level = level if outcome == "ok" else error_level
                if log.isEnabledFor(record_level):
                    duration = time.perf_counter() - started
                    extra = {
                        "kind": msg.kind,
                        "size": msg.metadata.payload_size,
                        "duration": duration,
                        "outcome": outcome,
                        "error": error,
                        "is_sync": msg.metadata.is_sync,
                        "peer": sender.peer.id,
                    }
                    log.log(record_level, "%s %s in %.3f ms", msg.kind, outcome, duration * 1000, extra=extra)

        return logged

    return middleware


class MessageObserver(Protocol):
    """Receives the measurements of :func:`metrics_middleware`.

    The Prometheus metric sets of :mod:`goomerang_runtime.metrics` implement
    it; any other backend can too.
    """

    def message_received(self, kind: str, size: int, inflight: float | None) -> None:
        """A message came in: payload bytes, and seconds since its sender built
        it (None when the frame has no creation time)."""
        ...

    def message_processed(self, kind: str, duration: float) -> None:
        """The rest of the chain took `duration` seconds for a message (raised or not)."""
        ...


def metrics_middleware(observer: MessageObserver) -> Middleware:
    """Measure each handled message: size, time in flight, processing time.

    The time in flight is the receiver's clock minus the sender's creation
    stamp, so it is only as good as the two clocks' agreement (never below
    0). What the peer sends is measured by its ``on_send`` hook instead.
    """

    def middleware(next_handler: Handler[ProtoMessage]) -> Handler[ProtoMessage]:
        async def measured(sender: Sender, msg: Message[ProtoMessage]) -> None:
            metadata = msg.metadata
            inflight = None
            if metadata.creation_ns:
                inflight = max(0, time.time_ns() - metadata.creation_ns) / _NS
            observer.message_received(msg.kind, metadata.payload_size, inflight)
            started = time.perf_counter()
            try:
                await next_handler(sender, msg)
            finally:
                observer.message_processed(msg.kind, time.perf_counter() - started)

        return measured

    return middleware
