"""Hooks: ordered lists of user callables run at points of a peer's life."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Generic, ParamSpec

from .errors import HookError

__all__ = ["Hook"]

_log = logging.getLogger("goomerang")
P = ParamSpec("P")


class Hook(Generic[P]):
    """Callables registered in order and run in that order with one call.

    A callable that raises never stops the others nor the caller: its error
    goes to `report` as a :class:`HookError` (for the error hook itself, which
    has nowhere else to go, to the ``goomerang`` logger).
    """

    __slots__ = ("_report", "callables", "name")

    def __init__(self, name: str, report: Callable[[BaseException], None] | None) -> None:
        self.name = name
        self.callables: list[Callable[P, object]] = []
        """The registered callables, in order (read-only: use :meth:`add`). Empty: calling does nothing.

        Hot paths test this list rather than the hook itself: a list's truth
        is no Python call.
        """
        self._report = report

    def add(self, fn: Callable[P, object]) -> Callable[P, object]:
        """Register `fn` after those already there; returns it (decorator use)."""
        self.callables.append(fn)
        return fn

    def __bool__(self) -> bool:
        return bool(self.callables)

    def __len__(self) -> int:
        return len(self.callables)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> None:
        for fn in self.callables:
            try:
                fn(*args, **kwargs)
            except Exception as exc:
                if self._report is None:
                    _log.exception("goomerang %s hook raised", self.name)
                else:
                    err = HookError(self.name, exc)
                    err.__cause__ = exc
                    self._report(err)
