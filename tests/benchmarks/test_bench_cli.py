"""The corpus benchmark still runs end to end (tiny sizes; no timing is asserted)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _bench(tmp_path, *args: str) -> tuple[subprocess.CompletedProcess, list[dict]]:
    """Run ``benchmarks/bench_cli.py`` with ``args``, its output under ``tmp_path``; the
    process and the rows it wrote (none of them an error)."""
    out = subprocess.run(
        [sys.executable, "benchmarks/bench_cli.py", *args],
        cwd=ROOT,
        env={**os.environ, "PACKVIZ_BENCH_OUT": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    rows = json.loads((tmp_path / "cli.json").read_text())
    assert not [r for r in rows if "error" in r], rows
    return out, rows


def test_corpus_benchmark_runs_every_comparison(tmp_path):
    out, rows = _bench(tmp_path, "--docs", "1600", "--workers", "1", "--planning-docs", "20000",
                       "--repeats", "1")  # fmt: skip
    labels = [r.get("label") for r in rows]
    assert "packviz pack, text (end to end)" in labels
    assert "packviz pack, pre-tokenized (end to end)" in labels
    assert any(label.startswith("read the input + encode and write") for label in labels)
    assert "packed 1,600 documents" in out.stdout
    assert "pack ÷ np.sort" in out.stdout
    assert not (tmp_path / "cli-corpus-1600").exists()  # the corpus is removed afterwards


def test_the_pre_tokenized_comparison_runs_alone_on_worker_processes(tmp_path):
    import pyarrow.parquet as pq

    _, rows = _bench(tmp_path, "--docs", "900", "--workers", "2", "--pre-only", "--rounds", "1",
                     "--keep")  # fmt: skip
    job = "read the input + encode and write the output once: a job, launch to exit (2 worker processes)"
    by_label = {r["label"].strip(): r for r in rows}
    assert set(by_label) == {
        "packviz pack, pre-tokenized (end to end)",
        job,
        "the same work alone (processes started, imports done)",
    }
    corpus = tmp_path / "cli-corpus-900"
    assert sorted(p.name for p in corpus.iterdir()) == ["corpus.json", "tokens"]  # no text
    files = sorted((corpus / "tokens").glob("*.parquet"))
    tokens = sum(pq.read_table(f).column("input_ids").combine_chunks().values.to_numpy().size
                 for f in files)  # fmt: skip
    assert by_label[job]["tokens"] == tokens  # the floor read every input token
