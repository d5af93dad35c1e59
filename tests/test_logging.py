"""Library logging: named loggers, connection life at info (network errors at debug), structured extras."""

from __future__ import annotations

import asyncio
import logging
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from goomerang_runtime import (
    AuthenticationError,
    Client,
    ConnectError,
    HandshakeRequest,
    PeerInfo,
    ReconnectFailedError,
    ReconnectPolicy,
    Server,
    Status,
)

from .helpers import WAIT, Collector, Counter

ROOT = Path(__file__).resolve().parent.parent
FAST = ReconnectPolicy(initial_delay=0.01, max_delay=0.05, jitter=0.0, max_attempts=3)


def records(caplog: pytest.LogCaptureFixture, logger: str, text: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == logger and text in r.getMessage()]


def test_the_package_logger_has_a_null_handler_so_nothing_prints_unconfigured() -> None:
    import goomerang_runtime  # noqa: F401  (the import installs it)

    assert any(isinstance(h, logging.NullHandler) for h in logging.getLogger("goomerang").handlers)
    program = (
        "import logging, goomerang_runtime\n"
        "logging.getLogger('goomerang.server').warning('not configured: not shown')\n"
        "logging.getLogger('elsewhere').warning('shown')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", program], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    )
    assert "shown" in done.stderr
    assert "not configured" not in done.stderr


async def test_connections_and_disconnections_are_logged_with_peer_id_and_address(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="goomerang")
    gone = Counter()
    peers: list[PeerInfo] = []
    server = Server()
    server.on_connect(peers.append)
    server.on_disconnect(lambda peer: gone.hit())
    async with server, asyncio.timeout(WAIT):
        client = Client(server=server.addr)
        async with client:
            pass
        await gone.wait_for(1)
    [peer] = peers
    [connected] = records(caplog, "goomerang.server", "connected from")
    [disconnected] = records(caplog, "goomerang.server", "disconnected")
    for record in (connected, disconnected):
        assert record.levelno == logging.INFO
        assert record.__dict__["peer"] == peer.id
        assert record.__dict__["address"] == peer.remote_address
    [up] = records(caplog, "goomerang.client", "connected to")
    [down] = records(caplog, "goomerang.client", "disconnected from")
    for record in (up, down):
        assert record.levelno == logging.INFO
        assert record.__dict__["peer"] == "server"
        assert record.__dict__["url"] == client.url
    assert up.__dict__["address"].endswith(server.addr.rsplit(":", 1)[1])
    assert down.__dict__["code"] == 1000


async def test_refused_handshakes_are_logged_on_both_sides(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="goomerang")

    def refuse(request: HandshakeRequest) -> str:
        raise AuthenticationError(401, "unknown token")

    async with Server(authenticate=refuse) as server, asyncio.timeout(WAIT):
        client = Client(server=server.addr)
        with pytest.raises(ConnectError):
            await client.connect()
    [refused] = records(caplog, "goomerang.server", "refused")
    assert refused.levelno == logging.INFO
    assert refused.__dict__["status"] == 401
    assert refused.__dict__["peer"] is None
    assert refused.__dict__["address"].startswith("127.0.0.1:")
    assert "unknown token" in refused.__dict__["reason"]
    [seen] = records(caplog, "goomerang.client", "refused by")
    assert (seen.levelno, seen.__dict__["status"], seen.__dict__["address"]) == (logging.INFO, 401, server.addr)


async def test_a_network_error_is_logged_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="goomerang")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ConnectError):
        await asyncio.wait_for(Client(server=f"127.0.0.1:{port}").connect(), WAIT)
    [failed] = records(caplog, "goomerang.client", "cannot connect to")
    assert failed.levelno == logging.DEBUG
    assert failed.__dict__["status"] is None


async def test_reconnect_attempts_and_a_refused_reconnection_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="goomerang")
    revoked: set[str] = set()

    def authenticate(request: HandshakeRequest) -> str:
        if "ana" in revoked:
            raise AuthenticationError(403, "revoked")
        return "ana"

    errors = Collector()
    attempts = Counter()
    async with Server(authenticate=authenticate) as server, asyncio.timeout(WAIT):
        client = Client(server=server.addr, reconnect=FAST)
        client.on_error(errors)
        client.on_reconnect(lambda attempt, delay, error: attempts.hit())
        await client.connect()
        revoked.add("ana")
        await server.disconnect(server.peers[0].id)
        await errors.wait_for(ReconnectFailedError)
        assert client.status is Status.CLOSED
    [attempt] = [r for r in records(caplog, "goomerang.client", "reconnecting to") if "stopped" not in r.getMessage()]
    assert attempt.levelno == logging.INFO
    assert (attempt.__dict__["attempt"], attempt.__dict__["address"]) == (1, server.addr)
    assert isinstance(attempt.__dict__["delay"], float)
    [stopped] = records(caplog, "goomerang.client", "stopped reconnecting")
    assert stopped.__dict__["status"] == 403
    assert attempts.count == 1
