"""The registry of message kinds a peer can decode: full name -> class."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from google.protobuf.message import DecodeError
from google.protobuf.message import Message as ProtoMessage

from .errors import DuplicateKindError, PayloadDecodeError, UnknownKindError
from .message import kind_of

__all__ = ["MessageRegistry"]


class MessageRegistry:
    """Maps each kind (a protobuf full name) to its message class."""

    __slots__ = ("_classes",)

    def __init__(self) -> None:
        self._classes: dict[str, type[ProtoMessage]] = {}

    def register(self, cls: type[ProtoMessage]) -> str:
        """Register a message class and return its kind.

        Registering the same class twice is fine; another class under the same
        full name raises :class:`DuplicateKindError`.
        """
        kind = kind_of(cls)
        known = self._classes.get(kind)
        if known is not None and known is not cls:
            raise DuplicateKindError(kind)
        self._classes[kind] = cls
        return kind

    @property
    def classes(self) -> Mapping[str, type[ProtoMessage]]:
        """The live kind -> class mapping (read-only use: it follows later registrations)."""
        return self._classes

    def get(self, kind: str) -> type[ProtoMessage]:
        """The class of `kind`; raises :class:`UnknownKindError` if absent."""
        try:
            return self._classes[kind]
        except KeyError:
            raise UnknownKindError(kind) from None

    def decode(self, kind: str, data: bytes) -> ProtoMessage:
        """Parse `data` as a message of `kind`."""
        cls = self._classes.get(kind)
        if cls is None:
            raise UnknownKindError(kind)
        try:
            return cls.FromString(data)
        except (DecodeError, RuntimeError, ValueError) as exc:
            raise PayloadDecodeError(kind, str(exc) or type(exc).__name__) from exc

    def __contains__(self, kind: object) -> bool:
        return kind in self._classes

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._classes))

    def __len__(self) -> int:
        return len(self._classes)
