"""A server's requests to its clients, waiting for their replies (the ``server-requests`` extension).

Each call gets a fresh uuid; the request frame and the client's reply both
carry it, ``is_sync`` and the ``CALL_HEADER`` mark (see ``_codec.py``). A reply
counts only from the connection that was asked. A call ends with its reply,
its deadline (:class:`SyncTimeoutError`), the connection's end
(:class:`ConnectionLostError`) or its caller's cancellation; a reply that
comes after that is reported as :class:`UnknownReplyError`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping

from ._codec import CALL_HEADER, RequestIds, encode_call
from ._connection import ServerConnection
from ._deadlines import Deadlines
from ._replies import Expect, accepted, read_reply
from .errors import (
    ConnectionLostError,
    PayloadDecodeError,
    RemoteHandlerError,
    SyncTimeoutError,
    UnexpectedReplyError,
    UnknownKindError,
    UnknownReplyError,
)
from .message import Message, ProtoMessage
from .protocol_pb2 import Frame

__all__ = ["ServerCalls"]


class _Call:
    """One request waiting for its reply."""

    __slots__ = ("expect", "future", "kind", "peer")

    def __init__(
        self,
        peer: str,
        kind: str,
        future: asyncio.Future[Message[ProtoMessage]],
        expect: dict[str, type[ProtoMessage]] | None,
    ) -> None:
        self.peer = peer
        self.kind = kind
        self.future = future
        self.expect = expect


class ServerCalls:
    """Every pending request of one server to its clients."""

    __slots__ = ("_by_peer", "_calls", "_classes", "_deadlines", "_ids", "_report")

    def __init__(self, classes: Mapping[str, type[ProtoMessage]], report: Callable[[BaseException], None]) -> None:
        self._classes = classes
        self._report = report
        self._calls: dict[str, _Call] = {}
        self._by_peer: dict[str, set[str]] = {}
        self._ids = RequestIds()
        self._deadlines: Deadlines | None = None

    def __len__(self) -> int:
        return len(self._calls)

    async def call(
        self,
        conn: ServerConnection,
        msg: Message[ProtoMessage] | ProtoMessage,
        expect: Expect | None,
        timeout: float | None,
    ) -> Message[ProtoMessage]:
        """Send `msg` to `conn` as a request and return the reply."""
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        uuid = self._ids.next()
        data, size, kind = encode_call(msg, uuid)
        peer = conn.peer.id
        future: asyncio.Future[Message[ProtoMessage]] = loop.create_future()
        self._calls[uuid] = _Call(peer, kind, future, None if expect is None else accepted(expect))
        self._by_peer.setdefault(peer, set()).add(uuid)
        if timeout is not None:
            if self._deadlines is None:
                self._deadlines = Deadlines(loop, self._calls, self._expire)
            self._deadlines.add(uuid, timeout)
        try:
            await conn.send_frame(data)
            on_send = conn.on_send
            if on_send.callables:
                on_send(kind, size, time.perf_counter() - started)
            return await future
        finally:
            self._forget(uuid, peer)
            if future.done() and not future.cancelled():
                future.exception()  # retrieved: the send may have raised first (the connection ended)

    def _forget(self, uuid: str, peer: str) -> None:
        self._calls.pop(uuid, None)
        uuids = self._by_peer.get(peer)
        if uuids is not None:
            uuids.discard(uuid)
            if not uuids:
                del self._by_peer[peer]

    def _expire(self, uuid: str, timeout: float) -> None:
        call = self._calls.get(uuid)
        if call is not None and not call.future.done():
            call.future.set_exception(SyncTimeoutError(call.kind, timeout))

    def complete(self, peer: str, frame: Frame) -> None:
        """A reply from connection `peer` (a sync frame with the mark): its call returns it, or raises."""
        call = self._calls.get(frame.uuid)
        if call is None or call.peer != peer or call.future.done():
            # Late (the call ended), or a uuid this connection was never asked with.
            self._report(UnknownReplyError(frame.uuid, frame.kind))
            return
        self._forget(frame.uuid, peer)
        future = call.future
        try:
            reply = read_reply(frame, call.expect, self._classes)
        except RemoteHandlerError as exc:
            future.set_exception(exc)
            return
        except (UnknownKindError, PayloadDecodeError, UnexpectedReplyError) as exc:
            future.set_exception(exc)
            self._report(exc)  # the caller gets it, and so do the error hooks
            return
        reply.headers.pop(CALL_HEADER, None)
        future.set_result(reply)

    def fail_peer(self, peer: str, error: ConnectionLostError) -> None:
        """Connection `peer` ended: each of its calls raises `error` at once."""
        for uuid in self._by_peer.pop(peer, ()):
            call = self._calls.pop(uuid, None)
            if call is not None and not call.future.done():
                call.future.set_exception(error)
