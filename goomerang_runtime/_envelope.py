"""Sans-I/O codec of what replicas exchange through a broker.

A publication or broadcast crosses the broker as an `Envelope`
(`protos/goomerang/broker.proto`): who sent it, its sequence number, its
topic, and the goomerang frame to hand to clients, already encoded so that
receiving replicas forward the very bytes without decoding the payload.
A publication a replica could not place with a member of a queue group goes
back to the broker with that replica's id added to `declined`.
"""

from __future__ import annotations

from dataclasses import dataclass

from google.protobuf.message import DecodeError

from .broker_pb2 import Envelope as _EnvelopePb

__all__ = ["Envelope", "EnvelopeError", "decode_envelope", "encode_envelope"]


@dataclass(frozen=True, slots=True)
class Envelope:
    """One publication (`topic` set) or broadcast (`topic` empty) from replica `origin`."""

    origin: str
    seq: int
    topic: str
    frame: bytes
    declined: tuple[str, ...] = ()
    """Replicas that handed this publication back for a queue group (no member could take it)."""

    @property
    def is_broadcast(self) -> bool:
        """Whether this is a broadcast rather than a publication."""
        return not self.topic


class EnvelopeError(ValueError):
    """Bytes that are not an envelope; the caller wraps it in a typed, reported error."""


def encode_envelope(origin: str, seq: int, topic: str, frame: bytes, declined: tuple[str, ...] = ()) -> bytes:
    """Serialize one envelope."""
    return _EnvelopePb(origin=origin, seq=seq, topic=topic, frame=frame, declined=declined).SerializeToString()


def decode_envelope(data: bytes) -> Envelope:
    """Parse one envelope; raises :class:`EnvelopeError` on bytes that are not one."""
    try:
        pb = _EnvelopePb.FromString(data)
    except (DecodeError, RuntimeError, ValueError) as exc:
        raise EnvelopeError(str(exc) or type(exc).__name__) from exc
    if not pb.origin:
        raise EnvelopeError("no origin")
    if not pb.frame:
        raise EnvelopeError("no frame")
    return Envelope(pb.origin, pb.seq, pb.topic, pb.frame, tuple(pb.declined))
