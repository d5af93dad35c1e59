"""protoc-gen-goomerang: read a CodeGeneratorRequest on stdin, write the response.

protoc finds this plugin as ``protoc-gen-goomerang`` on PATH (installed as a
console script) and runs it for ``--goomerang_out=DIR``; ``python -m
goomerang_codegen`` runs it too.
"""

from __future__ import annotations

import sys
from typing import BinaryIO

from google.protobuf.compiler import plugin_pb2

from .model import GenerationError, build_files
from .render import render
from .settings import Settings, SettingsError

__all__ = ["generate", "main"]


def generate(request: plugin_pb2.CodeGeneratorRequest) -> plugin_pb2.CodeGeneratorResponse:
    """Build the response for a request: files, or an error naming what is wrong."""
    response = plugin_pb2.CodeGeneratorResponse()
    response.supported_features = plugin_pb2.CodeGeneratorResponse.FEATURE_PROTO3_OPTIONAL
    try:
        settings = Settings.parse(request.parameter)
        models = build_files(request.proto_file, request.file_to_generate, settings)
    except (SettingsError, GenerationError) as exc:
        response.error = str(exc)
        return response
    for model in models:
        response.file.add(name=model.output, content=render(model))
    return response


def run(stdin: BinaryIO, stdout: BinaryIO) -> None:
    """One plugin invocation over the given streams."""
    request = plugin_pb2.CodeGeneratorRequest.FromString(stdin.read())
    stdout.write(generate(request).SerializeToString())


def main() -> None:
    """Console entry point ``protoc-gen-goomerang``."""
    run(sys.stdin.buffer, sys.stdout.buffer)
