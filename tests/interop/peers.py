"""The two ends of an interop test, one interface whichever language runs them.

A scenario is written once against :class:`ServerSide` and
:class:`ClientSide` and runs in both directions: a Python client against a
Go server, and a Go client against a Python server. The Python peers have
the same scripted handlers as the Go peer (``gopeer/main.go``):

- a server's handler for ``MessageV1`` records it; for a sync request whose
  text is ``t`` it replies ``ReplyV1("re:" + t)`` with headers
  ``{"reply": "yes"}`` (``BadReplyV1`` if ``t`` starts with ``bad:``, no
  reply if it starts with ``silent:``; the Python server raises for
  ``raise:``); a plain ``MessageV1`` whose text starts with ``echo:`` is sent
  back as a plain ``ReplyV1("re:" + t)`` with the same headers;
- a client's handlers record every ``MessageV1``, ``ReplyV1`` and
  ``BadReplyV1`` they get, in arrival order.

Sync round trips whose text starts with ``barrier:`` (see
:meth:`ClientSide.barrier`) are not recorded by servers.
"""

from __future__ import annotations

import itertools
from abc import ABC, abstractmethod
from typing import Literal

from goomerang_runtime import Status

from ..helpers import WAIT
from .model import BARRIER, Delivery, HookEvent, Inbox, Msg

__all__ = ["ClientSide", "Lang", "ServerSide", "Side"]

Lang = Literal["go", "python"]


class Side(ABC):
    """What servers and clients share: language, statuses, errors."""

    lang: Lang

    def __init__(self) -> None:
        self.received: Inbox[Delivery] = Inbox(f"{self.lang} {type(self).__name__} deliveries")
        self.statuses: Inbox[int] = Inbox(f"{self.lang} {type(self).__name__} statuses")

    @property
    @abstractmethod
    def errors(self) -> list[str]:
        """The error hooks' reports, as text."""

    async def wait_status(self, status: Status, timeout: float = WAIT) -> None:
        await self.statuses.wait(lambda s: int(status) in s, f"status {status.name}", timeout)

    @abstractmethod
    async def stop(self) -> None:
        """Teardown: end everything at once (bounded)."""


class ServerSide(Side):
    """A server under test."""

    addr: str

    def __init__(self) -> None:
        super().__init__()
        self.hooks: Inbox[HookEvent] = Inbox(f"{self.lang} server hooks")

    async def wait_hook(
        self, name: str, topic: str | None = None, count: int = 1, errors_since: int | None = None
    ) -> None:
        """Wait until the hook `name` (for `topic`) ran `count` times.

        With `errors_since` (a past ``len(self.errors)``), an error the server
        reported since then ends the wait at once (and fails it).
        """
        errors = len(self.errors) if errors_since is None else errors_since
        fail_on_error = errors_since is not None

        def seen(items: list[HookEvent]) -> bool:
            return sum(1 for h in items if h.name == name and topic in (None, h.topic)) >= count

        what = f"{count} {name} {topic or ''}"
        try:
            await self.hooks.wait(lambda items: seen(items) or (fail_on_error and len(self.errors) > errors), what)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; server errors: {self.errors}") from None
        if not seen(self.hooks.items):
            raise AssertionError(f"{self.lang} server reported errors instead of {what}: {self.errors[errors:]}")

    @abstractmethod
    async def broadcast(self, msg: Msg) -> None: ...

    @abstractmethod
    async def publish(self, topic: str, msg: Msg) -> None: ...

    @abstractmethod
    async def shutdown(self) -> None:
        """Graceful shutdown; raises on error; bounded by the caller."""


class ClientSide(Side):
    """A client under test."""

    _barriers = itertools.count(1)

    @abstractmethod
    async def connect(self) -> None: ...

    @abstractmethod
    async def close(self) -> None:
        """Close; raises :class:`CommandFailed` if the close reported an error."""

    @abstractmethod
    async def send(self, msg: Msg) -> None: ...

    @abstractmethod
    async def send_sync(self, msg: Msg, timeout: float = WAIT) -> Delivery:
        """The reply; raises :class:`SyncFailed` if none came."""

    @abstractmethod
    async def broadcast(self, msg: Msg) -> None: ...

    @abstractmethod
    async def publish(self, topic: str, msg: Msg) -> None: ...

    @abstractmethod
    async def subscribe(self, topic: str) -> None: ...

    @abstractmethod
    async def unsubscribe(self, topic: str) -> None: ...

    async def barrier(self) -> None:
        """A sync round trip: the server registered this connection and ran what it sent before."""
        text = f"{BARRIER}{next(self._barriers)}"
        reply = await self.send_sync(Msg("MessageV1", text))
        assert reply.text == "re:" + text, reply
