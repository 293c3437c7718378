"""Training from a file larger than memory: anonymous memory of `pv.load` (the whole
file) against `pv.open` read lazily, per format, and the time of one epoch.

One packed file per format (the same rows), then each measurement in a fresh process:
warm up on a small file of the same kind (imports, allocator arenas, first row
groups), then iterate the big one while a thread samples ``RssAnon`` (resident
anonymous memory: mapped file pages are page cache the kernel can drop, not counted).
The budget is a tenth of the ``.npz`` file (the rows' raw bytes).

- ``load``: ``pv.load`` of the whole file (what issue 10 measured: it reads it all);
- ``map``: ``DataLoader(pv.PackedDataset(pv.open(path)), batch_size=8)``, in order;
- ``stream``: ``pv.PackedIterableDataset(path, shuffle=True).loader(8)``.

    python benchmarks/bench_streaming.py [--mib 256] [--max-len 2048]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _anon() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) * 1024
    return 0


def _make(out: Path, name: str, mib: int, max_len: int) -> None:
    import numpy as np

    import packviz as pv

    rng = np.random.default_rng(0)
    n_docs = max(1, (mib << 20) // (16 * 495))  # 4 int32 fields x the mean length (~495)
    lengths = np.clip(rng.lognormal(np.log(300), 1.0, n_docs).astype(np.int64), 1, 32768)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    values = rng.integers(0, 50_000, size=int(offsets[-1]), dtype=np.int32)
    a = pv.materialize(pv.pack(lengths, max_len), pv.TokenIds(values, offsets), pad_id=0)
    for fmt in pv.FORMATS:
        pv.save(a, out / f"{name}.{fmt}")


def _worker(spec: dict) -> dict:
    import packviz as pv

    def loader(path):
        if spec["how"] == "map":
            from torch.utils.data import DataLoader

            ds = pv.PackedDataset(pv.open(path))
            return DataLoader(ds, batch_size=8, collate_fn=pv.collate_with("flattened"))
        ds = pv.PackedIterableDataset(path, shuffle=True)
        return ds.loader(8, collate_fn=pv.collate_with("flattened"))

    if spec["how"] == "load":
        pv.load(spec["small"])
    else:
        for _ in loader(spec["small"]):
            pass
    base = _anon()
    peak, done = [base], []

    def sample():
        while not done:
            peak[0] = max(peak[0], _anon())
            time.sleep(0.001)

    thread = threading.Thread(target=sample)
    thread.start()
    t0 = time.perf_counter()
    if spec["how"] == "load":
        rows = pv.load(spec["big"]).n_rows
    else:
        rows = sum(int(b["cu_seq_lens_q"].numel()) for b in loader(spec["big"]))
    seconds = time.perf_counter() - t0
    done.append(1)
    thread.join()
    return {"growth": peak[0] - base, "seconds": seconds, "rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=256, help="rows' raw size (MiB)")
    parser.add_argument("--max-len", type=int, default=2048)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        _make(out, "small", max(1, args.mib // 64), args.max_len)
        _make(out, "big", args.mib, args.max_len)
        size = (out / "big.npz").stat().st_size
        budget = size // 10
        print(f"file: {size / 2**20:.0f} MiB as .npz, budget (a tenth): {budget / 2**20:.1f} MiB")
        print(f"{'format':8} {'how':7} {'anon peak growth':>17} {'vs budget':>10} {'epoch':>8}")
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        for fmt in ("npz", "pt", "parquet"):
            for how in ("load", "map", "stream"):
                spec = {
                    "small": str(out / f"small.{fmt}"),
                    "big": str(out / f"big.{fmt}"),
                    "how": how,
                }
                cmd = [sys.executable, __file__, "--worker", json.dumps(spec)]
                res = subprocess.run(cmd, env=env, capture_output=True, text=True)
                if res.returncode:
                    print(f"{fmt:8} {how:7} failed: {res.stderr.strip().splitlines()[-1]}")
                    continue
                got = json.loads(res.stdout.splitlines()[-1])
                print(
                    f"{fmt:8} {how:7} {got['growth'] / 2**20:14.1f} MiB {got['growth'] / budget:9.2f}x"
                    f" {got['seconds']:7.1f}s"
                )


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        print(json.dumps(_worker(json.loads(sys.argv[2]))))
    else:
        main()
