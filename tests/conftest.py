from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from goomerang_runtime import Server, Status

from .helpers import Certs, Collector, make_certs


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
