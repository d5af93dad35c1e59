"""A replay larger than a connection's send queue, sent as the client drains it.

A reconnecting client's replay (:meth:`PubSub._replay`) is queued at once
while the connection has room. What does not fit follows from the history
itself, frame by frame as room appears, so a client catching up on a long
absence is neither disconnected as a slow consumer nor given more memory
than its send queue. Meanwhile live publications of the topic skip that
connection (`ServerConnection.catching_up`): they are in the history, and
the replay reaches them in order. Once the replay has caught up with the
newest offset, the topic leaves `catching_up` with no await in between, so
the next publication goes live: no gap, no copy.

A client that drains slower than the history turns over (the history lost
frames the replay had not reached yet) is a slow consumer: it is
disconnected and reported, and on its next connection it is told the
offsets it lost.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from ._connection import ServerConnection
from ._history import History
from .errors import GoomerangError

__all__ = ["CatchUp"]


class CatchUp:
    """Replays of one server's connections that wait for room; `finish` sends each one's closing frame."""

    def __init__(
        self,
        history: History,
        frame_of: Callable[[str, str, int, bytes], bytes],
        finish: Callable[[ServerConnection, str, int, str, str], None],
    ) -> None:
        self._history = history
        self._frame_of = frame_of
        """``(topic, epoch, offset, frame)``: the frame a client gets for one replayed publication."""
        self._finish = finish
        """``(conn, topic, replayed, missed, reason)``: the frame that ends a replay."""
        self._tasks: set[asyncio.Task[None]] = set()

    def start(self, conn: ServerConnection, topic: str, epoch: str, after: int, replayed: int, missed: str) -> None:
        """Go on with `conn`'s replay of `topic` from the offset after `after` (`replayed` frames sent so far)."""
        if conn.catching_up is None:
            conn.catching_up = set()
        conn.catching_up.add(topic)
        task = asyncio.get_running_loop().create_task(self._run(conn, topic, epoch, after, replayed, missed))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(
        self, conn: ServerConnection, topic: str, epoch: str, after: int, replayed: int, missed: str
    ) -> None:
        history = self._history
        reason = ""
        try:
            while topic in conn.topics:  # an unsubscribe ends the replay
                recovery = history.since(topic, epoch, after)
                if recovery.unknown:  # the topic's history was reset meanwhile
                    missed, reason = "?", "the topic's history was reset while the client caught up"
                    break
                if recovery.missed_from is not None:  # the history outran the client: it lost what it had not read
                    conn.overflow(len(conn.outbox) + 1)
                    return
                if not recovery.frames:  # caught up: live deliveries take over from here, no await between
                    break
                for offset, frame in recovery.frames:
                    await conn.send_frame(self._frame_of(topic, epoch, offset, frame))
                    replayed += 1
                    after = offset
                    if topic not in conn.topics:
                        return
        except GoomerangError:  # lost, or disconnected as a slow consumer: reported where that happened
            return
        finally:
            if conn.catching_up is not None:
                conn.catching_up.discard(topic)
        if topic in conn.topics:
            self._finish(conn, topic, replayed, missed, reason)

    def close(self) -> None:
        """Stop every replay still waiting (the server is stopping)."""
        for task in self._tasks:
            task.cancel()
