"""Keep-alive: ping a link periodically and drop it when pongs stop coming."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from ._link import Link
from .errors import HeartbeatTimeoutError

__all__ = ["keep_alive"]


async def keep_alive(link: Link, interval: float, timeout: float, report: Callable[[BaseException], None]) -> None:
    """Ping every `interval` s; no pong within `timeout` s: report and abort the link."""
    while True:
        await asyncio.sleep(interval)
        try:
            # Sending the ping is inside the timeout too: it waits while the peer reads nothing.
            async with asyncio.timeout(timeout):
                pong = await link.ping()
                await pong
        except TimeoutError:
            report(HeartbeatTimeoutError(timeout, link.remote_address))
            link.abort()
            return
        except Exception:  # the connection closed: its read loop reports that
            return
