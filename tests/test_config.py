from __future__ import annotations

import ssl
import typing

import pytest

from goomerang_runtime import Client, ClientConfig, ClientOptions, ConfigError, Server, ServerConfig, ServerOptions
from goomerang_runtime.config import parse_address


def test_defaults_match_the_go_library() -> None:
    config = Server().config
    assert config.max_concurrency == 10
    assert config.close_wait == 5.0
    assert config.tls is None
    assert config.compression is False
    client = Client(server="127.0.0.1:8080").config
    assert client.heartbeat_interval == 5.0
    assert client.max_concurrency == 10


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"listen": "nonsense"}, "listen"),
        ({"listen": "127.0.0.1:70000"}, "listen"),
        ({"max_concurrency": -1}, "max_concurrency"),
        ({"max_message_size": 0}, "max_message_size"),
        ({"handshake_timeout": 0}, "handshake_timeout"),
        ({"close_wait": -1}, "close_wait"),
        ({"tls": "yes"}, "tls"),
        ({"bogus": 1}, "bogus"),
    ],
)
def test_bad_server_option_names_the_field(options: dict[str, object], field: str) -> None:
    with pytest.raises(ConfigError) as info:
        Server(**options)  # type: ignore[arg-type]
    assert field in info.value.problems
    assert repr(field) in str(info.value)


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({}, "server"),
        ({"server": "127.0.0.1:0"}, "server"),
        ({"server": "127.0.0.1:1", "heartbeat_interval": 0}, "heartbeat_interval"),
        ({"server": "127.0.0.1:1", "headers": {"a": 1}}, "headers.a"),
    ],
)
def test_bad_client_option_names_the_field(options: dict[str, object], field: str) -> None:
    with pytest.raises(ConfigError) as info:
        Client(**options)  # type: ignore[arg-type]
    assert field in info.value.problems


def test_port_zero_and_ipv6_listen_are_accepted() -> None:
    assert Server(listen="127.0.0.1:0").config.listen == "127.0.0.1:0"
    assert parse_address("[::1]:8080") == ("::1", 8080)
    ctx = ssl.create_default_context()
    assert Client(server="localhost:443", tls=ctx).url == "wss://localhost:443/wss"


def test_typed_options_mirror_the_models() -> None:
    assert set(typing.get_type_hints(ServerOptions)) == set(ServerConfig.model_fields)
    assert set(typing.get_type_hints(ClientOptions)) == set(ClientConfig.model_fields)
