"""The message envelope handlers receive and senders send: payload + headers."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping
from typing import Generic, Protocol, Self, TypeAlias, TypeVar

from google.protobuf.message import Message as ProtoMessage
from google.protobuf.timestamp_pb2 import Timestamp

__all__ = ["Message", "Metadata", "ProtoMessage", "kind_of"]

P_co = TypeVar("P_co", bound=ProtoMessage, covariant=True)
P = TypeVar("P", bound=ProtoMessage)
Headers: TypeAlias = dict[str, str]


_KINDS: dict[type[ProtoMessage], str] = {}
_NS = 1_000_000_000


def kind_of(payload: ProtoMessage | type[ProtoMessage]) -> str:
    """The kind of a message (class or instance): its full protobuf name."""
    cls = payload if isinstance(payload, type) else type(payload)
    kind = _KINDS.get(cls)
    if kind is None:
        kind = _KINDS[cls] = cls.DESCRIPTOR.full_name
    return kind


class _Stamped(Protocol):
    """A frame whose creation timestamp is read only when asked for."""

    @property
    def creation(self) -> Timestamp: ...


class Metadata:
    """What travels with a message besides its payload and headers.

    On a message you build, only `kind` is set; the runtime fills the rest
    from the frame on the receiving side: `uuid` and `is_sync` of a sync
    request, `payload_size` in bytes, `creation_ns` (Unix time in nanoseconds
    when the sender built the frame, 0 if unknown) and, for a publication
    delivered by a goomerang-python server, its `topic`, and `group`, the
    queue group it was chosen for ("" for a delivery to a plain subscriber).
    """

    __slots__ = ("_creation_ns", "_frame", "group", "is_sync", "kind", "payload_size", "topic", "uuid")

    def __init__(
        self,
        kind: str,
        uuid: str = "",
        is_sync: bool = False,
        payload_size: int = 0,
        creation_ns: int = 0,
        topic: str = "",
        group: str = "",
    ) -> None:
        self.kind = kind
        self.uuid = uuid
        self.is_sync = is_sync
        self.payload_size = payload_size
        self._creation_ns = creation_ns
        self._frame: _Stamped | None = None
        self.topic = topic
        self.group = group

    @staticmethod
    def _received(
        kind: str, uuid: str, is_sync: bool, payload_size: int, frame: _Stamped, topic: str, group: str = ""
    ) -> Metadata:
        """Metadata of a frame from the wire; its timestamp is decoded on first use."""
        meta = Metadata.__new__(Metadata)
        meta.kind = kind
        meta.uuid = uuid
        meta.is_sync = is_sync
        meta.payload_size = payload_size
        meta._creation_ns = 0
        meta._frame = frame
        meta.topic = topic
        meta.group = group
        return meta

    @property
    def creation_ns(self) -> int:
        """Unix time in nanoseconds when the sender built the frame; 0 if unknown."""
        frame = self._frame
        if frame is not None:
            stamp = frame.creation  # an absent timestamp reads as zeros: 0, "unknown"
            self._creation_ns = stamp.seconds * _NS + stamp.nanos
            self._frame = None
        return self._creation_ns

    @creation_ns.setter
    def creation_ns(self, value: int) -> None:
        self._creation_ns = value
        self._frame = None

    @property
    def creation(self) -> _dt.datetime | None:
        """`creation_ns` as an aware UTC datetime, or None if unknown."""
        creation_ns = self.creation_ns
        if not creation_ns:
            return None
        seconds, nanos = divmod(creation_ns, _NS)
        stamp = _dt.datetime.fromtimestamp(seconds, _dt.UTC)
        return stamp + _dt.timedelta(microseconds=nanos // 1000)

    def _fields(self) -> tuple[str, str, bool, int, int, str, str]:
        return (self.kind, self.uuid, self.is_sync, self.payload_size, self.creation_ns, self.topic, self.group)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Metadata):
            return NotImplemented
        return self._fields() == other._fields()

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return (
            f"Metadata(kind={self.kind!r}, uuid={self.uuid!r}, is_sync={self.is_sync!r}, "
            f"payload_size={self.payload_size!r}, creation_ns={self.creation_ns!r}, topic={self.topic!r}, "
            f"group={self.group!r})"
        )


class Message(Generic[P_co]):
    """A protobuf payload with user headers and metadata.

    Build it by keywords, ``Message(payload, headers={"k": "v"})``, or
    fluently, ``Message(payload).set_header("k", "v")``. The kind is derived
    from the payload type. `Message[P]` is covariant in its payload, so a
    ``Message[Ping]`` is accepted wherever a ``Message[ProtoMessage]`` is.
    """

    __slots__ = ("_payload", "headers", "metadata")

    def __init__(
        self,
        payload: P_co,
        headers: Mapping[str, str] | None = None,
        *,
        metadata: Metadata | None = None,
    ) -> None:
        self._payload = payload
        self.headers: Headers = dict(headers) if headers else {}
        self.metadata = metadata if metadata is not None else Metadata(kind_of(payload))

    @staticmethod
    def _received(payload: P, headers: Headers, metadata: Metadata) -> Message[P]:
        """A message from the wire: takes ownership of `headers` instead of copying it."""
        msg: Message[P] = Message.__new__(Message)
        msg._payload = payload
        msg.headers = headers
        msg.metadata = metadata
        return msg

    @property
    def payload(self) -> P_co:
        """The protobuf message carried."""
        return self._payload

    @property
    def kind(self) -> str:
        """The full protobuf name of the payload type."""
        return self.metadata.kind

    def set_header(self, key: str, value: str) -> Self:
        """Set one header and return the message, for chaining."""
        self.headers[key] = value
        return self

    def get_header(self, key: str, default: str = "") -> str:
        """One header's value, or `default` when absent."""
        return self.headers.get(key, default)

    def __repr__(self) -> str:
        return f"Message(kind={self.kind!r}, headers={self.headers!r}, payload={self._payload!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Message):
            return NotImplemented
        return self._payload == other._payload and self.headers == other.headers

    __hash__ = None  # type: ignore[assignment]  # mutable, like dict
