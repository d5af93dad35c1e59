"""A shared empty deque standing for a connection's queue until its first item.

CPython allocates a 64-slot block (about 760 bytes) with every deque, and a
connection has several queues that stay empty while it idles (its outbox,
its backlog, its inbox). Each starts as :data:`EMPTY` and gets its own deque
where the first item is appended (:func:`own`); nothing is ever appended to
:data:`EMPTY` itself.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Final, TypeVar

__all__ = ["EMPTY", "own"]

T = TypeVar("T")

EMPTY: Final[deque[Any]] = deque()


def own(queue: deque[T]) -> deque[T]:
    """`queue` itself, or a new deque of its own if it is still :data:`EMPTY`."""
    return deque() if queue is EMPTY else queue
