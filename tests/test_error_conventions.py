"""Errors as asyncio users catch them: ConnectError is an OSError; validation never leaks pydantic's error."""

from __future__ import annotations

import asyncio
import errno
import pickle
import socket

import pytest
from pydantic import ValidationError

from goomerang_runtime import (
    AuthenticationError,
    Client,
    ClientConfig,
    ConfigError,
    ConnectError,
    HandshakeRequest,
    ReconnectPolicy,
    Server,
    ServerConfig,
    TransportError,
)
from goomerang_runtime.metrics import ClientMetrics, ServerMetrics


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_a_refused_connection_is_a_connection_error_with_its_errno() -> None:
    client = Client(server=f"127.0.0.1:{_closed_port()}")
    async with asyncio.timeout(10):
        with pytest.raises(ConnectionError) as info:
            await client.connect()
    error = info.value
    assert isinstance(error, ConnectError)
    assert isinstance(error, OSError)
    assert isinstance(error, TransportError)
    assert error.errno == errno.ECONNREFUSED
    assert error.retryable
    assert str(error).startswith(f"cannot connect to {client.url}: ")


async def test_a_refused_handshake_is_an_oserror_too_with_its_status() -> None:
    def refuse(request: HandshakeRequest) -> str:
        raise AuthenticationError(403, "no")

    async with Server(authenticate=refuse) as server:
        async with asyncio.timeout(10):
            with pytest.raises(OSError, match="HTTP 403") as info:
                await Client(server=server.addr).connect()
    assert isinstance(info.value, ConnectError)
    assert info.value.status == 403
    assert info.value.errno is None
    assert not info.value.retryable


def test_connect_error_keeps_its_fields_through_pickle() -> None:
    error = ConnectError("ws://h:1/ws", "refused", None, errno.ECONNREFUSED)
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.url, copy.reason, copy.status, copy.errno) == ("ws://h:1/ws", "refused", None, errno.ECONNREFUSED)
    assert str(copy) == str(error)
    assert "ws://h:1/ws" in repr(error)


@pytest.mark.parametrize(
    ("build", "owner", "field"),
    [
        (lambda: ReconnectPolicy(jitter=3), "ReconnectPolicy", "jitter"),
        (lambda: ReconnectPolicy(initial_delay=0), "ReconnectPolicy", "initial_delay"),
        (lambda: ReconnectPolicy.model_validate({"multiplier": 0.5}), "ReconnectPolicy", "multiplier"),
        (lambda: ReconnectPolicy.model_validate_json('{"max_attempts": 0}'), "ReconnectPolicy", "max_attempts"),
        (lambda: ServerConfig(listen="nowhere"), "ServerConfig", "listen"),
        (lambda: ServerConfig.model_validate({"max_connections": 0}), "ServerConfig", "max_connections"),
        (lambda: ClientConfig(server="h:0"), "ClientConfig", "server"),
        (lambda: Client(server="h:1", reconnect={"jitter": 3}), "client", "reconnect.jitter"),  # type: ignore[arg-type]
        (lambda: ServerMetrics(processing_buckets=()), "server metrics", "processing_buckets"),
        (lambda: ClientMetrics(sync_buckets=(2.0, 1.0)), "client metrics", "sync_buckets"),
    ],
)
def test_every_validated_object_raises_config_error_naming_the_field(build: object, owner: str, field: str) -> None:
    assert callable(build)
    with pytest.raises(ConfigError) as info:
        build()
    assert not isinstance(info.value, ValidationError)
    assert info.value.__cause__ is None  # pydantic's error is not chained either
    assert info.value.owner == owner
    assert field in info.value.problems
    assert repr(field) in str(info.value)
    assert "Value error" not in str(info.value)


def test_valid_objects_still_build_and_nest() -> None:
    policy = ReconnectPolicy(jitter=0.5)
    assert policy.jitter == 0.5
    assert Client(server="h:1", reconnect=policy).config.reconnect == policy
    assert ReconnectPolicy.model_validate({"max_attempts": 3}).max_attempts == 3
