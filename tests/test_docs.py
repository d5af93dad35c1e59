"""The documentation cannot rot: the site builds with no warning, and every code sample in it runs.

- ``mkdocs build --strict``: broken links and references, a public module
  missing from the API reference or a public name without a docstring
  (docs/hooks/api_check.py) fail it.
- Every ``python`` block of the site and of the README is a complete program
  (run as is) or includes a file of ``docs/snippets/`` (run whole: the page
  shows a section of it); each runs, and all pass ``mypy --strict``.
- ``proto`` blocks include real files (compiled by the codegen tests or by
  the getting-started test), ``yaml`` blocks parse, and ``bash`` blocks name
  commands and files that exist; the getting-started page is followed step
  by step in an empty directory, its commands run.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml  # type: ignore[import-untyped]

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
SNIPPETS = DOCS / "snippets"
BIN = Path(sys.executable).parent
PAGES = sorted(p for p in DOCS.rglob("*.md") if SNIPPETS not in p.parents)
SOURCES = [*PAGES, ROOT / "README.md"]
FENCE = re.compile(r"^```(?P<lang>[\w-]*)(?P<attrs>[^\n]*)\n(?P<body>.*?)^```\s*$", re.MULTILINE | re.DOTALL)
INCLUDE = re.compile(r"^(?P<file>[^\s:]+)(?::(?P<section>[\w-]+))?$")
MARK = "--8<--"  # a block of included files: the mark, one file[:section] a line, the mark (ruff skips it)
TITLE = re.compile(r'title="(?P<title>[^"]+)"')
GETTING_STARTED = DOCS / "getting-started.md"
# Programs a documented shell line may start with, besides files of this repository.
COMMANDS = {"pip", "python", "goomerang", "buf", "mypy", "mkdocs", "curl", "nats", "docker"}
ENV = {"PYTHONPATH": str(ROOT), "PATH": f"{BIN}:/usr/bin:/bin", "NO_MKDOCS_2_WARNING": "1"}


@dataclass(frozen=True)
class Block:
    source: Path
    lang: str
    attrs: str
    body: str

    @property
    def where(self) -> str:
        return f"{self.source.relative_to(ROOT)} ({self.lang} block: {self.body.strip().splitlines()[0][:60]!r})"

    @property
    def includes(self) -> list[tuple[str, str | None]]:
        """The snippet files (and sections) the block includes; empty for an inline block."""
        lines = [line.strip() for line in self.body.strip().splitlines()]
        if not lines or lines[0] != MARK:
            assert MARK not in self.body, f"{self.where}: write includes as a block: {MARK}, the files, {MARK}"
            return []
        assert lines[-1] == MARK, f"{self.where}: an include block ends with {MARK}"
        assert len(lines) > 2, f"{self.where}: an include block names a file"
        found = [INCLUDE.match(line) for line in lines[1:-1]]
        assert all(found), f"{self.where}: mixes includes and inline code"
        return [(m["file"], m["section"]) for m in found if m]


def blocks(source: Path) -> list[Block]:
    return [Block(source, m["lang"], m["attrs"], m["body"]) for m in FENCE.finditer(source.read_text())]


ALL = [block for source in SOURCES for block in blocks(source)]


def snippet(name: str) -> Path:
    """Where pymdownx.snippets finds an included file (docs/snippets, then the repository root)."""
    for base in (SNIPPETS, ROOT):
        if (base / name).is_file():
            return base / name
    raise AssertionError(f"included file {name!r} is neither in docs/snippets/ nor in the repository")


def inline_programs() -> list[tuple[str, str]]:
    """(where, code) of each python block written in the page itself."""
    return [(b.where, b.body) for b in ALL if b.lang == "python" and not b.includes]


def snippet_programs() -> list[Path]:
    """Every included python file of docs/snippets/ outside the getting-started one."""
    files = {snippet(name) for b in ALL if b.lang == "python" for name, _ in b.includes}
    return sorted(f for f in files if SNIPPETS in f.parents and "getting_started" not in f.parts)


def run(args: list[str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, env=ENV, capture_output=True, text=True, timeout=timeout, check=False)


def test_the_site_builds_with_no_warning(tmp_path: Path) -> None:
    done = run([str(BIN / "mkdocs"), "build", "--strict", "--site-dir", str(tmp_path / "site")], ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "WARNING" not in done.stderr, done.stderr
    for page in ("index.html", "getting-started/index.html", "reference/client/index.html", "changelog/index.html"):
        assert (tmp_path / "site" / page).is_file(), page


def test_the_site_and_the_readme_have_samples() -> None:
    assert len(snippet_programs()) >= 10
    assert any(b.source.name == "README.md" and b.lang == "python" for b in ALL)


def test_every_block_is_a_known_kind_of_sample() -> None:
    for block in ALL:
        assert block.lang in {"python", "proto", "bash", "yaml", "text"}, f"{block.where}: say what the block is"
        if block.lang == "python" and not block.includes:
            assert "asyncio.run(" in block.body, f"{block.where}: inline python must be a complete program"
        if block.lang == "proto":
            assert block.includes, f"{block.where}: include the real .proto file instead"
            for name, _ in block.includes:
                path = snippet(name)
                assert path.suffix == ".proto"
                assert ROOT / "protos" in path.parents or path.parent.name == "getting_started"
        if block.lang == "yaml":
            assert yaml.safe_load(block.body) is not None, block.where


def test_every_included_section_exists_and_every_snippet_is_shown() -> None:
    shown: set[Path] = set()
    for block in ALL:
        for name, section in block.includes:
            path = snippet(name)
            shown.add(path)
            if section is not None:
                text = path.read_text()
                assert f"--8<-- [start:{section}]" in text, f"{block.where}: no section {section!r} in {name}"
                assert f"--8<-- [end:{section}]" in text, f"{block.where}: section {section!r} never ends"
    files = {p for p in SNIPPETS.rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    assert files <= shown, f"snippets no page shows: {sorted(str(p.relative_to(ROOT)) for p in files - shown)}"


@pytest.mark.parametrize("path", snippet_programs(), ids=lambda p: str(p.relative_to(SNIPPETS)))
def test_snippet_program_runs(path: Path) -> None:
    done = run([sys.executable, str(path)], ROOT, timeout=60)
    assert done.returncode == 0, done.stderr


def generate_as_the_readme_says(where: Path) -> None:
    """Run the README's ``goomerang generate`` lines in `where` (with this checkout's protos/ there)."""
    (where / "protos").symlink_to(ROOT / "protos")
    for block in blocks(ROOT / "README.md"):
        if block.lang == "bash":
            for line in shell_lines(block):
                if line.startswith("goomerang generate "):
                    done = run([str(BIN / "goomerang"), *shlex.split(line)[1:]], where)
                    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("index", range(len(inline_programs())), ids=lambda i: inline_programs()[i][0])
def test_inline_program_runs(index: int, tmp_path: Path) -> None:
    generate_as_the_readme_says(tmp_path)  # the README's program imports what it generates
    script = tmp_path / f"inline_{index}.py"
    script.write_text(inline_programs()[index][1])
    done = run([sys.executable, str(script)], ROOT, timeout=60)
    assert done.returncode == 0, done.stderr


def test_every_python_sample_passes_mypy_strict(tmp_path: Path) -> None:
    generate_as_the_readme_says(tmp_path)
    (tmp_path / "protos").unlink()
    for index, (_, code) in enumerate(inline_programs()):
        (tmp_path / f"inline_{index}.py").write_text(code)
    files = [str(p) for p in snippet_programs()] + [str(tmp_path)]
    done = run([sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(tmp_path / ".cache"), *files], ROOT, 300)
    assert done.returncode == 0, done.stdout


def shell_lines(block: Block) -> list[str]:
    lines = []
    for raw in block.body.splitlines():
        line = raw.split(" #", 1)[0].strip() if not raw.lstrip().startswith("#") else ""
        if line:
            lines.append(line)
    return lines


def test_every_documented_command_names_what_exists() -> None:
    subcommands: dict[str, bool] = {}
    for block in ALL:
        if block.lang != "bash":
            continue
        for line in shell_lines(block):
            for part in re.split(r"\s*(?:&&|\|\||;)\s*", line):
                words = shlex.split(part)
                program = words[0]
                if "/" in program:
                    assert (ROOT / program).exists() or program.startswith(".venv/"), f"{block.where}: {program}"
                else:
                    assert program in COMMANDS, f"{block.where}: unknown command {program!r}"
                for word in words[1:]:
                    if re.fullmatch(r"[\w./-]+\.(py|proto|json|yaml|toml)", word) and "/" in word:
                        known = (ROOT / word).exists() or block.source == GETTING_STARTED
                        assert known, f"{block.where}: no file {word}"
                if program == "goomerang" and len(words) > 1 and not words[1].startswith("-"):
                    if words[1] not in subcommands:
                        subcommands[words[1]] = run([str(BIN / "goomerang"), words[1], "--help"], ROOT).returncode == 0
                    assert subcommands[words[1]], f"{block.where}: no goomerang subcommand {words[1]!r}"


def test_getting_started_runs_step_by_step(tmp_path: Path) -> None:
    """Write each titled file where the page says, then run each command of the page in order."""
    page = blocks(GETTING_STARTED)
    for block in page:
        title = TITLE.search(block.attrs)
        if title is not None:
            [(name, _)] = block.includes
            target = tmp_path / title["title"]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(snippet(name).read_text())
    server: subprocess.Popen[str] | None = None
    address = ""
    try:
        for block in page:
            if block.lang != "bash":
                continue
            for line in shell_lines(block):
                words = shlex.split(line)
                if words[0] == "pip":  # the extras it names exist; the test environment has them installed
                    assert "goomerang[codegen]" in words
                    continue
                if words[:2] == ["python", "app/server.py"]:
                    server = subprocess.Popen(
                        [sys.executable, "app/server.py", "127.0.0.1:0"],
                        cwd=tmp_path,
                        env=ENV,
                        stdout=subprocess.PIPE,
                        text=True,
                    )
                    assert server.stdout is not None
                    first = server.stdout.readline()  # bounded: the server prints it as soon as it listens
                    assert first.startswith("listening on "), first
                    address = first.removeprefix("listening on ").strip()
                    continue
                if words[:2] == ["python", "app/client.py"]:
                    done = run([sys.executable, "app/client.py", address], tmp_path, timeout=60)
                    assert done.returncode == 0, done.stderr
                    assert done.stdout.splitlines() == ["hello, ana", "news.greetings: ana is here"]
                    continue
                program = sys.executable if words[0] == "python" else str(BIN / words[0])
                done = run([program, *words[1:]], tmp_path, timeout=300)
                assert done.returncode == 0, f"{line}:\n{done.stdout}\n{done.stderr}"
    finally:
        if server is not None:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)
    assert (tmp_path / "app" / "hello_gen" / "hello" / "v1" / "hello_goomerang.py").is_file()
    assert os.path.isfile(tmp_path / "app" / "test_greeter.py")


def test_every_option_is_in_the_options_table() -> None:
    from goomerang_runtime import ClientConfig, ServerConfig

    table = (DOCS / "runtime.md").read_text().split("## Options", 1)[1].split("\n## ", 1)[0]
    shown = set(re.findall(r"^\| `(\w+)`(?: / `(\w+)`)?", table, flags=re.MULTILINE))
    names = {name for pair in shown for name in pair if name}
    missing = (set(ServerConfig.model_fields) | set(ClientConfig.model_fields)) - names
    assert not missing, f"options missing from docs/runtime.md: {sorted(missing)}"


def test_every_metric_is_in_the_metrics_table() -> None:
    from prometheus_client import CollectorRegistry

    from goomerang_runtime.metrics import ClientMetrics, ServerMetrics

    registry = CollectorRegistry()
    ServerMetrics().register(registry)
    ClientMetrics().register(registry)
    page = (DOCS / "observability.md").read_text()
    for family in registry.collect():
        name = family.name + ("_total" if family.type == "counter" else "")
        assert f"| `{name}` |" in page, f"{name} is missing from docs/observability.md"
        for label in {label for sample in family.samples for label in sample.labels if label != "le"}:
            row = next(line for line in page.splitlines() if line.startswith(f"| `{name}` |"))
            assert f"`{label}`" in row, f"{name}: label {label} not in its row"


def test_the_readme_links_into_the_site() -> None:
    text = (ROOT / "README.md").read_text()
    links = re.findall(r"\]\((docs/[^)#]+)(?:#([\w-]+))?\)", text)
    assert {"docs/getting-started.md", "docs/reference/index.md"} <= {path for path, _ in links}
    for path, anchor in links:
        page = ROOT / path
        assert page.is_file(), path
        if anchor:
            headings = {
                re.sub(r"[^\w\s-]", "", h).strip().lower().replace(" ", "-")
                for h in re.findall(r"^#+ (.+)$", page.read_text(), re.MULTILINE)
            }
            assert anchor in headings, f"{path}#{anchor}"
    for page in PAGES:
        if page.parent == DOCS:
            assert f"docs/{page.name}" in text or page.name == "index.md", f"the README does not link to {page.name}"
