"""protoc-gen-goomerang: read a CodeGeneratorRequest on stdin, write the response.

protoc finds this plugin as ``protoc-gen-goomerang`` on PATH (installed as a
console script) and runs it for ``--goomerang_out=DIR``; ``python -m
goomerang_codegen`` runs it too. It is protoc's program, not a command to run
by hand: ``--help`` and ``--version`` answer, anything else on the command
line, a terminal or nothing on stdin is a usage error.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TextIO

from google.protobuf.compiler import plugin_pb2
from google.protobuf.message import DecodeError

from goomerang_runtime._version import __version__

from .model import GenerationError, build_files
from .settings import Settings, SettingsError

__all__ = ["CODEGEN_EXTRA", "USAGE", "generate", "main"]

CODEGEN_EXTRA = "pip install 'goomerang[codegen]'"
"""What installs everything the code generator needs (jinja2, grpcio-tools, mypy-protobuf)."""

USAGE = f"""\
usage: protoc-gen-goomerang [--help | --version]

The goomerang protoc plugin: typed stubs, handler bases and topics from
annotated .proto files. protoc runs it, with a CodeGeneratorRequest on stdin:

  python -m grpc_tools.protoc -I protos -I "$(goomerang include-path)" \\
      --python_out=out --mypy_out=out --goomerang_out=out protos/chat/v1/chat.proto

(protoc finds protoc-gen-goomerang on PATH; else pass
--plugin=protoc-gen-goomerang=PATH). The goomerang command does all of it in
one step: goomerang generate -I protos -o out protos/chat/v1/chat.proto

Needs the codegen extra: {CODEGEN_EXTRA}
"""


def generate(request: plugin_pb2.CodeGeneratorRequest) -> plugin_pb2.CodeGeneratorResponse:
    """Build the response for a request: files, or an error naming what is wrong."""
    response = plugin_pb2.CodeGeneratorResponse()
    response.supported_features = plugin_pb2.CodeGeneratorResponse.FEATURE_PROTO3_OPTIONAL
    try:
        from .render import render  # jinja2: the codegen extra
    except ImportError as exc:
        response.error = f"protoc-gen-goomerang needs {exc.name or 'jinja2'}, from the codegen extra: {CODEGEN_EXTRA}"
        return response
    try:
        settings = Settings.parse(request.parameter)
        models = build_files(request.proto_file, request.file_to_generate, settings)
    except (SettingsError, GenerationError) as exc:
        response.error = str(exc)
        return response
    for model in models:
        response.file.add(name=model.output, content=render(model))
    return response


def _usage_error(message: str, stderr: TextIO) -> int:
    stderr.write(f"protoc-gen-goomerang: {message}\n\n{USAGE}")
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point ``protoc-gen-goomerang``; returns the exit status."""
    args = sys.argv[1:] if argv is None else list(argv)
    if args:
        if args[0] in ("-h", "--help") and len(args) == 1:
            sys.stdout.write(USAGE)
            return 0
        if args[0] == "--version" and len(args) == 1:
            print(f"protoc-gen-goomerang {__version__}")
            return 0
        return _usage_error(f"unexpected arguments {' '.join(args)!r}: protoc passes none", sys.stderr)
    stdin = sys.stdin
    if stdin is None or stdin.isatty():
        return _usage_error("reads a CodeGeneratorRequest from protoc on stdin, not from a terminal", sys.stderr)
    data = stdin.buffer.read()
    if not data:
        return _usage_error("no CodeGeneratorRequest on stdin", sys.stderr)
    try:
        request = plugin_pb2.CodeGeneratorRequest.FromString(data)
    except DecodeError:
        return _usage_error("stdin is not a CodeGeneratorRequest", sys.stderr)
    sys.stdout.buffer.write(generate(request).SerializeToString())  # protoc shows an error it holds
    sys.stdout.buffer.flush()
    return 0
