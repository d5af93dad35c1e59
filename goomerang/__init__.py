"""Compiled goomerang annotation protos (`goomerang/options.proto`).

Modules that protoc generates from a `.proto` importing "goomerang/options.proto"
import `goomerang.options_pb2`; it lives here. The annotation source itself
ships with the code generator: `goomerang include-path` prints where.
"""
