"""Every complete Python program in the README runs."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BLOCKS = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.DOTALL)
PROGRAMS = [block for block in BLOCKS if "asyncio.run(" in block]


def test_the_readme_has_programs() -> None:
    assert len(PROGRAMS) >= 3


@pytest.mark.parametrize("index", range(len(PROGRAMS)))
def test_readme_program_runs(index: int, tmp_path: Path) -> None:
    script = tmp_path / f"readme_{index}.py"
    script.write_text(PROGRAMS[index])
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_readme_programs_pass_mypy_strict(tmp_path: Path) -> None:
    for index, program in enumerate(PROGRAMS):
        (tmp_path / f"readme_{index}.py").write_text(program)
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(tmp_path / ".cache"), str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout
