"""The check before a publication reaches a client through a wildcard subscription.

A subscription to ``rooms.>`` is authorised once, as a pattern; the topics
it then matches may include ones the same policy refuses (``rooms.private``).
So before such a delivery the server asks the authorisation hook again,
with the concrete topic, as if the client had subscribed to exactly it.
Verdicts are kept per connection (a bounded number of topics), and while
the hook is being asked, that connection's later publications wait behind
the one being checked, so order holds.

A delivery for a queue group comes with its own `decide` callback instead:
the gate tells it the verdict rather than delivering, so that a refused
member (or one that left, or closed, while the hook was thinking) never
swallows its group's publication: the server offers it to another member.
"""

from __future__ import annotations

import asyncio
import inspect
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from typing import TypeAlias

__all__ = ["Decide", "ReceiveGate"]

Decide: TypeAlias = Callable[[bool], None]
"""Told the verdict on a held delivery (True: allowed), in place of the gate delivering it."""

_VERDICTS = 1024
"""Topics whose verdict one connection remembers (the oldest are forgotten first)."""


class ReceiveGate:
    """Delivers publications to one connection once the policy allows their topic."""

    __slots__ = ("_ask", "_deliver", "_held", "_limit", "_overflow", "_task", "_verdicts")

    def __init__(
        self,
        ask: Callable[[str], Awaitable[bool] | bool],
        deliver: Callable[[bytes], None],
        overflow: Callable[[int], None],
        limit: int,
    ) -> None:
        self._ask = ask
        self._deliver = deliver
        self._overflow = overflow
        self._limit = limit
        self._verdicts: OrderedDict[str, bool] = OrderedDict()
        # (topic, frame, decide); topic None: a frame that only keeps its place in line.
        self._held: deque[tuple[str | None, bytes, Decide | None]] = deque()
        self._task: asyncio.Task[None] | None = None

    def offer(self, topic: str, frame: bytes, decide: Decide | None = None) -> None:
        """Deliver `frame` if `topic` is allowed, asking first if nobody knows yet.

        With `decide`, the gate delivers nothing: it calls ``decide(allowed)``.
        """
        held = self._held
        if held:
            if len(held) >= self._limit:
                self._overflow(len(held))
                if decide is not None:
                    decide(False)
                return
            held.append((topic, frame, decide))
            return
        verdict = self._verdicts.get(topic)
        if verdict is None:
            answer = self._ask(topic)
            if inspect.isawaitable(answer):
                held.append((topic, frame, decide))
                self._task = asyncio.get_running_loop().create_task(self._drain(answer))
                return
            verdict = self._remember(topic, answer)
        self._settle(verdict, frame, decide)

    def after(self, frame: bytes) -> None:
        """Deliver `frame` (no check) behind every publication the gate holds."""
        if self._held:
            self._held.append((None, frame, None))
        else:
            self._deliver(frame)

    def _settle(self, verdict: bool, frame: bytes, decide: Decide | None) -> None:
        if decide is not None:
            decide(verdict)
        elif verdict:
            self._deliver(frame)

    def _remember(self, topic: str, verdict: bool) -> bool:
        verdicts = self._verdicts
        verdicts[topic] = verdict
        if len(verdicts) > _VERDICTS:
            verdicts.popitem(last=False)
        return verdict

    async def _drain(self, first: Awaitable[bool]) -> None:
        held = self._held
        try:
            answer: Awaitable[bool] | bool | None = first
            while held:
                topic, frame, decide = held[0]
                if topic is None:
                    held.popleft()
                    self._deliver(frame)
                    continue
                verdict = self._verdicts.get(topic)
                if verdict is None:
                    if answer is None:
                        answer = self._ask(topic)
                    verdict = self._remember(topic, await answer if inspect.isawaitable(answer) else answer)
                answer = None
                held.popleft()
                self._settle(verdict, frame, decide)
        finally:
            self._task = None

    def close(self) -> None:
        """The connection is gone: drop what waits (a group's deliveries are told no) and stop asking."""
        held, self._held = self._held, deque()
        if self._task is not None:
            self._task.cancel()
        for _, _, decide in held:
            if decide is not None:
                decide(False)
