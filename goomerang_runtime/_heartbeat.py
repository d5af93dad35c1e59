"""Keep-alive: ping links periodically and drop those whose pongs stop coming."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from ._link import Link
from .errors import HeartbeatTimeoutError

__all__ = ["Heartbeats", "keep_alive"]


async def _answered(link: Link, timeout: float, report: Callable[[BaseException], None]) -> bool:
    """Ping `link` once; False when it is gone, or when no pong came within `timeout` s (reported, aborted)."""
    try:
        # Sending the ping is inside the timeout too: it waits while the peer reads nothing.
        async with asyncio.timeout(timeout):
            pong = await link.ping()
            await pong
    except TimeoutError:
        report(HeartbeatTimeoutError(timeout, link.remote_address))
        link.abort()
        return False
    except Exception:  # the connection closed: its read loop reports that
        return False
    return True


async def keep_alive(link: Link, interval: float, timeout: float, report: Callable[[BaseException], None]) -> None:
    """Ping every `interval` s; no pong within `timeout` s: report and abort the link."""
    while True:
        await asyncio.sleep(interval)
        if not await _answered(link, timeout, report):
            return


class Heartbeats:
    """Pings every link of one server each `interval` s from one task, not a task per connection.

    An idle connection then costs no task, coroutine or timer of its own
    (about 2 KiB each). Each round pings every link at once and waits for
    their pongs (at most `timeout` s); a link added during a round is first
    pinged in the next one. The task runs only while there are links.
    """

    __slots__ = ("_interval", "_links", "_report", "_task", "_timeout")

    def __init__(self, interval: float, timeout: float, report: Callable[[BaseException], None]) -> None:
        self._interval = interval
        self._timeout = timeout
        self._report = report
        self._links: dict[Link, None] = {}
        self._task: asyncio.Task[None] | None = None

    def add(self, link: Link) -> None:
        """Ping `link` from the next round on."""
        self._links[link] = None
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    def discard(self, link: Link) -> None:
        """Stop pinging `link` (its connection ended)."""
        self._links.pop(link, None)
        if not self._links and self._task is not None:
            self._task.cancel()
            self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            links = list(self._links)
            await asyncio.gather(*(_answered(link, self._timeout, self._report) for link in links))
