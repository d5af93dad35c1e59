"""Sans-I/O frame codec: messages and commands <-> wire bytes.

No asyncio here: bytes in, values out, and the reverse. Server, client and
the in-memory test transport all go through these functions, and the fuzz
tests aim at them.
"""

from __future__ import annotations

import itertools
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeAlias

from google.protobuf.message import DecodeError

from .errors import FrameDecodeError, PayloadDecodeError, UnknownKindError
from .message import Message, Metadata, ProtoMessage, kind_of
from .protocol_pb2 import BroadcastCmd, Frame, PublishCmd, SubscribeCmd, UnsubscribeCmd

__all__ = [
    "BROADCAST_KIND",
    "CALL_HEADER",
    "COMMAND_KINDS",
    "GROUP_HEADER",
    "HEADER_PREFIX",
    "TOPIC_HEADER",
    "PUBLISH_KIND",
    "SUBSCRIBE_KIND",
    "UNSUBSCRIBE_KIND",
    "BroadcastCommand",
    "Command",
    "PublishCommand",
    "SubscribeCommand",
    "UnsubscribeCommand",
    "decode_command",
    "decode_frame",
    "decode_message",
    "encode_broadcast",
    "encode_call",
    "encode_frame",
    "encode_message",
    "encode_publish",
    "encode_subscribe",
    "encode_unsubscribe",
    "is_command",
    "RequestIds",
    "new_request_id",
    "prefix_headers",
    "add_header",
    "add_topic_header",
    "unprefix_headers",
]

HEADER_PREFIX = "message-"
TOPIC_HEADER = "goomerang-topic"
"""Header a Python server adds to publication deliveries (beyond Go): the topic."""
CALL_HEADER = "goomerang-server-call"
"""Header on both frames of a server-to-client request, the request and its reply (beyond Go).

It tells them apart from the frames of a client's own sync requests, which
carry a uuid and ``is_sync`` too: a client takes a marked sync frame for a
request, a server a marked one for a reply.
"""
_CALL_MARK = {CALL_HEADER: "1"}
POSITION_HEADER = "goomerang-position"
"""Header on publication deliveries from a server that keeps history (beyond Go): ``epoch:offset``."""
SINCE_HEADER = "goomerang-since"
"""Header on a SubscribeCmd of a reconnecting client (beyond Go): the last ``epoch:offset`` it saw."""
RECOVERY_KIND = "goomerang.recovery"
"""Kind of the frame (empty payload, beyond Go) that ends a replay: topic, count replayed, offsets lost."""
RECOVERED_HEADER = "goomerang-recovered"
MISSED_HEADER = "goomerang-missed"
REASON_HEADER = "goomerang-reason"
GROUP_HEADER = "goomerang-group"
"""Header of the queue-groups extension: on subscribe and unsubscribe frames, and on group deliveries."""
BROADCAST_KIND = kind_of(BroadcastCmd)
SUBSCRIBE_KIND = kind_of(SubscribeCmd)
PUBLISH_KIND = kind_of(PublishCmd)
UNSUBSCRIBE_KIND = kind_of(UnsubscribeCmd)
COMMAND_KINDS = frozenset({BROADCAST_KIND, SUBSCRIBE_KIND, PUBLISH_KIND, UNSUBSCRIBE_KIND})

_NS = 1_000_000_000


def new_request_id() -> str:
    """A random version-4 UUID in canonical text form.

    `random` serves: the id only correlates a reply with its request
    (uuid4() reads the OS entropy pool on every call, several times slower).
    """
    bits = (random.getrandbits(128) & _UUID_CLEAR) | _UUID_SET
    text = f"{bits:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


_UUID_CLEAR = ~((0xF << 76) | (0xC << 60)) & ((1 << 128) - 1)
_UUID_SET = (0x4 << 76) | (0x8 << 60)
_NODE_MASK = (1 << 48) - 1


class RequestIds:
    """The ids of one client's sync requests, in canonical UUID text form.

    A random UUID whose last 12 hex digits count up from a random start: ids
    are unique for the client's lifetime (2**48 of them) and cost one format
    each instead of a random UUID's.
    """

    __slots__ = ("_count", "_prefix")

    def __init__(self) -> None:
        first = new_request_id()
        self._prefix = first[:24]
        self._count = itertools.count(int(first[24:], 16))

    def next(self) -> str:
        """The next id."""
        return f"{self._prefix}{next(self._count) & _NODE_MASK:012x}"


def encode_frame(
    kind: str,
    payload: bytes,
    headers: Mapping[str, str] | None = None,
    *,
    uuid: str = "",
    is_sync: bool = False,
    creation_ns: int | None = None,
) -> bytes:
    """Serialize one Frame. Plain frames leave uuid and is_sync unset (zero values are not written).

    Frames without headers are laid out here, byte for byte what protobuf
    writes (the tests compare the two) in a fraction of the time; frames
    with headers go through protobuf.
    """
    seconds, nanos = divmod(time.time_ns() if creation_ns is None else creation_ns, _NS)
    if headers or seconds < 0:
        return _encode_frame_protobuf(kind, payload, headers or {}, uuid, is_sync, seconds, nanos)
    head = _KIND_FIELDS.get(kind) or _kind_field(kind)
    cached = _SECONDS_FIELD
    if cached[0] != seconds:
        cached = _seconds_field(seconds)
    field = cached[1]
    if nanos:
        nanos_varint = _varint(nanos)
        stamp = [b"\x2a", _varint(len(field) + 1 + len(nanos_varint)), field, b"\x10", nanos_varint]
    else:
        stamp = [b"\x2a", _varint(len(field)), field]
    # Fields in number order: uuid 1, kind 2, payloadSize 3, is_sync 4, creation 5, (headers 6,) payload 7.
    parts = [_string_field(b"\x0a", uuid)] if uuid else []
    parts.append(head)
    size = _varint(len(payload)) if payload else b""
    if payload:
        parts += (b"\x18", size)
    if is_sync:
        parts.append(b"\x20\x01")
    parts += stamp
    if payload:
        parts += (b"\x3a", size, payload)
    return b"".join(parts)


def _encode_frame_protobuf(
    kind: str, payload: bytes, headers: Mapping[str, str], uuid: str, is_sync: bool, seconds: int, nanos: int
) -> bytes:
    frame = Frame(kind=kind, payloadSize=len(payload), payload=payload, uuid=uuid, is_sync=is_sync)
    frame.headers.update(headers)
    creation = frame.creation
    creation.seconds = seconds
    creation.nanos = nanos
    return frame.SerializeToString()


_VARINT_1 = [bytes((i,)) for i in range(0x80)]


def _varint(value: int) -> bytes:
    """Protobuf's base-128 varint of a non-negative int."""
    if value < 0x80:
        return _VARINT_1[value]
    if value < 0x4000:
        return bytes(((value & 0x7F) | 0x80, value >> 7))
    if value < 0x200000:
        return bytes(((value & 0x7F) | 0x80, ((value >> 7) & 0x7F) | 0x80, value >> 14))
    if value < 0x800000000:  # up to 5 bytes: every Timestamp.nanos
        low = ((value & 0x7F) | 0x80, ((value >> 7) & 0x7F) | 0x80, ((value >> 14) & 0x7F) | 0x80)
        if value < 0x10000000:
            return bytes((*low, value >> 21))
        return bytes((*low, ((value >> 21) & 0x7F) | 0x80, value >> 28))
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _string_field(tag: bytes, text: str) -> bytes:
    raw = text.encode()
    return tag + _varint(len(raw)) + raw


_KIND_FIELDS: dict[str, bytes] = {}
_KIND_FIELDS_LIMIT = 4096


def _kind_field(kind: str) -> bytes:
    field = _string_field(b"\x12", kind) if kind else b""  # zero values are not written
    if len(_KIND_FIELDS) < _KIND_FIELDS_LIMIT:
        _KIND_FIELDS[kind] = field
    return field


_SECONDS_FIELD: tuple[int, bytes] = (0, b"")
"""The Timestamp.seconds field of the current second: it changes once a second."""


def _seconds_field(seconds: int) -> tuple[int, bytes]:
    global _SECONDS_FIELD
    # One tuple swapped at once, so concurrent threads never pair a second with another's bytes.
    _SECONDS_FIELD = cached = (seconds, b"\x08" + _varint(seconds) if seconds else b"")
    return cached


def encode_message(
    msg: Message[ProtoMessage] | ProtoMessage, *, uuid: str = "", is_sync: bool = False
) -> tuple[bytes, int, str]:
    """Serialize a message (or a bare payload: no headers) as a frame.

    Returns the bytes, the payload size and the kind.
    """
    if isinstance(msg, Message):
        kind = msg.kind
        payload = msg.payload.SerializeToString()
        headers = msg.headers
    else:
        kind = kind_of(msg)
        payload = msg.SerializeToString()
        headers = None
    return encode_frame(kind, payload, headers, uuid=uuid, is_sync=is_sync), len(payload), kind


def encode_call(msg: Message[ProtoMessage] | ProtoMessage, uuid: str) -> tuple[bytes, int, str]:
    """A frame of a server-to-client exchange (request or reply): sync, `uuid`, marked with CALL_HEADER.

    Returns the bytes, the payload size and the kind.
    """
    if isinstance(msg, Message):
        kind = msg.kind
        payload = msg.payload.SerializeToString()
        headers = {**msg.headers, **_CALL_MARK}
    else:
        kind = kind_of(msg)
        payload = msg.SerializeToString()
        headers = _CALL_MARK
    return encode_frame(kind, payload, headers, uuid=uuid, is_sync=True), len(payload), kind


def decode_frame(data: bytes) -> Frame:
    """Parse one Frame; raises :class:`FrameDecodeError` on malformed bytes."""
    try:
        return Frame.FromString(data)
    except (DecodeError, RuntimeError, ValueError) as exc:
        raise FrameDecodeError(len(data), str(exc) or type(exc).__name__) from exc


def decode_message(frame: Frame, classes: Mapping[str, type[ProtoMessage]]) -> Message[ProtoMessage]:
    """Turn a decoded frame into a message, parsing its payload as the class of its kind.

    `classes` maps kinds to classes, e.g. :attr:`MessageRegistry.classes`;
    a kind outside it raises :class:`UnknownKindError`.
    """
    kind = frame.kind
    cls = classes.get(kind)
    if cls is None:
        raise UnknownKindError(kind)
    data = frame.payload
    try:
        payload = cls.FromString(data)
    except (DecodeError, RuntimeError, ValueError) as exc:
        raise PayloadDecodeError(kind, str(exc) or type(exc).__name__) from exc
    entries = frame.headers
    count = len(entries)
    group = ""
    if not count:
        headers: dict[str, str] = {}
        topic = ""
    elif count == 1 and TOPIC_HEADER in entries:  # a publication without headers of its own
        headers = {}
        topic = entries[TOPIC_HEADER]
    else:  # dict() of a protobuf map is costly; a comprehension is not
        headers = {key: entries[key] for key in entries}
        topic = headers.pop(TOPIC_HEADER, "")
        if GROUP_HEADER in headers:
            group = headers.pop(GROUP_HEADER)
    metadata = Metadata._received(kind, frame.uuid, frame.is_sync, len(data), frame, topic, group)
    return Message._received(payload, headers, metadata)


# Header prefixing for commands (PROTOCOL.md: Broadcast and Publish).


def prefix_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Headers of a wrapped user message, as they travel on the command frame."""
    return {HEADER_PREFIX + key: value for key, value in headers.items()}


def unprefix_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The wrapped message's headers: only prefixed ones, prefix stripped."""
    cut = len(HEADER_PREFIX)
    return {key[cut:]: headers[key] for key in headers if key.startswith(HEADER_PREFIX)}


_TOPIC_ENTRY_HEAD = _string_field(b"\x0a", TOPIC_HEADER)
_GROUP_ENTRY_HEAD = _string_field(b"\x0a", GROUP_HEADER)


def _append_header(frame: bytes, head: bytes, value: str) -> bytes:
    entry = head + _string_field(b"\x12", value)
    return b"".join((frame, b"\x32", _varint(len(entry)), entry))


def add_topic_header(frame: bytes, topic: str) -> bytes:
    """`frame` with the ``goomerang-topic`` header set to `topic` (an extension, not for Go peers).

    A map entry appended to the encoded frame: protobuf merges map entries
    in any order, and the last one of a key wins, as a dict update would.
    """
    return _append_header(frame, _TOPIC_ENTRY_HEAD, topic)


def add_header(frame: bytes, key: str, value: str) -> bytes:
    """`frame` with header `key` set to `value`, appended as :func:`add_topic_header` does."""
    head = _GROUP_ENTRY_HEAD if key == GROUP_HEADER else _string_field(b"\x0a", key)
    return _append_header(frame, head, value)


# Commands, client -> server.


@dataclass(frozen=True, slots=True)
class BroadcastCommand:
    """Send the wrapped message to every connected client."""

    kind: str
    payload: bytes
    headers: dict[str, str]


@dataclass(frozen=True, slots=True)
class PublishCommand:
    """Send the wrapped message to the subscribers of `topic`."""

    topic: str
    kind: str
    payload: bytes
    headers: dict[str, str]


@dataclass(frozen=True, slots=True)
class SubscribeCommand:
    """Start receiving publications on `topic`.

    `since`: the last position seen, to catch up from (recovery); `group`:
    as a member of that queue group (queue-groups).
    """

    topic: str
    since: str = ""
    group: str = ""


@dataclass(frozen=True, slots=True)
class UnsubscribeCommand:
    """Stop receiving publications on `topic` (as a member of queue `group`, when set)."""

    topic: str
    group: str = ""


Command: TypeAlias = BroadcastCommand | PublishCommand | SubscribeCommand | UnsubscribeCommand


def encode_broadcast(msg: Message[ProtoMessage]) -> tuple[bytes, int]:
    """A BroadcastCmd frame wrapping `msg`; returns bytes and the inner payload size."""
    inner = msg.payload.SerializeToString()
    cmd = BroadcastCmd(kind=msg.kind, message=inner).SerializeToString()
    return encode_frame(BROADCAST_KIND, cmd, prefix_headers(msg.headers)), len(inner)


def encode_publish(topic: str, msg: Message[ProtoMessage]) -> tuple[bytes, int]:
    """A PublishCmd frame wrapping `msg`; returns bytes and the inner payload size."""
    inner = msg.payload.SerializeToString()
    cmd = PublishCmd(topic=topic, kind=msg.kind, message=inner).SerializeToString()
    return encode_frame(PUBLISH_KIND, cmd, prefix_headers(msg.headers)), len(inner)


def encode_subscribe(topic: str, since: str = "", *, group: str = "") -> bytes:
    """A SubscribeCmd frame; `since` (our servers only) asks for what followed that position.

    A `group` travels in the ``goomerang-group`` header (queue-groups extension).
    """
    headers = {SINCE_HEADER: since} if since else {}
    if group:
        headers[GROUP_HEADER] = group
    return encode_frame(SUBSCRIBE_KIND, SubscribeCmd(topic=topic).SerializeToString(), headers or None)


def encode_unsubscribe(topic: str, *, group: str = "") -> bytes:
    """An UnsubscribeCmd frame, with the group header as :func:`encode_subscribe`.

    The server sends the same frame back to confirm a group was left.
    """
    return encode_frame(
        UNSUBSCRIBE_KIND, UnsubscribeCmd(topic=topic).SerializeToString(), {GROUP_HEADER: group} if group else None
    )


def decode_command(frame: Frame) -> Command:
    """Unwrap a command frame (its kind is in COMMAND_KINDS)."""
    kind = frame.kind
    try:
        if kind == PUBLISH_KIND:
            pub = PublishCmd.FromString(frame.payload)
            return PublishCommand(pub.topic, pub.kind, pub.message, unprefix_headers(frame.headers))
        if kind == BROADCAST_KIND:
            bc = BroadcastCmd.FromString(frame.payload)
            return BroadcastCommand(bc.kind, bc.message, unprefix_headers(frame.headers))
        if kind == SUBSCRIBE_KIND:
            headers = frame.headers
            topic = SubscribeCmd.FromString(frame.payload).topic
            return SubscribeCommand(topic, headers.get(SINCE_HEADER, ""), headers.get(GROUP_HEADER, ""))
        if kind == UNSUBSCRIBE_KIND:
            topic = UnsubscribeCmd.FromString(frame.payload).topic
            return UnsubscribeCommand(topic, frame.headers.get(GROUP_HEADER, ""))
    except (DecodeError, RuntimeError, ValueError) as exc:
        raise PayloadDecodeError(kind, str(exc) or type(exc).__name__) from exc
    raise ValueError(f"{kind!r} is not a command kind")


def is_command(kind: str) -> bool:
    """Whether frames of `kind` carry a client -> server command."""
    return kind in COMMAND_KINDS
