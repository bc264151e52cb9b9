"""The current-results table of docs/benchmarks.md: a run replaces its own rows and keeps the
others (with the run that measured them)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import current

DOC = """# Benchmarks

intro

<!-- current-results:start -->
| figure | target | measured | run | how |
|---|---|---|---|---|
| console page load | < 1 s | 255 ms | 2026-12-01 `d35a879` | chromium |
| pipeline_ratio | ≥ 0.25 | 0.07 | 2026-12-01 `aaaaaaa` | old |
<!-- current-results:end -->

## Method
"""


def test_a_run_replaces_its_rows_keeps_the_others_and_adds_new_ones(tmp_path: Path) -> None:
    doc = tmp_path / "benchmarks.md"
    doc.write_text(DOC)
    current.update(
        [
            current.Row("pipeline_ratio", "≥ 0.25", "0.31", "new"),
            current.Row("peer_ratio", "≥ 1.5", "1.6", "quix"),
        ],
        doc,
    )
    text = doc.read_text()
    rows = [line for line in text.splitlines() if line.startswith("| ") and "figure" not in line]
    assert [r.split("|")[1].strip() for r in rows] == [
        "console page load",
        "pipeline_ratio",
        "peer_ratio",
    ]
    assert "| 255 ms | 2026-12-01 `d35a879` |" in rows[0]  # untouched, with its own run
    assert "| 0.31 |" in rows[1] and "0.07" not in text
    assert text.startswith("# Benchmarks\n\nintro\n") and text.endswith("## Method\n")


def test_a_document_without_the_table_is_an_error(tmp_path: Path) -> None:
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n")
    with pytest.raises(ValueError, match="current-results"):
        current.update([current.Row("x", "", "1", "")], doc)
