"""The NATS broker, on `nats-py` (``pip install 'goomerang[nats]'``), imported lazily."""

from __future__ import annotations

import contextlib
import importlib.util
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

from ..errors import BrokerError, ConfigError
from ._names import nats_broadcast_subject, nats_subject, validate_nats_prefix
from ._remote import (
    DEFAULT_BROKER_BUFFER,
    DEFAULT_BROKER_TIMEOUT,
    DEFAULT_RECONNECT_DELAY,
    DEFAULT_RECONNECT_MAX_DELAY,
    RemoteBroker,
)

if TYPE_CHECKING:
    from nats.aio.client import Client as NatsClient
    from nats.aio.msg import Msg

__all__ = ["NatsBroker"]


class NatsBroker(RemoteBroker):
    """Replicas meet on a NATS server (or cluster).

    ::

        server = Server(broker=NatsBroker("nats://127.0.0.1:4222"))

    A publication on a topic goes to the subject ``{prefix}.t.<topic>``
    (tokens escaped, see :mod:`goomerang_runtime.brokers._names`), so any
    NATS tool can watch a topic, wildcards included (``goomerang.t.rooms.*``);
    broadcasts go to ``{prefix}.b``. Each replica listens with a single
    subscription to ``{prefix}.>`` and matches what arrives against its own
    subscribers: nats-py runs each subscription's callback in a task of its
    own, so several subscriptions would let one publisher's messages
    overtake each other. The connection uses ``no_echo``, so a replica does
    not get its own envelopes back. A publication larger than the server's
    ``max_payload`` (1 MiB by default) reaches local subscribers only and is
    reported.
    """

    def __init__(
        self,
        url: str = "nats://127.0.0.1:4222",
        *,
        prefix: str = "goomerang",
        buffer_size: int = DEFAULT_BROKER_BUFFER,
        overflow: Literal["wait", "drop"] = "wait",
        timeout: float = DEFAULT_BROKER_TIMEOUT,
        reconnect_delay: float = DEFAULT_RECONNECT_DELAY,
        reconnect_max_delay: float = DEFAULT_RECONNECT_MAX_DELAY,
    ) -> None:
        owner = "NatsBroker"
        if importlib.util.find_spec("nats") is None:
            raise ConfigError(owner, {"broker": "nats-py is not installed: pip install 'goomerang[nats]'"})
        try:
            validate_nats_prefix(prefix)
        except ValueError as exc:
            raise ConfigError(owner, {"prefix": str(exc)}) from None
        options = {
            "url": url,
            "prefix": prefix,
            "buffer_size": buffer_size,
            "overflow": overflow,
            "timeout": timeout,
            "reconnect_delay": reconnect_delay,
            "reconnect_max_delay": reconnect_max_delay,
        }
        super().__init__(owner, options)
        self._nc: NatsClient | None = None

    def _whole_seconds(self) -> int:
        # nats-py takes whole seconds; our own asyncio timeouts bound the real wait.
        return max(1, math.ceil(self._config.timeout))

    async def _open(self, generation: int) -> None:
        from nats.aio.client import Client

        nc = Client()
        last_error: list[BaseException] = []

        async def on_error(error: Exception) -> None:
            last_error.append(error)

        async def on_closed() -> None:
            reason = last_error[-1] if last_error else BrokerError(self.name, "connection closed")
            self._connection_lost(generation, reason)

        self._nc = nc
        try:
            await nc.connect(
                servers=[self._config.url],
                # Reconnection is ours (RemoteBroker): one quick try here, no waits inside nats-py.
                allow_reconnect=False,
                max_reconnect_attempts=1,
                reconnect_time_wait=0,
                connect_timeout=self._whole_seconds(),
                no_echo=True,
                name="goomerang",
                error_cb=on_error,
                closed_cb=on_closed,
                ping_interval=5,
                max_outstanding_pings=2,
            )
        except Exception as exc:
            if last_error:  # more telling than nats-py's "no servers available"
                raise BrokerError(self.name, str(last_error[-1]) or type(last_error[-1]).__name__) from exc
            raise
        receiver = self._receiver
        assert receiver is not None
        broadcasts = nats_broadcast_subject(self._config.prefix)

        async def on_message(msg: Msg) -> None:
            if msg.subject == broadcasts:
                receiver.deliver_broadcast(msg.data)
            else:
                receiver.deliver_publication(msg.data)

        await nc.subscribe(f"{self._config.prefix}.>", cb=on_message)
        await nc.flush(self._whole_seconds())  # PING/PONG: the server has processed the SUB

    async def _apply(self, add: Sequence[str], remove: Sequence[str]) -> None:
        # The catch-all subscription made in _open covers every pattern.
        if self._nc is None:
            raise BrokerError(self.name, "not connected")

    async def _send(self, batch: Sequence[tuple[str, bytes]]) -> None:
        nc = self._nc
        if nc is None or not nc.is_connected:
            raise BrokerError(self.name, "not connected")
        prefix = self._config.prefix
        limit = nc.max_payload
        for topic, data in batch:
            if len(data) > limit:
                why = f"a publication of {len(data)} bytes exceeds the server's max_payload ({limit})"
                self._report(BrokerError(self.name, why, 1))
                continue
            subject = nats_subject(prefix, topic) if topic else nats_broadcast_subject(prefix)
            await nc.publish(subject, data)

    async def _shut(self) -> None:
        nc, self._nc = self._nc, None
        if nc is not None and not nc.is_closed:
            with contextlib.suppress(Exception):  # already broken: nothing left to release
                await nc.close()
