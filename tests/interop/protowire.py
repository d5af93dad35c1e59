"""Protobuf wire-format reading, to check the exact bytes a peer wrote.

Decoding a message with protobuf hides how it was laid out: field order,
zero values written or left out. These helpers read the raw fields.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["UUID_RE", "RawField", "frame_problems", "raw_fields"]

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
"""A UUID in canonical text form: 36 characters, lowercase hex."""

WIRE_VARINT = 0
WIRE_I64 = 1
WIRE_LEN = 2
WIRE_I32 = 5

BROADCAST_KIND = "goomerang.protocol.BroadcastCmd"
PUBLISH_KIND = "goomerang.protocol.PublishCmd"
SUBSCRIBE_KIND = "goomerang.protocol.SubscribeCmd"
UNSUBSCRIBE_KIND = "goomerang.protocol.UnsubscribeCmd"
HEADER_PREFIX = "message-"

# Frame fields that are scalars (a zero value must not be written) and the
# ones that may repeat (map entries).
_FRAME_SCALARS = {1: "uuid", 2: "kind", 3: "payloadSize", 4: "is_sync", 7: "payload"}
_FRAME_REPEATED = {6}
_COMMAND_SCALARS = {
    BROADCAST_KIND: {2: "kind", 3: "message"},
    PUBLISH_KIND: {1: "topic", 2: "kind", 3: "message"},
    SUBSCRIBE_KIND: {1: "topic"},
    UNSUBSCRIBE_KIND: {1: "topic"},
}


@dataclass(frozen=True)
class RawField:
    """One field as written: its number, wire type and value (an int, or the bytes of a LEN field)."""

    number: int
    wire_type: int
    value: int | bytes

    @property
    def is_zero(self) -> bool:
        """Whether this is a scalar's zero value (0, false, empty string or bytes)."""
        return self.value in (0, b"")


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise ValueError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def raw_fields(data: bytes) -> list[RawField]:
    """The top-level fields of a serialized message, in the order they were written."""
    fields: list[RawField] = []
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire_type = key >> 3, key & 7
        value: int | bytes
        if wire_type == WIRE_VARINT:
            value, pos = _varint(data, pos)
        elif wire_type == WIRE_LEN:
            length, pos = _varint(data, pos)
            if pos + length > len(data):
                raise ValueError(f"field {number}: truncated")
            value, pos = data[pos : pos + length], pos + length
        elif wire_type == WIRE_I64:
            value, pos = int.from_bytes(data[pos : pos + 8], "little"), pos + 8
        elif wire_type == WIRE_I32:
            value, pos = int.from_bytes(data[pos : pos + 4], "little"), pos + 4
        else:
            raise ValueError(f"field {number}: unsupported wire type {wire_type}")
        fields.append(RawField(number, wire_type, value))
    return fields


def _layout_problems(what: str, fields: list[RawField], scalars: dict[int, str], repeated: set[int]) -> list[str]:
    problems: list[str] = []
    numbers = [f.number for f in fields]
    if numbers != sorted(numbers):
        problems.append(f"{what}: fields not in ascending order: {numbers}")
    for number in set(numbers) - repeated:
        if numbers.count(number) > 1:
            problems.append(f"{what}: field {number} written {numbers.count(number)} times")
    for f in fields:
        if f.number in scalars and f.is_zero:
            problems.append(f"{what}: zero value of {scalars[f.number]} (field {f.number}) written")
    return problems


def frame_problems(data: bytes) -> list[str]:
    """What is wrong with the layout of one serialized goomerang Frame (empty: nothing).

    Checks: fields in ascending number order, each once (but map entries),
    no zero scalar written, uuid in canonical form when present, is_sync
    present exactly when uuid is, and for a command frame the same layout
    rules on the command and the ``message-`` prefix on every header.
    """
    try:
        fields = raw_fields(data)
    except ValueError as exc:
        return [f"frame does not parse: {exc}"]
    problems = _layout_problems("Frame", fields, _FRAME_SCALARS, _FRAME_REPEATED)
    by_number = {f.number: f.value for f in fields}
    uuid = by_number.get(1)
    if isinstance(uuid, bytes) and uuid and not UUID_RE.match(uuid.decode("latin-1")):
        problems.append(f"uuid {uuid!r} is not a canonical lowercase 36-character UUID")
    if (1 in by_number) != (4 in by_number):
        problems.append(f"uuid present: {1 in by_number}, is_sync present: {4 in by_number}")
    kind = by_number.get(2)
    kind_text = kind.decode() if isinstance(kind, bytes) else ""
    if kind_text in _COMMAND_SCALARS:
        payload = by_number.get(7, b"")
        assert isinstance(payload, bytes)
        try:
            command = raw_fields(payload)
        except ValueError as exc:
            return [*problems, f"{kind_text} does not parse: {exc}"]
        problems += _layout_problems(kind_text, command, _COMMAND_SCALARS[kind_text], set())
        if kind_text in (BROADCAST_KIND, PUBLISH_KIND):
            for entry in (f.value for f in fields if f.number == 6):
                assert isinstance(entry, bytes)
                key = {f.number: f.value for f in raw_fields(entry)}.get(1, b"")
                assert isinstance(key, bytes)
                if not key.decode().startswith(HEADER_PREFIX):
                    problems.append(f"{kind_text}: header {key.decode()!r} lacks the {HEADER_PREFIX!r} prefix")
    return problems
