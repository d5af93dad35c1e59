"""The compiled wire protos shipped in the runtime match protos/ and PROTOCOL.md."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from google.protobuf.descriptor import FieldDescriptor

from goomerang_runtime import protocol_pb2

ROOT = Path(__file__).resolve().parent.parent


def _regen_module():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("regen", ROOT / "scripts" / "regen.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_compiled_runtime_protos_are_fresh(tmp_path: Path) -> None:
    _regen_module().regen_runtime_protos(tmp_path)
    for name in (f"{stem}_pb2{suffix}" for stem in ("protocol", "reply", "broker") for suffix in (".py", ".pyi")):
        fresh = (tmp_path / name).read_text()
        committed = (ROOT / "goomerang_runtime" / name).read_text()
        assert fresh == committed, f"goomerang_runtime/{name} is stale: run scripts/regen.py"


def test_frame_field_numbers_match_the_go_library() -> None:
    fields = {f.name: (f.number, f.type) for f in protocol_pb2.Frame.DESCRIPTOR.fields}
    assert fields == {
        "uuid": (1, FieldDescriptor.TYPE_STRING),
        "kind": (2, FieldDescriptor.TYPE_STRING),
        "payloadSize": (3, FieldDescriptor.TYPE_INT64),
        "is_sync": (4, FieldDescriptor.TYPE_BOOL),
        "creation": (5, FieldDescriptor.TYPE_MESSAGE),
        "headers": (6, FieldDescriptor.TYPE_MESSAGE),
        "payload": (7, FieldDescriptor.TYPE_BYTES),
    }
    assert protocol_pb2.Frame.DESCRIPTOR.full_name == "goomerang.protocol.Frame"
    commands = {
        "BroadcastCmd": {"kind": 2, "message": 3},
        "SubscribeCmd": {"topic": 1},
        "PublishCmd": {"topic": 1, "kind": 2, "message": 3},
        "UnsubscribeCmd": {"topic": 1},
    }
    for name, numbers in commands.items():
        descriptor = protocol_pb2.DESCRIPTOR.message_types_by_name[name]
        assert {f.name: f.number for f in descriptor.fields} == numbers
