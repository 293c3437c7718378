"""The benchmark scripts still run (tiny sizes; no timing is asserted here)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_benchmark(script: str, *args: str, out: Path) -> str:
    """Run a benchmark script with its results kept under ``out``; its stdout."""
    done = subprocess.run(
        [sys.executable, f"benchmarks/{script}", *args],
        cwd=ROOT,
        env={**os.environ, "PACKVIZ_BENCH_OUT": str(out)},
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return done.stdout


def test_planning_benchmark_runs_and_agrees_with_its_reference(tmp_path):
    out = run_benchmark(
        "bench_planning.py", "--sizes", "3000", "--max-lens", "512", "--repeats", "1", out=tmp_path
    )
    assert "reference BFD" in out
    rows = json.loads((tmp_path / "planning.json").read_text())
    by = {r["label"]: r for r in rows}
    assert not [r for r in rows if "error" in r]
    # the fast BFD uses exactly the rows of the straightforward one
    assert (
        by["packviz best_fit (BFD)"]["rows"]
        == by["reference BFD (_reference.reference_pack, Python)"]["rows"]
    )


def test_dashboard_benchmark_runs(tmp_path):
    out = run_benchmark(
        "bench_dashboard.py", "--docs", "2000", "--pages", "packing", "--no-actions", out=tmp_path
    )
    assert "slowest re-render" in out
    rows = json.loads((tmp_path / "dashboard.json").read_text())
    assert len(rows) == 2 + 4 * 5  # first render, every sort × strategy, a plain rerun
    assert all(r.get("ok", "computed") == "computed" for r in rows)


def test_records_benchmark_runs(tmp_path):
    out = run_benchmark("bench_records.py", "--chats", "300", "--repeats", "1", out=tmp_path)
    assert "child start" in out
    rows = json.loads((tmp_path / "records.json").read_text())
    assert [r["template"] for r in rows] == [
        "ChatML copy (marked)",
        "ChatML plain (placed)",
        "built-in ChatML",
    ]
    assert all(r["encode_cpu_s"] > 0 for r in rows)
