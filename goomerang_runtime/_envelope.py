"""Sans-I/O codec of what replicas exchange through a broker.

A publication or broadcast crosses the broker as an `Envelope`
(`protos/goomerang/broker.proto`): who sent it, its sequence number, its
topic, and the goomerang frame to hand to clients, already encoded so that
receiving replicas forward the very bytes without decoding the payload.
A publication a replica could not place with a member of a queue group goes
back to the broker with that replica's id added to `declined`.

The message follows a 2-byte header: 0x00 (never the first byte of a
protobuf message, so a replica of a goomerang before format 2 refuses it
loudly as malformed) and the format version, :data:`FORMAT`. A replica
reading another format reports it (:class:`EnvelopeError`) rather than
guessing. Protobuf writes fields in field-number order, so the origin comes
right after the header: :func:`origin_prefix` gives those bytes, and a
replica drops its own envelopes read back (Redis has no ``no_echo``) with
one ``bytes.startswith`` instead of a decode.
"""

from __future__ import annotations

from dataclasses import dataclass

from google.protobuf.message import DecodeError

from .broker_pb2 import Envelope as _EnvelopePb

__all__ = ["FORMAT", "Envelope", "EnvelopeError", "decode_envelope", "encode_envelope", "origin_prefix"]

FORMAT = 2
"""Version of the envelope layout; every replica of a deployment must write and read the same."""
_HEADER = bytes((0, FORMAT))


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
    """Serialize one envelope, behind its header."""
    pb = _EnvelopePb(origin=origin, seq=seq, topic=topic, frame=frame, declined=declined)
    return _HEADER + pb.SerializeToString()


def origin_prefix(origin: str) -> bytes:
    """The first bytes of every envelope `origin` encodes (header, then the origin field)."""
    if not origin:
        raise ValueError("an envelope's origin is never empty")
    return _HEADER + _EnvelopePb(origin=origin).SerializeToString()


def decode_envelope(data: bytes) -> Envelope:
    """Parse one envelope; raises :class:`EnvelopeError` on bytes that are not one, or of another format."""
    if not data.startswith(_HEADER):
        raise EnvelopeError(_not_ours(data))
    try:
        pb = _EnvelopePb.FromString(data[len(_HEADER) :])
    except (DecodeError, RuntimeError, ValueError) as exc:
        raise EnvelopeError(str(exc) or type(exc).__name__) from exc
    if not pb.origin:
        raise EnvelopeError("no origin")
    if not pb.frame:
        raise EnvelopeError("no frame")
    return Envelope(pb.origin, pb.seq, pb.topic, pb.frame, tuple(pb.declined))


def _not_ours(data: bytes) -> str:
    same = "every replica must run the same goomerang version"
    if len(data) >= 2 and data[0] == 0:
        return f"envelope format {data[1]}, this replica reads format {FORMAT}: {same}"
    if data[:1] == b"\n":  # the origin field first and no header: what goomerang wrote before format 2
        return f"envelope without a format header (format 1), this replica reads format {FORMAT}: {same}"
    return "no envelope header"
