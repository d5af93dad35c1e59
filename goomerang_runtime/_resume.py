"""Handling a message from the transport's callback, as its connection's reader task.

A server handles a message in its connection's read loop, a task woken by
the transport. When that reader is idle, waiting for input, the message can
be handled at once from the transport's callback instead, saving the loop
turn of waking it (a reply then leaves in the same turn its request came
in, as with a hand-written protocol). To keep the reader's semantics the
handling runs as the reader task (``asyncio.current_task()`` is the reader,
so ``asyncio.timeout`` and cancellation work) and in the reader's context
(ContextVars). Most handlers finish without waiting. One that waits for
something is handed to the reader as a :class:`Resume`, which drives it on
from where it stopped, before anything received after it.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections.abc import Awaitable, Callable, Generator
from typing import Any

__all__ = ["DIRECT_BURST", "Resume", "TaskStepper"]

DIRECT_BURST = 32
"""Messages of one read a link hands to the callback at most; the rest wait for the reader.

The reader yields to other connections between such runs, so a peer whose
one read brings thousands of messages costs only its share of the loop.
"""


class Resume:
    """The rest of a handling that began in a callback: the reader awaits it, in order."""

    __slots__ = ("_error", "_rest", "_yielded")

    def __init__(self, rest: Generator[Any, Any, None] | None, yielded: object, error: BaseException | None) -> None:
        self._rest = rest
        self._yielded = yielded
        self._error = error

    def __await__(self) -> Generator[Any, Any, None]:
        error, rest, yielded = self._error, self._rest, self._yielded
        self._error = self._rest = self._yielded = None
        if error is not None:  # the first step raised: it surfaces in the reader, as if it had run there
            raise error
        assert rest is not None
        # What `yield from` does, from a generator already started: pass each yielded future up to the
        # task, and what the task sends or throws down.
        while True:
            try:
                sent = yield yielded
            except GeneratorExit:
                rest.close()
                raise
            except BaseException as exc:
                try:
                    yielded = rest.throw(exc)
                except StopIteration:
                    return
            else:
                try:
                    yielded = rest.send(sent)
                except StopIteration:
                    return

    def abandon(self) -> None:
        """Cancel the rest of a handling nobody will await; call it as the task, in its context.

        The handling sees a cancellation where it waits, as it would had the
        task been awaiting it when cancelled, so the dispatcher reports it.
        """
        rest = self._rest
        self._error = self._rest = self._yielded = None
        if rest is None:
            return
        try:
            rest.throw(asyncio.CancelledError("the connection's reader ended before it finished this handling"))
        except (asyncio.CancelledError, StopIteration):
            return
        with contextlib.suppress(RuntimeError):  # it waits again, ignoring the cancellation: it ends here
            rest.close()


class TaskStepper:
    """Runs the first step of a handling as `task`, in its context, from a transport callback."""

    __slots__ = ("_context", "_loop", "_task")

    def __init__(self, loop: asyncio.AbstractEventLoop, task: asyncio.Task[Any], context: contextvars.Context) -> None:
        self._loop = loop
        self._task = task
        self._context = context

    def step(self, start: Callable[[], Awaitable[None] | None]) -> bool | Resume:
        """Run `start()` and the awaitable it returns up to its first wait.

        True: all done; a :class:`Resume` for the task to await: the rest;
        False: not run (a task is running: this is not a callback).
        """
        loop, task = self._loop, self._task
        try:
            asyncio.tasks._enter_task(loop, task)
        except RuntimeError:
            return False
        try:
            return self._context.run(_first_step, start)
        finally:
            asyncio.tasks._leave_task(loop, task)


def _first_step(start: Callable[[], Awaitable[None] | None]) -> bool | Resume:
    rest: Generator[Any, Any, None] | None = None
    try:
        awaitable = start()
        if awaitable is None:
            return True
        rest = awaitable.__await__()
        yielded = rest.send(None)
    except StopIteration:
        return True
    except BaseException as exc:
        return Resume(None, None, exc)
    return Resume(rest, yielded, None)
