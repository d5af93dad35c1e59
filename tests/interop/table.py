"""The interop results as a Markdown table: scenario x direction.

The conftest records each test's outcome under its ``scenario`` marker and
its direction, and writes the table to the file named by
``GOOMERANG_INTEROP_TABLE`` at the end of the session. Run as a script, this
module runs the interop suite and prints the table::

    .venv/bin/python -m tests.interop.table [pytest args...]
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["ENV_VAR", "Results"]

ENV_VAR = "GOOMERANG_INTEROP_TABLE"
_RANK = {"fail": 3, "error": 3, "skip": 1, "pass": 0}
_CELL = {"pass": "pass", "fail": "**FAIL**", "error": "**ERROR**", "skip": "skip"}


@dataclass
class Results:
    """Outcomes by scenario and direction, in the order scenarios were first seen."""

    columns: list[str] = field(default_factory=list)
    rows: dict[str, dict[str, list[tuple[str, str]]]] = field(default_factory=dict)
    ranks: dict[str, int] = field(default_factory=dict)

    def add(self, scenario: str, column: str, outcome: str, test: str, rank: int = 0) -> None:
        """Record one test's outcome (``pass``, ``fail``, ``error`` or ``skip``).

        Rows are ordered by `rank` (the lowest of their tests), then as first seen.
        """
        if column not in self.columns:
            self.columns.append(column)
        self.rows.setdefault(scenario, {}).setdefault(column, []).append((outcome, test))
        self.ranks[scenario] = min(rank, self.ranks.get(scenario, rank))

    def cell(self, scenario: str, column: str) -> str:
        """A cell: the worst outcome of its tests, with counts when some passed and some did not."""
        outcomes = [o for o, _ in self.rows[scenario].get(column, [])]
        if not outcomes:
            return "n/a"
        worst = max(outcomes, key=lambda o: _RANK[o])
        text = _CELL[worst]
        if worst != "pass" and len(outcomes) > 1:
            text += f" ({outcomes.count('pass')}/{len(outcomes)} pass)"
        return text

    def markdown(self) -> str:
        """The table, then a line counting tests by outcome."""
        lines = ["| scenario | " + " | ".join(self.columns) + " |", "|---|" + "---|" * len(self.columns)]
        order = list(self.rows)
        for scenario in sorted(order, key=lambda name: (self.ranks.get(name, 0), order.index(name))):
            lines.append(f"| {scenario} | " + " | ".join(self.cell(scenario, c) for c in self.columns) + " |")
        counts: dict[str, int] = {}
        for by_column in self.rows.values():
            for entries in by_column.values():
                for outcome, _ in entries:
                    counts[outcome] = counts.get(outcome, 0) + 1
        summary = ", ".join(f"{n} {o}" for o, n in sorted(counts.items()))
        return "\n".join(lines) + f"\n\nTests: {summary}.\n"

    def write(self, path: Path) -> None:
        path.write_text(self.markdown(), encoding="utf-8")


def main(argv: list[str]) -> int:
    """Run the interop tests with the table enabled and print it."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "table.md"
        env = {**os.environ, ENV_VAR: str(out)}
        here = Path(__file__).resolve().parent
        code = subprocess.call([sys.executable, "-m", "pytest", str(here), "-q", *argv], env=env, cwd=here.parents[1])
        if out.exists():
            print(out.read_text(encoding="utf-8"))
    return code


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
