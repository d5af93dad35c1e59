"""A client answering the server's requests (the ``server-requests`` extension).

The server asks with a sync frame marked with ``CALL_HEADER``. The client
runs the handler of the request's kind, through its middlewares, with a
:class:`RequestSender`, and what the handler returns is the reply. Sends
through that sender are plain frames to the server, never the reply (one
channel, one meaning). A handler that raises is answered with an
``ErrorReply``, and so is one that returns nothing (:class:`NoReplyError`):
the server's caller never waits for a reply that is not coming.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from ._codec import encode_call
from ._replies import ERROR_REPLY_KIND, error_reply
from .errors import NoReplyError, UsageError
from .handler import Handler, PeerInfo, Sender
from .message import Message, ProtoMessage

__all__ = ["RequestSender", "answering", "settled"]

Put = Callable[[bytes, str, int], Awaitable[None]]
"""Queues a reply frame to the server: ``(data, kind, payload size)``."""


class RequestSender:
    """The sender a client handler gets with a server's request.

    Its sends are plain frames to the server; the reply is what the handler
    returns (:meth:`reply` sends it).
    """

    __slots__ = ("_plain", "_put", "_uuid", "peer", "replied")

    def __init__(
        self,
        peer: PeerInfo,
        uuid: str,
        plain: Callable[[Message[ProtoMessage] | ProtoMessage], Awaitable[int]],
        put: Put,
    ) -> None:
        self.peer = peer
        self._uuid = uuid
        self._plain = plain
        self._put = put
        self.replied = False

    async def send(self, msg: Message[ProtoMessage] | ProtoMessage) -> int:
        """Send `msg` to the server as a plain frame (never the reply); returns the payload size."""
        return await self._plain(msg)

    async def reply(self, msg: Message[ProtoMessage] | ProtoMessage) -> int:
        """Answer the request with `msg`; returns the payload size. A request is answered once."""
        if self.replied:
            raise UsageError(f"the server's request {self._uuid} was already answered")
        self.replied = True
        data, size, kind = encode_call(msg, self._uuid)
        await self._put(data, kind, size)
        return size

    async def fail(self, request_kind: str, error: BaseException) -> None:
        """Answer with an ``ErrorReply`` describing `error`, unless the request was answered."""
        if self.replied:
            return
        self.replied = True
        await self._put(error_reply(self._uuid, request_kind, error, True, call=True), ERROR_REPLY_KIND, -1)


def answering(handler: Handler[Any]) -> Handler[Any]:
    """The innermost link of a request's chain: run `handler`, send what it returns as the reply.

    Handlers are typed to return None; one registered on a client may return
    a reply (see :data:`~goomerang_runtime.handler.Responder`), which only
    this link reads.
    """
    respond: Callable[[Sender, Message[ProtoMessage]], Awaitable[object]] = handler

    async def answer(sender: Sender, msg: Message[ProtoMessage]) -> None:
        reply = await respond(sender, msg)
        if reply is None or not isinstance(sender, RequestSender):
            return  # a middleware that swapped the sender: settled() still answers
        if not isinstance(reply, Message | ProtoMessage):
            raise TypeError(f"the handler of {msg.kind!r} returned {type(reply).__name__}, not a message")
        await sender.reply(reply)

    return answer


def settled(chain: Handler[Any], report: Callable[[BaseException], None]) -> Handler[Any]:
    """The outermost link of a request's chain: if the chain returned without a reply, answer NoReplyError.

    (A chain that raises is answered by the dispatcher, with the error.)
    """

    async def settle(sender: Sender, msg: Message[ProtoMessage]) -> None:
        await chain(sender, msg)
        if isinstance(sender, RequestSender) and not sender.replied:
            error = NoReplyError(msg.kind)
            report(error)
            await sender.fail(msg.kind, error)

    return settle
