"""Every output name, from one set of pure functions."""

from __future__ import annotations

import keyword
import re
from collections.abc import Iterable

__all__ = [
    "PYTHON_RESERVED",
    "class_name",
    "import_aliases",
    "output_path",
    "pb2_module",
    "py_identifier",
    "snake_case",
    "topic_class_name",
]

PYTHON_RESERVED = frozenset(keyword.kwlist)
"""Names that cannot be identifiers; they get a trailing underscore."""

_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_NON_WORD = re.compile(r"[^0-9A-Za-z]+")


def py_identifier(name: str) -> str:
    """`name` usable as a Python identifier (reserved words get a ``_`` suffix)."""
    return name + "_" if name in PYTHON_RESERVED else name


def snake_case(name: str) -> str:
    """``SayHello`` -> ``say_hello``, ``HTTPStatus`` -> ``http_status``, ``Import`` -> ``import_``."""
    return py_identifier(_CAMEL_BOUNDARY.sub("_", name).lower())


def class_name(name: str) -> str:
    """A CamelCase class name from a proto identifier (its first letter upper-cased)."""
    return name[:1].upper() + name[1:]


def topic_class_name(pattern: str, alias: str) -> str:
    """``rooms.*`` -> ``RoomsTopic``; an alias wins; '' when nothing is left to name it."""
    if alias:
        return class_name(alias) + "Topic"
    words = [word for token in pattern.split(".") if token not in ("*", ">") for word in _NON_WORD.split(token)]
    base = "".join(class_name(word) for word in words if word)
    if not base or not base[0].isalpha():
        return ""
    return base + "Topic"


def pb2_module(proto_file: str) -> str:
    """The module protoc's Python generator writes for a file: ``a/b-c.proto`` -> ``a.b_c_pb2``."""
    stem = proto_file.removesuffix(".proto")
    return stem.replace("-", "_").replace("/", ".") + "_pb2"


def import_aliases(modules: Iterable[str]) -> dict[str, str]:
    """Short, unique, private aliases for a file's imports.

    Each module gets the shortest dotted suffix that no other module in the
    set shares, joined by ``_``: ``chat.v1.chat_pb2`` -> ``_chat_pb2``, or
    ``_v1_chat_pb2`` beside ``chat.v2.chat_pb2``.
    """
    unique = sorted(set(modules))
    aliases: dict[str, str] = {}
    for module in unique:
        parts = module.split(".")
        for size in range(1, len(parts) + 1):
            suffix = parts[-size:]
            if size == len(parts) or not any(
                other != module and other.split(".")[-size:] == suffix for other in unique
            ):
                aliases[module] = "_" + "_".join(suffix)
                break
    return aliases


def output_path(proto_file: str) -> str:
    """Where the plugin writes the module for a file: ``chat/v1/chat.proto`` -> ``chat/v1/chat_goomerang.py``."""
    stem = proto_file.removesuffix(".proto")
    return stem.replace("-", "_") + "_goomerang.py"
