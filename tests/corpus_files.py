"""Small corpora on disk for the `packviz pack` tests: JSONL (plain and gzip), parquet
(text and pre-tokenized), text and CSV files, a tokenizer file, and the expected token
ids computed by the library directly (`pv.encode`), to compare the pipeline against."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

import packviz as pv

ROOT = Path(__file__).resolve().parents[1]
WORDS = " ".join(pv.load_builtin("python-docs")).split()


def documents(n: int, seed: int = 0, *, blank_every: int = 0, median: float = 20) -> list[str]:
    """``n`` documents of log-normal word counts drawn from real prose; every
    ``blank_every``-th one whitespace only."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        if blank_every and i % blank_every == blank_every - 1:
            out.append("  ")
            continue
        k = int(rng.lognormal(np.log(median), 1.0)) + 1
        s = int(rng.integers(0, len(WORDS) - k))
        out.append(" ".join(WORDS[s : s + k]))
    return out


def write_jsonl(path: Path, docs: list[str], *, field: str = "text", gz: bool = False) -> Path:
    data = "".join(json.dumps({field: d, "id": i}) + "\n" for i, d in enumerate(docs)).encode()
    path.write_bytes(gzip.compress(data, mtime=0) if gz else data)
    return path


def write_parquet(path: Path, columns: dict, *, row_group_size: int = 1000) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table(columns), path, row_group_size=row_group_size)
    return path


def tokenizer_file(folder: Path, docs: list[str] | None = None, vocab: int = 600) -> Path:
    tok = pv.train_tokenizer(docs or documents(300, seed=99), vocab_size=vocab, cache_dir=False)
    path = folder / "tokenizer.json"
    tok.save(str(path))
    return path


def expected_ids(tokenizer_path: Path, docs: list[str], *, add_eos: bool = True) -> pv.TokenIds:
    """Token ids as the pipeline defines them: blank documents are empty (length 0)."""
    tok = pv.load_tokenizer(tokenizer_path)
    keep = [i for i, d in enumerate(docs) if d.strip()]
    ids = pv.encode(tok, [docs[i] for i in keep], add_eos=add_eos)
    lengths = np.zeros(len(docs), dtype=np.int64)
    lengths[keep] = ids.lengths
    offsets = np.zeros(len(docs) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return pv.TokenIds(ids.values, offsets)


def load_all(out: Path) -> list[pv.PackedArrays]:
    manifest = json.loads((out / "manifest.json").read_text())
    return [pv.load(out / s["file"]) for s in manifest["shards"]]


def stacked(arrays: list[pv.PackedArrays], name: str) -> np.ndarray:
    return np.concatenate([getattr(a, name) for a in arrays])


def tree_bytes(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (relative path -> bytes)."""
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def cli(*args: str, env: dict | None = None, **kwargs) -> subprocess.CompletedProcess:
    """``python -m packviz ARGS`` in a subprocess with this checkout first on the path."""
    return subprocess.run(
        [sys.executable, "-m", "packviz", *args],
        capture_output=True,
        text=True,
        env=cli_env(env),
        timeout=600,
        **kwargs,
    )


def cli_env(extra: dict | None = None) -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT), **(extra or {})}
