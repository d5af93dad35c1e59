"""The ready middlewares over real loopback connections: guard, logging, metrics."""

from __future__ import annotations

import asyncio
import logging

import pytest

from generated.goomerang.example.messages_pb2 import MessageV1, ReplyV1
from goomerang_runtime import (
    Client,
    HandlerError,
    Message,
    PeerInfo,
    ProtoMessage,
    RemoteHandlerError,
    Sender,
    Server,
    exception_guard,
    logging_middleware,
    metrics_middleware,
)

from .helpers import WAIT, Collector, Counter

MESSAGE_V1 = "goomerang.example.MessageV1"
REPLY_V1 = "goomerang.example.ReplyV1"


async def echo_or_raise(sender: Sender, msg: Message[MessageV1]) -> None:
    if msg.payload.message == "boom":
        raise RuntimeError("boom")
    await sender.send(ReplyV1(message=msg.payload.message))


class Caught:
    """An exception-guard callback that records and can be awaited."""

    def __init__(self) -> None:
        self.items: list[tuple[Exception, str]] = []
        self.counter = Counter()

    def __call__(self, error: Exception, msg: Message[ProtoMessage]) -> None:
        self.items.append((error, msg.kind))
        self.counter.hit()


async def test_exception_guard_keeps_the_connection_and_the_server_serving() -> None:
    server = Server()
    caught = Caught()
    errors = Collector()
    server.on_error(errors)
    server.middleware(exception_guard(caught))
    server.handle(MessageV1, echo_or_raise)
    async with server:
        client = Client(server=server.addr)
        client.register_message(ReplyV1)
        async with client:
            await client.send(MessageV1(message="boom"))
            await caught.counter.wait_for(1)
            # A guarded sync request still gets its error reply at once (tests/test_guard_sync.py).
            with pytest.raises(RemoteHandlerError, match="RuntimeError"):
                await client.send_sync(MessageV1(message="boom"), timeout=WAIT)
            await caught.counter.wait_for(2)
            reply = await client.send_sync(MessageV1(message="same connection"), timeout=WAIT, expect=ReplyV1)
            assert reply.payload.message == "same connection"
        other = Client(server=server.addr)
        other.register_message(ReplyV1)
        async with other:
            reply = await other.send_sync(MessageV1(message="new connection"), timeout=WAIT, expect=ReplyV1)
            assert reply.payload.message == "new connection"
    assert [(str(error), kind) for error, kind in caught.items] == [("boom", MESSAGE_V1)] * 2
    assert errors.of(HandlerError) == []


async def test_exception_guard_lets_cancellation_and_its_own_errors_through() -> None:
    def explode(error: Exception, msg: Message[ProtoMessage]) -> None:
        raise ValueError("callback failed") from error

    async def raises(sender: Sender, msg: Message[ProtoMessage]) -> None:
        raise RuntimeError("handler failed")

    async def cancelled(sender: Sender, msg: Message[ProtoMessage]) -> None:
        raise asyncio.CancelledError

    sender = _NullSender()
    msg: Message[ProtoMessage] = Message(MessageV1())
    with pytest.raises(ValueError, match="callback failed"):
        await exception_guard(explode)(raises)(sender, msg)
    with pytest.raises(asyncio.CancelledError):
        await exception_guard(Caught())(cancelled)(sender, msg)


class _NullSender:
    peer = PeerInfo("conn-test", "127.0.0.1:1")

    async def send(self, msg: Message[ProtoMessage] | ProtoMessage) -> int:
        return 0


class Records(logging.Handler):
    """A logging handler that keeps records and lets tests await them."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.counter = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        self.counter.hit()


async def test_logging_middleware_records_carry_the_fields() -> None:
    logger = logging.getLogger("tests.goomerang.messages")
    logger.setLevel(logging.DEBUG)
    records = Records()
    logger.addHandler(records)
    try:
        server = Server()
        server.on_error(Collector())
        server.middleware(logging_middleware(logger, level=logging.DEBUG, error_level=logging.ERROR))
        server.handle(MessageV1, echo_or_raise)
        async with server:
            client = Client(server=server.addr)
            client.register_message(ReplyV1)
            async with client:
                await client.send_sync(MessageV1(message="fine"), timeout=WAIT)
                await client.send(MessageV1(message="boom"))
                await records.counter.wait_for(2)
    finally:
        logger.removeHandler(records)
    ok, failed = records.records
    assert (ok.levelno, failed.levelno) == (logging.DEBUG, logging.ERROR)
    for record, text in ((ok, "fine"), (failed, "boom")):
        assert record.kind == MESSAGE_V1  # type: ignore[attr-defined]
        assert record.size == MessageV1(message=text).ByteSize()  # type: ignore[attr-defined]
        assert isinstance(record.duration, float)  # type: ignore[attr-defined]
        assert record.duration >= 0  # type: ignore[attr-defined]
        assert record.peer.startswith("conn-")  # type: ignore[attr-defined]
    assert (ok.outcome, ok.error, ok.is_sync) == ("ok", None, True)  # type: ignore[attr-defined]
    assert (failed.outcome, failed.error, failed.is_sync) == ("error", "RuntimeError", False)  # type: ignore[attr-defined]
    assert ok.getMessage().startswith(MESSAGE_V1 + " ok in ")


async def test_logging_middleware_skips_work_for_disabled_levels_and_uses_its_default_logger() -> None:
    records = Records()
    default = logging.getLogger("goomerang.messages")
    default.addHandler(records)
    previous = default.level
    default.setLevel(logging.WARNING)
    try:
        chain = logging_middleware()(echo_or_raise)  # type: ignore[arg-type]
        await chain(_NullSender(), Message(MessageV1(message="quiet")))  # INFO: filtered out
        with pytest.raises(RuntimeError):
            await chain(_NullSender(), Message(MessageV1(message="boom")))  # WARNING: logged
    finally:
        default.removeHandler(records)
        default.setLevel(previous)
    assert [r.outcome for r in records.records] == ["error"]  # type: ignore[attr-defined]


class FakeObserver:
    """A MessageObserver that keeps what it is told."""

    def __init__(self) -> None:
        self.received: list[tuple[str, int, float | None]] = []
        self.processed: list[str] = []
        self.counter = Counter()

    def message_received(self, kind: str, size: int, inflight: float | None) -> None:
        self.received.append((kind, size, inflight))

    def message_processed(self, kind: str, duration: float) -> None:
        assert duration >= 0
        self.processed.append(kind)
        self.counter.hit()


async def test_metrics_middleware_works_on_the_client_side_with_any_observer() -> None:
    server = Server()
    server.register_message(ReplyV1)
    async with server:
        observer = FakeObserver()
        client = Client(server=server.addr)
        client.middleware(metrics_middleware(observer))
        client.on_error(Collector())

        async def on_reply(sender: Sender, msg: Message[ReplyV1]) -> None:
            if msg.payload.message == "boom":
                raise RuntimeError("boom")

        client.handle(ReplyV1, on_reply)
        async with client:
            await server.broadcast(ReplyV1(message="hello"))
            await server.broadcast(ReplyV1(message="boom"))
            await observer.counter.wait_for(2)
    assert observer.processed == [REPLY_V1, REPLY_V1]  # a raising handler is timed too
    sizes = [(kind, size) for kind, size, _ in observer.received]
    assert sizes == [(REPLY_V1, ReplyV1(message="hello").ByteSize()), (REPLY_V1, ReplyV1(message="boom").ByteSize())]
    assert all(inflight is not None and inflight >= 0 for _, _, inflight in observer.received)


async def test_metrics_middleware_skips_inflight_without_a_creation_stamp() -> None:
    observer = FakeObserver()

    async def handler(sender: Sender, msg: Message[ProtoMessage]) -> None:
        pass

    await metrics_middleware(observer)(handler)(_NullSender(), Message(MessageV1()))
    assert observer.received == [(MESSAGE_V1, 0, None)]
