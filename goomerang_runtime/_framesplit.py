"""Whole final binary WebSocket frames read straight from received bytes (sans-I/O).

websockets parses every frame with generator-based coroutines, the largest
cost of receiving a small message. Goomerang traffic is almost only final
(unfragmented) binary frames without extensions, which take a few byte
reads to split: :func:`split_binary` takes those from the start of what one
read brought and stops at the first thing that is anything else (a control
frame, a fragment, text, reserved bits, a frame too big, a mask where none
belongs or none where one must be, or a frame not complete yet). The caller
hands the rest to websockets, which handles it (or fails the connection)
exactly as before, so only frames websockets would have accepted as they are
take this path.

It may only be used while websockets' parser is at a frame boundary with
nothing buffered (:func:`at_frame_start`); then what it leaves starts a frame
too, and websockets goes on from there.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from websockets.protocol import OPEN, Protocol
from websockets.streams import StreamReader

try:
    from websockets.speedups import apply_mask
except ImportError:  # pragma: no cover - websockets built without its C extension
    from websockets.utils import apply_mask

__all__ = ["at_frame_start", "split_binary"]

_FIN_BINARY = 0x82
"""FIN set, reserved bits clear, opcode 2."""
_AT_EOF = StreamReader.at_eof.__code__
_PARSE = Protocol.parse.__code__


def at_frame_start(protocol: Protocol) -> bool:
    """Whether websockets' parser of an open connection waits for a new frame with nothing buffered.

    Then it is suspended in ``reader.at_eof()`` at the top of
    ``Protocol.parse``'s loop (a parser waiting inside a frame is suspended
    in ``read_exact``). Also False with extensions (compression), debug
    logging or a fragmented message under way: websockets keeps those.
    """
    if (
        protocol.reader.buffer
        or protocol.state is not OPEN
        or protocol.extensions
        or protocol.debug
        or protocol.current_size is not None
    ):
        return False
    outer: Any = None
    inner: Any = protocol.parser
    while (deeper := getattr(inner, "gi_yieldfrom", None)) is not None:
        outer, inner = inner, deeper
    return outer is not None and getattr(inner, "gi_code", None) is _AT_EOF and outer.gi_code is _PARSE


def split_binary(data: bytes, masked: bool, max_size: int | None, put: Callable[[bytes], None]) -> int:
    """Hand each whole final binary frame at the start of `data` to `put` (its payload); returns bytes used.

    `masked`: frames must carry a mask (what a server receives) and are
    unmasked; otherwise they must not. A frame whose payload passes
    `max_size` is left to websockets, which fails the connection with 1009.
    """
    end = len(data)
    pos = 0
    while end - pos >= 2:
        if data[pos] != _FIN_BINARY:
            break
        second = data[pos + 1]
        if bool(second & 0x80) is not masked:
            break
        size = second & 0x7F
        head = pos + 2
        if size == 126:
            if end - head < 2:
                break
            size = int.from_bytes(data[head : head + 2], "big")
            head += 2
        elif size == 127:
            if end - head < 8:
                break
            size = int.from_bytes(data[head : head + 8], "big")
            head += 8
        if max_size is not None and size > max_size:
            break
        if masked:
            start = head + 4
            stop = start + size
            if stop > end:
                break
            put(apply_mask(data[start:stop], data[head:start]))
        else:
            stop = head + size
            if stop > end:
                break
            put(data[head:stop])
        pos = stop
    return pos
