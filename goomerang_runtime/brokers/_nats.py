"""The NATS broker, on `nats-py` (``pip install 'goomerang[nats]'``), imported lazily."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import math
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, ClassVar, Literal

from ..errors import BrokerError, ConfigError
from ._names import (
    nats_broadcast_subject,
    nats_group_pattern,
    nats_group_prefix,
    nats_group_subject,
    nats_pattern,
    nats_subject,
    validate_nats_prefix,
)
from ._nats_history import POSITION, JetStreamHistory, parse_header_position
from ._remote import (
    DEFAULT_BROKER_BUFFER,
    DEFAULT_BROKER_TIMEOUT,
    DEFAULT_RECONNECT_DELAY,
    DEFAULT_RECONNECT_MAX_DELAY,
    HandBack,
    Membership,
    Outgoing,
    RemoteBroker,
)
from .base import StoredHistory

if TYPE_CHECKING:
    from nats.aio.client import Client as NatsClient
    from nats.aio.msg import Msg
    from nats.aio.subscription import Subscription as NatsSubscription
    from nats.js.client import JetStreamContext

__all__ = ["NatsBroker"]

_RETIRE_GRACE = 30.0
"""Seconds a queue subscription left behind still takes what the NATS server sends it."""


def _retrieve(task: asyncio.Task[object]) -> None:
    if not task.cancelled():
        task.exception()


def _release(nc: NatsClient) -> None:
    """Release what nats-py's own close leaves behind when it was cut short.

    On a connection reset with publications pending, nats-py's close stops
    at the flush of what was pending (it raises the reset in its read loop's
    task): the socket stays open, each subscription's task stays pending,
    and the read loop's exception is never retrieved. Closing twice is
    harmless, so this runs after every close (tests/test_nats_broker.py).
    """
    reading = getattr(nc, "_reading_task", None)
    if isinstance(reading, asyncio.Task):
        reading.add_done_callback(_retrieve)  # at once if it ended: the broker reports the loss itself
    subs: dict[int, NatsSubscription] = getattr(nc, "_subs", {})
    for sub in subs.values():
        stop = getattr(sub, "_stop_processing", None)
        if stop is not None:
            stop()
    subs.clear()
    transport = getattr(nc, "_transport", None)
    if transport is not None:
        with contextlib.suppress(Exception):  # closed already
            transport.close()


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

    Queue groups are NATS queue subscriptions, on a second connection (with
    echo, so that a replica's own publications may go to its own members):
    one per local member, on the subject of its pattern with the group as
    queue name, so NATS picks one member among all replicas' for each
    publication, at random. A member's deliveries go to that member; one
    that leaves is drained (what NATS already sent it goes to another local
    member). A replica left with no member able to take a publication hands
    it back on ``{prefix}.g.<group>.<topic>``, where each replica with
    members of the group on a matching pattern has one queue subscription.

    A queue subscription that is no longer needed is unsubscribed but kept
    registered in nats-py for a while: the NATS server may still send it a
    message it routed there just before the UNSUB (seen under load, after
    the UNSUB's PING/PONG, so a drain loses it), and that message then goes
    to another member rather than nowhere.

    ``history=True`` keeps the servers' history (``Server(history_size=...,
    history_ttl=...)``) in JetStream (the NATS server needs ``-js``), one
    stream over the topics' subjects, numbered per topic (see
    :mod:`goomerang_runtime.brokers._nats_history`): a client that
    reconnects to any replica catches up with exact positions. Each
    publication then waits for JetStream's acknowledgement before the next
    is sent, and reaches its own replica's clients once acknowledged.
    """

    groups: ClassVar[bool] = True

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
        history: bool = False,
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
        self._gc: NatsClient | None = None
        """The queue groups' connection (echo on)."""
        self._member_subs: dict[Membership, NatsSubscription] = {}
        self._hand_back_subs: dict[tuple[str, str, bool], tuple[NatsSubscription, int]] = {}
        self._retired: list[tuple[float, NatsSubscription]] = []
        self.keeps_history = history
        self._history = JetStreamHistory(self.name, prefix) if history else None
        self._resend_unsent = history
        self._js: JetStreamContext | None = None

    def configure_history(self, size: int, ttl: float | None) -> None:
        if self._history is None:
            super().configure_history(size, ttl)
            return
        self._history.size, self._history.ttl = size, ttl

    async def history_since(self, topic: str, after: int | None) -> StoredHistory:
        js, history = self._js, self._history
        if history is None:
            return await super().history_since(topic, after)
        if js is None or not self._up:
            raise BrokerError(self.name, "not connected: the history cannot be read")
        async with asyncio.timeout(self._config.timeout):
            return await history.since(js, nats_subject(self._config.prefix, topic), after)

    async def _confirm(self, nc: NatsClient) -> None:
        """Return once the server has processed every command sent on `nc` so far (a SUB, an UNSUB).

        A PING/PONG proves it only for what went out before the PING, and
        nats-py's ``flush()`` writes its PING straight to the socket, ahead of
        the commands its flusher task has not written yet: its PONG could come
        back before the server had a SUB just made, and under load the server
        routed other connections' publications past it. So the pending
        commands are handed to the socket first (tests/test_nats_broker.py).
        """
        async with asyncio.timeout(self._config.timeout):
            hand_over: Callable[..., Awaitable[object]] | None = getattr(nc, "_flush_pending", None)
            if hand_over is not None:
                await hand_over(force_flush=True)  # returns once its flusher task wrote what was pending
            else:  # another nats-py: once a first PONG is back, its flusher has run
                await nc.flush(self._whole_seconds())
            await nc.flush(self._whole_seconds())

    def _whole_seconds(self) -> int:
        # nats-py takes whole seconds; our own asyncio timeouts bound the real wait.
        return max(1, math.ceil(self._config.timeout))

    async def _connect(self, generation: int, *, echo: bool, name: str) -> NatsClient:
        from nats.aio.client import Client

        nc = Client()
        last_error: list[BaseException] = []

        async def on_error(error: Exception) -> None:
            last_error.append(error)

        async def on_closed() -> None:
            reason = last_error[-1] if last_error else BrokerError(self.name, "connection closed")
            self._connection_lost(generation, reason)

        try:
            await nc.connect(
                servers=[self._config.url],
                # Reconnection is ours (RemoteBroker): one quick try here, no waits inside nats-py.
                allow_reconnect=False,
                max_reconnect_attempts=1,
                reconnect_time_wait=0,
                connect_timeout=self._whole_seconds(),
                no_echo=not echo,
                name=name,
                error_cb=on_error,
                closed_cb=on_closed,
                ping_interval=5,
                max_outstanding_pings=2,
            )
        except Exception as exc:
            with contextlib.suppress(Exception):  # half open: release what it holds
                await nc.close()
            if last_error:  # more telling than nats-py's "no servers available"
                raise BrokerError(self.name, str(last_error[-1]) or type(last_error[-1]).__name__) from exc
            raise
        return nc

    async def _open(self, generation: int) -> None:
        self._nc = nc = await self._connect(generation, echo=False, name="goomerang")
        self._gc = await self._connect(generation, echo=True, name="goomerang-groups")
        receiver = self._receiver
        assert receiver is not None
        broadcasts = nats_broadcast_subject(self._config.prefix)
        hand_backs = nats_group_prefix(self._config.prefix)
        if self._history is not None:
            self._js = nc.jetstream(timeout=self._config.timeout)
            await self._history.ensure(self._js)

        async def on_message(msg: Msg) -> None:
            subject = msg.subject
            if subject == broadcasts:
                receiver.deliver_broadcast(msg.data)
            elif subject.startswith(hand_backs):  # those are for queue subscriptions only
                return
            elif msg.headers and POSITION in msg.headers:  # numbered by the history
                position = parse_header_position(msg.headers[POSITION])
                if position is None:
                    self._report(BrokerError(self.name, f"a publication on {subject!r} with a malformed position", 1))
                elif position[1]:  # offset 0: the marker that made the topic's epoch
                    receiver.deliver_positioned(position[0], position[1], msg.data)
            else:
                receiver.deliver_publication(msg.data)

        await nc.subscribe(f"{self._config.prefix}.>", cb=on_message)
        await self._confirm(nc)

    def _on_group(self, group: str, member: str) -> Callable[[Msg], Awaitable[None]]:
        receiver = self._receiver
        assert receiver is not None

        async def on_message(msg: Msg) -> None:
            receiver.deliver_group(group, member, msg.data)

        return on_message

    async def _apply_groups(self, add: Sequence[Membership], remove: Sequence[Membership]) -> None:
        gc = self._gc
        if gc is None:
            raise BrokerError(self.name, "not connected")
        prefix = self._config.prefix
        for joined in add:
            group, pattern, member, literal = joined
            subject = nats_pattern(prefix, pattern, literal=literal)
            self._member_subs[joined] = await gc.subscribe(subject, queue=group, cb=self._on_group(group, member))
            key = (group, pattern, literal)
            sub, users = self._hand_back_subs.get(key, (None, 0))
            if sub is None:
                subject = nats_group_pattern(prefix, group, pattern, literal=literal)
                sub = await gc.subscribe(subject, queue=group, cb=self._on_group(group, ""))
            self._hand_back_subs[key] = (sub, users + 1)
        await self._forget_retired()
        for left in remove:
            member_sub = self._member_subs.pop(left, None)
            if member_sub is not None:
                await self._retire(gc, member_sub)
            key = (left.group, left.pattern, left.literal)
            sub, users = self._hand_back_subs.pop(key, (None, 0))
            if sub is not None and users > 1:
                self._hand_back_subs[key] = (sub, users - 1)
            elif sub is not None:
                await self._retire(gc, sub)
        await self._confirm(gc)

    async def _retire(self, gc: NatsClient, sub: NatsSubscription) -> None:
        """Unsubscribe at the server; what it still sends goes on reaching the callback (see the class)."""
        send = getattr(gc, "_send_unsubscribe", None)
        sid = getattr(sub, "_id", None)
        if send is None or sid is None:  # another nats-py: its drain is the best there is
            await sub.drain()  # type: ignore[no-untyped-call, unused-ignore]
            return
        await send(sid)
        self._retired.append((asyncio.get_running_loop().time() + _RETIRE_GRACE, sub))

    async def _forget_retired(self) -> None:
        now = asyncio.get_running_loop().time()
        while self._retired and self._retired[0][0] <= now:
            _, sub = self._retired.pop(0)
            with contextlib.suppress(Exception):  # gone with its connection already
                await sub.unsubscribe()

    async def _apply(self, add: Sequence[str], remove: Sequence[str]) -> None:
        # The catch-all subscription made in _open covers every pattern.
        if self._nc is None:
            raise BrokerError(self.name, "not connected")

    async def _send(self, batch: Sequence[Outgoing]) -> None:
        nc = self._nc
        if nc is None or not nc.is_connected:
            raise BrokerError(self.name, "not connected")
        prefix = self._config.prefix
        limit = nc.max_payload
        for index, item in enumerate(batch):
            self._taken = index  # cut short here, the batch is sent again from this one (with a history)
            if isinstance(item, HandBack):
                subject = nats_group_subject(prefix, item.group, item.topic)
                data = item.data
            else:
                topic, data = item
                subject = nats_subject(prefix, topic) if topic else nats_broadcast_subject(prefix)
            if len(data) > limit:
                why = f"a publication of {len(data)} bytes exceeds the server's max_payload ({limit})"
                self._report(BrokerError(self.name, why, 1))
                continue
            if self._history is not None and self._js is not None and not isinstance(item, HandBack) and item[0]:
                # Numbered by JetStream: acknowledged before the next; no echo, so delivered here now.
                epoch, offset = await self._history.publish(self._js, subject, data)
                if self._receiver is not None:
                    self._receiver.deliver_positioned(epoch, offset, data)
                continue
            await nc.publish(subject, data)

    async def _shut(self) -> None:
        self._member_subs = {}
        self._hand_back_subs = {}
        self._retired = []
        for nc in (self._nc, self._gc):
            if nc is not None and not nc.is_closed:
                with contextlib.suppress(Exception):  # already broken: _release does the rest
                    await nc.close()
            if nc is not None:
                _release(nc)
        self._nc = self._gc = None
        self._js = None
