"""The current-results table at the top of docs/benchmarks.md.

Each bench updates the rows it measured and leaves the others as they were (with the date and
commit of the run that measured them); the run-by-run sections go to
docs/benchmarks-history.md. A row is ``| figure | target | measured | run | how |``; rows are
matched by their figure name.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from bench import git_commit

__all__ = ["HISTORY", "Row", "append_history", "update"]

CURRENT = Path("docs/benchmarks.md")
HISTORY = Path("docs/benchmarks-history.md")
START, END = "<!-- current-results:start -->", "<!-- current-results:end -->"
HEADER = "| figure | target | measured | run | how |\n|---|---|---|---|---|\n"


@dataclass(frozen=True)
class Row:
    figure: str
    target: str
    measured: str
    how: str

    def line(self, run: str) -> str:
        return f"| {self.figure} | {self.target} | {self.measured} | {run} | {self.how} |\n"


def run_label() -> str:
    return f"{time.strftime('%Y-%m-%d', time.gmtime())} `{git_commit()}`"


def _rows(block: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in block.splitlines():
        if line.startswith("| ") and not line.startswith(("| figure ", "|---")):
            out[line.split("|")[1].strip()] = line + "\n"
    return out


def update(rows: list[Row], path: Path = CURRENT) -> None:
    """Replace (or add) ``rows`` in the table between the markers of ``path``."""
    doc = path.read_text()
    if START not in doc or END not in doc:
        raise ValueError(f"{path} has no {START} … {END} block")
    before, rest = doc.split(START, 1)
    block, after = rest.split(END, 1)
    kept = _rows(block)
    run = run_label()
    for row in rows:
        kept[row.figure] = row.line(run)
    path.write_text(before + START + "\n" + HEADER + "".join(kept.values()) + END + after)


def append_history(text: str, path: Path = HISTORY) -> None:
    with path.open("a") as f:
        f.write(text if text.startswith("\n") else "\n" + text)
