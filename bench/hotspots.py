"""Where a profiled process spent its time, by function of one package.

Reads py-spy's collapsed stacks (``py-spy record --format raw``, what
``bench/run.py --profile DIR`` writes) and prints, for the functions of
`--package` (default ``goomerang_runtime``):

- self %: samples whose innermost frame is the function (its own lines,
  C calls such as protobuf's included);
- own %: samples whose deepest frame of the package is this function: self
  plus what it calls outside the package (websockets, asyncio), but not
  other functions of the package; the own column adds up to the package's
  share of the process;
- inclusive %: samples with the function anywhere on the stack.

Percentages are of the busy samples of the process: samples waiting in the
selector (``select`` in selectors.py, the event loop idle) are left out and
counted apart. Also listed: the innermost functions outside the package.
Usage::

    python bench/hotspots.py /tmp/prof/B-plain-server.txt [--top 10]
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Profile", "load", "main"]

_IDLE_FUNCTION = re.compile(r"(^|;)[\w.]*select \(selectors\.py(:\d+)?\)$")
_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^:()]*)(?::\d+)?\)$")


@dataclass(frozen=True, slots=True)
class Profile:
    """Sample counts of one process."""

    total: int
    idle: int
    leaf: Counter[str]
    foreign: Counter[str]
    """Innermost frames outside the package."""
    own: Counter[str]
    inclusive: Counter[str]
    by_package: Counter[str]


def _function(frame: str) -> tuple[str, str]:
    """``("func (path/file.py)", "path/file.py")`` of ``func (path/file.py:line)``."""
    match = _FRAME.match(frame)
    if match is None:
        return frame, ""
    return f"{match['func']} ({match['file']})", match["file"]


def _package(path: str) -> str:
    top = path.split("/", 1)[0]
    return top.removesuffix(".py") if "/" in path else top or "?"


def load(lines: Iterable[str], package: str) -> Profile:
    """Count the collapsed stacks ``frame;frame;... count``."""
    total = idle = 0
    leaf: Counter[str] = Counter()
    foreign: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    by_package: Counter[str] = Counter()
    prefix = package + "/"
    for line in lines:
        stack, _, count_text = line.rstrip("\n").rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        if _IDLE_FUNCTION.search(stack):
            idle += count
            continue
        total += count
        seen: set[str] = set()
        deepest = None
        name = path = ""
        for frame in stack.split(";"):
            name, path = _function(frame)
            if path.startswith(prefix):
                deepest = name
                if name not in seen:
                    seen.add(name)
                    inclusive[name] += count
        if deepest is not None:
            own[deepest] += count
            if deepest == name:
                leaf[name] += count
        if not path.startswith(prefix):
            foreign[name] += count
        by_package[_package(path)] += count
    return Profile(total, idle, leaf, foreign, own, inclusive, by_package)


def render(profile: Profile, top: int) -> str:
    """Markdown: the top functions by own time, with inclusive time, and where leaves fall."""
    if not profile.total:
        return "(no samples)"
    pct = 100 / profile.total
    lines = ["| function | self % | own % | inclusive % |", "|---|---:|---:|---:|"]
    for name, count in profile.own.most_common(top):
        lines.append(
            f"| `{name}` | {profile.leaf[name] * pct:.1f} | {count * pct:.1f} | {profile.inclusive[name] * pct:.1f} |"
        )
    share = sum(profile.own.values()) * pct
    leaves = ", ".join(f"{pkg} {count * pct:.0f}%" for pkg, count in profile.by_package.most_common(6))
    idle = 100 * profile.idle / (profile.total + profile.idle)
    lines.append("")
    lines.append(
        f"{profile.total} busy samples ({idle:.0f}% more idle in the selector left out); under the package:"
        f" {share:.0f}%; innermost frames by package: {leaves}"
    )
    lines.append("")
    lines.append("| innermost function outside the package | % |")
    lines.append("|---|---:|")
    for name, count in profile.foreign.most_common(min(top, 8)):
        lines.append(f"| `{name}` | {count * pct:.1f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="+", type=Path, help="py-spy raw (collapsed) stack files")
    parser.add_argument("--top", type=int, default=10, help="functions to list (default 10)")
    parser.add_argument("--package", default="goomerang_runtime", help="package whose functions are listed")
    args = parser.parse_args(argv)
    for path in args.files:
        with path.open() as stacks:
            profile = load(stacks, args.package)
        print(f"### {path.name}\n")
        print(render(profile, args.top))
        print()
    sys.stdout.flush()


if __name__ == "__main__":
    main()
