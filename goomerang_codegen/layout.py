"""Turning protoc's output into an importable package.

protoc's ``--python_out`` and mypy-protobuf write modules that import each
other absolutely (``from chat.v1 import chat_pb2``), which works only with the
output directory itself on ``sys.path``. With a package name, these functions
rewrite the imports of the modules generated together to go through that
package (``from generated.chat.v1 import chat_pb2``) and add the
``__init__.py`` files, so the output directory is a plain package.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from .names import pb2_module

__all__ = ["add_init_files", "make_package", "pb2_modules", "rewrite_imports"]


def rewrite_imports(text: str, modules: Iterable[str], package: str) -> str:
    """Prefix every reference to one of `modules` in `text` with `package`.

    Handles ``from a.b import c_pb2``, ``import c_pb2 as x``, ``import a.b.c_pb2``
    and dotted or quoted uses such as ``a.b.c_pb2.Msg`` and ``'a.b.c_pb2'``;
    names already under the package, and other modules, are left alone.
    """
    for module in sorted(set(modules), key=len, reverse=True):
        parent, _, name = module.rpartition(".")
        quoted = re.escape(module)
        if parent:
            text = re.sub(
                rf"(?m)^(\s*)from {re.escape(parent)} import {re.escape(name)}\b",
                rf"\1from {package}.{parent} import {name}",
                text,
            )
        else:
            text = re.sub(rf"(?m)^(\s*)import {quoted} as\b", rf"\1from {package} import {name} as", text)
        text = re.sub(rf"(?m)^(\s*)import {quoted}$", rf"\1import {package}.{module}", text)
        text = re.sub(rf"(?<![\w.])(?<!import ){quoted}\b", f"{package}.{module}", text)
    return text


def pb2_modules(proto_files: Iterable[str]) -> list[str]:
    """The `_pb2` module names of the given `.proto` files."""
    return [pb2_module(name) for name in proto_files]


def add_init_files(root: Path) -> list[Path]:
    """Add an empty ``__init__.py`` to `root` and each folder below it that holds Python files."""
    folders = {root}
    for path in root.rglob("*.py*"):
        folder = path.parent
        while folder != root and root in folder.parents:
            folders.add(folder)
            folder = folder.parent
    created: list[Path] = []
    for folder in sorted(folders):
        init = folder / "__init__.py"
        if not init.exists():
            init.write_text("")
            created.append(init)
    return created


def make_package(root: Path, package: str) -> list[Path]:
    """Make `root`, the output of protoc or buf, the importable package `package`.

    Every ``_pb2`` module under `root` (what ``--python_out`` wrote, from one
    run or several) is imported through `package` by the ``.py`` and ``.pyi``
    files under `root`, and every folder gets an ``__init__.py``. Running it
    twice changes nothing. Returns the files it rewrote.
    """
    files = sorted(path for path in root.rglob("*") if path.is_file() and path.suffix in (".py", ".pyi"))
    modules = [
        ".".join(path.relative_to(root).with_suffix("").parts) for path in files if path.name.endswith("_pb2.py")
    ]
    rewritten: list[Path] = []
    for path in files:
        text = path.read_text()
        new = rewrite_imports(text, modules, package)
        if new != text:
            path.write_text(new)
            rewritten.append(path)
    add_init_files(root)
    return rewritten
