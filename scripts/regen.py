"""Rewrite every committed file that protoc or our plugin produces.

Run after editing a `.proto` under `protos/` or the plugin, then review the
diff: `python scripts/regen.py`. The tests fail while any of these is stale.

Every `_pb2.py` written here loses protoc's runtime version check
(`neutral_gencode`): protoc 7.x's check refuses any protobuf older than itself,
while the wheel supports protobuf 5.26.1 and later (pyproject.toml), which CI
tests with this very gencode on protobuf 5, 6 and 7.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"
# Wire-level protos compiled into the runtime package so a wheel needs no protoc.
RUNTIME_PROTOS = ("goomerang/protocol.proto", "goomerang/reply.proto", "goomerang/broker.proto")
# The annotations users import: compiled into the `goomerang` package, source shipped with the plugin.
OPTIONS_PROTO = "goomerang/options.proto"


_VERSION_IMPORT = "from google.protobuf import runtime_version as _runtime_version\n"
_VERSION_CHECK = re.compile(r"_runtime_version\.ValidateProtobufRuntimeVersion\(\n(?:    .*\n)+?\)\n")
NEUTRAL_NOTE = (
    "# goomerang: protoc's runtime version check is removed (scripts/regen.py); this module is tested\n"
    "# with every protobuf release line the package supports (pyproject.toml).\n"
)


def neutral_gencode(text: str) -> str:
    """protoc's `_pb2.py` without its runtime version check, so that protobuf 5, 6 and 7 all import it.

    Gencode of protoc 26 and older has no check: it is returned as it is.
    """
    if "_runtime_version" not in text:
        return text
    if _VERSION_IMPORT not in text or len(_VERSION_CHECK.findall(text)) != 1:
        raise SystemExit("protoc's gencode changed shape: update neutral_gencode in scripts/regen.py")
    return _VERSION_CHECK.sub(NEUTRAL_NOTE, text.replace(_VERSION_IMPORT, "", 1))


def _neutralise_tree(root: Path) -> None:
    for path in sorted(root.rglob("*_pb2.py")):
        path.write_text(neutral_gencode(path.read_text()))


def _protoc(args: list[str]) -> None:
    # protoc finds protoc-gen-mypy on PATH: the venv's bin directory.
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    cmd = [sys.executable, "-m", "grpc_tools.protoc", f"-I{PROTOS}", *args]
    subprocess.run(cmd, check=True, env={**os.environ, "PATH": path})


def regen_runtime_protos(out_pkg: Path) -> None:
    """Compile the wire protos into `out_pkg` (the runtime package)."""
    with tempfile.TemporaryDirectory() as tmp:
        _protoc([f"--python_out={tmp}", f"--mypy_out={tmp}", *RUNTIME_PROTOS])
        for proto in RUNTIME_PROTOS:
            stem = Path(proto).stem + "_pb2"
            for suffix in (".py", ".pyi"):
                src = Path(tmp) / "goomerang" / (stem + suffix)
                text = src.read_text()
                # The module lives in goomerang_runtime, not in a `goomerang` package.
                text = re.sub(r"'goomerang\.(\w+_pb2)'", r"'goomerang_runtime.\1'", text)
                if suffix == ".py":
                    text = neutral_gencode(text)
                (out_pkg / (stem + suffix)).write_text(text)


def regen_options(out_pkg: Path, include_dir: Path) -> None:
    """Compile goomerang/options.proto into `out_pkg` (the namespace `goomerang`); copy its source to `include_dir`."""
    with tempfile.TemporaryDirectory() as tmp:
        _protoc([f"--python_out={tmp}", f"--mypy_out={tmp}", OPTIONS_PROTO])
        _neutralise_tree(Path(tmp))
        for suffix in (".py", ".pyi"):
            shutil.copyfile(Path(tmp) / "goomerang" / ("options_pb2" + suffix), out_pkg / ("options_pb2" + suffix))
    (include_dir / "goomerang").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(PROTOS / OPTIONS_PROTO, include_dir / OPTIONS_PROTO)


def example_protos() -> list[str]:
    """Every example proto, sorted."""
    return sorted(str(path) for path in (PROTOS / "examples").rglob("*.proto"))


def regen_examples(out: Path) -> None:
    """Generate the example protos into `out`, laid out as the package `generated`."""
    from goomerang_codegen.cli import generate

    if generate(example_protos(), [str(PROTOS / "examples")], out, "generated") != 0:
        raise SystemExit("generation failed")
    _neutralise_tree(out)


def main() -> None:
    regen_runtime_protos(ROOT / "goomerang_runtime")
    regen_options(ROOT / "goomerang", ROOT / "goomerang_codegen" / "include")
    shutil.rmtree(ROOT / "generated", ignore_errors=True)
    regen_examples(ROOT / "generated")
    for pkg in ("goomerang_runtime", "goomerang"):
        shutil.rmtree(ROOT / pkg / "__pycache__", ignore_errors=True)


if __name__ == "__main__":
    main()
