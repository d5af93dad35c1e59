"""Invalid annotations stop generation: a message naming file, element and problem; non-zero exit."""

from __future__ import annotations

from pathlib import Path

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
        "demo.proto: service T, rpc Two: its request type demo.A is already handled on the server side"
        " by demo.proto: S.One",
    ),
    "duplicate kinds on the client side": (
        "service P { option (goomerang.handled_by) = CLIENT; rpc One(A) returns (google.protobuf.Empty);"
        " rpc Two(A) returns (google.protobuf.Empty); }",
        "demo.proto: service P, rpc Two: its request type demo.A is already handled on the client side"
        " by demo.proto: P.One",
    ),
    "a client-handled rpc named like a member of the server's stub": (
        "service P { option (goomerang.handled_by) = CLIENT; rpc PeerId(A) returns (B); }",
        "demo.proto: service P, rpc PeerId: its method 'peer_id' clashes with the generated member peer_id"
        " in class PStub: rename one of them",
    ),
    "client-handled rpc names that collide in Python": (
        "service P { option (goomerang.handled_by) = CLIENT; rpc GetX(A) returns (google.protobuf.Empty);"
        " rpc Get_x(B) returns (google.protobuf.Empty); }",
        "demo.proto: service P, rpc Get_x: its method 'get_x' clashes with the method of service P, rpc GetX"
        " in class PBase: rename one of them",
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
        "demo.proto: service S, rpc Get_x: its method 'get_x' clashes with the method of service S, rpc GetX"
        " in class SStub: rename one of them",
    ),
    "an rpc and the whole-reply method of another": (
        "service S { rpc Join(A) returns (B); rpc JoinWithReply(B) returns (A); }",
        "demo.proto: service S, rpc JoinWithReply: its method 'join_with_reply' clashes with the method of"
        " service S, rpc Join in class SStub",
    ),
    "a private rpc name": (
        "service S { rpc _Hidden(A) returns (B); }",
        "demo.proto: service S, rpc _Hidden: its method '_hidden' would be private in Python",
    ),
    "reply aliases that collide across services": (
        "service Order { rpc BookSnapshot(A) returns (B); }\nservice OrderBook { rpc Snapshot(B) returns (A); }",
        "demo.proto: service OrderBook, rpc Snapshot: its reply type alias 'OrderBookSnapshotReply' clashes with"
        " the reply type alias of service Order, rpc BookSnapshot in the module: rename one of them",
    ),
    "context aliases that collide across fire-and-forget services": (
        "service Order { rpc BookSnapshot(A) returns (google.protobuf.Empty); }\n"
        "service OrderBook { rpc Snapshot(B) returns (google.protobuf.Empty); }",
        "demo.proto: service OrderBook, rpc Snapshot: its context type alias 'OrderBookSnapshotContext' clashes"
        " with the context type alias of service Order, rpc BookSnapshot in the module",
    ),
    "add functions that collide": (
        "service OrderBook { rpc Get(A) returns (B); }\nservice Order_Book { rpc Put(B) returns (A); }",
        "demo.proto: service Order_Book: its add function 'add_order_book' clashes with the add function of"
        " service OrderBook in the module",
    ),
    "a topic alias that is not an identifier": (
        'option (goomerang.topic) = {name: "venue.halts" type: "A" alias: "venue-halts"};',
        "demo.proto: topic 'venue.halts': alias 'venue-halts' is not a Python identifier:"
        " use letters, digits and '_', e.g. 'VenueHalts'",
    ),
    "a topic alias starting with a digit": (
        'option (goomerang.topic) = {name: "t" type: "A" alias: "1st"};',
        "demo.proto: topic 't': alias '1st' is not a Python identifier",
    ),
    "a topic alias starting with an underscore": (
        'option (goomerang.topic) = {name: "t" type: "A" alias: "_Hidden"};',
        "demo.proto: topic 't': alias '_Hidden' must start with a letter",
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


def test_package_option_is_refused_with_what_to_do(protoc: ProtocRun) -> None:
    """protoc's own _pb2 modules would keep absolute imports: the prefixed package could not import."""
    done = protoc({"demo.proto": HEADER}, "demo.proto", option="package=myapp.gen")
    assert done.returncode != 0
    assert "plugin option package=myapp.gen is not supported" in done.stderr
    assert "goomerang package --package myapp.gen OUT" in done.stderr


OTHER = """syntax = "proto3";
package a.v1;
message Req { string x = 1; }
"""


def test_duplicate_kinds_across_files_reached_through_different_aliases(protoc: ProtocRun) -> None:
    """One file sees a.v1's module as _x_pb2, the other (beside its own x.proto) as _v1_x_pb2: one kind still."""
    first = (
        'syntax = "proto3";\npackage b;\nimport "a/v1/x.proto";\nimport "google/protobuf/empty.proto";\n'
        "service One { rpc Do(a.v1.Req) returns (google.protobuf.Empty); }\n"
    )
    second = (
        'syntax = "proto3";\npackage c.v2;\nimport "a/v1/x.proto";\nimport "google/protobuf/empty.proto";\n'
        "service Two { rpc Also(a.v1.Req) returns (google.protobuf.Empty); }\n"
    )
    files = {"a/v1/x.proto": OTHER, "b.proto": first, "c/v2/x.proto": second}
    done = protoc(files, "a/v1/x.proto", "b.proto", "c/v2/x.proto")
    assert done.returncode != 0
    assert (
        "c/v2/x.proto: service Two, rpc Also: its request type a.v1.Req is already handled on the server side"
        " by b.proto: One.Do (one handler per message kind)"
    ) in done.stderr, done.stderr


def test_private_names_never_clash(protoc: ProtocRun, tmp_path: Path) -> None:
    """Q.B_c and Q_b.C both spell _Q_B_C: each stub keeps its own rpc object."""
    body = (
        "service Q { rpc B_c(A) returns (google.protobuf.Empty); }\n"
        "service Q_b { rpc C(B) returns (google.protobuf.Empty); }"
    )
    done = protoc({"demo.proto": HEADER + body}, "demo.proto")
    assert done.returncode == 0, done.stderr
    text = (tmp_path / "out" / "demo_goomerang.py").read_text()
    assert "_Q_B_C: _rt.SendRpc[_demo_pb2.A] = _rt.SendRpc(" in text
    assert "_Q_B_C_2: _rt.SendRpc[_demo_pb2.B] = _rt.SendRpc(" in text
    first, second = text.split("class Q_bStub")
    assert "return await _Q_B_C.send(" in first
    assert "return await _Q_B_C_2.send(" in second


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
