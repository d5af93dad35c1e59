"""Runs the handler chain of each incoming message, with bounded concurrency."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
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


def _release(sender: Sender) -> None:
    """A sync request's handler finished: tell its sender (a :class:`Replier`)."""
    release = getattr(sender, "release", None)
    if release is not None:
        release()


_Job = tuple[Handler[Any], Sender, Message[ProtoMessage]]


# A kind runs in the caller once its handler finished without yielding; it is
# re-checked on each of its first _CONFIRM such runs, then every _RECHECK-th.
_CONFIRM = 16
_RECHECK = 32


class _Probe:
    """Tells whether the event loop ran while a handler was awaited (it yielded)."""

    __slots__ = ("yielded",)

    def __init__(self) -> None:
        self.yielded = False

    def fire(self) -> None:
        self.yielded = True


class Dispatcher:
    """Looks up the chain for a message's kind and runs it.

    With `max_concurrency` <= 1 the chain runs inline, so the read loop
    handles one message at a time, in order. Otherwise messages wait in a
    queue served by a pool of at most `max_concurrency` worker tasks, started
    as the load needs them and kept until :meth:`drain`: no task per message.
    The caller (a read loop) waits while the queue is full, which is
    backpressure.

    A kind whose handler last finished without ever yielding to the event
    loop is run at once by the caller instead, when a slot is free and
    nothing is queued: it would not have run concurrently anyway, and this
    saves the hand-over to a worker. Whether it yields is checked on its
    first runs, then on a sample; once it does, it still counts against
    `max_concurrency` and its kind goes back to the workers.

    Handlers run one after another in the same task (a worker's or the read
    loop's), so they share its context: a handler that sets a ContextVar
    resets it before it returns.
    """

    __slots__ = (
        "_busy",
        "_chains",
        "_end_fns",
        "_idle",
        "_limit",
        "_on_end",
        "_on_start",
        "_queue",
        "_queue_limit",
        "_quick",
        "_report",
        "_resting",
        "_room",
        "_start_fns",
        "_stopping",
        "_workers",
    )

    def __init__(
        self,
        chains: Mapping[str, Handler[Any]],
        max_concurrency: int,
        on_worker_start: Hook[[]],
        on_worker_end: Hook[[]],
        report: Callable[[BaseException], None],
    ) -> None:
        self._chains = chains
        self._limit = max_concurrency
        self._on_start = on_worker_start
        self._on_end = on_worker_end
        self._start_fns = on_worker_start.callables
        self._end_fns = on_worker_end.callables
        self._report = report
        self._queue: deque[_Job] = deque()
        self._queue_limit = max_concurrency * 4
        self._workers: dict[asyncio.Task[None], str] = {}
        self._resting: list[asyncio.Future[None]] = []
        self._busy = 0
        self._quick: dict[str, int] = {}
        self._stopping = ""
        self._room = asyncio.Event()
        self._room.set()
        self._idle: asyncio.Event | None = None

    @property
    def in_flight(self) -> int:
        """Messages queued or being handled (concurrent mode only)."""
        return len(self._queue) + self._busy

    def handles(self, kind: str) -> bool:
        """Whether a handler is registered for `kind`."""
        return kind in self._chains

    def dispatch(
        self, sender: Sender, msg: Message[ProtoMessage], chain: Handler[Any] | None = None
    ) -> Awaitable[None]:
        """Run (inline) or queue (concurrently) `chain` for `msg`; await the result.

        Without `chain`, the one registered for the message's kind. A plain
        function handing back the coroutine to await, so the hot path has no
        coroutine frame between the read loop and the handler chain but
        :meth:`_run`.
        """
        kind = msg.metadata.kind
        if self._stopping:
            return self._refuse(sender, msg)
        if chain is None:
            chain = self._chains.get(kind)
            if chain is None:
                return self._unhandled(sender, msg)
        if self._limit <= 1:
            return self._run(chain, sender, msg)
        runs = self._quick.get(kind)
        if runs is not None and not self._queue and self._busy < self._limit:
            self._quick[kind] = runs + 1
            if runs < _CONFIRM or not runs % _RECHECK:
                return self._run_probed(chain, sender, msg)
            return self._run(chain, sender, msg)
        return self._enqueue((chain, sender, msg))

    async def _refuse(self, sender: Sender, msg: Message[ProtoMessage]) -> None:
        """A message read after :meth:`drain`: never handled, and reported so."""
        cancelled = asyncio.CancelledError(f"handler never started: received {self._stopping}")
        err = HandlerError(msg.kind, cancelled)
        err.__cause__ = cancelled
        self._report(err)
        if msg.metadata.is_sync:
            _release(sender)

    async def _unhandled(self, sender: Sender, msg: Message[ProtoMessage]) -> None:
        await self._fail(sender, msg, NoHandlerError(msg.kind))
        if msg.metadata.is_sync:
            _release(sender)

    async def _run_probed(self, chain: Handler[Any], sender: Sender, msg: Message[ProtoMessage]) -> None:
        probe = _Probe()
        handle = asyncio.get_running_loop().call_soon(probe.fire)
        try:
            await self._run(chain, sender, msg)
        finally:
            handle.cancel()
            if probe.yielded:
                self._quick.pop(msg.metadata.kind, None)

    async def _enqueue(self, job: _Job) -> None:
        queue = self._queue
        queue.append(job)
        if self._resting:
            resting = self._resting.pop()
            if not resting.done():
                resting.set_result(None)
        elif len(self._workers) < self._limit:
            worker = asyncio.get_running_loop().create_task(self._work())
            self._workers[worker] = ""
            worker.add_done_callback(self._worker_done)
        if len(queue) >= self._queue_limit:
            self._room.clear()
            while len(queue) >= self._queue_limit:
                await self._room.wait()

    async def _work(self) -> None:
        queue = self._queue
        workers = self._workers
        room = self._room
        resting = self._resting
        loop = asyncio.get_running_loop()
        me = asyncio.current_task()
        assert me is not None
        try:
            while True:
                while queue:
                    chain, sender, msg = queue.popleft()
                    if not room.is_set() and len(queue) < self._queue_limit:
                        room.set()
                    kind = workers[me] = msg.kind
                    probe = _Probe()
                    handle = loop.call_soon(probe.fire)
                    try:
                        await self._run(chain, sender, msg)
                    finally:
                        handle.cancel()
                    if probe.yielded:
                        self._quick.pop(kind, None)
                    else:
                        self._quick.setdefault(kind, 0)
                    workers[me] = ""
                wake = loop.create_future()
                resting.append(wake)
                await wake
        finally:
            del workers[me]

    async def _run(self, chain: Handler[Any], sender: Sender, msg: Message[ProtoMessage]) -> None:
        self._busy += 1
        if self._start_fns:
            self._on_start()
        try:
            await chain(sender, msg)
        except asyncio.CancelledError:
            # Cancelled mid-way (a shutdown or close that timed out): never silently.
            cancelled = asyncio.CancelledError(f"handler cancelled while running ({self._stopping or 'cancelled'})")
            err = HandlerError(msg.kind, cancelled)
            err.__cause__ = cancelled
            self._report(err)
            raise
        except Exception as exc:
            err = HandlerError(msg.kind, exc)
            err.__cause__ = exc
            await self._fail(sender, msg, err)
        finally:
            if msg.metadata.is_sync:
                _release(sender)
            if self._end_fns:
                self._on_end()
            self._busy -= 1
            if self._idle is not None:
                self._check_idle()

    async def _fail(self, sender: Sender, msg: Message[ProtoMessage], err: Exception) -> None:
        self._report(err)
        fail = getattr(sender, "fail", None)
        if msg.metadata.is_sync and fail is not None:
            await fail(msg.kind, err)

    def _check_idle(self) -> None:
        idle = self._idle
        if idle is not None and not self._busy and not self._queue:
            idle.set()

    def _worker_done(self, worker: asyncio.Task[None]) -> None:
        if not worker.cancelled() and (exc := worker.exception()) is not None:
            self._report(exc)

    async def drain(self, timeout: float | None, when: str) -> None:
        """Wait for queued and running handlers; cancel and report those left after `timeout`.

        The workers end too.
        """
        if self._queue or self._busy:
            self._idle = asyncio.Event()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._idle.wait()
        self._stopping = f"at {when}, after {timeout}s"
        never_started = [msg.kind for _, _, msg in self._queue]
        self._queue.clear()
        workers = list(self._workers)
        for worker in workers:
            worker.cancel()  # a busy worker's handler reports its own cancellation
        self._resting.clear()
        self._room.set()
        if workers:  # let them unwind; a handler that ignores cancellation gets a second
            await asyncio.wait(workers, timeout=1.0)
        for kind in never_started:
            cancelled = asyncio.CancelledError(f"handler never started: queued at {when} after {timeout}s")
            err = HandlerError(kind, cancelled)
            err.__cause__ = cancelled
            self._report(err)
