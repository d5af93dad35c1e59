from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def launcher(directory: Path) -> Path:
    """An executable protoc-gen-goomerang running this interpreter's plugin."""
    script = directory / "protoc-gen-goomerang"
    script.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m goomerang_codegen "$@"\n')
    script.chmod(0o755)
    return script


ProtocRun = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def protoc(tmp_path: Path) -> ProtocRun:
    """Run protoc with our plugin on protos written into a temp dir.

    ``protoc({"a.proto": "..."}, "a.proto", option="package=x")`` returns the
    completed process; the output lands in ``tmp_path / "out"``.
    """

    def run(files: dict[str, str], *targets: str, option: str = "") -> subprocess.CompletedProcess[str]:
        src = tmp_path / "src"
        out = tmp_path / "out"
        out.mkdir(exist_ok=True)
        for name, text in files.items():
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            (src / name).write_text(text)
        plugin = launcher(tmp_path)
        cmd = [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{src}",
            f"-I{ROOT / 'goomerang_codegen' / 'include'}",
            f"--plugin=protoc-gen-goomerang={plugin}",
            f"--goomerang_out={option + ':' if option else ''}{out}",
            *targets,
        ]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        return subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=src, env=env, timeout=60)

    return run
