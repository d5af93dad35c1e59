"""An index of every message type in a CodeGeneratorRequest and its Python import."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from google.protobuf.descriptor_pb2 import DescriptorProto, FileDescriptorProto

from .names import pb2_module

__all__ = ["MessageEntry", "TypeIndex"]


@dataclass(frozen=True, slots=True)
class MessageEntry:
    """One message type and where Python finds it."""

    full_name: str
    """Without a leading dot: ``chat.v1.JoinRequest``."""
    proto_file: str
    """The file defining it: ``chat/v1/chat.proto``."""
    module: str
    """Its Python module, as protoc's ``--python_out`` names it: ``chat.v1.chat_pb2``."""
    attr_path: str
    """The class inside the module: ``JoinRequest`` or ``Outer.Inner``."""


def _walk(prefix: str, attr_prefix: str, messages: Iterable[DescriptorProto]) -> Iterable[tuple[str, str]]:
    for message in messages:
        full = f"{prefix}.{message.name}" if prefix else message.name
        attr = f"{attr_prefix}.{message.name}" if attr_prefix else message.name
        yield full, attr
        if not message.options.map_entry:
            yield from _walk(full, attr, message.nested_type)


class TypeIndex:
    """Maps message full names to entries, and resolves type references."""

    def __init__(self, files: Sequence[FileDescriptorProto], generated: Iterable[str]) -> None:
        self._files = {f.name: f for f in files}
        self._generated = frozenset(generated)
        self._messages: dict[str, MessageEntry] = {}
        for f in files:
            module = self.module_of(f.name)
            for full, attr in _walk(f.package, "", f.message_type):
                self._messages[full] = MessageEntry(full, f.name, module, attr)

    def module_of(self, proto_file: str) -> str:
        """The Python module of a file's `_pb2`: absolute, like the imports protoc's ``--python_out`` writes.

        Only that keeps every module of one output consistent, whichever
        files a run generates (buf runs the plugin once per directory);
        ``goomerang generate`` and ``goomerang package`` then move the whole
        output under a package.
        """
        return pb2_module(proto_file)

    def get(self, full_name: str) -> MessageEntry | None:
        """The entry of a fully qualified name (leading dot optional)."""
        return self._messages.get(full_name.lstrip("."))

    def visible_files(self, proto_file: str) -> set[str]:
        """The file and what it imports (public imports followed transitively)."""
        seen = {proto_file}
        f = self._files[proto_file]
        pending = list(f.dependency)
        while pending:
            name = pending.pop()
            if name in seen or name not in self._files:
                continue
            seen.add(name)
            dep = self._files[name]
            pending.extend(dep.dependency[i] for i in dep.public_dependency)
        return seen

    def resolve(self, name: str, scope: str) -> MessageEntry | None:
        """Resolve a type reference written in package `scope`, like protoc does.

        ``.a.B`` is absolute; ``B`` is looked up in ``scope``, then in each
        enclosing package, then at the root.
        """
        if name.startswith("."):
            return self.get(name)
        parts = scope.split(".") if scope else []
        for depth in range(len(parts), -1, -1):
            candidate = ".".join([*parts[:depth], name])
            entry = self._messages.get(candidate)
            if entry is not None:
                return entry
        return None
