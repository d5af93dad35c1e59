"""Static typing under both checkers: tests/typing/pass_*.py must be clean; fail_*.py fail exactly on marked lines.

A line of a fail_ file marked ``# E: code[, code]`` must produce exactly those
mypy --strict error codes, and one marked ``# P: rule[, rule]`` exactly those
pyright (strict) rules; an unexpected error and an expected one that vanished
both fail the test. Both marks may sit on one line: ``# E: arg-type  # P: reportArgumentType``.
pyright runs once over every file of tests/typing/ and its JSON report is shared.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from .tools import pyright_report

ROOT = Path(__file__).resolve().parents[2]
TYPING = ROOT / "tests" / "typing"
_ERROR = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+): error: .*\[(?P<code>[\w-]+)\]$")
_MYPY_MARK = re.compile(r"#\s*E:\s*(?P<codes>[\w\-, ]+?)\s*(?:#|$)")
_PYRIGHT_MARK = re.compile(r"#\s*P:\s*(?P<codes>[\w, ]+?)\s*(?:#|$)")
PASS = sorted(p.name for p in TYPING.glob("pass_*.py"))
FAIL = sorted(p.name for p in TYPING.glob("fail_*.py"))


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


def _expected(path: Path, mark: re.Pattern[str]) -> list[tuple[int, str]]:
    marks: list[tuple[int, str]] = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if m := mark.search(line):
            marks += [(number, code.strip()) for code in m["codes"].split(",")]
    return marks


@pytest.fixture(scope="session")
def pyright_typing(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[tuple[int, str, str]]]:
    """pyright's errors per file name of tests/typing/, from one run in strict mode."""
    return pyright_report([TYPING / name for name in PASS + FAIL], tmp_path_factory.mktemp("pyright"), [ROOT])


@pytest.mark.parametrize("name", PASS)
def test_accepted_by_mypy(name: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    status, found, out = _mypy(TYPING / name, tmp_path_factory.getbasetemp() / "mypy-cache")
    assert status == 0, out
    assert found == []


@pytest.mark.parametrize("name", FAIL)
def test_rejected_by_mypy_on_marked_lines(name: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    path = TYPING / name
    expected = _expected(path, _MYPY_MARK)
    assert expected, "a fail_ file must mark its expected mypy errors"
    status, found, out = _mypy(path, tmp_path_factory.getbasetemp() / "mypy-cache")
    assert status != 0
    assert sorted(found) == sorted(expected), out


@pytest.mark.parametrize("name", PASS)
def test_accepted_by_pyright(name: str, pyright_typing: dict[str, list[tuple[int, str, str]]]) -> None:
    assert pyright_typing.get(name, []) == []


@pytest.mark.parametrize("name", FAIL)
def test_rejected_by_pyright_on_marked_lines(name: str, pyright_typing: dict[str, list[tuple[int, str, str]]]) -> None:
    expected = _expected(TYPING / name, _PYRIGHT_MARK)
    assert expected, "a fail_ file must mark its expected pyright errors"
    errors = pyright_typing.get(name, [])
    found = sorted((line, rule) for line, rule, _ in errors)
    assert found == sorted(expected), "\n".join(f"{line}: {rule}: {message}" for line, rule, message in errors)
