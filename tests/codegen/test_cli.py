"""`goomerang generate` lays out an importable, type-checked package; `include-path` helps plain protoc."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from goomerang_codegen.cli import include_path, main

COMMON = """syntax = "proto3";
package shop.v1;
message Money { int64 cents = 1; }
"""

ORDERS = """syntax = "proto3";
package shop.v1.orders;
import "goomerang/options.proto";
import "shop/v1/common.proto";
message Order { string id = 1; shop.v1.Money total = 2; }
message Refused { string why = 1; }
service Orders {
  rpc Place(Order) returns (shop.v1.Money) { option (goomerang.also_replies) = "Refused"; }
}
option (goomerang.topic) = {name: "orders.>" type: "Order"};
"""


def _protos(root: Path) -> list[str]:
    files = {"shop/v1/common.proto": COMMON, "shop/v1/orders/orders.proto": ORDERS}
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return [str(root / name) for name in files]


def _python(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-c", code]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=60, check=False)


def test_include_path_holds_the_options(capsys: object) -> None:
    assert (include_path() / "goomerang" / "options.proto").is_file()
    assert main(["include-path"]) == 0


def test_generate_nested_packages_importing_each_other(tmp_path: Path) -> None:
    files = _protos(tmp_path / "protos")
    app = tmp_path / "app"
    assert main(["generate", "-I", str(tmp_path / "protos"), "-o", str(app / "shopgen"), *files]) == 0
    orders = app / "shopgen" / "shop" / "v1" / "orders" / "orders_pb2.py"
    assert "from shopgen.shop.v1 import common_pb2" in orders.read_text()
    # mypy-protobuf 5 writes `from ... import common_pb2`, 3.6 (the protobuf 5.26 cell's) `import ....common_pb2`.
    stub = orders.with_suffix(".pyi").read_text()
    assert "from shopgen.shop.v1 import common_pb2" in stub or "import shopgen.shop.v1.common_pb2\n" in stub
    assert (app / "shopgen" / "__init__.py").is_file()
    assert (app / "shopgen" / "shop" / "v1" / "orders" / "__init__.py").is_file()
    done = _python(
        "from shopgen.shop.v1.orders import orders_goomerang as o\n"
        "from shopgen.shop.v1.common_pb2 import Money\n"
        "print(o.OrdersPlaceReply, o.OrdersTopic.PATTERN)",
        app,
    )
    assert done.returncode == 0, done.stderr
    assert "orders.>" in done.stdout
    typed = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(tmp_path / "cache"), "shopgen"],
        cwd=app,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert typed.returncode == 0, typed.stdout


def test_generate_without_package_is_importable_from_the_output_dir(tmp_path: Path) -> None:
    files = _protos(tmp_path / "protos")
    out = tmp_path / "flat"
    assert main(["generate", "-I", str(tmp_path / "protos"), "-o", str(out), "--package", "", *files]) == 0
    assert not (out / "__init__.py").exists()
    done = _python("from shop.v1.orders import orders_goomerang as o; print(o.OrdersStub.__name__)", out)
    assert done.returncode == 0, done.stderr


def test_generate_reports_protoc_errors(tmp_path: Path, capsys: object) -> None:
    (tmp_path / "bad.proto").write_text('syntax = "proto3";\nmessage {')
    assert main(["generate", "-I", str(tmp_path), "-o", str(tmp_path / "out"), str(tmp_path / "bad.proto")]) != 0
