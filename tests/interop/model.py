"""What the interop tests send and receive: messages, deliveries, and bounded inboxes.

The example messages (``goomerang.example.MessageV1``, ``ReplyV1``,
``BadReplyV1``) each have one string field, number 1 (``message`` in the Go
protos; Python's ``BadReplyV1`` calls it ``reason``): a test message is its
kind and that text.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from generated.goomerang.example.messages_pb2 import BadReplyV1, MessageV1, ReplyV1
from goomerang_runtime import Message, ProtoMessage

from ..helpers import WAIT
from .goproc import Event

__all__ = [
    "BARRIER",
    "FULL",
    "KINDS",
    "CommandFailed",
    "Delivery",
    "HookEvent",
    "Inbox",
    "Msg",
    "SyncFailed",
    "digest",
    "make",
    "text_of",
]

T = TypeVar("T")
SHORT = 256
"""Payload texts up to this length are compared as text; longer ones by length and digest."""
BARRIER = "barrier:"
KINDS: dict[str, type[ProtoMessage]] = {"MessageV1": MessageV1, "ReplyV1": ReplyV1, "BadReplyV1": BadReplyV1}
FULL = {name: f"goomerang.example.{name}" for name in KINDS}


def text_of(payload: ProtoMessage) -> str:
    """The string field number 1 of an example message (``message``; ``reason`` in Python's BadReplyV1)."""
    return str(getattr(payload, payload.DESCRIPTOR.fields_by_number[1].name))


def make(kind: type[ProtoMessage], text: str) -> ProtoMessage:
    """An example message of `kind` whose field number 1 is `text`."""
    return kind(**{kind.DESCRIPTOR.fields_by_number[1].name: text})


def digest(text: str) -> str:
    """The SHA-256 hex digest of a payload text (what the Go peer reports for long ones)."""
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class Msg:
    """What to send: an example message kind (short name), its text and headers."""

    kind: str
    text: str
    headers: dict[str, str] = field(default_factory=dict)

    def proto(self) -> ProtoMessage:
        return make(KINDS[self.kind], self.text)

    def message(self) -> Message[ProtoMessage]:
        return Message(self.proto(), dict(self.headers))

    def command(self) -> dict[str, object]:
        """The fields of a Go peer command carrying this message."""
        return {"kind": self.kind, "payload": self.text, "headers": self.headers}


@dataclass(frozen=True)
class Delivery:
    """A message as one side's handler (or sync caller) got it."""

    kind: str
    headers: dict[str, str]
    uuid: str
    is_sync: bool
    length: int
    sha256: str
    text: str | None
    """The payload text, when it is at most SHORT characters."""
    topic: str = ""
    """Metadata.topic (Python receivers only; Go has no such thing)."""

    @staticmethod
    def of_text(kind: str, text: str, headers: dict[str, str], uuid: str, is_sync: bool, topic: str) -> Delivery:
        return Delivery(
            kind, headers, uuid, is_sync, len(text), digest(text), text if len(text) <= SHORT else None, topic
        )

    @staticmethod
    def of_message(msg: Message[ProtoMessage]) -> Delivery:
        text = text_of(msg.payload)
        meta = msg.metadata
        return Delivery.of_text(msg.kind, text, dict(msg.headers), meta.uuid, meta.is_sync, meta.topic)

    @staticmethod
    def of_event(event: Event) -> Delivery:
        text = event.get("payload")
        return Delivery(
            str(event.get("kind", "")),
            dict(event.get("headers") or {}),
            str(event.get("uuid", "")),
            bool(event.get("is_sync", False)),
            int(event.get("payload_len", 0)),
            str(event.get("payload_sha256", "")),
            None if text is None else str(text),
        )

    def has_text(self, text: str) -> bool:
        """Whether the payload text is `text` (by digest for long texts)."""
        return self.length == len(text) and self.sha256 == digest(text)


@dataclass(frozen=True)
class HookEvent:
    """A server-side pub/sub hook: subscribed, unsubscribed, published or client_broadcast."""

    name: str
    topic: str = ""
    kind: str = ""


class Inbox(Generic[T]):
    """Items in arrival order, with bounded waits."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.items: list[T] = []
        self._changed = asyncio.Event()

    def put(self, item: T) -> None:
        self.items.append(item)
        self._changed.set()

    async def wait(self, predicate: Callable[[list[T]], bool], what: str, timeout: float = WAIT) -> list[T]:
        """Wait until `predicate(items)` holds; returns the items."""
        try:
            async with asyncio.timeout(timeout):
                while not predicate(self.items):
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            raise AssertionError(f"{self.what}: timed out waiting for {what}; got {self.items}") from None
        return self.items

    async def wait_for(self, count: int, timeout: float = WAIT) -> list[T]:
        """Wait until at least `count` items arrived."""
        return await self.wait(lambda items: len(items) >= count, f"{count} item(s)", timeout)


class SyncFailed(Exception):
    """A sync call got no reply (its text says why, in the caller's words)."""


class CommandFailed(Exception):
    """A client or server operation failed at the caller."""
