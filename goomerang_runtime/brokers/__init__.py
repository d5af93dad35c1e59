"""Brokers: how the replicas of one deployment share broadcasts and pub/sub.

A server without a broker (the default) delivers to its own clients only.
With one, ``Server(broker=NatsBroker("nats://127.0.0.1:4222"))`` or
``Server(broker=RedisBroker("redis://127.0.0.1:6379"))``, what a client of
one replica broadcasts or publishes, and what ``server.broadcast`` and
``server.publish`` send, reaches the clients of every replica.
:class:`MemoryBroker` joins servers of one process through a
:class:`MemoryBus`. Topic mapping rules are in :mod:`._names`.
"""

from __future__ import annotations

from ._nats import NatsBroker
from ._redis import RedisBroker
from ._remote import (
    DEFAULT_BROKER_BUFFER,
    DEFAULT_BROKER_TIMEOUT,
    DEFAULT_RECONNECT_DELAY,
    DEFAULT_RECONNECT_MAX_DELAY,
    RemoteBroker,
    RemoteBrokerConfig,
)
from .base import Broker, BrokerReceiver, BrokerState
from .memory import MemoryBroker, MemoryBus

__all__ = [
    "DEFAULT_BROKER_BUFFER",
    "DEFAULT_BROKER_TIMEOUT",
    "DEFAULT_RECONNECT_DELAY",
    "DEFAULT_RECONNECT_MAX_DELAY",
    "Broker",
    "BrokerReceiver",
    "BrokerState",
    "MemoryBroker",
    "MemoryBus",
    "NatsBroker",
    "RedisBroker",
    "RemoteBroker",
    "RemoteBrokerConfig",
]
