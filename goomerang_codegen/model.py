"""The plain model the templates render: every name, type and import resolved.

`build_files` reads the descriptors and annotations of a CodeGeneratorRequest
and either returns one :class:`FileModel` per file to generate or raises
:class:`GenerationError` listing every problem, each naming its file and
element.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from google.protobuf.descriptor_pb2 import FileDescriptorProto, MethodDescriptorProto, ServiceDescriptorProto

from goomerang import options_pb2
from goomerang_runtime.errors import TopicError
from goomerang_runtime.topics import validate_pattern

from .descriptors import MessageEntry, TypeIndex
from .names import (
    add_function,
    class_name,
    context_alias,
    import_aliases,
    method_name,
    output_path,
    reply_alias,
    rpc_var,
    topic_alias_problem,
    topic_class_name,
    with_reply_name,
)
from .settings import Settings

__all__ = ["FileModel", "GenerationError", "ImportModel", "MethodModel", "ServiceModel", "TopicModel", "build_files"]

EMPTY = "google.protobuf.Empty"
RUNTIME_ALIAS = "_rt"
REGISTER_TOPICS = "register_topic_kinds"
"""The function registering a file's topic kinds on a server (files with topics only)."""
FIXED_NAMES = ("_abc", "_typing", "_Mapping", RUNTIME_ALIAS, "Context", "ClientContext")
"""Module-level names every generated module may define or import, whatever the proto says."""
STUB_MEMBERS = ("__init__", "__slots__", "_client")
"""What a stub class holds besides its rpc methods."""
CLIENT_STUB_MEMBERS = ("__init__", "__slots__", "_server", "_peer_id", "peer_id")
"""What a server-side stub of a client-handled service holds besides its rpc methods (``_rt.ClientStub``)."""

# Field numbers in descriptor.proto, for the paths of SourceCodeInfo locations.
_FILE_SERVICE = 6
_SERVICE_METHOD = 2


class GenerationError(Exception):
    """Invalid annotations; each problem names its file and element."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


@dataclass(frozen=True, slots=True)
class ImportModel:
    """``from {package} import {name} as {alias}``."""

    package: str
    name: str
    alias: str


@dataclass(frozen=True, slots=True)
class MethodModel:
    """One rpc: one message kind handled by one side."""

    name: str
    """The rpc name in the proto: ``Join``."""
    py_name: str
    """The Python method name: ``join``."""
    full_name: str
    """``chat.v1.Chat.Join``."""
    doc: str
    request: str
    """Expression naming the request class."""
    request_type: str
    """Full protobuf name of the request type (its message kind): ``chat.v1.JoinRequest``."""
    is_sync: bool
    """A reply comes back (the reply type is not google.protobuf.Empty)."""
    replies: tuple[str, ...]
    """Expressions naming the accepted reply classes (empty if not sync)."""
    reply_alias: str
    """Public name of the reply type alias (sync only): ``ChatJoinReply``."""
    reply_message_type: str
    """The whole reply's type (sync only): ``_rt.Message[ChatJoinReply]``."""
    with_reply_name: str
    """The stub method returning the whole reply (sync only): ``join_with_reply``."""
    context_alias: str
    """Public name of the alias of the method's context: ``ChatJoinContext``."""
    context_type: str
    """What that alias stands for: ``_rt.SyncContext[_chat_pb2.JoinRequest]``."""
    rpc_var: str
    """Module-private name of the runtime rpc object: ``_CHAT_JOIN``."""
    reply_kinds: str
    """Human-readable list of reply kinds for docstrings."""


@dataclass(frozen=True, slots=True)
class ServiceModel:
    """One service: the rpcs one side handles."""

    name: str
    full_name: str
    doc: str
    handled_by_server: bool
    stub_class: str
    base_class: str
    add_function: str
    sender_class: str
    methods: tuple[MethodModel, ...]
    push_types: tuple[str, ...]
    """The request types of a client-handled service's fire-and-forget rpcs: what the server may push."""
    push_alias: str
    """Public name of their union: ``ChatPushMessage`` ('' without pushes)."""
    has_pushes: bool
    """A client-handled service with fire-and-forget rpcs: it gets a sender class and a push alias."""
    calls: tuple[MethodModel, ...]
    """The sync rpcs of a client-handled service: the server asks, the client replies (its stub's methods)."""
    has_calls: bool
    """A client-handled service with sync rpcs: it gets a server-side stub class."""
    registers_topics: bool
    """Its add function registers the file's topic kinds (a server-handled service of a file with topics)."""


@dataclass(frozen=True, slots=True)
class TopicModel:
    """A typed topic family."""

    pattern: str
    type_name: str
    """Full protobuf name of the message flowing on it."""
    type_expr: str
    class_name: str


@dataclass(frozen=True, slots=True)
class FileModel:
    """Everything generated for one `.proto` file."""

    source: str
    output: str
    imports: tuple[ImportModel, ...]
    runtime_alias: str
    services: tuple[ServiceModel, ...]
    topics: tuple[TopicModel, ...]
    topic_types: tuple[str, ...]
    """Expressions of the topic message classes, registered on servers for pass-through."""
    exports: tuple[str, ...]
    register_topics: str
    """Name of the function registering the topic kinds on a server ('' without topics)."""
    has_server_services: bool
    has_client_services: bool
    has_stubs: bool
    """Some class takes headers (a stub of either side): ``Mapping`` is imported."""
    has_sync_methods: bool
    has_topics: bool


def _comments(f: FileDescriptorProto) -> dict[tuple[int, ...], str]:
    found: dict[tuple[int, ...], str] = {}
    for location in f.source_code_info.location:
        text = location.leading_comments.strip()
        if text:
            found[tuple(location.path)] = text
    return found


def _docstring(comment: str, fallback: str) -> str:
    text = comment or fallback
    lines = [line.strip() for line in text.splitlines()]
    return "\n".join(lines).replace("\\", "\\\\").replace('"""', '\\"\\"\\"')


class _FileBuilder:
    def __init__(self, f: FileDescriptorProto, index: TypeIndex) -> None:
        self.f = f
        self.index = index
        self.problems: list[str] = []
        self.used: dict[str, MessageEntry] = {}
        self.visible = index.visible_files(f.name)
        self.aliases = import_aliases(index.module_of(name) for name in self.visible)
        self.comments = _comments(f)

    def problem(self, element: str, what: str) -> None:
        self.problems.append(f"{self.f.name}: {element}: {what}")

    def use(self, entry: MessageEntry) -> str:
        """The expression naming `entry`'s class here; its module gets imported."""
        self.used[entry.full_name] = entry
        return f"{self.aliases[entry.module]}.{entry.attr_path}"

    def lookup(self, element: str, name: str, what: str) -> MessageEntry | None:
        """Resolve a type name from an annotation; reports unknown or invisible types."""
        if not name:
            self.problem(element, f"{what} is empty")
            return None
        entry = self.index.resolve(name, self.f.package)
        if entry is None:
            self.problem(element, f"{what} {name!r} is not a known message type")
            return None
        if entry.proto_file not in self.visible:
            self.problem(element, f"{what} {name!r} is defined in {entry.proto_file}, which this file does not import")
            return None
        return entry

    def method(
        self, service: ServiceDescriptorProto, m: MethodDescriptorProto, path: tuple[int, ...], by_server: bool
    ) -> MethodModel:
        element = f"service {service.name}, rpc {m.name}"
        if m.client_streaming or m.server_streaming:
            self.problem(element, "streaming rpcs are not supported: one request, at most one reply")
        request = self.index.get(m.input_type)
        output = self.index.get(m.output_type)
        assert request is not None, "protoc resolves rpc types"
        assert output is not None, "protoc resolves rpc types"
        also = list(m.options.Extensions[options_pb2.also_replies])
        is_sync = output.full_name != EMPTY
        replies: list[MessageEntry] = []
        if is_sync:
            replies.append(output)
            for name in also:
                entry = self.lookup(element, name, "also_replies type")
                if entry is None:
                    continue
                if entry.full_name == EMPTY:
                    self.problem(element, "also_replies cannot be google.protobuf.Empty")
                elif any(r.full_name == entry.full_name for r in replies):
                    self.problem(element, f"reply type {entry.full_name!r} is listed twice")
                else:
                    replies.append(entry)
        elif also:
            self.problem(element, "also_replies needs a sync rpc: it returns google.protobuf.Empty (fire and forget)")
        py_name = method_name(m.name)
        if py_name.startswith("_"):
            self.problem(
                element, f"its method {py_name!r} would be private in Python: start the rpc name with a letter"
            )
        request_expr = self.use(request)
        reply = reply_alias(service.name, m.name) if is_sync else ""
        if not by_server:
            context = f"{RUNTIME_ALIAS}.{'ClientSyncContext' if is_sync else 'ClientContext'}[{request_expr}]"
        elif is_sync:
            context = f"{RUNTIME_ALIAS}.SyncContext[{request_expr}]"
        else:
            context = f"{RUNTIME_ALIAS}.ServerContext[{request_expr}]"
        return MethodModel(
            name=m.name,
            py_name=py_name,
            full_name=f"{self._prefix()}{service.name}.{m.name}",
            doc=_docstring(self.comments.get(path, ""), f"The {m.name} rpc."),
            request=request_expr,
            request_type=request.full_name,
            is_sync=is_sync,
            replies=tuple(self.use(r) for r in replies),
            reply_alias=reply,
            reply_message_type=f"{RUNTIME_ALIAS}.Message[{reply}]" if is_sync else "",
            with_reply_name=with_reply_name(m.name) if is_sync else "",
            context_alias=context_alias(service.name, m.name),
            context_type=context,
            rpc_var=rpc_var(service.name, m.name),
            reply_kinds=" or ".join(r.full_name for r in replies),
        )

    def _prefix(self) -> str:
        return f"{self.f.package}." if self.f.package else ""

    def service(self, index: int, service: ServiceDescriptorProto, has_topics: bool) -> ServiceModel:
        element = f"service {service.name}"
        side = service.options.Extensions[options_pb2.handled_by]
        if side not in (options_pb2.SERVER, options_pb2.CLIENT):
            self.problem(element, f"handled_by has an unknown value {side}: use SERVER or CLIENT")
        by_server = side != options_pb2.CLIENT
        if not service.method:
            self.problem(element, "has no rpcs")
        methods = tuple(
            self.method(service, m, (_FILE_SERVICE, index, _SERVICE_METHOD, i), by_server)
            for i, m in enumerate(service.method)
        )
        name = class_name(service.name)
        push_types: dict[str, str] = {}
        for m in methods:
            if not m.is_sync:
                push_types.setdefault(m.request_type, m.request)
        pushes = not by_server and bool(push_types)
        return ServiceModel(
            name=service.name,
            full_name=f"{self._prefix()}{service.name}",
            doc=_docstring(self.comments.get((_FILE_SERVICE, index), ""), f"The {service.name} service."),
            handled_by_server=by_server,
            stub_class=f"{name}Stub",
            base_class=f"{name}Base",
            add_function=add_function(service.name),
            sender_class=f"{name}Sender",
            methods=methods,
            push_types=tuple(push_types.values()) if pushes else (),
            push_alias=f"{name}Message" if pushes else "",
            has_pushes=pushes,
            calls=tuple(m for m in methods if m.is_sync) if not by_server else (),
            has_calls=not by_server and any(m.is_sync for m in methods),
            registers_topics=by_server and has_topics,
        )

    def topics(self) -> list[TopicModel]:
        found: list[TopicModel] = []
        names: dict[str, str] = {}
        for option in self.f.options.Extensions[options_pb2.topic]:
            element = f"topic {option.name!r}"
            try:
                validate_pattern(option.name)
            except TopicError as exc:
                self.problem(element, exc.reason)
                continue
            if not option.type:
                self.problem(element, 'has no type: say which message flows on it (type: "MyMessage")')
                continue
            entry = self.lookup(element, option.type, "type")
            if entry is None:
                continue
            if option.alias and (wrong := topic_alias_problem(option.alias)):
                self.problem(element, wrong)
                continue
            cls = topic_class_name(option.name, option.alias)
            if not cls or not cls.isidentifier():
                self.problem(element, 'cannot derive a class name from it: set alias (e.g. alias: "Updates")')
                continue
            if any(t.pattern == option.name for t in found):
                self.problem(element, "is declared twice")
                continue
            if cls in names:
                self.problem(element, f"its class {cls} clashes with topic {names[cls]!r}: set alias")
                continue
            names[cls] = option.name
            found.append(TopicModel(option.name, entry.full_name, self.use(entry), cls))
        return found


def _check_kinds(services: list[tuple[FileDescriptorProto, ServiceModel]]) -> list[str]:
    """One handler per kind on each side, across all files generated together (by full proto name)."""
    problems: list[str] = []
    for by_server, side in ((True, "server"), (False, "client")):
        owners: dict[str, str] = {}
        for f, service in services:
            if service.handled_by_server is not by_server:
                continue
            for m in service.methods:
                where = f"{f.name}: service {service.name}, rpc {m.name}"
                owner = owners.get(m.request_type)
                if owner is not None:
                    problems.append(
                        f"{where}: its request type {m.request_type} is already handled on the {side} side by {owner}"
                        " (one handler per message kind)"
                    )
                else:
                    owners[m.request_type] = f"{f.name}: {service.name}.{m.name}"
    return problems


class _Namespace:
    """The names defined in one Python scope; a second claim on a name is a problem naming both owners."""

    def __init__(self, builder: _FileBuilder, scope: str) -> None:
        self._builder = builder
        self._scope = scope
        self._owners: dict[str, tuple[str, str]] = {}

    def claim(self, name: str, element: str, what: str) -> None:
        other = self._owners.get(name)
        if other is None:
            self._owners[name] = (element, what)
            return
        other_element, other_what = other
        owner = f"the {other_what} of {other_element}" if other_element else f"the generated {other_what}"
        self._builder.problem(element, f"its {what} {name!r} clashes with {owner} in {self._scope}: rename one of them")

    def private(self, wanted: str) -> str:
        """`wanted`, or `wanted_2`, `wanted_3`... whichever is free: private names never clash."""
        name, n = wanted, 1
        while name in self._owners:
            n += 1
            name = f"{wanted}_{n}"
        self._owners[name] = ("", "private name")
        return name


def _claim_names(
    builder: _FileBuilder, services: list[ServiceModel], topics: list[TopicModel], register_topics: str
) -> list[ServiceModel]:
    """Check every name of the module and of its classes; give the rpc objects private names that cannot clash."""
    module = _Namespace(builder, "the module")
    for fixed in FIXED_NAMES:
        module.claim(fixed, "", "name " + fixed)
    for alias in sorted(set(builder.aliases.values())):
        module.claim(alias, "", "import alias")
    if register_topics:
        module.claim(register_topics, "", "function " + register_topics)
    for s in services:
        element = f"service {s.name}"
        names = [(s.base_class, "base class"), (s.add_function, "add function")]
        if s.handled_by_server or s.calls:
            names.append((s.stub_class, "stub class"))
        if s.has_pushes:
            names += [(s.sender_class, "sender class"), (s.push_alias, "push type alias")]
        for name, what in names:
            module.claim(name, element, what)
        # The stub calls the sync rpcs: a client's (server-handled service) or a server's (client-handled).
        # A server-handled service's base has the stub's method names; a client-handled one's has every rpc.
        stub = _Namespace(builder, f"class {s.stub_class}")
        for member in STUB_MEMBERS if s.handled_by_server else CLIENT_STUB_MEMBERS:
            stub.claim(member, "", "member " + member)
        base = None if s.handled_by_server else _Namespace(builder, f"class {s.base_class}")
        for m in s.methods:
            method = f"{element}, rpc {m.name}"
            if base is not None:
                base.claim(m.py_name, method, "method")
            if base is None or m.is_sync:
                stub.claim(m.py_name, method, "method")
            if m.is_sync:
                stub.claim(m.with_reply_name, method, "method")
                module.claim(m.reply_alias, method, "reply type alias")
            module.claim(m.context_alias, method, "context type alias")
    for t in topics:
        module.claim(t.class_name, f"topic {t.pattern!r}", "topic class")
    return [
        replace(s, methods=tuple(replace(m, rpc_var=module.private(m.rpc_var)) for m in s.methods)) for s in services
    ]


def build_files(
    files: Sequence[FileDescriptorProto], to_generate: Sequence[str], settings: Settings
) -> list[FileModel]:
    """Build the models of the files to generate, or raise GenerationError."""
    del settings  # no option changes the model yet
    index = TypeIndex(files, to_generate)
    by_name = {f.name: f for f in files}
    problems: list[str] = []
    models: list[FileModel] = []
    all_services: list[tuple[FileDescriptorProto, ServiceModel]] = []
    for name in to_generate:
        f = by_name[name]
        builder = _FileBuilder(f, index)
        topics = builder.topics()
        services = [builder.service(i, s, bool(topics)) for i, s in enumerate(f.service)]
        register_topics = REGISTER_TOPICS if topics else ""
        services = _claim_names(builder, services, topics, register_topics)
        problems.extend(builder.problems)
        all_services.extend((f, s) for s in services)
        if not services and not topics:
            continue
        models.append(_file_model(f, builder, services, topics, register_topics))
    problems.extend(_check_kinds(all_services))
    if problems:
        raise GenerationError(problems)
    return models


def _file_model(
    f: FileDescriptorProto,
    builder: _FileBuilder,
    services: list[ServiceModel],
    topics: list[TopicModel],
    register_topics: str,
) -> FileModel:
    modules = sorted({entry.module for entry in builder.used.values()})
    imports = tuple(
        ImportModel(module.rpartition(".")[0], module.rpartition(".")[2], builder.aliases[module]) for module in modules
    )
    exports: list[str] = []
    for s in services:
        if s.handled_by_server:
            exports += [s.stub_class, s.base_class, s.add_function]
            exports += [m.reply_alias for m in s.methods if m.is_sync]
        else:
            exports += [s.base_class, s.add_function]
            if s.has_pushes:
                exports += [s.sender_class, s.push_alias]
            if s.calls:
                exports.append(s.stub_class)
                exports += [m.reply_alias for m in s.calls]
        exports += [m.context_alias for m in s.methods]
    exports += [t.class_name for t in topics]
    if register_topics:
        exports.append(register_topics)
    has_server = any(s.handled_by_server for s in services)
    has_client = any(not s.handled_by_server for s in services)
    if has_server:
        exports.append("Context")
    if has_client:
        exports.append("ClientContext")
    topic_types: dict[str, str] = {}
    for t in topics:
        topic_types.setdefault(t.type_name, t.type_expr)
    return FileModel(
        source=f.name,
        output=output_path(f.name),
        imports=imports,
        runtime_alias=RUNTIME_ALIAS,
        services=tuple(services),
        topics=tuple(topics),
        topic_types=tuple(topic_types.values()),
        exports=tuple(sorted(exports)),
        register_topics=register_topics,
        has_server_services=has_server,
        has_client_services=has_client,
        has_stubs=any(s.handled_by_server or s.calls for s in services),
        has_sync_methods=any(m.is_sync for s in services for m in s.methods),
        has_topics=bool(topics),
    )
