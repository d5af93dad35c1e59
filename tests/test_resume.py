"""Handling begun in a transport callback as a task, finished by that task (``_resume.py``)."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable

import pytest

from goomerang_runtime._resume import Resume, TaskStepper

from .helpers import WAIT

VAR: contextvars.ContextVar[str] = contextvars.ContextVar("VAR", default="unset")


class Reader:
    """A task parked on a future, as a read loop waiting for input; awaits what a step leaves it."""

    def __init__(self) -> None:
        self.context = contextvars.copy_context()
        self.wake: asyncio.Future[Resume | None] = asyncio.get_running_loop().create_future()
        self.task = asyncio.get_running_loop().create_task(self._run(), context=self.context)
        self.stepper = TaskStepper(asyncio.get_running_loop(), self.task, self.context)

    async def _run(self) -> str:
        resume = await self.wake
        if resume is not None:
            await resume
        return VAR.get()

    def in_callback(self, start: Callable[[], Awaitable[None] | None]) -> asyncio.Future[bool | Resume]:
        """Run a step from a loop callback (no task running), as a transport would."""
        done: asyncio.Future[bool | Resume] = asyncio.get_running_loop().create_future()
        asyncio.get_running_loop().call_soon(lambda: done.set_result(self.stepper.step(start)))
        return done


async def test_a_step_that_never_waits_runs_as_the_task_in_its_context() -> None:
    reader = Reader()
    seen: list[object] = []

    async def handling() -> None:
        seen.append(asyncio.current_task())
        seen.append(reader.task.get_coro().cr_running)  # type: ignore[union-attr]
        async with asyncio.timeout(WAIT):  # noqa: ASYNC100 - entering it needs a current task, which is the point
            VAR.set("from the step")

    assert await reader.in_callback(handling) is True
    assert seen == [reader.task, False]  # run as the task while the task itself was parked
    reader.wake.set_result(None)
    assert await asyncio.wait_for(reader.task, WAIT) == "from the step"  # the task's own context


async def test_a_step_that_waits_is_finished_by_the_task_with_what_it_waited_for() -> None:
    reader = Reader()
    gate: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    steps: list[str] = []

    async def handling() -> None:
        token = VAR.set("before the wait")
        steps.append("started")
        got = await gate
        steps.append(f"{got} in {VAR.get()}")
        assert asyncio.current_task() is reader.task
        VAR.reset(token)  # a token from the first step resets in the task: one context throughout
        VAR.set("after")

    resume = await reader.in_callback(handling)
    assert isinstance(resume, Resume)
    assert steps == ["started"]
    reader.wake.set_result(resume)
    await asyncio.sleep(0)
    gate.set_result("woken")
    assert await asyncio.wait_for(reader.task, WAIT) == "after"
    assert steps == ["started", "woken in before the wait"]


async def test_a_timeout_begun_in_the_step_cancels_the_task_that_finishes_it() -> None:
    reader = Reader()
    outcome: list[str] = []

    async def handling() -> None:
        try:
            async with asyncio.timeout(0.01):
                await asyncio.Event().wait()
        except TimeoutError:
            outcome.append("timed out")
        outcome.append(f"cancelling={asyncio.current_task().cancelling()}")  # type: ignore[union-attr]

    resume = await reader.in_callback(handling)
    assert isinstance(resume, Resume)
    reader.wake.set_result(resume)
    assert await asyncio.wait_for(reader.task, WAIT) == "unset"
    assert outcome == ["timed out", "cancelling=0"]


async def test_cancelling_the_task_reaches_the_handling_it_finishes() -> None:
    reader = Reader()
    cleaned: list[str] = []

    async def handling() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            cleaned.append("finally ran")

    resume = await reader.in_callback(handling)
    assert isinstance(resume, Resume)
    reader.wake.set_result(resume)
    await asyncio.sleep(0)
    reader.task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(reader.task, WAIT)
    assert cleaned == ["finally ran"]


async def test_an_error_of_the_step_is_raised_in_the_task() -> None:
    reader = Reader()

    def start() -> Awaitable[None]:
        raise KeyError("from the step")

    resume = await reader.in_callback(start)
    assert isinstance(resume, Resume)
    reader.wake.set_result(resume)
    with pytest.raises(KeyError, match="from the step"):
        await asyncio.wait_for(reader.task, WAIT)


async def test_nothing_to_await_and_no_step_inside_a_running_task() -> None:
    reader = Reader()
    assert await reader.in_callback(lambda: None) is True
    ran: list[int] = []

    async def handling() -> None:
        ran.append(1)

    # Called from a task (not a callback): refused, the caller handles the message itself.
    assert reader.stepper.step(handling) is False
    assert ran == []
    reader.wake.set_result(None)
    await asyncio.wait_for(reader.task, WAIT)
