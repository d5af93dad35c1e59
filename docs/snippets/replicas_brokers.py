"""Servers sharing broadcasts and pub/sub through a broker (built here, not started: no broker runs)."""

from goomerang_runtime import NatsBroker, RedisBroker, Server

# --8<-- [start:brokers]
server = Server(listen="0.0.0.0:8080", broker=NatsBroker("nats://nats:4222"))  # pip install 'goomerang[nats]'
server = Server(listen="0.0.0.0:8080", broker=RedisBroker("redis://redis:6379"))  # pip install 'goomerang[redis]'
# --8<-- [end:brokers]
print(server.config.broker)
