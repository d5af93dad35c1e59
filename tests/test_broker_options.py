"""Broker options are validated like server options; URLs never leak credentials."""

from __future__ import annotations

import pytest

from goomerang_runtime import ConfigError, NatsBroker, RedisBroker
from goomerang_runtime.brokers import BrokerState
from goomerang_runtime.brokers._remote import RemoteBrokerConfig


@pytest.mark.parametrize("cls", [NatsBroker, RedisBroker])
@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"buffer_size": 0}, "buffer_size"),
        ({"timeout": 0}, "timeout"),
        ({"reconnect_delay": -1}, "reconnect_delay"),
        ({"reconnect_delay": 5, "reconnect_max_delay": 1}, "options"),
        ({"prefix": ""}, "prefix"),
    ],
)
def test_bad_options_name_the_field(cls: type[NatsBroker | RedisBroker], options: dict[str, int], field: str) -> None:
    with pytest.raises(ConfigError) as info:
        cls(**options)  # type: ignore[arg-type]
    assert field in info.value.problems


def test_nats_prefix_must_be_subject_tokens() -> None:
    with pytest.raises(ConfigError, match="prefix"):
        NatsBroker(prefix="my app")
    assert NatsBroker(prefix="my-app.prod").config.prefix == "my-app.prod"


def test_names_hide_passwords_and_start_new() -> None:
    broker = RedisBroker("redis://app:s3cret@cache:6379/0")
    assert broker.name == "redis://app:***@cache:6379/0"
    assert "s3cret" not in broker.name
    assert broker.state is BrokerState.NEW
    assert not broker.connected


def test_broker_options_built_directly_raise_config_error_naming_the_field() -> None:
    with pytest.raises(ConfigError, match="buffer_size"):
        RemoteBrokerConfig(url="nats://127.0.0.1:4222", buffer_size=0)
    with pytest.raises(ConfigError, match="reconnect_max_delay"):
        RemoteBrokerConfig.model_validate({"url": "x", "reconnect_delay": 2.0, "reconnect_max_delay": 1.0})
