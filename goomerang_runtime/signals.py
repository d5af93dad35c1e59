"""Stopping on SIGINT and SIGTERM: a graceful shutdown, as grpclib's ``graceful_exit`` does it.

::

    async def main() -> None:
        server = Server(listen="0.0.0.0:8080")
        ...
        with graceful_exit(server):
            await server.run()  # returns once a signal shut the server down

    asyncio.run(main())  # or uvloop.run(main())

The first signal shuts every given server down (its clients get a close
frame, 1000) and closes every given client, each within `timeout`; the
program then goes on from ``run()`` and exits 0, as a service manager or
Kubernetes expects after SIGTERM. A second signal is not caught: Ctrl-C
again raises KeyboardInterrupt at once, SIGTERM again ends the process.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import TYPE_CHECKING, Any

from .status import Status

if TYPE_CHECKING:
    from .client import Client
    from .server import Server

__all__ = ["GracefulExit", "graceful_exit"]

_Handler = Callable[[int, FrameType | None], Any] | int | signal.Handlers | None


class GracefulExit:
    """What :func:`graceful_exit` saw: the signal that stopped the peers, if one did."""

    __slots__ = ("_tasks", "signal")

    def __init__(self) -> None:
        self.signal: signal.Signals | None = None
        """The first signal received inside the block, or None."""
        self._tasks: list[asyncio.Task[None]] = []

    async def wait(self) -> None:
        """Wait until the shutdowns a signal started are done (nothing to wait for without a signal)."""
        if self._tasks:
            await asyncio.gather(*self._tasks)


@contextmanager
def graceful_exit(
    *peers: Server | Client,
    signals: Iterable[signal.Signals] = (signal.SIGINT, signal.SIGTERM),
    timeout: float | None = None,
) -> Iterator[GracefulExit]:
    """While inside, the first of `signals` shuts `peers` down gracefully; then the signals act as before.

    Servers get :meth:`Server.shutdown` and clients :meth:`Client.close`,
    with `timeout` (None: wait for running handlers however long they take).
    Enter it in the thread running the event loop (the main thread: signals
    are only delivered there), on an event loop that supports
    ``add_signal_handler`` (asyncio's and uvloop's on POSIX systems).
    """
    from .server import Server

    loop = asyncio.get_running_loop()
    state = GracefulExit()
    watched = list(dict.fromkeys(signals))
    previous: dict[signal.Signals, _Handler] = {sig: signal.getsignal(sig) for sig in watched}

    def release() -> None:
        """Stop catching: the next signal has the effect it had before (KeyboardInterrupt, termination)."""
        for sig in watched:
            loop.remove_signal_handler(sig)  # asyncio puts back SIGINT's KeyboardInterrupt and SIG_DFL

    def on_signal(sig: signal.Signals) -> None:
        release()
        if state.signal is not None:
            return
        state.signal = sig
        for peer in peers:
            if peer.status is not Status.RUNNING:
                continue
            stop = peer.shutdown(timeout) if isinstance(peer, Server) else peer.close(timeout)
            state._tasks.append(loop.create_task(stop, name=f"goomerang graceful exit on {sig.name}"))

    for sig in watched:
        loop.add_signal_handler(sig, on_signal, sig)
    try:
        yield state
    finally:
        if state.signal is None:
            release()
        for sig, handler in previous.items():
            if handler is not None:
                signal.signal(sig, handler)
