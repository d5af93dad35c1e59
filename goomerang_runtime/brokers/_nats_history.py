"""The shared history on NATS JetStream: a stream over the topics' subjects, numbered per topic.

A JetStream stream (``{prefix}-history``, dots as ``_``) captures the
subjects ``{prefix}.t.>``, keeping the last ``history_size + 1`` messages of
each subject (``max_msgs_per_subject``: one more for the topic's first
message, a marker). Its sequence is global across subjects, so the per-topic
offset is ours: each publication carries ``Goomerang-Position:
<epoch>:<offset>`` and is published with
``Nats-Expected-Last-Subject-Sequence`` set to the stream sequence of the
topic's previous message, so JetStream stores it only if nothing came in
between. A publisher that lost that race reads the topic's last message and
tries again with the next offset: offsets stay contiguous per topic across
replicas, at the cost of one acknowledged round trip per publication.

A topic's epoch is made by its first message (the marker, offset 0, no
payload, made by the first read of an empty topic, or the first publication
itself): a deleted stream, or a server that lost its store, starts new
epochs, and clients naming an old one are told their loss is unknown.
Expiry (``history_ttl``) is applied when reading, by each message's time, so
a topic's last message (and its numbering) stays.

Reading what followed an offset goes through an ephemeral pull consumer on
the topic's subject: at most ``history_size + 1`` messages.
"""

from __future__ import annotations

import datetime
import hashlib
import secrets
from collections import OrderedDict
from typing import TYPE_CHECKING

from ..errors import BrokerError
from .base import StoredHistory

if TYPE_CHECKING:
    from nats.js.client import JetStreamContext

__all__ = ["POSITION", "JetStreamHistory", "parse_header_position"]

POSITION = "Goomerang-Position"
"""The header of a publication's ``epoch:offset`` in the history."""
_EXPECTED = "Nats-Expected-Last-Subject-Sequence"
_MSG_ID = "Nats-Msg-Id"
_WRONG_LAST_SEQUENCE = 10071
_TRIES = 64
"""Publish attempts of one publication that lost the race to other replicas before it is reported."""
_KNOWN_TOPICS = 4096
"""Topics whose last (epoch, sequence, offset) a publisher remembers (least recently used go)."""
_BATCH = 256


def parse_header_position(value: str) -> tuple[str, int] | None:
    """``(epoch, offset)`` of a ``Goomerang-Position`` header; None if it is not one."""
    epoch, sep, offset = value.rpartition(":")
    if not sep or not epoch or not offset.isdigit() or len(offset) > 19:
        return None
    return epoch, int(offset)


class JetStreamHistory:
    """One broker connection's side of the stream: made on connection, published to, read."""

    def __init__(self, name: str, prefix: str) -> None:
        self._name = name
        self.stream = f"{prefix}-history".replace(".", "_")
        self.subjects = f"{prefix}.t.>"
        self.size = 0
        self.ttl: float | None = None
        self._last: OrderedDict[str, tuple[str, int, int]] = OrderedDict()
        """Per subject: the epoch, stream sequence and offset of its newest message, as last seen here."""

    async def ensure(self, js: JetStreamContext) -> None:
        """Make the stream, or bring its limits to ours; forgets what it knew of each subject."""
        from nats.js.api import DiscardPolicy, StorageType, StreamConfig
        from nats.js.errors import BadRequestError, NotFoundError

        self._last.clear()
        config = StreamConfig(
            name=self.stream,
            subjects=[self.subjects],
            max_msgs_per_subject=self.size + 1,
            discard=DiscardPolicy.OLD,
            storage=StorageType.FILE,
        )
        try:
            await js.stream_info(self.stream)
        except NotFoundError:
            try:
                await js.add_stream(config)
                return
            except BadRequestError:  # made by another replica meanwhile
                pass
        await js.update_stream(config)

    async def _newest(self, js: JetStreamContext, subject: str) -> tuple[str, int, int] | None:
        """The epoch, sequence and offset of the subject's newest message; None when it holds none."""
        from nats.js.errors import NotFoundError

        try:
            msg = await js.get_last_msg(self.stream, subject)
        except NotFoundError:
            return None
        position = parse_header_position((msg.headers or {}).get(POSITION, ""))
        if position is None or msg.seq is None:
            raise BrokerError(self._name, f"a message on {subject!r} of the history without a position")
        return position[0], msg.seq, position[1]

    async def publish(self, js: JetStreamContext, subject: str, data: bytes) -> tuple[str, int]:
        """Store `data` as the subject's next publication; returns its epoch and offset."""
        from nats.js.errors import APIError

        last = self._last.pop(subject, None)
        # A publication sent again after a lost connection is recognised (JetStream's duplicate window).
        msg_id = hashlib.blake2b(data, digest_size=16).hexdigest()
        for _ in range(_TRIES):
            if last is None:
                last = await self._newest(js, subject)
            epoch, seq, offset = last if last is not None else (secrets.token_hex(8), 0, 0)
            headers = {_EXPECTED: str(seq), POSITION: f"{epoch}:{offset + 1}", _MSG_ID: msg_id}
            try:
                ack = await js.publish(subject, data, headers=headers)
            except APIError as exc:
                if exc.err_code != _WRONG_LAST_SEQUENCE:
                    raise
                last = None  # another replica's came first: read where the topic is now
                continue
            if ack.duplicate:  # taken before (its acknowledgement was lost): it has its position already
                stored = await js.get_msg(self.stream, ack.seq)
                position = parse_header_position((stored.headers or {}).get(POSITION, ""))
                if position is None:
                    raise BrokerError(self._name, f"a message on {subject!r} of the history without a position")
                return position
            self._remember(subject, (epoch, ack.seq, offset + 1))
            return epoch, offset + 1
        raise BrokerError(self._name, f"a publication on {subject!r} lost the race for its offset {_TRIES} times", 1)

    def _remember(self, subject: str, last: tuple[str, int, int]) -> None:
        self._last[subject] = last
        if len(self._last) > _KNOWN_TOPICS:
            self._last.popitem(last=False)

    async def since(self, js: JetStreamContext, subject: str, after: int | None) -> StoredHistory:
        """What the stream holds of `subject` after offset `after` (None: where it stands)."""
        newest = await self._newest(js, subject)
        if newest is None:
            newest = await self._mark(js, subject)
        epoch, seq, last = newest
        if after is None or after >= last:
            return StoredHistory(epoch, last, [])
        return StoredHistory(epoch, last, await self._read(js, subject, epoch, seq, after, last))

    async def _mark(self, js: JetStreamContext, subject: str) -> tuple[str, int, int]:
        """Give an empty subject its epoch: a marker message at offset 0 (unless another replica was first)."""
        from nats.js.errors import APIError

        epoch = secrets.token_hex(8)
        try:
            ack = await js.publish(subject, b"", headers={_EXPECTED: "0", POSITION: f"{epoch}:0"})
        except APIError as exc:
            if exc.err_code != _WRONG_LAST_SEQUENCE:
                raise
            newest = await self._newest(js, subject)
            if newest is None:
                raise BrokerError(self._name, f"the history of {subject!r} changed while it was read") from exc
            return newest
        return epoch, ack.seq, 0

    async def _read(
        self, js: JetStreamContext, subject: str, epoch: str, until: int, after: int, last: int
    ) -> list[tuple[int, bytes]]:
        """The subject's messages of `epoch` numbered after `after` up to `last` (stream sequence `until`)."""
        from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

        config = ConsumerConfig(
            deliver_policy=DeliverPolicy.ALL,
            ack_policy=AckPolicy.NONE,
            filter_subject=subject,
            inactive_threshold=30.0,
        )
        sub = await js.pull_subscribe(subject, stream=self.stream, config=config)
        oldest = None
        if self.ttl is not None:
            oldest = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=self.ttl)
        frames: list[tuple[int, bytes]] = []
        try:
            seq = 0
            while seq < until:
                for msg in await sub.fetch(_BATCH, timeout=2.0):
                    meta = msg.metadata
                    seq = meta.sequence.stream
                    position = parse_header_position((msg.headers or {}).get(POSITION, ""))
                    if position is None or position[0] != epoch or not after < position[1] <= last or not msg.data:
                        continue
                    if oldest is not None and not frames and meta.timestamp < oldest:
                        continue  # expired (only the oldest can be)
                    frames.append((position[1], msg.data))
        finally:
            await sub.unsubscribe()
        return frames[-self.size :]  # the stream keeps one more per subject (the marker's room)
