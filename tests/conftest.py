from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path

import pytest

from goomerang_runtime import Server, Status

from .helpers import Certs, Collector, make_certs

LOOP = os.environ.get("GOOMERANG_TEST_LOOP", "asyncio")
"""The event loop every async test runs on: ``asyncio`` (the default) or ``uvloop``."""


def _loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop]:
    if name == "asyncio":
        return asyncio.new_event_loop
    if name == "uvloop":
        import uvloop  # a missing uvloop fails the run: never a silent fall back to asyncio

        return uvloop.new_event_loop
    raise pytest.UsageError(f"GOOMERANG_TEST_LOOP={name!r}: expected 'asyncio' or 'uvloop'")


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]]:
    return {LOOP: _loop_factory(LOOP)}


def pytest_report_header(config: pytest.Config) -> str:
    import google.protobuf

    return f"goomerang: event loop {LOOP}, protobuf {google.protobuf.__version__}"


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(Path(tmp_path_factory.mktemp("certs")))


@pytest.fixture
def errors() -> Collector:
    return Collector()


@pytest.fixture
async def server_errors() -> Collector:
    return Collector()


@pytest.fixture
async def cleanup() -> AsyncIterator[list[Server]]:
    """Servers appended here are shut down after the test if still running."""
    servers: list[Server] = []
    yield servers
    for server in servers:
        if server.status is Status.RUNNING:
            await server.shutdown(timeout=5)
