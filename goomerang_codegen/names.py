"""Every output name, from one set of pure functions."""

from __future__ import annotations

import keyword
import re
from collections.abc import Iterable

__all__ = [
    "BUILTIN_TYPES",
    "PYTHON_RESERVED",
    "add_function",
    "class_name",
    "context_alias",
    "import_aliases",
    "method_name",
    "output_path",
    "pb2_module",
    "py_identifier",
    "reply_alias",
    "rpc_var",
    "snake_case",
    "topic_alias_problem",
    "topic_class_name",
    "with_reply_name",
]

PYTHON_RESERVED = frozenset(keyword.kwlist)
"""Names that cannot be identifiers; they get a trailing underscore."""

BUILTIN_TYPES = frozenset(
    {
        "bool", "bytearray", "bytes", "classmethod", "complex", "dict", "enumerate", "filter", "float",
        "frozenset", "int", "list", "map", "memoryview", "object", "property", "range", "reversed", "set",
        "slice", "staticmethod", "str", "super", "tuple", "type", "zip",
    }
)  # fmt: skip
"""The builtin classes (lowercase: what a snake_case name can be).

A method of that name would shadow the class in the rest of its class body,
where annotations and decorators are resolved: ``timeout: float`` or
``-> list[str]`` would name the method. Methods get a trailing underscore
instead, like keywords. Fixed, not read from ``builtins``, so the output is
the same on every Python; a test checks it covers the running one.
"""

_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_NON_WORD = re.compile(r"[^0-9A-Za-z]+")


def py_identifier(name: str) -> str:
    """`name` usable as a Python identifier (reserved words get a ``_`` suffix)."""
    return name + "_" if name in PYTHON_RESERVED else name


def snake_case(name: str) -> str:
    """``SayHello`` -> ``say_hello``, ``HTTPStatus`` -> ``http_status``, ``Import`` -> ``import_``."""
    return py_identifier(_CAMEL_BOUNDARY.sub("_", name).lower())


def method_name(rpc: str) -> str:
    """The Python method of an rpc: snake_case, with a ``_`` suffix for keywords and builtin classes."""
    snake = snake_case(rpc)
    return snake + "_" if snake in BUILTIN_TYPES else snake


def with_reply_name(rpc: str) -> str:
    """The stub method of a sync rpc that returns the whole reply message: ``join_with_reply``."""
    return snake_case(rpc).rstrip("_") + "_with_reply"


def _service_rpc(service: str, rpc: str) -> str:
    return class_name(service) + class_name(rpc)


def reply_alias(service: str, rpc: str) -> str:
    """The type alias of a sync rpc's reply (a union with also_replies): ``ChatJoinReply``."""
    return _service_rpc(service, rpc) + "Reply"


def context_alias(service: str, rpc: str) -> str:
    """The type alias of the context a service method gets: ``ChatJoinContext``."""
    return _service_rpc(service, rpc) + "Context"


def rpc_var(service: str, rpc: str) -> str:
    """The module-private name of an rpc's runtime object: ``_CHAT_JOIN``."""
    return f"_{snake_case(service).rstrip('_').upper()}_{snake_case(rpc).rstrip('_').upper()}"


def add_function(service: str) -> str:
    """The registration function of a service: ``add_chat_push``."""
    return f"add_{snake_case(service).rstrip('_')}"


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


def topic_alias_problem(alias: str) -> str:
    """What is wrong with a topic's alias as a class name ('' when nothing is)."""
    if not alias.isidentifier():
        return f"alias {alias!r} is not a Python identifier: use letters, digits and '_', e.g. {_suggest(alias)!r}"
    if not alias[0].isalpha():
        return f"alias {alias!r} must start with a letter: the class {alias}Topic would be private"
    return ""


def _suggest(alias: str) -> str:
    words = [word for word in _NON_WORD.split(alias) if word]
    suggestion = "".join(class_name(word) for word in words)
    return suggestion if suggestion[:1].isalpha() else "Name"


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
