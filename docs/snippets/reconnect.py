"""Reconnection with exponential backoff and jitter, and the hook that follows it."""

import logging

from goomerang_runtime import Client, ReconnectPolicy

log = logging.getLogger("app")

# --8<-- [start:reconnect]
client = Client(
    server="127.0.0.1:8080",
    reconnect=ReconnectPolicy(initial_delay=0.1, max_delay=10, multiplier=2, jitter=0.2, max_attempts=None),
)
client.on_reconnect(lambda attempt, delay, error: log.info("reconnect #%d in %.2fs (%s)", attempt, delay, error))
# --8<-- [end:reconnect]
print(client.config.reconnect)
