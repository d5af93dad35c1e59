"""The sans-I/O envelope codec replicas exchange through a broker."""

from __future__ import annotations

import pytest

from goomerang_runtime._envelope import Envelope, EnvelopeError, decode_envelope, encode_envelope


def test_round_trip_of_a_publication_and_a_broadcast() -> None:
    data = encode_envelope("replica-a", 7, "rooms.go", b"\x12\x05frame")
    assert decode_envelope(data) == Envelope("replica-a", 7, "rooms.go", b"\x12\x05frame")
    assert not decode_envelope(data).is_broadcast
    assert decode_envelope(encode_envelope("replica-a", 8, "", b"f")).is_broadcast


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"\xff\xff\xff", "."),
        (b"", "no origin"),
        (encode_envelope("", 1, "t", b"f"), "no origin"),
        (encode_envelope("a", 1, "t", b""), "no frame"),
    ],
)
def test_bytes_that_are_not_an_envelope_raise(data: bytes, why: str) -> None:
    with pytest.raises(EnvelopeError, match=why):
        decode_envelope(data)
