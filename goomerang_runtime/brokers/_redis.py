"""The Redis broker, on `redis` asyncio pub/sub with hiredis (``pip install 'goomerang[redis]'``), imported lazily."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import secrets
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from .._envelope import EnvelopeError, decode_envelope
from ..errors import BrokerError, ConfigError
from ..topics import is_pattern
from ._names import (
    redis_broadcast_channel,
    redis_channel,
    redis_glob,
    redis_group_counters,
    redis_group_literal,
    redis_group_wildcards,
    redis_history_meta,
    redis_history_stream,
    redis_inbox,
)
from ._redis_groups import READ_SCRIPT, ROUTE_SCRIPT, literal_field, wildcard_field, wildcards_may_match
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
from .base import BrokerReceiver, StoredHistory, lost_hand_back

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.asyncio.client import PubSub

__all__ = ["RedisBroker"]

_CONFIRMATIONS = frozenset({"subscribe", "psubscribe", "unsubscribe", "punsubscribe"})


class RedisBroker(RemoteBroker):
    """Replicas meet on a Redis server, through its pub/sub.

    ::

        server = Server(broker=RedisBroker("redis://127.0.0.1:6379"))

    A literal topic is the channel ``{prefix}:t:{topic}`` (``SUBSCRIBE``);
    a wildcard pattern becomes a glob (``PSUBSCRIBE``) that may match more
    topics than the pattern (the server matches each publication against its
    own subscribers). Broadcasts use the channel ``{prefix}:b``. One
    connection receives everything in order, another publishes, pipelined.

    Redis pub/sub has no queue groups: each publication goes through a
    script that also picks, per queue group, the replica whose turn it is
    (weighted by its members) and sends it there on ``{prefix}:r:<replica>``;
    see :mod:`goomerang_runtime.brokers._redis_groups`.

    ``history=True`` keeps the servers' history (``Server(history_size=...,
    history_ttl=...)``) in Redis, one stream per topic, numbered by that
    script: a client that reconnects to any replica catches up with exact
    positions, and what left the history (its bound, its ttl, a wiped
    Redis) is reported. Every publication then reaches its own replica's
    clients through Redis too, in the order Redis numbered it.
    """

    groups: ClassVar[bool] = True

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379",
        *,
        prefix: str = "goomerang",
        buffer_size: int = DEFAULT_BROKER_BUFFER,
        overflow: Literal["wait", "drop"] = "wait",
        timeout: float = DEFAULT_BROKER_TIMEOUT,
        reconnect_delay: float = DEFAULT_RECONNECT_DELAY,
        reconnect_max_delay: float = DEFAULT_RECONNECT_MAX_DELAY,
        history: bool = False,
    ) -> None:
        owner = "RedisBroker"
        if importlib.util.find_spec("redis") is None:
            raise ConfigError(owner, {"broker": "redis is not installed: pip install 'goomerang[redis]'"})
        if not prefix:
            raise ConfigError(owner, {"prefix": "must not be empty"})
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
        self._client: Redis | None = None
        self._pubsub: PubSub | None = None
        self._reader: asyncio.Task[None] | None = None
        self._broadcast_channel = redis_broadcast_channel(prefix)
        self._globs: dict[bytes, set[str]] = {}
        self._waiting: dict[tuple[str, bytes], asyncio.Future[None]] = {}
        self._inbox = b""
        self._script = ""
        """The routing script's SHA1, loaded on each connection."""
        self._written: set[tuple[bytes, str]] = set()
        """Registry entries (key, field) this replica wrote: removed on a new connection, then made afresh."""
        self.keeps_history = history
        self._resend_unsent = history  # see _unsent
        self._keep = b"0"
        self._ttl_ms = b"0"
        self._reader_script = ""

    def configure_history(self, size: int, ttl: float | None) -> None:
        if not self.keeps_history:
            super().configure_history(size, ttl)
        self._keep = str(size).encode()
        self._ttl_ms = str(max(1, round(ttl * 1000)) if ttl is not None else 0).encode()

    async def history_since(self, topic: str, after: int | None) -> StoredHistory:
        client = self._client
        if client is None or not self._up:
            raise BrokerError(self.name, "not connected: the history cannot be read")
        prefix = self._config.prefix
        keys = (redis_history_meta(prefix, topic), redis_history_stream(prefix, topic))
        start = b"" if after is None else f"{after + 1}-0".encode()
        async with asyncio.timeout(self._config.timeout):
            reply: list[Any] = await client.evalsha(
                self._reader_script, 2, *keys, secrets.token_hex(4), start, self._ttl_ms
            )
        epoch, last, held = reply
        frames = [(int(held[i]), held[i + 1]) for i in range(0, len(held), 2)]
        return StoredHistory(epoch.decode(), int(last), frames)

    async def _open(self, generation: int) -> None:
        from redis.asyncio import Redis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        # No retries inside redis-py: a failure must reach our reconnection loop.
        client = Redis.from_url(
            self._config.url,
            retry=Retry(NoBackoff(), 0),
            socket_connect_timeout=self._config.timeout,
        )
        self._client = client
        await client.ping()
        self._script = await client.script_load(ROUTE_SCRIPT)
        if self.keeps_history:
            self._reader_script = await client.script_load(READ_SCRIPT)
        if self._written:  # members that left while the connection was down must not stay counted
            cleanup = client.pipeline(transaction=False)
            for key, field in self._written:
                cleanup.hdel(key, field)
            await cleanup.execute()
            self._written.clear()
        assert self._receiver is not None
        self._inbox = redis_inbox(self._config.prefix, self._receiver.replica)
        pubsub = client.pubsub()
        self._pubsub = pubsub
        confirmed = [self._expect("subscribe", self._broadcast_channel), self._expect("subscribe", self._inbox)]
        await pubsub.subscribe(self._broadcast_channel, self._inbox)
        self._reader = asyncio.get_running_loop().create_task(self._read(pubsub, generation))
        await asyncio.gather(*confirmed)

    def _expect(self, kind: str, name: bytes) -> asyncio.Future[None]:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting[(kind, name)] = fut
        return fut

    async def _read(self, pubsub: PubSub, generation: int) -> None:
        receiver = self._receiver
        assert receiver is not None
        broadcasts = self._broadcast_channel
        try:
            while self._pubsub is pubsub:
                # The raw reply, not get_message()'s dict: a publication's bytes go to the receiver as
                # they are (which drops this replica's own at once: Redis pub/sub has no no_echo).
                response: list[Any] | None = await pubsub.parse_response(block=True)
                if not response:
                    continue
                kind = response[0]
                if kind == b"message":
                    channel = response[1]
                    if channel == broadcasts:
                        receiver.deliver_broadcast(response[2])
                    elif channel == self._inbox:
                        group, _, data = response[2].partition(b"\n")
                        receiver.deliver_group(group.decode(), "", data)
                    else:
                        self._publication(receiver, response[2])
                elif kind == b"pmessage":
                    # One copy per matching subscription; the receiver keeps the first.
                    self._publication(receiver, response[3])
                else:  # confirmations, through redis-py, which keeps its books of subscriptions
                    msg: dict[str, Any] | None = await pubsub.handle_message(response)  # type: ignore[no-untyped-call, unused-ignore]
                    if msg is not None and msg["type"] in _CONFIRMATIONS:
                        fut = self._waiting.pop((msg["type"], msg["channel"]), None)
                        if fut is not None and not fut.done():
                            fut.set_result(None)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._connection_lost(generation, exc)

    def _publication(self, receiver: BrokerReceiver, data: bytes) -> None:
        if self.keeps_history and data[:1] != b"\0":  # not an envelope's header: numbered by the history
            position, _, envelope = data.partition(b"\n")
            epoch, _, offset = position.rpartition(b":")
            if epoch and offset.isdigit() and len(offset) <= 19:
                receiver.deliver_positioned(epoch.decode(errors="replace"), int(offset), envelope)
                return
        receiver.deliver_publication(data)  # which reports what is not an envelope

    async def _apply(self, add: Sequence[str], remove: Sequence[str]) -> None:
        pubsub = self._pubsub
        if pubsub is None:
            raise BrokerError(self.name, "not connected")
        prefix = self._config.prefix
        confirmations: list[asyncio.Future[None]] = []
        for pattern in remove:
            if is_pattern(pattern):
                glob = redis_glob(prefix, pattern)
                users = self._globs.get(glob, set())
                users.discard(pattern)
                if not users:
                    self._globs.pop(glob, None)
                    confirmations.append(self._expect("punsubscribe", glob))
                    await pubsub.punsubscribe(glob)
            else:
                channel = redis_channel(prefix, pattern)
                confirmations.append(self._expect("unsubscribe", channel))
                await pubsub.unsubscribe(channel)
        for pattern in add:
            if is_pattern(pattern):
                glob = redis_glob(prefix, pattern)
                users = self._globs.setdefault(glob, set())
                users.add(pattern)
                if len(users) == 1:
                    confirmations.append(self._expect("psubscribe", glob))
                    await pubsub.psubscribe(glob)
            else:
                channel = redis_channel(prefix, pattern)
                confirmations.append(self._expect("subscribe", channel))
                await pubsub.subscribe(channel)
        if confirmations:
            await asyncio.gather(*confirmations)

    async def _apply_groups(self, add: Sequence[Membership], remove: Sequence[Membership]) -> None:
        client = self._client
        if client is None or self._receiver is None:
            raise BrokerError(self.name, "not connected")
        replica = self._receiver.replica
        prefix = self._config.prefix
        members = (self._members_applied | set(add)) - set(remove)
        counts = Counter((m.group, m.pattern, m.literal) for m in members)
        pipe = client.pipeline(transaction=False)
        for group, pattern, literal in sorted({(m.group, m.pattern, m.literal) for m in (*add, *remove)}):
            if literal or not is_pattern(pattern):
                key, field = redis_group_literal(prefix, pattern), literal_field(group, replica)
            else:
                key, field = redis_group_wildcards(prefix), wildcard_field(group, replica, pattern)
            # The count, not an increment: a new connection writes the same entries again.
            count = counts[(group, pattern, literal)]
            if count:
                pipe.hset(key, field, str(count))
                self._written.add((key, field))
            else:
                pipe.hdel(key, field)
                self._written.discard((key, field))
        await pipe.execute()

    async def _send(self, batch: Sequence[Outgoing]) -> None:
        client = self._client
        if client is None:
            raise BrokerError(self.name, "not connected")
        prefix = self._config.prefix
        wildcards, counters = redis_group_wildcards(prefix), redis_group_counters(prefix)
        inbox = redis_inbox(prefix, "")
        script = self._script
        keep, ttl = self._keep, self._ttl_ms
        epoch = secrets.token_hex(4).encode()  # the start of a topic's epoch, should this batch make one
        pipe = client.pipeline(transaction=False)
        hand_backs: dict[int, HandBack] = {}
        for index, item in enumerate(batch):
            if isinstance(item, HandBack):
                topic = item.topic
                keys = (redis_group_literal(prefix, topic), wildcards, counters, *self._history_keys(topic))
                may = b"1" if wildcards_may_match(topic) else b"0"
                group, declined = item.group, item.declined
                pipe.evalsha(
                    script, 5, *keys, topic, item.data, may, inbox, b"", group, b"0", b"0", b"", b"", b"0", *declined
                )
                hand_backs[index] = item
                continue
            topic, data = item
            if not topic:
                pipe.publish(self._broadcast_channel, data)
                continue
            keys = (redis_group_literal(prefix, topic), wildcards, counters, *self._history_keys(topic))
            may = b"1" if wildcards_may_match(topic) else b"0"
            channel = redis_channel(prefix, topic)
            origin, seq = self._identity(data) if self.keeps_history else (b"", b"0")
            pipe.evalsha(script, 5, *keys, topic, data, may, inbox, channel, b"", keep, ttl, epoch, origin, seq)
        results: list[Any] = await pipe.execute()
        for index, item in hand_backs.items():
            if not results[index]:  # no other replica has a member of the group left
                self._report(lost_hand_back(self.name, item.group, item.topic, len(item.declined)))

    @staticmethod
    def _identity(data: bytes) -> tuple[bytes, bytes]:
        """A publication's origin and number, by which the routing script drops a copy sent again."""
        try:
            envelope = decode_envelope(data)
        except EnvelopeError:
            return b"", b"0"
        return envelope.origin.encode(), str(envelope.seq).encode()

    def _unsent(self, batch: Sequence[Outgoing]) -> list[Outgoing]:
        # With a history the script drops what it took already, so a cut batch's publications go again.
        # A queue group's hand-back has no such check: it is reported lost, as before.
        hand_backs = sum(1 for item in batch if isinstance(item, HandBack))
        if hand_backs:
            self._report(BrokerError(self.name, "hand-backs cut short by a lost connection", hand_backs))
        return [item for item in batch if not isinstance(item, HandBack)]

    def _history_keys(self, topic: str) -> tuple[bytes, bytes]:
        prefix = self._config.prefix
        return redis_history_meta(prefix, topic), redis_history_stream(prefix, topic)

    async def _shut(self) -> None:
        reader, self._reader = self._reader, None
        pubsub, self._pubsub = self._pubsub, None
        client, self._client = self._client, None
        self._globs = {}
        waiting, self._waiting = self._waiting, {}
        for fut in waiting.values():
            if not fut.done():
                fut.set_exception(BrokerError(self.name, "connection closed"))
                fut.exception()  # retrieved here; a waiter, if any, still gets it
        # Each step bounded: redis-py may hold on to a read of a dead connection.
        if reader is not None:
            reader.cancel()
            await asyncio.wait({reader}, timeout=self._config.timeout)
        with contextlib.suppress(Exception):
            async with asyncio.timeout(self._config.timeout):
                if pubsub is not None:
                    await pubsub.aclose()  # type: ignore[no-untyped-call, unused-ignore]  # typed from redis 8.2
                if client is not None:
                    await client.aclose()
