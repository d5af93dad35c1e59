"""What the queue group tests share: members that count what they get, and a paced publisher."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from generated.goomerang.example.messages_pb2 import MessageV1, PingPong, ReplyV1
from goomerang_runtime import Client, Message, Sender

from .helpers import WAIT
from .inbox import barrier

STREAM_WAIT = 60.0
"""Bound of a whole stream of 10,000 publications on a loaded machine, in seconds."""
LOW, HIGH = 0.15, 0.35
"""Each of four members gets between 15% and 35% of a group's publications (25% is even)."""


@dataclass
class Tally:
    """What the members of one group (or a set of plain subscribers) received, by member and by publication id."""

    by_member: Counter[str] = field(default_factory=Counter)
    by_id: Counter[int] = field(default_factory=Counter)
    groups: Counter[str] = field(default_factory=Counter)
    """Metadata.group of every delivery ("" for plain ones)."""
    ids: dict[str, list[int]] = field(default_factory=dict)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def handler(self, name: str) -> Callable[[Sender, Message[PingPong]], Awaitable[None]]:
        """The handler of member `name`."""
        self.by_member.setdefault(name, 0)
        mine = self.ids.setdefault(name, [])

        async def on_publication(sender: Sender, msg: Message[PingPong]) -> None:
            self.by_member[name] += 1
            self.by_id[msg.payload.sequence] += 1
            self.groups[msg.metadata.group] += 1
            mine.append(msg.payload.sequence)
            self.changed.set()

        return on_publication

    @property
    def total(self) -> int:
        return sum(self.by_member.values())

    async def wait_total(self, count: int, timeout: float = STREAM_WAIT) -> None:
        try:
            async with asyncio.timeout(timeout):
                while self.total < count:
                    self.changed.clear()
                    await self.changed.wait()
        except TimeoutError:
            missing = sorted(set(range(count)) - set(self.by_id))
            raise AssertionError(
                f"{self.total} of {count} arrived in {timeout}s; {len(missing)} ids missing {missing[:20]}...;"
                f" {self.summary()}"
            ) from None

    async def wait_member(self, name: str, count: int, timeout: float = STREAM_WAIT) -> None:
        async with asyncio.timeout(timeout):
            while self.by_member[name] < count:
                self.changed.clear()
                await self.changed.wait()

    def assert_once(self, ids: range) -> None:
        """Each publication of `ids` arrived exactly once, and nothing else did."""
        assert self.total == len(ids), (self.total, len(ids))
        assert set(self.by_id) == set(ids)
        assert max(self.by_id.values()) == 1

    def shares(self) -> dict[str, float]:
        total = self.total or 1
        return {name: count / total for name, count in sorted(self.by_member.items())}

    def summary(self) -> str:
        return ", ".join(
            f"{name} {count} ({count / (self.total or 1):.1%})" for name, count in sorted(self.by_member.items())
        )


def member(addr: str, **options: object) -> Client:
    """A client that can run barriers (it knows the MessageV1 echo and its ReplyV1 answer)."""
    client = Client(server=addr, heartbeat_interval=None, **options)  # type: ignore[arg-type]
    client.register_message(MessageV1, ReplyV1, PingPong)
    return client


async def stream(
    publishers: list[Client],
    topic: str | Callable[[int], str],
    count: int,
    *,
    chunk: int = 500,
    after_chunk: Callable[[int], Awaitable[None]] | None = None,
) -> float:
    """Publish PingPong 0..count-1 (the publishers take turns by chunk); returns the seconds it took.

    After each chunk its publisher runs a barrier (its server has handled the
    chunk), then `after_chunk(published so far)`: the stream keeps a pace the
    receivers can follow, and a test can act in the middle of it.
    """
    started = time.perf_counter()
    for start in range(0, count, chunk):
        publisher = publishers[(start // chunk) % len(publishers)]
        for seq in range(start, min(start + chunk, count)):
            name = topic(seq) if callable(topic) else topic
            await publisher.publish(name, PingPong(sequence=seq))
        await barrier(publisher)
        if after_chunk is not None:
            await after_chunk(min(start + chunk, count))
    return time.perf_counter() - started


async def settle(clients: list[Client]) -> None:
    """Every client's server has handled what it sent, and sent it what it queued before (a barrier each)."""
    await asyncio.wait_for(asyncio.gather(*(barrier(client) for client in clients)), WAIT)
