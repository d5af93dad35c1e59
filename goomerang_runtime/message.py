"""The message envelope handlers receive and senders send: payload + headers."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Generic, Self, TypeAlias, TypeVar

from google.protobuf.message import Message as ProtoMessage

__all__ = ["Message", "Metadata", "ProtoMessage", "kind_of"]

P_co = TypeVar("P_co", bound=ProtoMessage, covariant=True)
P = TypeVar("P", bound=ProtoMessage)
Headers: TypeAlias = dict[str, str]


_KINDS: dict[type[ProtoMessage], str] = {}


def kind_of(payload: ProtoMessage | type[ProtoMessage]) -> str:
    """The kind of a message (class or instance): its full protobuf name."""
    cls = payload if isinstance(payload, type) else type(payload)
    kind = _KINDS.get(cls)
    if kind is None:
        kind = _KINDS[cls] = cls.DESCRIPTOR.full_name
    return kind


@dataclass(slots=True)
class Metadata:
    """What travels with a message besides its payload and headers.

    On a message you build, only `kind` is set; the runtime fills the rest
    from the frame on the receiving side.
    """

    kind: str
    uuid: str = ""
    is_sync: bool = False
    payload_size: int = 0
    creation_ns: int = 0
    """Unix time in nanoseconds when the sender built the frame; 0 if unknown."""
    topic: str = ""
    """For a publication delivered by a goomerang-python server: its topic."""

    @property
    def creation(self) -> _dt.datetime | None:
        """`creation_ns` as an aware UTC datetime, or None if unknown."""
        if not self.creation_ns:
            return None
        seconds, nanos = divmod(self.creation_ns, 1_000_000_000)
        stamp = _dt.datetime.fromtimestamp(seconds, _dt.UTC)
        return stamp + _dt.timedelta(microseconds=nanos // 1000)


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
