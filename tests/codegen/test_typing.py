"""Static typing: tests/typing/pass_*.py must pass mypy --strict; fail_*.py must fail exactly on marked lines.

A line marked ``# E: code[, code]`` must produce exactly those error codes;
an unexpected error and an expected one that vanished both fail the test.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TYPING = ROOT / "tests" / "typing"
_ERROR = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+): error: .*\[(?P<code>[\w-]+)\]$")
_MARK = re.compile(r"#\s*E:\s*(?P<codes>[\w\-, ]+)$")


def _mypy(path: Path, cache: Path) -> tuple[int, list[tuple[int, str]], str]:
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(cache), "--show-error-codes", str(path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
        check=False,
    )
    found = [
        (int(m["line"]), m["code"])
        for line in done.stdout.splitlines()
        if (m := _ERROR.match(line)) and Path(m["file"]).name == path.name
    ]
    return done.returncode, found, done.stdout


def _expected(path: Path) -> list[tuple[int, str]]:
    marks: list[tuple[int, str]] = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if m := _MARK.search(line):
            marks += [(number, code.strip()) for code in m["codes"].split(",")]
    return marks


@pytest.mark.parametrize("name", sorted(p.name for p in TYPING.glob("pass_*.py")))
def test_accepted_by_mypy(name: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    status, found, out = _mypy(TYPING / name, tmp_path_factory.getbasetemp() / "mypy-cache")
    assert status == 0, out
    assert found == []


@pytest.mark.parametrize("name", sorted(p.name for p in TYPING.glob("fail_*.py")))
def test_rejected_by_mypy_on_marked_lines(name: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    path = TYPING / name
    expected = _expected(path)
    assert expected, "a fail_ file must mark its expected errors"
    status, found, out = _mypy(path, tmp_path_factory.getbasetemp() / "mypy-cache")
    assert status != 0
    assert sorted(found) == sorted(expected), out
