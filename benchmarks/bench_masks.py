"""Mask building on the CPU: dense document masks vs a memset, the tutorial's double loop,
and the FlexAttention BlockMask built directly vs ``create_block_mask``.

Rows are packed from the design's log-normal lengths (best_fit, desc), so the pieces are
real. The memset bar fills a tensor of the same shape and dtype (``torch.ones``).

    python benchmarks/bench_masks.py [--repeats 5]
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


def _doc_ids(batch: int, L: int):
    """``batch`` rows spread evenly over a plan of log-normal documents.

    Rows come from ``next_fit`` in input order (the tutorial's setting without its sort):
    typical rows with a few documents and a padding tail.
    """
    import numpy as np
    import torch.nn.attention.flex_attention  # noqa: F401  (import outside the timing)

    import packviz as pv

    lengths = pv.synthetic_lengths(20 * batch * max(L // 300, 1) + 50, seed=0)
    plan = pv.pack(lengths, L, strategy="next_fit", sort="none")
    rows = np.linspace(0, plan.n_rows - 1, batch + 2).astype(int)[1:-1]
    return pv.materialize(plan, None, pad_id=0, rows=rows).doc_ids


def _dense(spec):
    import torch

    import packviz as pv

    torch.set_num_threads(spec.get("threads", torch.get_num_threads()))
    d = _doc_ids(spec["B"], spec["L"])
    m = measure(lambda: pv.document_mask(d, device="cpu"), spec["repeats"])
    return {**m, "mb": spec["B"] * spec["L"] ** 2 / 2**20}


def _memset(spec):
    import torch

    B, L = spec["B"], spec["L"]
    return measure(lambda: torch.ones(B, L, L, dtype=torch.bool), spec["repeats"])


def _broadcast(spec):
    """The plain torch way: same-document equality, & tril, | padding diagonal."""
    import torch

    d = torch.from_numpy(_doc_ids(spec["B"], spec["L"])).long()
    L = spec["L"]

    def run():
        tril = torch.ones(L, L, dtype=torch.bool).tril_()
        return (d[:, :, None] == d[:, None, :]) & tril

    return measure(run, spec["repeats"])


def _seed_loop(spec):
    import torch

    d = _doc_ids(1, spec["L"])[0].tolist()
    L = spec["L"]

    def create_packed_attention_mask(sequence_mapping, seq_len):  # the tutorial's code
        mask = torch.triu(torch.ones(seq_len, seq_len), diagonal=1).bool()
        mask = mask.float().masked_fill(mask == 1, float("-inf")).masked_fill(mask == 0, 0.0)
        for i in range(seq_len):
            for j in range(seq_len):
                if (
                    sequence_mapping[i] != sequence_mapping[j]
                    or sequence_mapping[i] == -1
                    or sequence_mapping[j] == -1
                ):
                    mask[i, j] = float("-inf")
        return mask

    return measure(lambda: create_packed_attention_mask(d, L), spec["repeats"])


def _block_direct(spec):
    import packviz as pv

    d = _doc_ids(spec["B"], spec["L"])
    return measure(lambda: pv.flex_block_mask(d, device="cpu"), spec["repeats"])


def _block_create(spec):
    import torch
    from torch.nn.attention.flex_attention import create_block_mask

    import packviz as pv

    d = _doc_ids(spec["B"], spec["L"])
    starts = pv.piece_starts(d, device="cpu")
    B, L = spec["B"], spec["L"]

    def mask_mod(b, h, q, k):
        return (starts[b, q] == starts[b, k]) & (k <= q)

    def run():
        return create_block_mask(mask_mod, B, None, L, L, device="cpu")

    m = measure(run, spec["repeats"])
    same = torch.equal(run().to_dense(), pv.flex_block_mask(d, device="cpu").to_dense())
    return {**m, "identical": same}


HANDLERS = {
    "dense": _dense,
    "memset": _memset,
    "broadcast": _broadcast,
    "seed": _seed_loop,
    "block-direct": _block_direct,
    "block-create": _block_create,
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    print(f"machine: {machine()}\n", flush=True)
    R = args.repeats
    plan = [
        (
            "dense document mask",
            1,
            512,
            [
                ("packviz document_mask", "dense", R),
                ("tutorial double loop", "seed", 1),
                ("memset (torch.ones)", "memset", R),
            ],
        ),
    ]
    for B, L in ((8, 2048), (2, 8192)):
        plan.append(
            (
                "dense document mask",
                B,
                L,
                [
                    ("packviz document_mask", "dense", R),
                    ("plain broadcast == & tril", "broadcast", R),
                    ("memset (torch.ones)", "memset", R),
                ],
            )
        )
    for B, L in ((1, 2048), (1, 8192)):
        plan.append(
            (
                "FlexAttention BlockMask",
                B,
                L,
                [
                    ("packviz flex_block_mask (direct)", "block-direct", R),
                    ("create_block_mask(document mask_mod)", "block-create", 3),
                ],
            )
        )
    rows = []
    for work, B, L, methods in plan:
        group = []
        for label, method, reps in methods:
            r = run_worker(__file__, {"method": method, "B": B, "L": L, "repeats": reps})
            r.update(work=work, shape=f"{B}×{L}", label=label)
            group.append(r)
        first = group[0]
        for r in group:
            if "time" in r and "time" in first:
                r["ratio"] = f"{r['time'] / first['time']:,.1f}×"
        rows += group
    for r in rows:
        time_and_memory_cells(r)
        r["same"] = {True: "identical", False: "DIFFERENT"}.get(r.get("identical"), "")
    table = print_table(
        rows,
        [
            ("work", "work"),
            ("shape", "B × L"),
            ("label", "method"),
            ("t", "time (median)"),
            ("ratio", "time / packviz"),
            ("mem", "peak extra RSS"),
            ("same", "check"),
        ],
    )
    save_results("masks", rows, table)


if __name__ == "__main__":
    if not worker_main(HANDLERS):
        main()
