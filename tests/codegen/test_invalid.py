"""Invalid annotations stop generation: a message naming file, element and problem; non-zero exit."""

from __future__ import annotations

import pytest

from .conftest import ProtocRun

HEADER = """syntax = "proto3";
package demo;
import "goomerang/options.proto";
import "google/protobuf/empty.proto";
message A { string x = 1; }
message B { string x = 1; }
"""

CASES = {
    "unknown reply type": (
        'service S { rpc Do(A) returns (B) { option (goomerang.also_replies) = "Nope"; } }',
        "demo.proto: service S, rpc Do: also_replies type 'Nope' is not a known message type",
    ),
    "empty reply type": (
        'service S { rpc Do(A) returns (B) { option (goomerang.also_replies) = ""; } }',
        "demo.proto: service S, rpc Do: also_replies type is empty",
    ),
    "reply listed twice": (
        'service S { rpc Do(A) returns (B) { option (goomerang.also_replies) = "B"; } }',
        "demo.proto: service S, rpc Do: reply type 'demo.B' is listed twice",
    ),
    "also_replies on fire and forget": (
        'service S { rpc Do(A) returns (google.protobuf.Empty) { option (goomerang.also_replies) = "B"; } }',
        "demo.proto: service S, rpc Do: also_replies needs a sync rpc",
    ),
    "duplicate kinds on one side": (
        "service S { rpc One(A) returns (B); }\nservice T { rpc Two(A) returns (google.protobuf.Empty); }",
        "demo.proto: service T, rpc Two: its request type is already handled on the server side by S.One",
    ),
    "duplicate kinds on the client side": (
        "service P { option (goomerang.handled_by) = CLIENT; rpc One(A) returns (google.protobuf.Empty);"
        " rpc Two(A) returns (google.protobuf.Empty); }",
        "demo.proto: service P, rpc Two: its request type is already handled on the client side by P.One",
    ),
    "client-handled sync rpc": (
        "service P { option (goomerang.handled_by) = CLIENT; rpc Ask(A) returns (B); }",
        "demo.proto: service P, rpc Ask: a client-handled rpc must return google.protobuf.Empty",
    ),
    "bad handled_by value": (  # protoc itself rejects it, naming file and line
        "service P { option (goomerang.handled_by) = BOTH; rpc Ask(A) returns (B); }",
        'demo.proto:7:45: Enum type "goomerang.Side" has no value named "BOTH"',
    ),
    "topic without a type": (
        'option (goomerang.topic) = {name: "rooms.*"};',
        "demo.proto: topic 'rooms.*': has no type",
    ),
    "topic with an unknown type": (
        'option (goomerang.topic) = {name: "rooms.*" type: "Missing"};',
        "demo.proto: topic 'rooms.*': type 'Missing' is not a known message type",
    ),
    "bad topic pattern": (
        'option (goomerang.topic) = {name: "a.>.b" type: "A"};',
        "demo.proto: topic 'a.>.b': '>' may only be the last token",
    ),
    "topic declared twice": (
        'option (goomerang.topic) = {name: "t" type: "A"};\noption (goomerang.topic) = {name: "t" type: "B"};',
        "demo.proto: topic 't': is declared twice",
    ),
    "topic class clash": (
        'option (goomerang.topic) = {name: "t.*" type: "A"};\noption (goomerang.topic) = {name: "t.>" type: "B"};',
        "demo.proto: topic 't.>': its class TTopic clashes with topic 't.*': set alias",
    ),
    "unnameable topic": (
        'option (goomerang.topic) = {name: "*" type: "A"};',
        "demo.proto: topic '*': cannot derive a class name from it: set alias",
    ),
    "streaming rpc": (
        "service S { rpc Do(stream A) returns (B); }",
        "demo.proto: service S, rpc Do: streaming rpcs are not supported",
    ),
    "rpc names that collide in Python": (
        "service S { rpc GetX(A) returns (B); rpc Get_x(B) returns (A); }",
        "demo.proto: service S: rpcs GetX and Get_x both become the method 'get_x'",
    ),
    "service without rpcs": (
        "service S {}",
        "demo.proto: service S: has no rpcs",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_invalid_annotation_fails_with_a_clear_message(protoc: ProtocRun, case: str) -> None:
    body, message = CASES[case]
    done = protoc({"demo.proto": HEADER + body}, "demo.proto")
    assert done.returncode != 0
    assert message in done.stderr, done.stderr


def test_reply_type_from_a_file_not_imported(protoc: ProtocRun) -> None:
    files = {
        "other.proto": 'syntax = "proto3";\npackage demo;\nmessage C { string x = 1; }\n',
        "demo.proto": HEADER + 'service S { rpc Do(A) returns (B) { option (goomerang.also_replies) = "C"; } }',
    }
    done = protoc(files, "other.proto", "demo.proto")
    assert done.returncode != 0
    assert "demo.proto: service S, rpc Do: also_replies type 'C' is defined in other.proto" in done.stderr


def test_every_problem_is_reported_at_once(protoc: ProtocRun) -> None:
    body = (
        'service S { rpc Do(A) returns (B) { option (goomerang.also_replies) = "Nope"; } }\n'
        'option (goomerang.topic) = {name: "rooms.*"};'
    )
    done = protoc({"demo.proto": HEADER + body}, "demo.proto")
    assert done.returncode != 0
    assert "'Nope' is not a known message type" in done.stderr
    assert "topic 'rooms.*': has no type" in done.stderr


def test_unknown_plugin_option(protoc: ProtocRun) -> None:
    done = protoc({"demo.proto": HEADER}, "demo.proto", option="colour=red")
    assert done.returncode != 0
    assert "unknown plugin option(s) ['colour']" in done.stderr


def test_valid_file_generates(protoc: ProtocRun) -> None:
    body = 'service S { rpc Do(A) returns (B) { option (goomerang.also_replies) = ".demo.A"; } }'
    done = protoc({"demo.proto": HEADER + body}, "demo.proto")
    assert done.returncode == 0, done.stderr


def test_unknown_handled_by_number_from_a_descriptor_set() -> None:
    """A descriptor set made by another tool may carry any number; the model rejects it."""
    from google.protobuf import descriptor_pb2
    from google.protobuf.compiler import plugin_pb2

    from goomerang import options_pb2
    from goomerang_codegen.plugin import generate

    demo = descriptor_pb2.FileDescriptorProto(
        name="demo.proto",
        package="demo",
        syntax="proto3",
        message_type=[descriptor_pb2.DescriptorProto(name="A")],
    )
    service = demo.service.add(name="P")
    service.method.add(name="Ask", input_type=".demo.A", output_type=".demo.A")
    service.options.Extensions[options_pb2.handled_by] = 7  # type: ignore[assignment]
    request = plugin_pb2.CodeGeneratorRequest(file_to_generate=["demo.proto"], proto_file=[demo])
    response = generate(request)
    assert "demo.proto: service P: handled_by has an unknown value 7" in response.error
