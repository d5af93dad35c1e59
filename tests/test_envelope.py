"""The sans-I/O envelope codec replicas exchange through a broker."""

from __future__ import annotations

import pytest

from goomerang_runtime._envelope import FORMAT, Envelope, EnvelopeError, decode_envelope, encode_envelope, origin_prefix


def test_round_trip_of_a_publication_and_a_broadcast() -> None:
    data = encode_envelope("replica-a", 7, "rooms.go", b"\x12\x05frame")
    assert decode_envelope(data) == Envelope("replica-a", 7, "rooms.go", b"\x12\x05frame")
    assert not decode_envelope(data).is_broadcast
    assert decode_envelope(encode_envelope("replica-a", 8, "", b"f")).is_broadcast


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"\xff\xff\xff", "no envelope header"),
        (b"", "no envelope header"),
        (b"\x00\x02\xff\xff", "."),
        (b"\x00\x02", "no origin"),
        (encode_envelope("", 1, "t", b"f"), "no origin"),
        (encode_envelope("a", 1, "t", b""), "no frame"),
    ],
)
def test_bytes_that_are_not_an_envelope_raise(data: bytes, why: str) -> None:
    with pytest.raises(EnvelopeError, match=why):
        decode_envelope(data)


def test_envelopes_start_with_their_format_and_origin() -> None:
    data = encode_envelope("replica-a", 7, "rooms.go", b"frame")
    assert data[:2] == bytes((0, FORMAT))
    assert data.startswith(origin_prefix("replica-a"))
    assert not data.startswith(origin_prefix("replica-b"))
    assert not data.startswith(origin_prefix("replica-"))  # the origin's length is part of the prefix
    with pytest.raises(ValueError, match="never empty"):
        origin_prefix("")


def test_another_format_is_refused_naming_both_versions() -> None:
    data = encode_envelope("replica-a", 7, "rooms.go", b"frame")
    with pytest.raises(EnvelopeError, match="envelope format 3, this replica reads format 2: every replica must run"):
        decode_envelope(b"\x00\x03" + data[2:])
    # What goomerang wrote before format 2: the bare protobuf message.
    with pytest.raises(EnvelopeError, match=r"without a format header \(format 1\)"):
        decode_envelope(data[2:])
    with pytest.raises(EnvelopeError, match="no envelope header"):
        decode_envelope(b"\xff\xff\xff")
