"""Planning speed: pv.pack on synthetic log-normal lengths vs a straightforward BFD.

Workload (design.md): log-normal lengths, median 300, sigma 1.0, clipped to [1, 32768],
seed 0; N = 10k, 100k, 1M, 10M; L = 2048 and 8192. References in the same run:
``packviz._reference.reference_pack`` with best fit, descending (the library's slow
reference: split, sort, then one piece at a time with a bisect over the sorted rooms, in
Python: the bar), and ``np.sort`` of the lengths (numpy's default sort: how a
linear-log step scales, and the bar of issue 12: planning within 6× of it). "Planning
memory per piece" is the peak RSS the call adds beyond the plan it returns (40 bytes per
piece), over its pieces.

    python benchmarks/bench_planning.py [--sizes 10000 100000 1000000 10000000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._harness import (
    machine,
    measure,
    print_table,
    run_worker,
    save_results,
    time_and_memory_cells,
    worker_main,
)


def _lengths(n: int, max_len: int):
    import packviz as pv

    lengths = pv.synthetic_lengths(n, seed=0)
    return lengths


def _pv(spec):
    import packviz as pv

    lengths = _lengths(spec["n"], spec["L"])
    strategy, sort = spec["strategy"], spec.get("sort", "desc")
    m = measure(lambda: pv.pack(lengths, spec["L"], strategy=strategy, sort=sort), spec["repeats"])
    s = pv.pack(lengths, spec["L"], strategy=strategy, sort=sort).stats()
    extra = (m["peak_mb"] * 2**20 - 40 * s.n_pieces) / max(s.n_pieces, 1)
    return {**m, "rows": s.n_rows, "lower_bound": s.lower_bound_rows, "lost": s.lost_tokens,
            "per_piece": extra}  # fmt: skip


def _reference(spec):
    from packviz._reference import reference_pack

    lengths = _lengths(spec["n"], spec["L"]).tolist()
    L = spec["L"]
    m = measure(lambda: reference_pack(lengths, L, "best_fit", "desc"), spec["repeats"])
    rows = len(reference_pack(lengths, L, "best_fit", "desc"))
    return {**m, "rows": rows, "lower_bound": -(-sum(lengths) // L), "lost": 0}


def _np_sort(spec):
    import numpy as np

    lengths = _lengths(spec["n"], spec["L"])
    return measure(lambda: np.sort(lengths), spec["repeats"])


HANDLERS = {"pv": _pv, "reference": _reference, "np.sort": _np_sort}

METHODS = [
    ("pv", {"strategy": "best_fit"}, "packviz best_fit (BFD)"),
    ("pv", {"strategy": "first_fit"}, "packviz first_fit (FFD)"),
    ("pv", {"strategy": "next_fit"}, "packviz next_fit"),
    ("pv", {"strategy": "wrapped"}, "packviz wrapped"),
    ("pv", {"strategy": "padded"}, "packviz padded"),
    ("pv", {"strategy": "best_fit", "sort": "none"}, "packviz best_fit, sort=none (online)"),
    ("reference", {}, "reference BFD (_reference.reference_pack, Python)"),
    ("np.sort", {}, "np.sort of the lengths"),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument(
        "--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000, 10_000_000]
    )
    ap.add_argument("--max-lens", type=int, nargs="+", default=[2048, 8192])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    print(f"machine: {machine()}\n", flush=True)
    rows = []
    for L in args.max_lens:
        for n in args.sizes:
            ref_time = sort_time = None
            for method, extra, label in METHODS:
                if method == "pv" and extra.get("sort") == "none" and n > 1_000_000:
                    continue  # online best fit is O(N log N) Python: measured up to 1M
                spec = {"method": method, "n": n, "L": L, "repeats": args.repeats, **extra}
                r = run_worker(__file__, spec)
                r["label"] = label
                if method == "reference":
                    ref_time = r.get("time")
                if method == "np.sort":
                    sort_time = r.get("time")
                rows.append(r)
            for r in rows:
                if r["n"] == n and r["L"] == L and "time" in r and ref_time:
                    r["speedup"] = f"{ref_time / r['time']:.1f}×"
                if r["n"] == n and r["L"] == L and "time" in r and sort_time:
                    if r["method"] == "pv":
                        r["vs_sort"] = f"{r['time'] / sort_time:.1f}×"
    for r in rows:
        r["N"] = f"{r['n']:,}"
        time_and_memory_cells(r)
        if "per_piece" in r:
            r["pp"] = f"{r['per_piece']:.0f} B"
        if "rows" in r:
            r["over"] = f"{100 * (r['rows'] - r['lower_bound']) / max(r['lower_bound'], 1):.3f} %"
            r["rows_s"] = f"{r['rows']:,}"
    table = print_table(
        rows,
        [
            ("L", "L"),
            ("N", "documents"),
            ("label", "method"),
            ("t", "time (median)"),
            ("mem", "peak extra RSS"),
            ("pp", "planning memory per piece"),
            ("rows_s", "rows"),
            ("over", "rows over bound"),
            ("speedup", "× vs reference BFD"),
            ("vs_sort", "÷ np.sort"),
        ],
    )
    # scaling 1M -> 10M compared with np.sort
    scaling = []
    for L in args.max_lens:

        def t(label, n, L=L):
            for r in rows:
                if r["label"] == label and r["n"] == n and r["L"] == L and "time" in r:
                    return r["time"]
            return None

        for _, _, label in METHODS:
            a, b = t(label, 1_000_000), t(label, 10_000_000)
            if a and b:
                scaling.append({"L": L, "label": label, "ratio": f"{b / a:.1f}×"})
    if scaling:
        print()
        print_table(scaling, [("L", "L"), ("label", "method"), ("ratio", "time 10M / time 1M")])
    save_results("planning", rows, table)


if __name__ == "__main__":
    if not worker_main(HANDLERS):
        main()
