"""A running Go peer process: JSON commands in on stdin, JSON events out on stdout."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..helpers import WAIT
from .gobuild import go_env

__all__ = ["GoProcess"]

Event = dict[str, Any]


class GoProcess:
    """One ``gopeer`` process; every wait on it is bounded and it is killed at :meth:`stop`."""

    def __init__(self, binary: Path, args: list[str], stderr_path: Path) -> None:
        self.binary = binary
        self.args = args
        self.stderr_path = stderr_path
        self.events: list[Event] = []
        self.changed = asyncio.Event()
        self._proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._ids = itertools.count(1)
        self._done: dict[int, asyncio.Future[Event]] = {}
        self._listeners: list[Callable[[Event], None]] = []

    async def start(self) -> GoProcess:
        """Start the process and wait for its ``ready`` event."""
        with self.stderr_path.open("wb") as stderr:
            self._proc = await asyncio.create_subprocess_exec(
                str(self.binary),
                *self.args,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=stderr,
                env=go_env(),
                limit=64 * 1024 * 1024,
            )
        self._reader = asyncio.get_running_loop().create_task(self._read())
        await self.wait_event(lambda e: e["event"] in ("ready", "fatal"), "ready")
        fatal = self.find("fatal")
        if fatal:
            raise RuntimeError(f"Go peer {self.args} failed to start: {fatal[0]['text']}")
        return self

    def on_event(self, fn: Callable[[Event], None]) -> None:
        """Call `fn(event)` for every event from now on."""
        self._listeners.append(fn)

    async def _read(self) -> None:
        assert self._proc is not None
        assert self._proc.stdout is not None
        stdout = self._proc.stdout
        while line := await stdout.readline():
            try:
                event: Event = json.loads(line)
            except ValueError:
                event = {"event": "garbage", "text": line.decode(errors="replace")}
            self.events.append(event)
            if event.get("event") == "done":
                fut = self._done.pop(int(event["id"]), None)
                if fut is not None and not fut.done():
                    fut.set_result(event)
            for fn in self._listeners:
                fn(event)
            self.changed.set()
        self.events.append({"event": "exited"})
        self.changed.set()
        for fut in self._done.values():
            if not fut.done():
                fut.set_exception(RuntimeError(f"Go peer exited: {self.stderr_tail()}"))

    def find(self, name: str, **fields: object) -> list[Event]:
        """Events named `name` whose fields include `fields`."""
        return [e for e in self.events if e["event"] == name and all(e.get(k) == v for k, v in fields.items())]

    @property
    def errors(self) -> list[str]:
        """Texts of the error events so far."""
        return [str(e.get("text")) for e in self.find("error")]

    async def wait_event(self, predicate: Callable[[Event], bool], what: str, timeout: float = WAIT) -> Event:
        """The first event (past or future) for which `predicate` holds; bounded by `timeout`."""
        seen = 0
        try:
            async with asyncio.timeout(timeout):
                while True:
                    for event in self.events[seen:]:
                        if predicate(event):
                            return event
                    seen = len(self.events)
                    self.changed.clear()
                    await self.changed.wait()
        except TimeoutError:
            raise AssertionError(
                f"Go peer: no {what} within {timeout}s; events: {self.events[-20:]}; stderr: {self.stderr_tail()}"
            ) from None

    def send_command(self, op: str, **fields: object) -> asyncio.Future[Event]:
        """Write one command; the future gets its ``done`` event."""
        assert self._proc is not None
        assert self._proc.stdin is not None
        cid = next(self._ids)
        fut: asyncio.Future[Event] = asyncio.get_running_loop().create_future()
        self._done[cid] = fut
        self._proc.stdin.write(json.dumps({"id": cid, "op": op, **fields}).encode() + b"\n")
        return fut

    async def call(self, op: str, timeout: float = WAIT, **fields: object) -> Event:
        """Run one command and return its ``done`` event (bounded by `timeout`)."""
        fut = self.send_command(op, **fields)
        assert self._proc is not None
        assert self._proc.stdin is not None
        await asyncio.wait_for(self._proc.stdin.drain(), timeout)
        try:
            return await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            raise AssertionError(
                f"Go peer: {op} not done within {timeout}s; events: {self.events[-20:]}; stderr: {self.stderr_tail()}"
            ) from None

    def stderr_tail(self, size: int = 2000) -> str:
        """The end of the process's stderr."""
        with contextlib.suppress(OSError):
            return self.stderr_path.read_bytes()[-size:].decode(errors="replace")
        return ""

    async def stop(self) -> None:
        """Kill the process and reap it (bounded)."""
        proc = self._proc
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), WAIT)
        if self._reader is not None:
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(self._reader, WAIT)
