"""The dispatcher's worker pool: every message handled, never more than the limit at once."""

from __future__ import annotations

import asyncio
import random

from generated.goomerang.example.messages_pb2 import MessageV1
from goomerang_runtime import HandlerError, Message, ProtoMessage, Sender
from goomerang_runtime._dispatch import Dispatcher
from goomerang_runtime.handler import PeerInfo
from goomerang_runtime.hooks import Hook

from .helpers import WAIT, Collector, Counter


class NullSender:
    peer = PeerInfo("test", "test:0")

    async def send(self, msg: Message[ProtoMessage] | ProtoMessage) -> int:
        return 0


def dispatcher(limit: int, report: Collector) -> Dispatcher:
    return Dispatcher({}, limit, Hook("on_worker_start", report), Hook("on_worker_end", report), report)


async def test_every_message_is_handled_whatever_the_interleaving() -> None:
    rng = random.Random(5)
    done = Counter()
    running = 0
    peak = 0

    async def handler(sender: Sender, msg: Message[ProtoMessage]) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        for _ in range(rng.randrange(3)):
            await asyncio.sleep(0)
        running -= 1
        done.hit()

    errors = Collector()
    d = dispatcher(4, errors)
    msg = Message(MessageV1())
    for _ in range(5000):
        await d.dispatch(NullSender(), msg, handler)
        for _ in range(rng.randrange(3)):
            await asyncio.sleep(0)  # let workers finish or not, at random points
    await done.wait_for(5000)
    assert peak == 4
    assert d.in_flight == 0
    assert errors.items == []


async def test_drain_cancels_and_reports_running_and_queued_messages() -> None:
    errors = Collector()
    d = dispatcher(2, errors)
    started = Counter()

    async def stuck(sender: Sender, msg: Message[ProtoMessage]) -> None:
        started.hit()
        await asyncio.Event().wait()

    async def feed() -> None:
        for _ in range(3):  # the third waits in the queue: both workers are busy
            await d.dispatch(NullSender(), Message(MessageV1()), stuck)

    caller = asyncio.create_task(feed())
    await started.wait_for(2)
    await d.drain(0.01, "test")
    await asyncio.wait_for(caller, WAIT)
    reported = errors.of(HandlerError)
    assert len(reported) == 3  # two running, one still queued
    assert all(e.kind == "goomerang.example.MessageV1" for e in reported)
    assert d.in_flight == 0


async def test_a_handler_that_never_yields_runs_at_once_then_back_to_workers_when_it_does() -> None:
    errors = Collector()
    d = dispatcher(4, errors)
    handled: list[int] = []
    done = Counter()
    yield_now = False

    async def handler(sender: Sender, msg: Message[ProtoMessage]) -> None:
        if yield_now:
            await asyncio.sleep(0)
        handled.append(len(handled))
        done.hit()

    msg = Message(MessageV1())
    await d.dispatch(NullSender(), msg, handler)  # first time: through a worker
    assert handled == []
    await done.wait_for(1)
    assert handled == [0]
    await d.dispatch(NullSender(), msg, handler)  # it never yielded: run by the caller at once
    assert handled == [0, 1]
    yield_now = True
    await d.dispatch(NullSender(), msg, handler)  # it yields now: the caller waited this once...
    assert handled == [0, 1, 2]
    await d.dispatch(NullSender(), msg, handler)  # ...and the kind is back with the workers
    assert handled == [0, 1, 2]
    await done.wait_for(4)
    assert errors.items == []
