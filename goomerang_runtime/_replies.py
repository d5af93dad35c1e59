"""Sync replies, whichever side asked: the kinds a caller accepts, reading a reply, error replies.

Sans-I/O: a client reading the server's replies and a server reading a
client's replies (the ``server-requests`` extension) share these.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeAlias

from ._codec import CALL_HEADER, decode_message, encode_frame
from .errors import HandlerError, RemoteHandlerError, UnexpectedReplyError
from .message import Message, ProtoMessage, kind_of
from .protocol_pb2 import Frame
from .reply_pb2 import ErrorReply

__all__ = ["ERROR_REPLY_KIND", "Expect", "accepted", "error_reply", "read_reply"]

ERROR_REPLY_KIND = kind_of(ErrorReply)

Expect: TypeAlias = type[ProtoMessage] | tuple[type[ProtoMessage], ...]
"""What a sync call accepts as its reply: one class or a tuple of classes."""

_ERROR_REPLY: dict[str, type[ProtoMessage]] = {ERROR_REPLY_KIND: ErrorReply}
_ACCEPTED: dict[Expect, dict[str, type[ProtoMessage]]] = {}


def accepted(expect: Expect) -> dict[str, type[ProtoMessage]]:
    """Kind -> class of the replies a call accepts (cached: stubs pass the same tuple each call)."""
    found = _ACCEPTED.get(expect)
    if found is None:
        classes = expect if isinstance(expect, tuple) else (expect,)
        found = _ACCEPTED[expect] = {kind_of(cls): cls for cls in classes}
    return found


def read_reply(
    frame: Frame, expect: Mapping[str, type[ProtoMessage]] | None, classes: Mapping[str, type[ProtoMessage]]
) -> Message[ProtoMessage]:
    """The reply a caller gets from `frame`, or the error it gets instead.

    An :class:`ErrorReply` raises :class:`RemoteHandlerError`; a kind outside
    `expect` raises :class:`UnexpectedReplyError`; without `expect` any kind of
    `classes` is accepted (else :class:`UnknownKindError`). A payload that
    does not parse raises :class:`PayloadDecodeError`.
    """
    kind = frame.kind
    if kind == ERROR_REPLY_KIND:
        err = decode_message(frame, _ERROR_REPLY).payload
        assert isinstance(err, ErrorReply)
        raise RemoteHandlerError(err.request_kind, err.error_type, err.message)
    if expect is None:
        return decode_message(frame, classes)
    if kind not in expect:
        raise UnexpectedReplyError(kind, tuple(expect))
    return decode_message(frame, expect)


def error_reply(uuid: str, request_kind: str, error: BaseException, details: bool, *, call: bool = False) -> bytes:
    """The frame answering request `uuid` with an :class:`ErrorReply` describing `error`.

    A :class:`HandlerError` is described by its cause. `details` puts the
    error's message in; `call` marks the frame as the reply to a server's
    request (a client answering).
    """
    cause = error.error if isinstance(error, HandlerError) else error
    reply = ErrorReply(
        request_kind=request_kind,
        error_type=type(cause).__name__,
        message=str(cause) if details else "",
    ).SerializeToString()
    return encode_frame(ERROR_REPLY_KIND, reply, {CALL_HEADER: "1"} if call else None, uuid=uuid, is_sync=True)
