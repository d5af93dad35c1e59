"""What the scenarios send, the same bytes for goomerang and raw websockets."""

from __future__ import annotations

from generated.goomerang.example.messages_pb2 import PingPong

__all__ = [
    "BATCH",
    "BODY",
    "CONNECT_CHUNK",
    "HELLO",
    "HOST",
    "SEND_YIELD",
    "SYNC_TIMEOUT",
    "TEXT",
    "TOPIC",
    "WINDOW",
    "WORKLOADS",
    "is_batch_end",
    "ping",
]

HOST = "127.0.0.1"
BODY = bytes(range(96))
"""PingPong body: with the sequence number the payload is about 100 bytes."""
TEXT = "x" * 98
"""MessageV1.message for request/reply: a 100-byte payload."""
TOPIC = "bench.fanout"
SYNC_TIMEOUT = 10.0
"""Deadline of every request/reply call, on both sides (a real app has one)."""
BATCH = 50
"""Fan-out: a subscriber acknowledges the last message of every batch."""
WINDOW = 4
"""Fan-out: the producer runs at most this many unacknowledged batches ahead."""
HELLO = -1
"""Fan-out: the sequence number of a subscriber's first message to the server."""
SEND_YIELD = 256
"""One-way: senders yield to the event loop every this many sends (a raw sender
whose socket never fills would otherwise never let anything else run)."""
CONNECT_CHUNK = 100
"""Connections opened at once (the listen backlog is 100)."""
WORKLOADS = ("oneway", "sync", "broadcast", "publish", "idle")


def ping(sequence: int) -> PingPong:
    """The ~100-byte message of one-way and fan-out scenarios."""
    return PingPong(sequence=sequence, body=BODY)


def is_batch_end(sequence: int) -> bool:
    """Whether a subscriber acknowledges this delivery."""
    return sequence % BATCH == BATCH - 1
