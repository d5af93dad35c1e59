"""A server handles a message from the transport's callback when its reader is idle (``_resume.py``).

On both transports (on websockets from Python 3.12, where a task's context can be read), with the
reader's semantics: the current task is the connection's, ContextVars live in its context, timeouts
and cancellation work, and messages of one connection are handled in the order they came.
"""

from __future__ import annotations

import asyncio
import contextvars
import sys
from collections.abc import Awaitable, Callable

import pytest

from generated.goomerang.example.messages_pb2 import MessageV1, PingPong, SuccessReplyV1
from goomerang_runtime import Client, Message, ProtoMessage, Sender, Server
from goomerang_runtime.handler import Handler

from .helpers import WAIT, Collector

TRANSPORTS = ["websockets", "picows"]
REQUEST: contextvars.ContextVar[str] = contextvars.ContextVar("REQUEST", default="")


def direct_expected(transport: str) -> bool:
    return transport == "picows" or sys.version_info >= (3, 12)


def in_callback() -> bool:
    """Whether the current task is parked while this runs: called from a callback, as the task."""
    task = asyncio.current_task()
    assert task is not None  # never without a task: asyncio.timeout needs one
    return not task.get_coro().cr_running  # type: ignore[union-attr]


def tag_requests(next_handler: Handler[ProtoMessage]) -> Callable[[Sender, Message[ProtoMessage]], Awaitable[None]]:
    """A middleware that sets a ContextVar around the handler, across its awaits."""

    async def tagged(sender: Sender, msg: Message[ProtoMessage]) -> None:
        token = REQUEST.set(msg.kind)
        try:
            await next_handler(sender, msg)
        finally:
            REQUEST.reset(token)  # raises if the handler moved to another context

    return tagged


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_handlers_run_from_the_callback_with_the_readers_semantics(transport: str) -> None:
    server = Server(transport=transport, max_concurrency=1)  # type: ignore[arg-type]
    errors = Collector()
    server.on_error(errors)
    server.middleware(tag_requests)
    places: list[bool] = []

    async def reply(sender: Sender, msg: Message[MessageV1]) -> None:
        places.append(in_callback())
        text = msg.payload.message
        if text == "wait":  # waits, and so is finished by the reader task
            async with asyncio.timeout(WAIT):
                await asyncio.sleep(0.001)
        elif text == "timeout":
            try:
                async with asyncio.timeout(0.001):
                    await asyncio.Event().wait()
            except TimeoutError:
                text = "timed out"
        await sender.send(SuccessReplyV1(message=f"{text} {REQUEST.get()}"))

    server.handle(MessageV1, reply)
    async with server:
        client = Client(server=server.addr, transport=transport)  # type: ignore[arg-type]
        async with client:
            for text in ["quick", "wait", "timeout", "quick", "wait"]:
                answer = await client.send_sync(MessageV1(message=text), timeout=WAIT, expect=SuccessReplyV1)
                expected = "timed out" if text == "timeout" else text
                assert answer.payload.message == f"{expected} goomerang.example.MessageV1"
    assert errors.items == []
    # Each request came while the reader waited: each began in the callback where the transport offers it.
    assert places == [direct_expected(transport)] * 5


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_handler_that_waits_holds_back_what_came_after_it(transport: str) -> None:
    server = Server(transport=transport, max_concurrency=1)  # type: ignore[arg-type]
    errors = Collector()
    server.on_error(errors)
    first = asyncio.Event()
    release = asyncio.Event()
    handled: list[int] = []
    places: list[bool] = []
    all_in = asyncio.Event()

    async def note(sender: Sender, msg: Message[PingPong]) -> None:
        sequence = msg.payload.sequence
        if sequence == 0:
            places.append(in_callback())
            first.set()
            await release.wait()  # what came in the same read waits behind it
        handled.append(sequence)
        if len(handled) == 50:
            all_in.set()

    server.handle(PingPong, note)
    async with server:
        client = Client(server=server.addr, transport=transport)  # type: ignore[arg-type]
        async with client:
            # Written without yielding: the server reads all 50 at once, after this task yields.
            for sequence in range(50):
                await client.send(PingPong(sequence=sequence))
            await asyncio.wait_for(first.wait(), WAIT)
            assert handled == []
            release.set()
            await asyncio.wait_for(all_in.wait(), WAIT)
    assert handled == list(range(50))
    assert places == [direct_expected(transport)]
    assert errors.items == []


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_handler_waiting_at_shutdown_is_cancelled_and_reported(transport: str) -> None:
    server = Server(transport=transport)  # type: ignore[arg-type]
    errors = Collector()
    server.on_error(errors)
    started = asyncio.Event()
    finished: list[str] = []

    async def stuck(sender: Sender, msg: Message[PingPong]) -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        finally:
            finished.append("cleaned up")

    server.handle(PingPong, stuck)
    await server.start()
    client = Client(server=server.addr, transport=transport)  # type: ignore[arg-type]
    client.on_error(Collector())
    async with client:
        await client.send(PingPong(sequence=1))
        await asyncio.wait_for(started.wait(), WAIT)
        await asyncio.wait_for(server.shutdown(timeout=0.05), WAIT)
    assert finished == ["cleaned up"]
    [reported] = [e for e in errors.items if "cancelled" in str(e)]
    assert "PingPong" in str(reported)
