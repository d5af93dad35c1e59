"""The suite runs on the event loop CI asks for (GOOMERANG_TEST_LOOP), never silently on another."""

from __future__ import annotations

import asyncio

from .conftest import LOOP


async def test_the_suite_runs_on_the_loop_it_was_asked_for() -> None:
    loop = asyncio.get_running_loop()
    module = type(loop).__module__
    if LOOP == "uvloop":
        assert module.startswith("uvloop"), module
    else:
        assert LOOP == "asyncio"
        assert module.startswith("asyncio"), module
