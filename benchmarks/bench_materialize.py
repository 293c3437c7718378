"""Pack + materialize: token lists -> [rows, L] training arrays, vs TRL and the tutorial.

Same token values for every method (seeded random ids over the log-normal lengths of
design.md), given in the ragged (values, offsets) form; peers get the same tokens as a
pyarrow list column (TRL) or as Python lists (the tutorial's next-fit, 100k only).

- packviz: ``pack(best_fit)`` + ``materialize`` -> input_ids, labels, position_ids,
  doc_ids (int32, [rows, L]) and cu_seqlens.
- TRL ``pack_dataset(strategy="bfd_split")`` and ``"bfd"``: unpadded input_ids +
  seq_lengths (optional peer: reported as skipped when TRL is not installed).
- the tutorial's ``create_packed_sequences`` next-fit, on Python lists.
- the bandwidth bar: allocate and write the four [rows, L] int32 output arrays once.

    python benchmarks/bench_materialize.py [--sizes 100000 1000000] [--max-len 2048]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._harness import (
    machine,
    measure,
    peer_available,
    print_table,
    run_worker,
    save_results,
    time_and_memory_cells,
    worker_main,
)


def _tokens(n: int):
    import numpy as np

    import packviz as pv

    lengths = pv.synthetic_lengths(n, seed=0)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    values = np.random.default_rng(1).integers(0, 50_000, int(offsets[-1]), dtype=np.int32)
    return pv.TokenIds(values, offsets)


def _packviz(spec):
    """pack + materialize, and the write-once bar interleaved in the same process (so both
    see the same memory state; page faults dominate both on this kind of VM)."""
    import statistics
    import time

    import numpy as np

    import packviz as pv

    if spec.get("torch"):
        import torch  # noqa: F401  (a training process has torch loaded: faster gather)
    ids = _tokens(spec["n"])
    L = spec["L"]

    def run():
        plan = pv.pack(ids.lengths, L, strategy="best_fit")
        return pv.materialize(plan, ids, pad_id=0)

    m = measure(run, spec["repeats"])
    a = run()
    rows, out_mb = a.n_rows, a.nbytes / 2**20
    del a
    ours, bar = [], []
    for _ in range(spec["repeats"]):
        t0 = time.perf_counter()
        x = run()
        ours.append(time.perf_counter() - t0)
        del x
        t0 = time.perf_counter()
        x = [np.full((rows, L), 1, dtype=np.int32) for _ in range(4)]
        bar.append(time.perf_counter() - t0)
        del x
    s = pv.pack(ids.lengths, L).stats()
    return {
        **m,
        "rows": rows,
        "out_mb": out_mb,
        "efficiency": s.efficiency,
        "lost": s.lost_tokens,
        "interleaved": statistics.median(ours),
        "bar": statistics.median(bar),
    }


def _write_once(spec):
    import numpy as np

    import packviz as pv

    ids = _tokens(spec["n"])
    rows = pv.pack(ids.lengths, spec["L"]).n_rows
    L = spec["L"]
    m = measure(lambda: [np.full((rows, L), 1, dtype=np.int32) for _ in range(4)], spec["repeats"])
    return {**m, "rows": rows, "out_mb": 4 * 4 * rows * L / 2**20}


def _trl(spec):
    import datasets
    import numpy as np
    import pyarrow as pa
    from trl.data_utils import pack_dataset

    datasets.disable_progress_bars()
    ids = _tokens(spec["n"])
    L = spec["L"]
    column = pa.ListArray.from_arrays(
        pa.array(ids.offsets.astype(np.int32) if ids.n_tokens < 2**31 else ids.offsets),
        pa.array(ids.values),
    )
    ds = datasets.Dataset(pa.table({"input_ids": column}))

    def run():
        out = pack_dataset(ds, L, strategy=spec["strategy"])
        return out.data.table  # force the packed table

    m = measure(run, spec["repeats"])
    out = pack_dataset(ds, L, strategy=spec["strategy"])
    rows = out.num_rows
    kept = int(np.sum(out.data.table.column("seq_lengths").combine_chunks().flatten().to_numpy()))
    return {**m, "rows": rows, "efficiency": kept / (rows * L), "lost": ids.n_tokens - kept}


def _seed(spec):
    ids = _tokens(spec["n"])
    L = spec["L"]
    lists = [ids[i].tolist() for i in range(len(ids))]

    def create_packed_sequences(token_ids, max_seq_len, pad_id=0):
        # the tutorial's algorithm, verbatim in substance (sort desc, next fit, pad)
        packed, mappings, cur, cur_map, cur_len = [], [], [], [], 0
        order = sorted(enumerate(token_ids), key=lambda x: len(x[1]), reverse=True)
        for idx, t in order:
            if cur_len + len(t) > max_seq_len:
                pad = max_seq_len - cur_len
                cur.extend([pad_id] * pad)
                cur_map.extend([-1] * pad)
                packed.append(cur)
                mappings.append(cur_map)
                cur, cur_map, cur_len = [], [], 0
            cur.extend(t)
            cur_map.extend([idx] * len(t))
            cur_len += len(t)
        if cur_len:
            pad = max_seq_len - cur_len
            packed.append(cur + [pad_id] * max(pad, 0))
            mappings.append(cur_map + [-1] * max(pad, 0))
        return packed, mappings

    m = measure(lambda: create_packed_sequences(lists, L), spec["repeats"])
    packed, _ = create_packed_sequences(lists, L)
    over = sum(len(r) > L for r in packed)
    return {**m, "rows": len(packed), "rows_over_L": over}


HANDLERS = {"packviz": _packviz, "write-once": _write_once, "trl": _trl, "seed": _seed}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--max-len", type=int, default=2048)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed-max", type=int, default=100_000, help="largest N for the tutorial")
    args = ap.parse_args()
    print(f"machine: {machine()}\n", flush=True)
    have_trl = peer_available("trl")
    results = []
    for n in args.sizes:
        base = {"n": n, "L": args.max_len, "repeats": args.repeats}
        group = [
            ("packviz pack(best_fit) + materialize (4 arrays)", {"method": "packviz"}),
            (
                "same, torch already imported (index_select gather)",
                {"method": "packviz", "torch": True},
            ),
            ("write the 4 output arrays once (bandwidth bar)", {"method": "write-once"}),
        ]
        for strat in ("bfd_split", "bfd"):
            group.append((f"TRL pack_dataset({strat})", {"method": "trl", "strategy": strat}))
        if n <= args.seed_max:
            group.append(("tutorial next-fit (Python lists)", {"method": "seed"}))
        rows = []
        for label, extra in group:
            if extra["method"] == "trl" and not have_trl:
                rows.append({**base, "label": label, "error": "skipped: trl not installed"})
                continue
            r = run_worker(
                __file__,
                {**base, **extra, "repeats": 1 if extra["method"] == "seed" else args.repeats},
                timeout=1800,
            )
            r["label"] = label
            rows.append(r)
        pv_row = rows[0]
        for r in rows:
            if "time" in r and "time" in pv_row:
                r["vs_pv"] = f"{r['time'] / pv_row['time']:.2f}×"
            if "peak_mb" in r and "out_mb" in pv_row:
                r["mem_ratio"] = f"{r['peak_mb'] / pv_row['out_mb']:.2f}×"
        results += rows
    for r in results:
        r["N"] = f"{r['n']:,}"
        time_and_memory_cells(r)
        r["rows_s"] = f"{r['rows']:,}" if "rows" in r else ""
        if "bar" in r:
            r["vs_bar"] = f"{r['interleaved'] / r['bar']:.2f}×"
        r["eff"] = f"{100 * r['efficiency']:.2f} %" if "efficiency" in r else ""
        r["lost_s"] = f"{r['lost']:,}" if "lost" in r else ""
        if "rows_over_L" in r:
            r["lost_s"] = f"{r['rows_over_L']:,} rows longer than L"
    table = print_table(
        results,
        [
            ("N", "documents"),
            ("label", "method"),
            ("t", "time (median)"),
            ("vs_pv", "time / packviz"),
            ("vs_bar", "÷ bar, interleaved"),
            ("mem", "peak extra RSS"),
            ("mem_ratio", "peak / packviz output"),
            ("rows_s", "rows"),
            ("eff", "efficiency"),
            ("lost_s", "lost tokens"),
        ],
    )
    save_results("materialize", results, table)


if __name__ == "__main__":
    if not worker_main(HANDLERS):
        main()
