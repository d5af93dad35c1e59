"""Runs the handler chain of each incoming message, with bounded concurrency."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from .errors import HandlerError, NoHandlerError
from .handler import Handler, Sender
from .hooks import Hook
from .message import Message, ProtoMessage

__all__ = ["Dispatcher", "Replier"]


class Replier(Protocol):
    """The sender of a sync request: it can still answer with an error reply."""

    async def fail(self, request_kind: str, error: BaseException) -> None:
        """Send an error reply if no reply was sent yet."""
        ...

    def release(self) -> None:
        """The request's handler finished."""
        ...


def _release(sender: Sender, msg: Message[ProtoMessage]) -> None:
    if msg.metadata.is_sync:
        release = getattr(sender, "release", None)
        if release is not None:
            release()


class Dispatcher:
    """Looks up the chain for a message's kind and runs it.

    With `max_concurrency` <= 1 the chain runs inline, so the read loop
    handles one message at a time, in order. Otherwise each message runs in
    its own task and at most `max_concurrency` run at once across the peer;
    the caller (a read loop) waits for a free slot, which is backpressure.
    """

    __slots__ = ("_chains", "_idle", "_on_end", "_on_start", "_report", "_slots", "_tasks")

    def __init__(
        self,
        chains: Mapping[str, Handler[Any]],
        max_concurrency: int,
        on_worker_start: Hook[[]],
        on_worker_end: Hook[[]],
        report: Callable[[BaseException], None],
    ) -> None:
        self._chains = chains
        self._slots = asyncio.Semaphore(max_concurrency) if max_concurrency > 1 else None
        self._on_start = on_worker_start
        self._on_end = on_worker_end
        self._report = report
        self._tasks: dict[asyncio.Task[None], str] = {}
        self._idle: asyncio.Event | None = None

    @property
    def in_flight(self) -> int:
        """Handler tasks running now (concurrent mode only)."""
        return len(self._tasks)

    def handles(self, kind: str) -> bool:
        """Whether a handler is registered for `kind`."""
        return kind in self._chains

    async def dispatch(self, sender: Sender, msg: Message[ProtoMessage]) -> None:
        """Run (inline) or start (concurrently) the chain for `msg`."""
        chain = self._chains.get(msg.kind)
        if chain is None:
            await self._fail(sender, msg, NoHandlerError(msg.kind))
            _release(sender, msg)
            return
        await self.run(chain, sender, msg)

    async def run(self, chain: Handler[Any], sender: Sender, msg: Message[ProtoMessage]) -> None:
        """Run (inline) or start (concurrently) `chain` for `msg`."""
        slots = self._slots
        if slots is None:
            await self._run(chain, sender, msg)
            return
        await slots.acquire()
        task = asyncio.get_running_loop().create_task(self._run_in_slot(chain, sender, msg, slots))
        self._tasks[task] = msg.kind
        task.add_done_callback(self._task_done)

    async def _run_in_slot(
        self, chain: Handler[Any], sender: Sender, msg: Message[ProtoMessage], slots: asyncio.Semaphore
    ) -> None:
        try:
            await self._run(chain, sender, msg)
        finally:
            slots.release()

    async def _run(self, chain: Handler[Any], sender: Sender, msg: Message[ProtoMessage]) -> None:
        if self._on_start:
            self._on_start()
        try:
            await chain(sender, msg)
        except Exception as exc:
            err = HandlerError(msg.kind, exc)
            err.__cause__ = exc
            await self._fail(sender, msg, err)
        finally:
            _release(sender, msg)
            if self._on_end:
                self._on_end()

    async def _fail(self, sender: Sender, msg: Message[ProtoMessage], err: Exception) -> None:
        self._report(err)
        fail = getattr(sender, "fail", None)
        if msg.metadata.is_sync and fail is not None:
            await fail(msg.kind, err)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.pop(task, None)
        if not task.cancelled() and (exc := task.exception()) is not None:
            self._report(exc)
        if not self._tasks and self._idle is not None:
            self._idle.set()

    async def drain(self, timeout: float | None, when: str) -> None:
        """Wait for running handlers; cancel and report those left after `timeout`."""
        if self._tasks:
            self._idle = asyncio.Event()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._idle.wait()
        for task, kind in list(self._tasks.items()):
            task.cancel()
            cancelled = asyncio.CancelledError(f"handler still running at {when} after {timeout}s, cancelled")
            err = HandlerError(kind, cancelled)
            err.__cause__ = cancelled
            self._report(err)
