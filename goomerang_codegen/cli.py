"""The ``goomerang`` command: generate code in one step, make an output a package, or tell protoc where our protos are.

``goomerang generate -I protos -o generated protos/chat/v1/chat.proto``
runs protoc once for ``--python_out``, mypy-protobuf's ``--mypy_out`` and our
``--goomerang_out``, with ``goomerang/options.proto`` and the well-known types
on the include path, and lays the output out as an importable package.
``goomerang package -p NAME OUT`` does that last step alone, on what plain
protoc or ``buf generate`` wrote. ``python -m goomerang`` is the same command.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from goomerang_runtime._version import __version__

from .layout import make_package
from .plugin import CODEGEN_EXTRA

__all__ = ["console", "generate", "include_path", "main"]


def include_path() -> Path:
    """The directory holding ``goomerang/options.proto``, for protoc's ``-I``."""
    return Path(__file__).resolve().parent / "include"


def _well_known_include() -> Path | None:
    spec = importlib.util.find_spec("grpc_tools")
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).resolve().parent / "_proto"


def _launcher(directory: Path) -> Path:
    """An executable running this interpreter's plugin, for protoc's --plugin."""
    if os.name == "nt":
        script = directory / "protoc-gen-goomerang.cmd"
        script.write_text(f'@"{sys.executable}" -m goomerang_codegen %*\r\n')
    else:
        script = directory / "protoc-gen-goomerang"
        script.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m goomerang_codegen "$@"\n')
        script.chmod(0o755)
    return script


_NEEDS = (("grpc_tools", "grpcio-tools"), ("jinja2", "jinja2"))
"""Modules `generate` runs (protoc, the plugin's templates) and the packages that bring them."""


def _mypy_plugin() -> str | None:
    name = "protoc-gen-mypy"
    bin_dir = Path(sys.executable).parent
    return shutil.which(name, path=str(bin_dir)) or shutil.which(name)


def _default_package(out: Path) -> str | None:
    name = out.resolve().name
    return name if name.isidentifier() else None


def generate(
    files: Sequence[str],
    includes: Sequence[str],
    out: Path,
    package: str | None,
    mypy: bool = True,
) -> int:
    """Run protoc and lay out the result in `out`; returns protoc's exit status."""
    if not files:
        print("goomerang generate: no .proto files given", file=sys.stderr)
        return 2
    missing = [name for module, name in _NEEDS if importlib.util.find_spec(module) is None]
    well_known = _well_known_include()
    if well_known is None and "grpcio-tools" not in missing:
        missing.append("grpcio-tools (its well-known protos)")
    mypy_plugin = _mypy_plugin() if mypy else None
    if mypy and mypy_plugin is None:
        missing.append("mypy-protobuf (protoc-gen-mypy; or pass --no-mypy)")
    if missing or well_known is None:
        print(
            f"goomerang generate: needs {', '.join(missing)}, from the codegen extra: {CODEGEN_EXTRA}", file=sys.stderr
        )
        return 2
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        staging = tmp / "out"
        staging.mkdir()
        cmd = [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            *(f"-I{path}" for path in includes),
            f"-I{include_path()}",
            f"-I{well_known}",
            f"--plugin=protoc-gen-goomerang={_launcher(tmp)}",
            f"--python_out={staging}",
            f"--goomerang_out={staging}",
        ]
        if mypy_plugin is not None:
            cmd += [f"--plugin=protoc-gen-mypy={mypy_plugin}", f"--mypy_out={staging}"]
        done = subprocess.run([*cmd, *files], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            sys.stderr.write(done.stderr)
            return done.returncode
        if package:
            make_package(staging, package)
        out.mkdir(parents=True, exist_ok=True)
        written = 0
        for path in sorted(staging.rglob("*")):
            if path.is_file():
                target = out / path.relative_to(staging)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, target)
                written += 1
        protos = "proto" if len(files) == 1 else "protos"
        print(f"goomerang: wrote {written} files for {len(files)} {protos} into {out}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``goomerang`` console script."""
    parser = argparse.ArgumentParser(
        prog="goomerang",
        description="Typed goomerang code from .proto files: generate it in one step, make what\n"
        "protoc or buf generated an importable package, or tell protoc where\n"
        "goomerang/options.proto is.",
        epilog="examples:\n"
        "  goomerang generate -I protos -o app/protos_gen protos/chat/v1/chat.proto\n"
        "\n"
        '  python -m grpc_tools.protoc -I protos -I "$(goomerang include-path)" \\\n'
        "      --python_out=out --mypy_out=out --goomerang_out=out protos/chat/v1/chat.proto\n"
        "  goomerang package -p app.protos_gen out\n"
        f"\ngenerate needs the codegen extra: {CODEGEN_EXTRA}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"goomerang {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    gen = commands.add_parser(
        "generate",
        help="run protoc with the goomerang plugin and mypy stubs",
        description="Run protoc once for --python_out, --mypy_out and --goomerang_out, with goomerang/options.proto "
        "and the well-known types on the include path, and lay the output out as a package.",
    )
    gen.add_argument("-I", "--proto-path", action="append", default=[], help="protoc include path (repeatable)")
    gen.add_argument("-o", "--out", required=True, type=Path, help="output directory")
    gen.add_argument(
        "--package",
        help="Python package the output directory is (default: its name); imports go through it. "
        "Pass '' for modules imported with the output directory itself on sys.path.",
    )
    gen.add_argument("--no-mypy", action="store_true", help="skip the .pyi stubs of mypy-protobuf")
    gen.add_argument("files", nargs="+", help=".proto files to generate")
    pkg = commands.add_parser(
        "package",
        help="make a directory that protoc or buf generated into an importable package",
        description="Rewrite the imports between the generated modules of a directory to go through a package, "
        "and add its __init__.py files. Run it once over the whole directory; running it again changes nothing.",
    )
    pkg.add_argument("out", type=Path, help="the output directory (run once over all of it)")
    pkg.add_argument("-p", "--package", help="the package the directory is (default: its name)")
    commands.add_parser(
        "include-path",
        help="print the directory holding goomerang/options.proto, for protoc's -I",
        description="Print the directory holding goomerang/options.proto, for protoc's -I (or to vendor into buf).",
    )
    args = parser.parse_args(argv)
    if args.command == "include-path":
        print(include_path())
        return 0
    if args.command == "package":
        name = _default_package(args.out) if args.package is None else args.package
        if not name or not _dotted(name):
            parser.error(f"--package {name!r} is not a dotted Python name (the directory's name is not one either)")
        if not args.out.is_dir():
            parser.error(f"{args.out} is not a directory")
        rewritten = make_package(args.out, name)
        print(f"goomerang: {args.out} is the package {name} ({len(rewritten)} modules import through it)")
        return 0
    package = _default_package(args.out) if args.package is None else (args.package or None)
    if package is not None and not _dotted(package):
        parser.error(f"--package {package!r} is not a dotted Python name")
    return generate(args.files, args.proto_path, args.out, package, mypy=not args.no_mypy)


def _dotted(name: str) -> bool:
    return all(part.isidentifier() for part in name.split("."))


def console() -> None:
    """Console script wrapper: exit with main()'s status."""
    sys.exit(main())
