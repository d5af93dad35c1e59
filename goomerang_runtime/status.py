"""The lifecycle status of servers and clients."""

from __future__ import annotations

import enum

__all__ = ["Status"]


class Status(enum.IntEnum):
    """Lifecycle of a peer; the values are those of the Go library's gauge.

    A server goes NEW -> RUNNING -> CLOSING -> CLOSED once. A client may go
    from CLOSED back to RUNNING by connecting again.
    """

    NEW = 0
    RUNNING = 1
    CLOSING = 2
    CLOSED = 3
